import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { CrawlStorage } from '../src/core/storage.js';
import { allResults, testEngine } from './helpers/engine.js';
import { html, serve, type TestServer } from './helpers/server.js';
import { closeRedis, everyStorage } from './helpers/storages.js';

/**
 * A site whose home page links /a and /b; robots.txt lists an index of two sitemaps that list
 * /a (with a lastmod), /c, /d (robots.txt disallows it), /e?x (excluded by the job's glob) and
 * an off-site URL; /c links /f, which only a followed link can reach.
 */
function siteHandler(origin: () => string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const o = origin();
    const page = (body: string) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html(body));
    };
    switch (req.url) {
      case '/robots.txt':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`User-agent: *\nDisallow: /d\nSitemap: ${o}/sitemap_index.xml\n`);
        return;
      case '/sitemap_index.xml':
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(
          `<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>${o}/one.xml</loc></sitemap><sitemap><loc>${o}/two.xml.gz</loc></sitemap><sitemap><loc>${o}/missing.xml</loc></sitemap></sitemapindex>`,
        );
        return;
      case '/one.xml':
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(
          `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>${o}/</loc><lastmod>2024-01-01</lastmod></url><url><loc>${o}/a</loc><lastmod>2024-02-03T04:05:06Z</lastmod></url><url><loc>${o}/c</loc></url></urlset>`,
        );
        return;
      case '/two.xml.gz':
        res.writeHead(200, { 'content-type': 'application/gzip' });
        res.end(gzipSync(`${o}/d\n${o}/e?x=1\nhttp://elsewhere.test/z\n`));
        return;
      case '/':
        return page('<a href="/a">a</a><a href="/b">b</a>');
      case '/c':
        return page('<a href="/f">f</a>');
      case '/a':
      case '/b':
      case '/f':
        return page(`<p>${req.url}</p>`);
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('nope');
    }
  };
}

let server: TestServer;
beforeEach(async () => {
  server = await serve(siteHandler(() => server.origin));
});
afterEach(async () => {
  await server.close();
});
afterAll(closeRedis);

describe.each(everyStorage)('%s', (_name, make) => {
  let storage: CrawlStorage;
  beforeEach(async () => {
    storage = await make();
  });
  afterEach(async () => {
    await storage.close?.();
  });

  test("sitemap: 'include' crawls the listed URLs at depth 0 with their lastmod, judged like links, next to the page's links", async () => {
    const engine = testEngine({}, storage);
    const job = await engine.crawl({ url: server.url, sitemap: 'include', maxDepth: 1, exclude: ['**/e?x=*'] });
    await engine.close();
    const results = await allResults(engine, job.id);
    const byPath = new Map(results.map((r) => [new URL(r.url).pathname, r]));
    expect([...byPath.keys()].sort()).toEqual(['/', '/a', '/b', '/c', '/d', '/f']);
    // Listed and linked: the sitemap's entry (depth 0, lastmod) stands in for the link.
    expect(byPath.get('/a')).toMatchObject({ ok: true, depth: 0, lastmod: '2024-02-03T04:05:06Z' });
    expect(byPath.get('/b')).toMatchObject({ ok: true, depth: 1 });
    expect(byPath.get('/b')!.lastmod).toBeUndefined();
    expect(byPath.get('/c')).toMatchObject({ ok: true, depth: 0 });
    // /f is one hop from /c (depth 0): followed at depth 1.
    expect(byPath.get('/f')).toMatchObject({ ok: true, depth: 1 });
    expect(byPath.get('/d')).toMatchObject({ ok: false, error: { code: 'robots' } });
    const home = byPath.get('/')!;
    expect(home.lastmod).toBe('2024-01-01');
    expect(home.sitemaps).toEqual({
      read: [`${server.origin}/sitemap_index.xml`, `${server.origin}/one.xml`, `${server.origin}/two.xml.gz`],
      urls: 4,
      truncated: false,
      errors: [{ url: `${server.origin}/missing.xml`, code: 'http_error', message: `sitemap ${server.origin}/missing.xml: HTTP 404` }],
    });
    expect(job.status).toBe('completed');
    expect(server.requests.filter((p) => p === '/sitemap_index.xml')).toHaveLength(1);
  });

  test("sitemap: 'only' crawls the start URL and the listed URLs, and follows no links", async () => {
    const engine = testEngine({}, storage);
    const job = await engine.crawl({ url: server.url, sitemap: 'only', respectRobots: false });
    await engine.close();
    const results = await allResults(engine, job.id);
    expect(results.map((r) => new URL(r.url).pathname + new URL(r.url).search).sort()).toEqual(['/', '/a', '/c', '/d', '/e?x=1']);
    expect(results.every((r) => r.depth === 0)).toBe(true);
  });

  test("sitemap: 'skip' (the default) reads no sitemap", async () => {
    const engine = testEngine({}, storage);
    const job = await engine.crawl({ url: server.url, maxDepth: 1 });
    await engine.close();
    const results = await allResults(engine, job.id);
    expect(results.map((r) => new URL(r.url).pathname).sort()).toEqual(['/', '/a', '/b']);
    expect(results.find((r) => r.url === server.url)!.sitemaps).toBeUndefined();
    expect(server.requests.some((p) => p.includes('sitemap'))).toBe(false);
  });

  test('sitemap URLs count against maxPages like links', async () => {
    const engine = testEngine({}, storage);
    const job = await engine.crawl({ url: server.url, sitemap: 'only', maxPages: 2, respectRobots: false });
    await engine.close();
    expect(job.counts.succeeded + job.counts.failed).toBe(2);
    const home = (await allResults(engine, job.id)).find((r) => r.url === server.url)!;
    // Two pages: the job keeps at most 2 × maxPages of the listed URLs.
    expect(home.sitemaps).toMatchObject({ urls: 4, truncated: true });
  });
});

describe('memory: retries and hostile sitemaps', () => {
  test('a start URL retried after a transient error reads its sitemaps once and admits each URL once', async () => {
    let homeTries = 0;
    const handler = siteHandler(() => flaky.origin);
    const flaky: TestServer = await serve((req, res) => {
      if (req.url === '/' && ++homeTries === 1) {
        res.writeHead(503);
        res.end();
        return;
      }
      handler(req, res);
    });
    try {
      const engine = testEngine();
      const job = await engine.crawl({ url: flaky.url, sitemap: 'only' });
      await engine.close();
      const results = await allResults(engine, job.id);
      expect(homeTries).toBe(2);
      expect(results.find((r) => r.url === flaky.url)).toMatchObject({ ok: true, attempts: 2 });
      expect(results.map((r) => new URL(r.url).pathname).sort()).toEqual(['/', '/a', '/c', '/d', '/e']);
      expect(flaky.requests.filter((p) => p === '/one.xml')).toHaveLength(1);
      expect(job.counts).toMatchObject({ discovered: 5, succeeded: 3, failed: 1, skipped: 1 });
    } finally {
      await flaky.close();
    }
  });

  test('a sitemap that hangs and a gzip bomb do not hold the job: the start URL stores its problems and the job completes', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    const hostile: TestServer = await serve((req, res) => {
      const o = hostile.origin;
      if (req.url === '/robots.txt') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`Sitemap: ${o}/hang.xml\nSitemap: ${o}/bomb.xml.gz\nSitemap: ${o}/ok.txt\n`);
      } else if (req.url === '/hang.xml') {
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.write(`<urlset><url><loc>${o}/early</loc></url>`);
      } else if (req.url === '/bomb.xml.gz') {
        res.writeHead(200, { 'content-type': 'application/gzip' });
        res.end(Buffer.concat([bomb, bomb]));
      } else if (req.url === '/ok.txt') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${o}/fine\n`);
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(html('<p>page</p>'));
      }
    });
    try {
      const engine = testEngine({ fetch: { timeoutMs: 3000 } });
      const started = Date.now();
      const job = await engine.crawl({ url: hostile.url, sitemap: 'include' });
      await engine.close();
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(job.status).toBe('completed');
      const results = await allResults(engine, job.id);
      expect(results.map((r) => new URL(r.url).pathname).sort()).toEqual(['/', '/early', '/fine']);
      const start = results.find((r) => r.url === hostile.url)!;
      expect(start.sitemaps!.errors.map((e) => e.code)).toEqual(['timeout', 'too_large']);
      expect(start.sitemaps!.read).toEqual([`${hostile.origin}/ok.txt`]);
    } finally {
      await hostile.close();
    }
  });
});
