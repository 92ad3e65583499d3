/**
 * The links format and `engine.jobs.links()` (issue 16): each page's links with anchor text, rel
 * and whether they are internal, joined with their targets' results to find broken links, on
 * every storage.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { CrawlEngineError } from '../src/core/errors.js';
import type { CrawlStorage } from '../src/core/storage.js';
import type { JobLink, PageResult } from '../src/core/types.js';
import { allResults, testEngine } from './helpers/engine.js';
import { closeAll } from './helpers/postgres.js';
import { html, serve, type TestServer } from './helpers/server.js';
import { closeRedis, everyStorage } from './helpers/storages.js';

const PAGES = 60;
let server: TestServer;

beforeAll(async () => {
  server = await serve((req, res) => {
    const path = req.url ?? '/';
    const page = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html(body));
    };
    if (path === '/robots.txt') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('User-agent: *\nDisallow: /private\n');
    }
    if (path === '/')
      return page(
        200,
        `<nav><a href="/a">A   page</a></nav><p><a href="/missing" rel="nofollow">Missing</a> <a href="/gone">Gone</a> <a href="/moved">Moved</a>
        <a href="/private">Private</a> <a href="/file.pdf">PDF</a> <a href="http://localhost:${server.origin.split(':')[2]}/elsewhere">Elsewhere</a>
        <a href="mailto:x@example.com">mail</a></p>`,
      );
    if (path === '/a') return page(200, `<a href="/">Home</a>${Array.from({ length: PAGES }, (_, i) => `<a href="/p/${i}">P${i}</a>`).join('')}`);
    if (path === '/missing' || path === '/missing-target') return page(404, '<p>not here</p>');
    if (path === '/gone') return page(500, '<p>oops</p>');
    if (path === '/moved') {
      res.writeHead(301, { location: '/missing-target' });
      return res.end();
    }
    if (path === '/file.pdf') {
      res.writeHead(200, { 'content-type': 'application/pdf' });
      return res.end('%PDF-1.4');
    }
    const p = /^\/p\/(\d+)$/.exec(path);
    if (p !== null) return page(200, `<a href="/missing">missing from ${p[1]}</a><a href="/a"><img alt="back"></a>`);
    page(404, 'no');
  });
});

afterAll(async () => {
  await server.close();
  await closeRedis();
  await closeAll();
});

async function allLinks(engine: ReturnType<typeof testEngine>, jobId: string, options: { broken?: boolean; limit?: number }): Promise<JobLink[]> {
  const out: JobLink[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: { items: JobLink[]; nextCursor: string | null } = await engine.jobs.links(jobId, { ...options, cursor });
    expect(page.items.length).toBeLessThanOrEqual(options.limit ?? 100);
    if (page.nextCursor !== null) expect(page.items).toHaveLength(options.limit ?? 100);
    out.push(...page.items);
    cursor = page.nextCursor;
    pages++;
  } while (cursor !== null && pages < 1000);
  return out;
}

describe.each(everyStorage)('the links format and jobs.links() (%s)', (_name, makeStorage) => {
  test('results carry their outlinks; jobs.links() joins them with their targets and finds the broken ones, page by page', async () => {
    const engine = testEngine({ fetch: { timeoutMs: 30_000 } }, await makeStorage());
    const job = await engine.crawl({ url: server.url, maxPages: 100, maxDepth: 2, maxRetries: 0, perHostConcurrency: 8, formats: ['metadata', 'links'] });
    await engine.close();
    expect(job.status).toBe('completed');
    const results = await allResults(engine, job.id);
    const byUrl = new Map<string, PageResult>(results.map((r) => [r.url, r]));
    const o = server.origin;
    const home = byUrl.get(`${o}/`)!;
    expect(home.outlinks).toEqual([
      { url: `${o}/a`, text: 'A page', rel: null, internal: true },
      { url: `${o}/missing`, text: 'Missing', rel: 'nofollow', internal: true },
      { url: `${o}/gone`, text: 'Gone', rel: null, internal: true },
      { url: `${o}/moved`, text: 'Moved', rel: null, internal: true },
      { url: `${o}/private`, text: 'Private', rel: null, internal: true },
      { url: `${o}/file.pdf`, text: 'PDF', rel: null, internal: true },
      { url: `${o.replace('127.0.0.1', 'localhost')}/elsewhere`, text: 'Elsewhere', rel: null, internal: false },
    ]);
    expect(home).not.toHaveProperty('truncated');
    // Fetched pages that are not HTML, or failed, have none; robots.txt skips carry no outlinks field.
    expect(byUrl.get(`${o}/missing`)!.outlinks).toEqual([]);
    expect(byUrl.get(`${o}/file.pdf`)!.outlinks).toEqual([]);
    expect(byUrl.get(`${o}/private`)!.error?.code).toBe('robots');

    // Every link, in the order pages were stored, then document order; the same with any page size.
    const every = await allLinks(engine, job.id, { limit: 1000 });
    const expected = results.flatMap((r) => (r.outlinks ?? []).map((link) => ({ from: r.url, ...link })));
    expect(every.map(({ status: _s, error: _e, ...link }) => link)).toEqual(expected);
    expect(every.length).toBe(7 + 1 + PAGES + 2 * PAGES);
    expect(await allLinks(engine, job.id, { limit: 7 })).toEqual(every);
    const toA = every.find((l) => l.from === `${o}/` && l.url === `${o}/a`)!;
    expect(toA).toMatchObject({ status: 200, error: null });
    expect(every.find((l) => l.url === `${o.replace('127.0.0.1', 'localhost')}/elsewhere`)).toMatchObject({ status: null, error: null, internal: false });
    expect(every.find((l) => l.url === `${o}/private`)).toMatchObject({ status: null, error: { code: 'robots' } });

    // Broken: 404, 500 and the redirect to a 404; never the robots.txt skip, the PDF or the unfetched link.
    const broken = await allLinks(engine, job.id, { broken: true, limit: 1000 });
    expect(broken.map((l) => [l.from, l.url, l.status, l.error?.code])).toEqual([
      ...expected
        .filter((l) => ['/missing', '/gone', '/moved'].some((p) => l.url === `${o}${p}`))
        .map((l) => [l.from, l.url, l.url.endsWith('/gone') ? 500 : 404, 'http_error']),
    ]);
    expect(broken.filter((l) => l.url === `${o}/missing`)).toHaveLength(1 + PAGES);
    expect(broken.find((l) => l.url === `${o}/missing`)).toMatchObject({ from: `${o}/`, text: 'Missing', rel: 'nofollow', internal: true });
    expect(await allLinks(engine, job.id, { broken: true, limit: 5 })).toEqual(broken);
    expect(await allLinks(engine, job.id, { broken: true, limit: 3 })).toEqual(broken);
  }, 120_000);

  test('a job crawled without the links format, unknown jobs and bad options are refused, naming the field', async () => {
    const engine = testEngine({}, await makeStorage());
    const job = await engine.jobs.create({ url: 'http://example.com/' });
    const refusal = async (run: () => Promise<unknown>) => {
      const error = await run().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CrawlEngineError);
      return error as CrawlEngineError;
    };
    const noLinks = await refusal(() => engine.jobs.links(job.id));
    expect(noLinks.code).toBe('invalid_input');
    expect(noLinks.errors).toEqual([{ path: 'formats', message: expect.stringContaining('links') }]);
    expect((await refusal(() => engine.jobs.links('job_nope'))).code).toBe('not_found');
    expect((await refusal(() => engine.jobs.links('../x'))).code).toBe('not_found');
    const withLinks = await engine.jobs.create({ url: 'http://example.com/', formats: ['links'] });
    expect(await engine.jobs.links(withLinks.id)).toEqual({ items: [], nextCursor: null });
    for (const [options, path] of [
      [{ limit: 0 }, 'limit'],
      [{ limit: 1001 }, 'limit'],
      [{ broken: 'yes' }, 'broken'],
      [{ cursor: 'nope' }, 'cursor'],
      [{ cursor: '99.0.' }, 'cursor'],
      [{ cursor: '0.0.abc' }, 'cursor'],
      [{ cursor: '0.0.-1' }, 'cursor'],
      [{ cursor: '0.0.99999999999999999999' }, 'cursor'],
      [{ other: 1 }, '(root)'],
    ] as const) {
      const error = await refusal(() => engine.jobs.links(withLinks.id, options as never));
      expect(error.code).toBe('invalid_input');
      expect(error.errors?.[0]?.path).toBe(path);
    }
    await engine.close();
  });
});

test('jobs.links() of a job with content formats reads its results a few at a time (each may carry megabytes of text, markdown and html)', async () => {
  const inner = memoryStorage();
  const limits: number[] = [];
  const storage: CrawlStorage = Object.assign(Object.create(inner) as CrawlStorage, {
    listResults: (jobId: string, query: Parameters<CrawlStorage['listResults']>[1]) => {
      limits.push(query.limit);
      return inner.listResults(jobId, query);
    },
  });
  const engine = testEngine({ fetch: { timeoutMs: 30_000 } }, storage);
  const job = await engine.crawl({ url: server.url, maxPages: 30, maxDepth: 2, maxRetries: 0, formats: ['links', 'html'] });
  await engine.close();
  limits.length = 0;
  const every = await allLinks(engine, job.id, { limit: 7 });
  expect(every.length).toBeGreaterThan(30);
  expect(Math.max(...limits)).toBeLessThanOrEqual(5);
  // The same links as a job without content formats lists (batches of another size, same order).
  const plain = testEngine({ fetch: { timeoutMs: 30_000 } });
  const metadata = await plain.crawl({ url: server.url, maxPages: 30, maxDepth: 2, maxRetries: 0, formats: ['links'] });
  await plain.close();
  const strip = (links: JobLink[]) => links.map((l) => `${l.from} ${l.url} ${l.status}`).sort();
  expect(strip(every)).toEqual(strip(await allLinks(plain, metadata.id, { limit: 1000 })));
}, 60_000);
