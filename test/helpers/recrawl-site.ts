import type { CrawlEngine } from '../../src/core/engine.js';
import type { Job } from '../../src/core/types.js';
import { TERMINAL_STATUSES } from '../../src/core/types.js';
import { html, serve, type TestServer } from './server.js';

/**
 * A loopback site of `pages` pages for recrawl tests and the recrawl bench: `/` links to 10
 * sections (`/s/0`…`/s/9`), each to its share of the pages (`/p/<n>`, depth 2). Every page answers
 * with an `ETag` from its version and honours `If-None-Match` with a bodiless 304. Pages can be
 * changed (a new version: new text), deleted (404) and added (linked from their section), and the
 * site counts the body bytes it sends.
 */
export interface RecrawlSite {
  server: TestServer;
  url: string;
  /** Body bytes sent since the last `resetCounts()`. */
  bodyBytes: number;
  /** 304 answers since the last `resetCounts()`. */
  notModified: number;
  resetCounts(): void;
  change(n: number): void;
  remove(n: number): void;
  add(): number;
  close(): Promise<void>;
}

export async function recrawlSite(pages: number, options: { etag?: boolean; lastModified?: boolean } = {}): Promise<RecrawlSite> {
  const withEtag = options.etag ?? true;
  const withLastModified = options.lastModified ?? false;
  const versions = new Map<number, number>();
  for (let n = 0; n < pages; n++) versions.set(n, 1);
  let next = pages;
  const sections = 10;
  const filler = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(30);
  const pageIds = () => [...versions.keys()];
  const bodyOf = (path: string): { body: string; tag: string } | null => {
    if (path === '/') {
      const links = Array.from({ length: sections }, (_, s) => `<a href="/s/${s}">Section ${s}</a>`).join(' ');
      return { body: html(`<h1>Home</h1>${links}`, '<title>Home</title>'), tag: 'home-1' };
    }
    const section = /^\/s\/(\d+)$/.exec(path);
    if (section !== null) {
      const s = Number(section[1]);
      if (s >= sections) return null;
      const ids = pageIds().filter((n) => n % sections === s);
      const links = ids.map((n) => `<a href="/p/${n}">Page ${n}</a>`).join(' ');
      return { body: html(`<h1>Section ${s}</h1>${links}`, `<title>Section ${s}</title>`), tag: `s${s}-${ids.join('.')}` };
    }
    const page = /^\/p\/(\d+)$/.exec(path);
    if (page !== null) {
      const n = Number(page[1]);
      const version = versions.get(n);
      if (version === undefined) return null;
      return {
        body: html(
          `<h1>Page ${n}</h1><p>Version ${version} of page ${n}.</p><p>${filler}</p>`,
          `<title>Page ${n}</title><meta name="description" content="Page ${n}">`,
        ),
        tag: `p${n}-${version}`,
      };
    }
    return null;
  };
  const site: RecrawlSite = {
    server: undefined as unknown as TestServer,
    url: '',
    bodyBytes: 0,
    notModified: 0,
    resetCounts() {
      site.bodyBytes = 0;
      site.notModified = 0;
    },
    change(n) {
      versions.set(n, (versions.get(n) ?? 0) + 1);
    },
    remove(n) {
      versions.delete(n);
    },
    add() {
      const n = next++;
      versions.set(n, 1);
      return n;
    },
    close: () => site.server.close(),
  };
  site.server = await serve((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/robots.txt') {
      res.writeHead(404).end();
      return;
    }
    const found = bodyOf(path);
    if (found === null) {
      const body = 'not found';
      site.bodyBytes += Buffer.byteLength(body);
      res.writeHead(404, { 'content-type': 'text/plain' }).end(body);
      return;
    }
    // A weak hash of the tag stands for the version; Last-Modified only for the pages' versions.
    const etag = `"${found.tag}"`;
    const lastModified = new Date(Date.UTC(2026, 0, 1) + Number(found.tag.replace(/\D/g, '').slice(-6)) * 1000).toUTCString();
    const headers: Record<string, string> = { 'content-type': 'text/html; charset=utf-8' };
    if (withEtag) headers.etag = etag;
    if (withLastModified) headers['last-modified'] = lastModified;
    const match = withEtag ? req.headers['if-none-match'] === etag : withLastModified && req.headers['if-modified-since'] === lastModified;
    if (match) {
      site.notModified++;
      res.writeHead(304, headers).end();
      return;
    }
    site.bodyBytes += Buffer.byteLength(found.body);
    res.writeHead(200, headers).end(found.body);
  });
  site.url = site.server.url;
  return site;
}

/** Runs the engine's processor on one job until it has finished. */
export async function crawlToEnd(engine: CrawlEngine, jobId: string, budgetMs = 5000): Promise<Job> {
  for (let i = 0; i < 10_000; i++) {
    await engine.processor.run({ jobId, budgetMs });
    const job = await engine.jobs.get(jobId);
    if (job !== null && TERMINAL_STATUSES.has(job.status)) return job;
  }
  throw new Error(`job ${jobId} did not finish`);
}
