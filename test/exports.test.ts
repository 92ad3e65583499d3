/**
 * Exports and links over HTTP (issue 16): `GET /jobs/:id/results.jsonl` and `.csv` stream a job's
 * results a batch at a time, `GET /jobs/:id/links` lists links and broken ones, on every storage;
 * the browser client has `links()` and `exportUrl()`.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { createCrawlClient } from '../src/browser/client.js';
import { CSV_COLUMNS, csvField } from '../src/core/export.js';
import type { CrawlStorage } from '../src/core/storage.js';
import type { JobLink, PageResult } from '../src/core/types.js';
import { createCrawlHandler } from '../src/http/index.js';
import { allResults, testEngine } from './helpers/engine.js';
import { closeAll } from './helpers/postgres.js';
import { html, serve, type TestServer } from './helpers/server.js';
import { closeRedis, everyStorage } from './helpers/storages.js';

const BASE = 'http://app.test/api/crawl';
let server: TestServer;
const TRICKY_TITLE = '=HYPERLINK("http://evil.example","click"), "quoted"\nand a new line';

beforeAll(async () => {
  server = await serve((req, res) => {
    const path = req.url ?? '/';
    const page = (status: number, title: string, body: string) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html(body, `<title>${title}</title>`));
    };
    if (path === '/robots.txt') {
      res.writeHead(404);
      return res.end();
    }
    if (path === '/') return page(200, 'Home, sweet home', '<a href="/tricky">Tricky</a><a href="/broken">Broken</a><a href="/many">Many</a>');
    if (path === '/tricky') return page(200, TRICKY_TITLE.replaceAll('"', '&quot;'), '<a href="/">home</a><a href="/broken">broken again</a>');
    if (path === '/many') return page(200, 'Many', Array.from({ length: 30 }, (_, i) => `<a href="/m/${i}">m${i}</a>`).join(''));
    if (/^\/m\/\d+$/.test(path)) return page(200, `M ${path}`, '<p>leaf</p>');
    page(404, 'Not found', '<p>no</p>');
  });
});

afterAll(async () => {
  await server.close();
  await closeRedis();
  await closeAll();
});

/** A small RFC 4180 reader: quoted fields, doubled quotes, CRLF rows. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  expect(field).toBe('');
  expect(row).toEqual([]);
  return rows;
}

function handlerFor(engine: ReturnType<typeof testEngine>) {
  const handler = createCrawlHandler(engine);
  return (path: string) => handler(new Request(`${BASE}${path}`));
}

describe.each(everyStorage)('exports and links over HTTP (%s)', (_name, makeStorage) => {
  test('results.jsonl and results.csv hold every result; links lists links and broken ones; bad requests are 400 and 404', async () => {
    const engine = testEngine({ fetch: { timeoutMs: 30_000 } }, await makeStorage());
    const job = await engine.crawl({ url: server.url, maxPages: 50, maxDepth: 2, perHostConcurrency: 8, formats: ['links'] });
    await engine.close();
    expect(job.status).toBe('completed');
    const results = await allResults(engine, job.id);
    expect(results.length).toBe(34);
    const get = handlerFor(engine);

    const jsonl = await get(`/jobs/${job.id}/results.jsonl`);
    expect(jsonl.status).toBe(200);
    expect(jsonl.headers.get('content-type')).toBe('application/jsonl; charset=utf-8');
    expect(jsonl.headers.get('content-disposition')).toBe(`attachment; filename="${job.id}.jsonl"`);
    const text = await jsonl.text();
    expect(text.endsWith('\n')).toBe(true);
    expect(
      text
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as PageResult),
    ).toEqual(results);

    const csv = await get(`/jobs/${job.id}/results.csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8; header=present');
    const rows = parseCsv(await csv.text());
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(results.length + 1);
    const column = (name: (typeof CSV_COLUMNS)[number]) => CSV_COLUMNS.indexOf(name);
    for (const [i, result] of results.entries()) {
      const row = rows[i + 1]!;
      expect(row).toHaveLength(CSV_COLUMNS.length);
      expect(row[column('url')]).toBe(result.url);
      expect(row[column('status')]).toBe(String(result.status));
      expect(row[column('ok')]).toBe(String(result.ok));
      expect(row[column('errorCode')]).toBe(result.error?.code ?? '');
      expect(row[column('wordCount')]).toBe(String(result.wordCount));
    }
    // A title that a spreadsheet would run as a formula is kept as text, quoted as RFC 4180 says.
    const tricky = rows.find((row) => row[column('url')] === `${server.origin}/tricky`)!;
    expect(tricky[column('title')]).toBe(`'${TRICKY_TITLE.replace('\n', ' ')}`);
    expect(rows.find((row) => row[column('url')] === server.url)![column('title')]).toBe('Home, sweet home');

    const links = (await (await get(`/jobs/${job.id}/links?limit=1000`)).json()) as { items: JobLink[]; nextCursor: string | null };
    expect(links).toEqual(await engine.jobs.links(job.id, { limit: 1000 }));
    expect(links.items).toHaveLength(3 + 2 + 30);
    const broken = (await (await get(`/jobs/${job.id}/links?broken=true&limit=1`)).json()) as { items: JobLink[]; nextCursor: string };
    expect(broken.items).toEqual([
      {
        from: server.url,
        url: `${server.origin}/broken`,
        text: 'Broken',
        rel: null,
        internal: true,
        status: 404,
        error: { code: 'http_error', message: 'HTTP 404' },
      },
    ]);
    const next = (await (await get(`/jobs/${job.id}/links?broken=true&limit=1&cursor=${encodeURIComponent(broken.nextCursor)}`)).json()) as {
      items: JobLink[];
      nextCursor: string | null;
    };
    expect(next.items.map((l) => [l.from, l.text])).toEqual([[`${server.origin}/tricky`, 'broken again']]);
    expect(next.nextCursor).toBeNull();

    for (const [query, path] of [
      ['broken=yes', 'broken'],
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['cursor=bogus', 'cursor'],
    ]) {
      const res = await get(`/jobs/${job.id}/links?${query}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { errors: Array<{ path: string }> }).errors[0]!.path).toBe(path);
    }
    for (const path of ['/jobs/job_missing/results.jsonl', '/jobs/job_missing/results.csv', '/jobs/job_missing/links', '/jobs/..%2Fx/results.csv']) {
      expect((await get(path)).status).toBe(404);
    }
    const plain = await engine.jobs.create({ url: 'http://example.com/' });
    const refused = await get(`/jobs/${plain.id}/links`);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { errors: Array<{ path: string }> }).errors).toEqual([{ path: 'formats', message: expect.any(String) }]);
  }, 120_000);
});

describe('exports stream', () => {
  test('a batch of results is read from storage only when the client reads on, and a client that stops reading stops the reads', async () => {
    const storage = memoryStorage();
    const calls: Array<string | null> = [];
    const counted = new Proxy(storage, {
      get(target, property) {
        if (property === 'listResults')
          return (...args: Parameters<CrawlStorage['listResults']>) => {
            calls.push(args[1].cursor ?? null);
            return target.listResults(...args);
          };
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const engine = testEngine({}, counted);
    const job = await engine.jobs.create({ url: 'https://example.com/', maxPages: 1000 });
    // 450 stored results, without a crawl: the storage contract's own calls.
    const claimed = await storage.claim({ limit: 1, leaseMs: 60_000, now: Date.now(), jobId: job.id });
    const seed: PageResult = {
      url: job.url,
      finalUrl: job.url,
      depth: 0,
      status: 200,
      ok: true,
      contentType: 'text/html',
      title: '-1 + 1',
      description: null,
      canonical: null,
      links: 449,
      wordCount: 3,
      error: null,
      attempts: 1,
      durationMs: 1,
      fetchedAt: new Date().toISOString(),
      data: null,
    };
    const links = Array.from({ length: 449 }, (_, i) => ({
      url: `https://example.com/p/${i}`,
      key: `https://example.com/p/${i}`,
      depth: 1,
      host: 'example.com',
    }));
    await storage.complete(claimed.leases[0]!, { result: seed, links, now: Date.now() });
    for (;;) {
      const { leases } = await storage.claim({ limit: 100, leaseMs: 60_000, now: Date.now(), jobId: job.id });
      if (leases.length === 0) break;
      for (const lease of leases)
        await storage.complete(lease, { result: { ...seed, url: lease.url, finalUrl: lease.url, links: 0 }, links: [], now: Date.now() });
    }
    expect((await allResults(engine, job.id)).length).toBe(450);
    calls.length = 0;

    const res = await handlerFor(engine)(`/jobs/${job.id}/results.csv`);
    // Nothing is read before the body is.
    expect(calls).toEqual([]);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value!, { stream: true });
    expect(text).toBe(`${CSV_COLUMNS.join(',')}\r\n`);
    text += decoder.decode((await reader.read()).value!, { stream: true });
    expect(calls).toEqual([null]);
    expect(text.split('\r\n')).toHaveLength(1 + 100 + 1);
    expect(text).toContain(",'-1 + 1,");
    await reader.cancel();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls).toEqual([null]);

    // Read to the end: 5 batches of 100, then the end.
    const whole = await (await handlerFor(engine)(`/jobs/${job.id}/results.jsonl`)).text();
    expect(whole.trimEnd().split('\n')).toHaveLength(450);
    expect(calls.length).toBe(1 + 5);
  });

  test('csvField quotes per RFC 4180 and defuses formulas', () => {
    expect(csvField(null)).toBe('');
    expect(csvField(0)).toBe('0');
    expect(csvField(false)).toBe('false');
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\r\nlines')).toBe('"two\r\nlines"');
    for (const start of ['=', '+', '-', '@', '\t', '\r']) expect(csvField(`${start}1+1`).replace(/^"/, '')).toMatch(/^'/);
    expect(csvField('=SUM(A1,A2)')).toBe(`"'=SUM(A1,A2)"`);
  });

  test('the browser client lists links and names the export URLs', async () => {
    const requests: string[] = [];
    const client = createCrawlClient({
      baseUrl: 'https://app.example/api/crawl/',
      fetch: async (input) => {
        requests.push(String(input));
        return new Response(JSON.stringify({ items: [], nextCursor: null }), { headers: { 'content-type': 'application/json' } });
      },
    });
    expect(await client.links('job_1', { broken: true, limit: 5, cursor: '0.1.' })).toEqual({ items: [], nextCursor: null });
    await client.links('job_1');
    expect(requests).toEqual([
      'https://app.example/api/crawl/jobs/job_1/links?broken=true&limit=5&cursor=0.1.',
      'https://app.example/api/crawl/jobs/job_1/links',
    ]);
    expect(client.exportUrl('job_1', 'csv')).toBe('https://app.example/api/crawl/jobs/job_1/results.csv');
    expect(client.exportUrl('job_1', 'jsonl')).toBe('https://app.example/api/crawl/jobs/job_1/results.jsonl');
  });
});
