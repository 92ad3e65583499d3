import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { createCrawlClient } from '../src/browser/client.js';
import { createCrawlEngine } from '../src/core/engine.js';
import { CrawlEngineError } from '../src/core/errors.js';
import { createCrawlHandler } from '../src/http/index.js';
import { testEngine } from './helpers/engine.js';
import { html, serve, type TestServer } from './helpers/server.js';
import { runCli } from './helpers/cli.js';

/** Home links /a, /b, /private/x (robots.txt disallows /private) and an off-site page; the sitemap lists /a (lastmod), /c, /d?q=shoes. */
let site: TestServer;
beforeAll(async () => {
  site = await serve((req, res) => {
    const o = site.origin;
    if (req.url === '/robots.txt') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`User-agent: *\nDisallow: /private\nSitemap: ${o}/sm.xml\n`);
    } else if (req.url === '/sm.xml') {
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(
        `<urlset><url><loc>${o}/a</loc><lastmod>2024-06-07</lastmod></url><url><loc>${o}/c</loc></url><url><loc>${o}/d?q=shoes</loc></url><url><loc>${o}/private/y</loc></url></urlset>`,
      );
    } else if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html('<a href="/a">a</a><a href="/b#top">b</a><a href="/private/x">p</a><a href="http://other.test/z">z</a>'));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
});
afterAll(() => site.close());

describe('engine.map()', () => {
  test('lists the start URL, sitemap URLs with lastmod, then the page links; in scope, robots.txt respected, each once; stores nothing', async () => {
    const storage = memoryStorage();
    const engine = testEngine({}, storage);
    const result = await engine.map(site.url);
    await engine.close();
    const o = site.origin;
    expect(result).toEqual({
      url: `${o}/`,
      urls: [{ url: `${o}/` }, { url: `${o}/a`, lastmod: '2024-06-07' }, { url: `${o}/c` }, { url: `${o}/d?q=shoes` }, { url: `${o}/b` }],
      truncated: false,
      sitemaps: { read: [`${o}/sm.xml`], urls: 3, truncated: false, errors: [] },
      page: { status: 200, links: 4, error: null },
    });
    expect((await engine.jobs.list()).items).toEqual([]);
  });

  test('limit, search, sitemap only/skip, respectRobots: false', async () => {
    const engine = testEngine();
    const o = site.origin;
    expect((await engine.map(site.url, { limit: 2 })).urls.map((u) => u.url)).toEqual([`${o}/`, `${o}/a`]);
    expect((await engine.map(site.url, { limit: 2 })).truncated).toBe(true);
    expect((await engine.map(site.url, { search: 'SHOES' })).urls).toEqual([{ url: `${o}/d?q=shoes` }]);
    const only = await engine.map(site.url, { sitemap: 'only', respectRobots: false });
    expect(only.urls.map((u) => u.url)).toEqual([`${o}/`, `${o}/a`, `${o}/c`, `${o}/d?q=shoes`, `${o}/private/y`]);
    expect(only.page).toBeNull();
    const skip = await engine.map(site.url, { sitemap: 'skip', scope: 'any' });
    expect(skip.urls.map((u) => u.url)).toEqual([`${o}/`, `${o}/a`, `${o}/b`, 'http://other.test/z']);
    expect(skip.sitemaps).toBeNull();
    await engine.close();
  });

  test('bad input is refused naming the field; a private address is refused without allowPrivateNetwork', async () => {
    const engine = testEngine();
    const errorOf = (p: Promise<unknown>) =>
      p.then(
        () => null,
        (e: unknown) => e as CrawlEngineError,
      );
    const bad = await errorOf(engine.map(site.url, { limit: 0, sitemap: 'maybe' as never, bogus: 1 } as never));
    expect(bad).toBeInstanceOf(CrawlEngineError);
    expect(bad!.code).toBe('invalid_input');
    expect(bad!.errors!.map((e) => e.path).sort()).toEqual(['(root)', 'limit', 'sitemap']);
    expect((await errorOf(engine.map('ftp://x/')))!.errors![0]!.path).toBe('url');
    await engine.close();
    const guarded = createCrawlEngine({ storage: memoryStorage() });
    const refused = await errorOf(guarded.map(site.url));
    expect(refused!.errors![0]).toMatchObject({ path: 'url', message: expect.stringContaining('expected an address that may be fetched') });
    await guarded.close();
  });
});

describe('POST /map and client.map()', () => {
  const setup = () => {
    const engine = createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: true } });
    const handler = createCrawlHandler(engine, {});
    const post = (body: string, type = 'application/json') =>
      handler(new Request('http://app.test/api/crawl/map', { method: 'POST', body, headers: { 'content-type': type } }));
    return { engine, handler, post };
  };

  test('answers the map as JSON; 400 naming the fields of bad input; 405 for GET', async () => {
    const { engine, handler, post } = setup();
    const ok = await post(JSON.stringify({ url: site.url, limit: 3 }));
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { urls: Array<{ url: string }>; truncated: boolean };
    expect(body.urls).toHaveLength(3);
    expect(body.truncated).toBe(true);

    const bad = await post(JSON.stringify({ url: 'nope', limit: 'x', extra: true }));
    expect(bad.status).toBe(400);
    const problem = (await bad.json()) as { code: string; errors: Array<{ path: string }> };
    expect(problem.code).toBe('invalid_input');
    expect(problem.errors.map((e) => e.path).sort()).toEqual(['(root)', 'limit', 'url']);
    expect((await post('[1]')).status).toBe(400);
    expect((await post('{')).status).toBe(400);
    expect((await handler(new Request('http://app.test/api/crawl/map'))).status).toBe(405);

    const client = createCrawlClient({ baseUrl: 'http://app.test/api/crawl', fetch: (input, init) => handler(new Request(input as string, init)) });
    const mapped = await client.map(site.url, { sitemap: 'only' });
    expect(mapped.urls[1]).toEqual({ url: `${site.origin}/a`, lastmod: '2024-06-07' });
    await expect(client.map(site.url, { limit: -1 })).rejects.toMatchObject({ status: 400, errors: [{ path: 'limit' }] });
    await engine.close();
  });

  test("authorize() is asked about the action 'map'", async () => {
    const engine = createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: true } });
    const actions: string[] = [];
    const handler = createCrawlHandler(engine, {
      authorize: (_req, { action }) => {
        actions.push(action);
        return false;
      },
    });
    const res = await handler(
      new Request('http://app.test/api/crawl/map', {
        method: 'POST',
        body: JSON.stringify({ url: site.url }),
        headers: { 'content-type': 'application/json' },
      }),
    );
    expect(res.status).toBe(401);
    expect(actions).toEqual(['map']);
    await engine.close();
  });
});

describe('crawl-engine map (built CLI)', () => {
  const run = (args: string[]) => runCli(args);

  test('prints one URL per line and a summary on stderr; --json with lastmod to --out; exit 0', async () => {
    const o = site.origin;
    const plain = await run(['map', site.url, '--allow-private-network']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toBe(`${o}/\n${o}/a\n${o}/c\n${o}/d?q=shoes\n${o}/b\n`);
    expect(plain.stderr).toContain('5 URLs; sitemaps read: 1, URLs listed: 3; start page: HTTP 200, 4 links');

    const out = join(mkdtempSync(join(tmpdir(), 'map-')), 'urls.jsonl');
    const json = await run(['map', site.url, '--allow-private-network', '--json', '--limit', '2', '--out', out, '--quiet']);
    expect(json.code).toBe(0);
    expect(json.stdout).toBe('');
    expect(json.stderr).toBe('');
    expect(readFileSync(out, 'utf8')).toBe(`{"url":"${o}/"}\n{"url":"${o}/a","lastmod":"2024-06-07"}\n`);
  });

  test('bad flags exit 2 naming the flag; a loopback site without --allow-private-network is refused', async () => {
    const bad = await run(['map', site.url, '--limit', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--limit: expected an integer from 1 to 100000');
    const mode = await run(['map', site.url, '--sitemap', 'maybe']);
    expect(mode.code).toBe(2);
    expect(mode.stderr).toContain('--sitemap: expected one of include, only, skip');
    const refused = await run(['map', site.url]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('url: expected an address that may be fetched');
  });

  test("crawl --sitemap only crawls the sitemap's URLs", async () => {
    const crawled = await run(['crawl', site.url, '--allow-private-network', '--sitemap', 'only', '--quiet']);
    expect(crawled.code).toBe(0);
    const pages = crawled.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { url: string; error: { code: string } | null });
    const o = site.origin;
    expect(pages.map((p) => p.url).sort()).toEqual([`${o}/`, `${o}/a`, `${o}/c`, `${o}/d?q=shoes`, `${o}/private/y`]);
    // Listed, but robots.txt disallows it: recorded as skipped, not fetched.
    expect(pages.find((p) => p.url === `${o}/private/y`)!.error!.code).toBe('robots');
    expect((await run(['crawl', site.url, '--sitemap', 'all'])).stderr).toContain('--sitemap: expected one of include, only, skip');
  });
});

describe('engine.map() time', () => {
  test('a site that never answers: the map ends within timeoutMs with the start URL alone and its errors', async () => {
    const silent = await serve(() => undefined);
    try {
      const engine = testEngine({ fetch: { timeoutMs: 10_000 } });
      const started = Date.now();
      const result = await engine.map(silent.url, { timeoutMs: 1500 });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(result.urls).toEqual([{ url: silent.url }]);
      expect(result.page!.error!.code).toBe('timeout');
      expect(result.sitemaps!.errors[0]!.code).toBe('timeout');
      await engine.close();
    } finally {
      await silent.close();
    }
  });
});
