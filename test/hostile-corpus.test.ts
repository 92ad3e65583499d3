/**
 * The hostile corpus (issue 11): one site serving every page of the hostile-input review next to
 * the older hostile pages (hangs, bombs, loops, bad bytes), crawled by a job with a backtracking
 * glob, behind a robots.txt with a backtracking rule, while a heartbeat watches the event loop. The
 * crawl completes, every page ends as a recorded result, and the loop is never held for long:
 * with metadata alone, and with every content format (text, markdown and html) on.
 */
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, test } from 'vitest';
import type { ResultFormat } from '../src/core/types.js';
import { isWellFormed } from '../src/crawl/text.js';
import { allResults, testEngine } from './helpers/engine.js';
import { expectNoStall, heartbeat } from './helpers/heartbeat.js';
import { closeAll } from './helpers/postgres.js';
import { html, serve } from './helpers/server.js';
import { closeRedis, everyStorage } from './helpers/storages.js';

afterAll(async () => {
  await closeRedis();
  await closeAll();
});

/** A body past maxBytes ends too_large; on a busy machine its whole-request timeout may come first. */
const LARGE = ['too_large', 'timeout'];
const HOSTILE_GLOB = `/${'**a'.repeat(10)}**b`;
const A60 = `/${'a'.repeat(60)}`;

/** Every page of the corpus and what its result must say. */
const PAGES: Record<string, { body: () => string | Buffer; headers?: Record<string, string>; expect: { ok: boolean; code?: string | string[] } }> = {
  '/deep-div': { body: () => '<div>'.repeat(200_000), expect: { ok: true } },
  '/deep-div-4mb': { body: () => '<div>'.repeat(960_000), expect: { ok: true } },
  '/unclosed-a': { body: () => '<a>'.repeat(1_000_000), expect: { ok: true } },
  '/svg-math': { body: () => '<svg>'.repeat(100_000) + '<math>'.repeat(100_000), expect: { ok: true } },
  '/close-tags': { body: () => '<b>'.repeat(100_000) + '</x>'.repeat(200_000), expect: { ok: true } },
  '/too-many-nodes': { body: () => '<a>'.repeat(1_700_000), expect: { ok: false, code: 'too_complex' } },
  '/emoji-title': { body: () => html('<p>x</p>', `<title>${'a'.repeat(999)}😀</title>`), expect: { ok: true } },
  '/nul-title': { body: () => html('<p>x</p>', '<title>a\u0000b</title>'), expect: { ok: true } },
  [A60]: { body: () => html('<p>never fetched: robots</p>'), expect: { ok: false, code: 'robots' } },
  '/many-links': { body: () => html(Array.from({ length: 40_000 }, (_, i) => `<a href="/l/${i}${'a'.repeat(40)}">x</a>`).join('')), expect: { ok: true } },
  '/big': { body: () => `<p>${'x'.repeat(5 * 1024 * 1024)}</p>`, expect: { ok: false, code: LARGE } },
  '/gzip-bomb': { body: () => gzipSync(Buffer.alloc(20 * 1024 * 1024, 0x41)), headers: { 'content-encoding': 'gzip' }, expect: { ok: false, code: LARGE } },
  '/br-bomb': {
    body: () => brotliCompressSync(Buffer.alloc(20 * 1024 * 1024, 0x41), { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } }),
    headers: { 'content-encoding': 'br' },
    expect: { ok: false, code: LARGE },
  },
  '/bad-utf8': {
    body: () => Buffer.concat([Buffer.from('<title>bad '), Buffer.from([0xff, 0xfe, 0xed, 0xa0, 0x80]), Buffer.from('</title>')]),
    expect: { ok: true },
  },
  '/hang': { body: () => '', expect: { ok: false, code: 'timeout' } },
  '/loop1': { body: () => '', expect: { ok: false, code: 'redirect_loop' } },
  '/to-private': { body: () => '', expect: { ok: false, code: 'blocked' } },
};

// Not on ioredis-mock: its Lua interpreter runs in this thread, so a script storing a page's 1,000
// links holds the event loop itself (against a real Redis the script runs in the server).
const storages = everyStorage.filter(([name]) => name !== 'kv (ioredis-mock)');

/**
 * Longest the loop may be held during the crawl, less the collector's reported pauses (or the
 * waits for a CPU, whichever is more). Each page alone is held to 100 ms (test/parse-bounds.test.ts);
 * the crawl parses several documents of a million nodes, the heap grows past 1.5 GB between full
 * collections, and V8 marks it in steps of up to 18 ms taken on this thread as it allocates (26
 * steps, 137 ms in all, in one measured collection). Those steps are not reported to a `gc`
 * observer, so they land in the gaps: 40–65 ms was typical, and 83–143 ms a few times in about 60
 * crawls measured. What this guards against (a parse, decode or walk that does not yield) holds
 * the loop for a second or more on these pages.
 */
const CRAWL_MAX_STALL_MS = 250;
/** Longest gap with the collector's pauses in it: a scavenge of that heap took up to 99 ms, and two can fall in one gap (254 ms measured once). */
const CRAWL_MAX_GAP_MS = 400;

// Built once for the three runs, so their garbage does not land in a later run's heartbeat, and as
// bytes: the test server shares the crawler's thread, and encoding 5 MB strings on every request
// would be its stall, not the crawler's.
const bodies = new Map(Object.entries(PAGES).map(([path, page]) => [path, Buffer.from(page.body())]));

/** The formats the corpus is crawled with: metadata alone (the default), and every content format. */
const FORMATS: Array<[string, ResultFormat[]]> = [
  ['metadata', ['metadata']],
  ['markdown, text and html', ['markdown', 'text', 'html']],
];

describe.each(storages)('the hostile corpus (%s)', (_name, makeStorage) => {
  test.each(FORMATS)(
    'with %s, is crawled to completion, every page ends as a recorded result, and the event loop is never held for long',
    { timeout: 120_000 },
    async (_formats, formats) => {
      const site = await serve((req, res) => {
        const path = req.url ?? '/';
        if (path === '/robots.txt') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          return res.end('\u{feff}User-agent: other\nSitemap: /sitemap.xml\nUser-agent: *\nDisallow: /*a*a*a*a*a*a*a*a*a*a*b\nDisallow: /aaaa\n');
        }
        if (path === '/') {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          return res.end(
            html(
              Object.keys(PAGES)
                .map((p) => `<a href="${p}">${p}</a>`)
                .join(''),
            ),
          );
        }
        if (path === '/hang') return; // never answers
        if (path === '/loop1' || path === '/loop2') {
          res.writeHead(301, { location: path === '/loop1' ? '/loop2' : '/loop1' });
          return res.end();
        }
        if (path === '/to-private') {
          // The guard allows 127.0.0.1 for this test site, and nothing else.
          res.writeHead(302, { location: 'http://[::ffff:0:7f00:1]/' });
          return res.end();
        }
        const body = bodies.get(path);
        if (body === undefined) {
          res.writeHead(404, { 'content-type': 'text/html' });
          return res.end('gone');
        }
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...PAGES[path]!.headers });
        res.end(body);
      });
      try {
        const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 5000 }, leaseMs: 60_000 }, await makeStorage());
        // Warm up first: the fetcher, parser and cheerio are imported on first use, and compiling
        // them once per process is not a stall any input causes.
        await engine.crawl({ url: `${site.origin}/emoji-title`, maxDepth: 0, respectRobots: false, formats });
        const job = await engine.jobs.create({
          url: site.url,
          maxPages: Object.keys(PAGES).length + 1,
          maxDepth: 1,
          maxRetries: 0,
          perHostConcurrency: 8,
          formats,
          // The backtracking glob is tried first on every link (include), and on every link (exclude).
          include: [HOSTILE_GLOB, '/**'],
          exclude: [HOSTILE_GLOB],
        });
        const watched = await heartbeat(async () => {
          for (let i = 0; i < 20; i++) {
            await engine.processor.run({ jobId: job.id, budgetMs: 20_000, concurrency: 8 });
            const current = await engine.jobs.get(job.id);
            if (current!.status !== 'running' && current!.status !== 'queued') return current!;
          }
          return (await engine.jobs.get(job.id))!;
        });
        expect(watched.value.status).toBe('completed');
        expectNoStall(watched, 'crawling the hostile corpus: ', { maxStallMs: CRAWL_MAX_STALL_MS, maxGapMs: CRAWL_MAX_GAP_MS });
        const results = await allResults(engine, job.id);
        const byPath = new Map(results.map((r) => [new URL(r.url).pathname, r]));
        expect(results).toHaveLength(Object.keys(PAGES).length + 1);
        for (const [path, page] of Object.entries(PAGES)) {
          const result = byPath.get(path);
          expect(result, path).toBeDefined();
          const want = page.expect.code;
          expect({ path, ok: result!.ok }).toEqual({ path, ok: page.expect.ok });
          if (Array.isArray(want)) expect(want, path).toContain(result!.error?.code);
          else expect(result!.error?.code, path).toBe(want);
        }
        expect(byPath.get('/emoji-title')!.title).toBe('a'.repeat(999));
        expect(byPath.get('/nul-title')!.title).toBe('a\uFFFDb');
        // The hostile glob matched nothing (it needs a b after ten a's), so the 40,000 links of
        // /many-links were judged against it; none was admitted past maxPages.
        expect(byPath.get('/many-links')!.links).toBe(1000);
        if (formats.includes('markdown')) {
          // Pages past the libraries' bounds get the sliced walk, with a line saying so; every stored text is well-formed.
          for (const path of ['/deep-div', '/deep-div-4mb', '/unclosed-a', '/svg-math', '/close-tags', '/many-links']) {
            expect(byPath.get(path)!.markdown, path).toMatch(/\[crawl-engine: page .*; simplified extraction\]$/);
          }
          expect(byPath.get('/emoji-title')!.markdown).toBe('x');
          expect(byPath.get('/nul-title')!.html).toContain('a\uFFFDb');
          for (const result of results) {
            for (const field of ['text', 'markdown', 'html'] as const) {
              const value = result[field];
              // Absent on the page robots.txt disallowed: it was never fetched.
              expect(
                value === undefined || value === null || (typeof value === 'string' && isWellFormed(value) && !value.includes('\u0000')),
                `${result.url} ${field}`,
              ).toBe(true);
            }
          }
        } else {
          for (const result of results) expect(result).not.toHaveProperty('markdown');
        }
        await engine.close();
      } finally {
        await site.close();
      }
    },
  );
});
