/**
 * `maxPages` counts pages fetched (issue 12): URLs robots.txt disallows do not use it up, on every
 * storage, whether the processor knew the rules when it found the links or learned them after.
 */
import { afterAll, describe, expect, test } from 'vitest';
import type { PageResult } from '../src/core/types.js';
import { allResults, testEngine } from './helpers/engine.js';
import { closeAll } from './helpers/postgres.js';
import { html, serve, type TestServer } from './helpers/server.js';
import { closeRedis, everyStorage } from './helpers/storages.js';

afterAll(async () => {
  await closeRedis();
  await closeAll();
});

const ALLOWED = 200;
const DISALLOWED = 19;
const MAX_PAGES = 100;
/**
 * In-process storages (PGlite, ioredis-mock) run their queries on this thread and can hold it for a
 * while: a long request timeout keeps such a stall from timing out (and retrying) a page.
 */
const engineOptions = { fetch: { timeoutMs: 30_000 } };

/**
 * A site whose home page links `disallowed` first (document order), then /p/0 … /p/199. Every
 * 20th page answers 404: a failed page is a fetched page too. robots.txt disallows /private.
 */
async function site(disallowed: (origin: string) => string[]): Promise<TestServer> {
  const server: TestServer = await serve((req, res) => {
    const path = req.url ?? '/';
    if (path === '/robots.txt') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('User-agent: *\nDisallow: /private\n');
    }
    if (path === '/') {
      const links = [...disallowed(server.origin), ...Array.from({ length: ALLOWED }, (_, i) => `/p/${i}`)];
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(html(links.map((href) => `<a href="${href}">x</a>`).join('')));
    }
    const page = /^\/p\/(\d+)$/.exec(path);
    if (page === null || Number(page[1]) % 20 === 7) {
      res.writeHead(404, { 'content-type': 'text/html' });
      return res.end(html('<p>not found</p>'));
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html(`<p>page ${page[1]}</p><a href="/">home</a>`));
  });
  return server;
}

function summary(results: PageResult[]) {
  const robots = results.filter((r) => r.error?.code === 'robots');
  const fetched = results.filter((r) => r.error?.code !== 'robots');
  return {
    fetched: fetched.length,
    fetchedOnce: new Set(fetched.map((r) => r.url)).size,
    succeeded: fetched.filter((r) => r.ok).length,
    failed: fetched.filter((r) => !r.ok).length,
    robots: robots.length,
  };
}

describe.each(everyStorage)('maxPages counts pages fetched (%s)', (_name, makeStorage) => {
  test(`a home page linking ${ALLOWED} allowed pages and ${DISALLOWED} disallowed ones (listed first), maxPages ${MAX_PAGES}: exactly ${MAX_PAGES} fetched, the ${DISALLOWED} recorded as robots`, async () => {
    const server = await site(() => Array.from({ length: DISALLOWED }, (_, i) => `/private/${i}`));
    try {
      const engine = testEngine(engineOptions, await makeStorage());
      const job = await engine.crawl({ url: server.url, maxPages: MAX_PAGES, maxDepth: 1, perHostConcurrency: 8 });
      await engine.close();
      const results = await allResults(engine, job.id);
      expect(job.status).toBe('completed');
      expect(summary(results)).toEqual({ fetched: MAX_PAGES, fetchedOnce: MAX_PAGES, succeeded: 95, failed: 5, robots: DISALLOWED });
      const pages = server.requests.filter((p) => p !== '/robots.txt');
      expect(pages).toHaveLength(MAX_PAGES);
      expect(new Set(pages).size).toBe(MAX_PAGES);
      expect(pages.filter((p) => p.startsWith('/private'))).toEqual([]);
      expect(job.counts).toEqual({ discovered: MAX_PAGES + DISALLOWED, queued: 0, inProgress: 0, succeeded: 95, failed: 5, skipped: DISALLOWED });
      const skipped = results.filter((r) => r.error?.code === 'robots');
      expect(skipped.map((r) => new URL(r.url).pathname).sort()).toEqual(Array.from({ length: DISALLOWED }, (_, i) => `/private/${i}`).sort());
      const message = 'disallowed by robots.txt (Disallow: /private)';
      expect(skipped[0]).toMatchObject({ ok: false, status: null, depth: 1, attempts: 0, error: { code: 'robots', message } });
    } finally {
      await server.close();
    }
  }, 60_000);

  test(`the ${DISALLOWED} disallowed links on another origin, whose robots.txt is learned only after they were admitted: still exactly ${MAX_PAGES} fetched`, async () => {
    // Same host name, another port: in scope (same-hostname), with its own robots.txt.
    const other = await serve((req, res) => {
      res.writeHead(req.url === '/robots.txt' ? 200 : 500, { 'content-type': 'text/plain' });
      res.end(req.url === '/robots.txt' ? 'User-agent: *\nDisallow: /\n' : 'never');
    });
    const server = await site(() => Array.from({ length: DISALLOWED }, (_, i) => `${other.origin}/q/${i}`));
    try {
      const engine = testEngine(engineOptions, await makeStorage());
      const job = await engine.crawl({ url: server.url, maxPages: MAX_PAGES, maxDepth: 1, perHostConcurrency: 8 });
      await engine.close();
      const results = await allResults(engine, job.id);
      expect(job.status).toBe('completed');
      expect(summary(results)).toEqual({ fetched: MAX_PAGES, fetchedOnce: MAX_PAGES, succeeded: 95, failed: 5, robots: DISALLOWED });
      expect(other.requests).toEqual(['/robots.txt']);
      expect(server.requests.filter((p) => p !== '/robots.txt')).toHaveLength(MAX_PAGES);
      expect(job.counts).toEqual({ discovered: MAX_PAGES + DISALLOWED, queued: 0, inProgress: 0, succeeded: 95, failed: 5, skipped: DISALLOWED });
      const skipped = results.filter((r) => r.error?.code === 'robots');
      expect(skipped.every((r) => r.url.startsWith(other.origin) && r.attempts === 1)).toBe(true);
    } finally {
      await Promise.all([server.close(), other.close()]);
    }
  }, 60_000);

  test('a job ignoring robots.txt fetches disallowed pages and counts them like any other', async () => {
    const server = await site(() => Array.from({ length: DISALLOWED }, (_, i) => `/private/${i}`));
    try {
      const engine = testEngine(engineOptions, await makeStorage());
      const job = await engine.crawl({ url: server.url, maxPages: MAX_PAGES, maxDepth: 1, perHostConcurrency: 8, respectRobots: false });
      await engine.close();
      const results = await allResults(engine, job.id);
      expect(summary(results)).toMatchObject({ fetched: MAX_PAGES, fetchedOnce: MAX_PAGES, robots: 0 });
      expect(server.requests.filter((p) => p.startsWith('/private'))).toHaveLength(DISALLOWED);
      expect(server.requests).not.toContain('/robots.txt');
    } finally {
      await server.close();
    }
  }, 60_000);
});
