export const metadata = { title: 'crawl-engine · Next.js example' };

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en">
      <body style={{ font: '15px/1.5 system-ui, sans-serif', maxWidth: 960, margin: '2rem auto', padding: '0 1rem' }}>{children}</body>
    </html>
  );
}
