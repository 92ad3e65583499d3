import { linksOf } from '../fixtures/site.mjs';
import { html, serve, type TestServer } from './server.js';

export interface RobotsSite {
  /** The site: pages /p/1 … (page 0 is /), robots.txt disallowing /private. */
  site: TestServer;
  /** Another origin (same host name, another port) whose robots.txt disallows everything. */
  other: TestServer;
  url: string;
  /** Requests per path on the site. */
  hits: Map<string, number>;
  close(): Promise<void>;
}

/**
 * The tree of test/fixtures/site.mjs (`fanout` children per page, the next page and the parent), where
 * page i also links /private/i (disallowed on its own origin) and, from page `otherFrom` on, the
 * other origin's /q/i (disallowed there: a processor learns it only when it first claims such a
 * URL; the other origin takes `otherRobotsDelayMs` to answer for its robots.txt, and the first
 * links to it are found while every processor is busy, so that processors admit many of its URLs
 * before they know).
 */
export async function startRobotsSite(opts: { pages: number; fanout: number; otherFrom?: number; otherRobotsDelayMs?: number }): Promise<RobotsSite> {
  const other = await serve((req, res) => {
    const answer = () => {
      res.writeHead(req.url === '/robots.txt' ? 200 : 500, { 'content-type': 'text/plain' });
      res.end(req.url === '/robots.txt' ? 'User-agent: *\nDisallow: /\n' : 'never');
    };
    if (req.url === '/robots.txt' && opts.otherRobotsDelayMs) setTimeout(answer, opts.otherRobotsDelayMs);
    else answer();
  });
  const hits = new Map<string, number>();
  const site = await serve((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/robots.txt') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('User-agent: *\nDisallow: /private\n');
    }
    const m = path === '/' ? ['', '0'] : /^\/p\/(\d+)$/.exec(path);
    const i = m === null ? -1 : Number(m[1]);
    if (i < 0 || i >= opts.pages) {
      res.writeHead(404, { 'content-type': 'text/html' });
      return res.end(html('<p>not found</p>'));
    }
    const links = [
      ...linksOf(i, opts).map((j) => (j === 0 ? '/' : `/p/${j}`)),
      `/private/${i}`,
      ...(i >= (opts.otherFrom ?? 0) ? [`${other.origin}/q/${i}`] : []),
    ];
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html(`<h1>Page ${i}</h1>${links.map((href) => `<a href="${href}">${href}</a>`).join(' ')}`));
  });
  return {
    site,
    other,
    url: site.url,
    hits,
    close: async () => {
      await Promise.all([site.close(), other.close()]);
    },
  };
}
