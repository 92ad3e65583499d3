import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small documentation site on 127.0.0.1 for the example apps' page tests: pages with real
 * titles, some broken links (404, so a crawl has failure rows) and one page with a very long URL
 * and title (so a layout that lets text widen the page shows it).
 */
export interface DocsSite {
  url: string;
  origin: string;
  /** Every request path, in arrival order. */
  requests: string[];
  /** The path of the page with the long URL. */
  longPath: string;
  close(): Promise<void>;
}

export interface DocsSiteOptions {
  /** Documentation pages, the home page included. @default 40 */
  pages?: number;
  /** Links from each page to the next level. @default 3 */
  fanout?: number;
  /** Delay before each answer. @default 0 */
  latencyMs?: number;
  /** Every `brokenEvery`-th page also links to a page that answers 404. @default 7 */
  brokenEvery?: number;
}

const TOPICS = [
  'Installing',
  'Configuring storage',
  'Time budgets',
  'Progress events',
  'Retries and backoff',
  'Politeness',
  'Robots.txt',
  'Deploying',
  'The HTTP API',
  'Cancelling jobs',
];
const LONG_PATH = `/docs/${'a-very-long-article-slug-that-keeps-going-'.repeat(4)}end?utm_source=${'x'.repeat(60)}`;
const LONG_TITLE = `${'An article whose title is much longer than any table cell could hold on a phone, '.repeat(2)}end`;

export async function startDocsSite(options: DocsSiteOptions = {}): Promise<DocsSite> {
  const { pages = 40, fanout = 3, latencyMs = 0, brokenEvery = 7 } = options;
  const requests: string[] = [];
  const pathOf = (i: number) => (i === 0 ? '/' : `/docs/${i}-${TOPICS[i % TOPICS.length]!.toLowerCase().replaceAll(' ', '-').replaceAll('.', '')}`);
  const byPath = new Map<string, number>();
  for (let i = 0; i < pages; i++) byPath.set(pathOf(i), i);

  const page = (title: string, links: string[]) =>
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><ul>${links
      .map((href) => `<li><a href="${href.replaceAll('&', '&amp;')}">${href}</a></li>`)
      .join('')}</ul></body></html>`;

  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push(path);
    setTimeout(() => {
      const i = byPath.get(path);
      if (path === LONG_PATH) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(page(LONG_TITLE, ['/']));
        return;
      }
      if (i === undefined) {
        res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' });
        res.end(page('Not found', []));
        return;
      }
      const links: string[] = [];
      for (let c = fanout * i + 1; c <= fanout * i + fanout && c < pages; c++) links.push(pathOf(c));
      if (i > 0 && i % brokenEvery === 0) links.push(`/docs/removed-${i}`);
      if (i === 1) links.push(LONG_PATH);
      const title = i === 0 ? 'Acme Docs · Home' : `${TOPICS[i % TOPICS.length]} (part ${i}) · Acme Docs`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page(title, links));
    }, latencyMs);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/`,
    origin,
    requests,
    longPath: LONG_PATH,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
