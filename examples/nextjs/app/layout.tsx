import type { Metadata, Viewport } from 'next';
import './globals.css';

export const metadata: Metadata = { title: 'crawl-engine · Next.js example' };
export const viewport: Viewport = { width: 'device-width', initialScale: 1 };

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
