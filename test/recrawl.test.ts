import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { sqliteStorage } from '../adapters/sqlite/index.js';
import type { CrawlStorage } from '../src/core/storage.js';
import { createCrawlClient } from '../src/browser/client.js';
import type { Job, PageResult, WebhookPayload } from '../src/core/types.js';
import { createWebhookSecret, verifyWebhook } from '../src/index.js';
import { exportChunks } from '../src/core/export.js';
import { createFetcher } from '../src/crawl/fetcher.js';
import { createCrawlHandler } from '../src/http/index.js';
import { allResults, testEngine } from './helpers/engine.js';
import { crawlToEnd, recrawlSite } from './helpers/recrawl-site.js';
import { serve } from './helpers/server.js';
import { closeRedis, everyStorage } from './helpers/storages.js';

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
/** node:sqlite works without a flag from Node 22.13 and 23.4. */
const hasNodeSqlite = major > 23 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13);
const dir = mkdtempSync(join(tmpdir(), 'crawl-recrawl-'));
let files = 0;

afterAll(async () => {
  await closeRedis();
  rmSync(dir, { recursive: true, force: true });
});

const storages: Array<[string, () => Promise<CrawlStorage>]> = [
  ...everyStorage,
  ...(hasNodeSqlite ? [['sqlite', async () => sqliteStorage({ database: join(dir, `r${files++}.db`) })] as [string, () => Promise<CrawlStorage>]] : []),
];

const byPath = (results: PageResult[]) => new Map(results.map((r) => [new URL(r.url).pathname, r]));

describe('recrawl of an unchanged 1,000-page site (memory)', () => {
  it('sends conditional requests: 304s, under 10% of the first crawl’s body bytes, every page unchanged', async () => {
    const site = await recrawlSite(1000);
    try {
      const engine = testEngine({}, memoryStorage());
      const first = await engine.jobs.create({ url: site.url, maxPages: 2000, maxDepth: 2, perHostConcurrency: 8 });
      expect((await crawlToEnd(engine, first.id)).counts.succeeded).toBe(1011);
      const firstBytes = site.bodyBytes;
      const firstResults = await allResults(engine, first.id);
      expect(firstResults.every((r) => typeof r.contentHash === 'string' && /^[0-9a-f]{64}$/.test(r.contentHash))).toBe(true);
      expect(firstResults.every((r) => typeof r.etag === 'string')).toBe(true);
      site.resetCounts();

      const again = await engine.jobs.recrawl(first.id);
      expect(again.options.recrawlOf).toBe(first.id);
      expect(again.url).toBe(first.url);
      const done = await crawlToEnd(engine, again.id);
      expect(done.counts.succeeded).toBe(1011);
      expect(site.notModified).toBe(1011);
      expect(site.bodyBytes).toBeLessThan(firstBytes * 0.1);
      const results = await allResults(engine, again.id);
      expect(results).toHaveLength(1011);
      expect(results.every((r) => r.change === 'unchanged' && r.status === 304 && r.ok)).toBe(true);
      // The earlier metadata stands.
      const earlier = byPath(firstResults);
      for (const r of results) {
        const before = earlier.get(new URL(r.url).pathname)!;
        expect([r.title, r.description, r.links, r.wordCount, r.contentHash, r.depth]).toEqual([
          before.title,
          before.description,
          before.links,
          before.wordCount,
          before.contentHash,
          before.depth,
        ]);
      }
    } finally {
      await site.close();
    }
  }, 120_000);
});

describe.each(storages)('recrawl on %s', (_name, makeStorage) => {
  it('reports exactly the changed, gone and new pages; unchanged ones keep their content, stored once', async () => {
    const site = await recrawlSite(100);
    try {
      const storage = await makeStorage();
      const engine = testEngine({}, storage);
      const first = await engine.jobs.create({ url: site.url, maxPages: 500, maxDepth: 2, perHostConcurrency: 4, formats: ['metadata', 'links', 'text'] });
      await crawlToEnd(engine, first.id);
      const firstResults = byPath(await allResults(engine, first.id));
      expect(firstResults.size).toBe(111);

      // 5% changed, 2 deleted, 2 added.
      const changed = [3, 17, 42, 58, 99];
      for (const n of changed) site.change(n);
      site.remove(7);
      site.remove(64);
      const added = [site.add(), site.add()];
      site.resetCounts();

      const again = await engine.jobs.recrawl(first.id);
      await crawlToEnd(engine, again.id);
      const results = await allResults(engine, again.id);
      const got = byPath(results);
      const of = (change: string) =>
        results
          .filter((r) => r.change === change)
          .map((r) => new URL(r.url).pathname)
          .sort();
      // The sections listing the added/removed pages changed too.
      const sectionsTouched = new Set([...[7, 64, ...added].map((n) => `/s/${n % 10}`)]);
      expect(of('changed')).toEqual([...changed.map((n) => `/p/${n}`), ...sectionsTouched].sort());
      expect(of('gone')).toEqual(['/p/64', '/p/7']);
      expect(of('new')).toEqual(added.map((n) => `/p/${n}`).sort());
      expect(of('unchanged')).toHaveLength(111 - 5 - 2 - sectionsTouched.size);
      expect(results.every((r) => r.change !== undefined)).toBe(true);

      // An unchanged page: 304, metadata and content as before, content read from the first job.
      const same = got.get('/p/5')!;
      expect(same.status).toBe(304);
      expect(same.contentFrom).toBe(first.id);
      expect(same.text).toBe(firstResults.get('/p/5')!.text);
      expect(same.outlinks).toEqual(firstResults.get('/p/5')!.outlinks);
      // Stored once: the recrawl's own stored result has no copy.
      const [stored] = await storage.getResults!(again.id, [same.url]);
      expect(stored!.text).toBeUndefined();
      expect(stored!.outlinks).toBeUndefined();
      // A changed page carries its new content.
      const fresh = got.get('/p/42')!;
      expect(fresh.status).toBe(200);
      expect(fresh.text).toContain('Version 2 of page 42');
      expect(fresh.contentHash).not.toBe(firstResults.get('/p/42')!.contentHash);
      // jobs.links fills in the links of unchanged pages too.
      const links = await engine.jobs.links(again.id, { limit: 1000 });
      expect(links.items.filter((l) => l.from === site.url).length).toBe(10);

      // A recrawl of the recrawl points to the job that holds the content, not to the recrawl.
      const third = await engine.jobs.recrawl(again.id);
      await crawlToEnd(engine, third.id);
      const thirdResults = byPath(await allResults(engine, third.id));
      expect(thirdResults.get('/p/5')!.contentFrom).toBe(first.id);
      expect(thirdResults.get('/p/5')!.text).toBe(firstResults.get('/p/5')!.text);
      expect(thirdResults.get('/p/42')!.contentFrom).toBe(again.id);
      expect([...thirdResults.values()].every((r) => r.change === 'unchanged' || r.change === 'gone')).toBe(true);

      // The job holding content its recrawls point to is not deleted before them.
      await expect(engine.jobs.delete(first.id)).rejects.toMatchObject({ code: 'conflict' });
      expect(await engine.jobs.delete(third.id)).toBe(true);
      expect(await engine.jobs.delete(again.id)).toBe(true);
      expect(await engine.jobs.delete(first.id)).toBe(true);
      await storage.close?.();
    } finally {
      await site.close();
    }
  }, 120_000);
});

describe('jobs.recrawl refusals', () => {
  it('names the field or says why', async () => {
    const site = await recrawlSite(3);
    try {
      const engine = testEngine({}, memoryStorage());
      await expect(engine.jobs.recrawl('no such id!')).rejects.toMatchObject({ code: 'invalid_input', errors: [{ path: 'id' }] });
      await expect(engine.jobs.recrawl('job_missing')).rejects.toMatchObject({ code: 'not_found' });
      const job = await engine.jobs.create({ url: site.url });
      await expect(engine.jobs.recrawl(job.id)).rejects.toMatchObject({ code: 'conflict' });
      await crawlToEnd(engine, job.id);
      await expect(engine.jobs.recrawl(job.id, { formats: ['text'] } as never)).rejects.toMatchObject({ code: 'invalid_input', errors: [{ path: 'formats' }] });
      await expect(engine.jobs.recrawl(job.id, { maxPages: 0 })).rejects.toMatchObject({ code: 'invalid_input', errors: [{ path: 'maxPages' }] });
      const again = await engine.jobs.recrawl(job.id, { maxPages: 7, metadata: { run: 2 } });
      expect(again.options).toMatchObject({ maxPages: 7, recrawlOf: job.id });
      expect(again.metadata).toEqual({ run: 2 });
    } finally {
      await site.close();
    }
  });
});

describe('POST /jobs/:id/recrawl and the browser client', () => {
  it('201 with the new job; 404 unknown, 409 not finished, 400 naming the field, 415 for a body that is not JSON', async () => {
    const site = await recrawlSite(5);
    try {
      const engine = testEngine({}, memoryStorage());
      const handler = createCrawlHandler(engine, {});
      const BASE = 'http://app.test/api/crawl';
      const client = createCrawlClient({ baseUrl: BASE, fetch: (input, init) => handler(new Request(input as string, init)) });
      const job = await engine.jobs.create({ url: site.url });
      const post = (path: string, body?: string, type: string | null = 'application/json') =>
        handler(new Request(`${BASE}${path}`, { method: 'POST', body: body ?? null, headers: type === null ? {} : { 'content-type': type } }));
      expect((await post(`/jobs/${job.id}/recrawl`, undefined, null)).status).toBe(409);
      await crawlToEnd(engine, job.id);
      expect((await post('/jobs/job_nope/recrawl', undefined, null)).status).toBe(404);
      expect((await post('/jobs/not%20an%20id/recrawl', undefined, null)).status).toBe(404);
      const bad = await post(`/jobs/${job.id}/recrawl`, JSON.stringify({ maxPages: -1, formats: ['html'] }));
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { errors: Array<{ path: string }> }).errors.map((e) => e.path).sort()).toEqual(['formats', 'maxPages']);
      expect((await post(`/jobs/${job.id}/recrawl`, 'maxPages=3', 'text/plain')).status).toBe(415);
      expect((await post(`/jobs/${job.id}/recrawl`, '[]')).status).toBe(400);

      const created = await post(`/jobs/${job.id}/recrawl`, undefined, null);
      expect(created.status).toBe(201);
      const again = (await created.json()) as Job;
      expect(created.headers.get('location')).toBe(`/api/crawl/jobs/${again.id}`);
      expect(again.options.recrawlOf).toBe(job.id);
      await crawlToEnd(engine, again.id);

      const viaClient = await client.recrawlJob(again.id, { maxPages: 10 });
      expect(viaClient.options).toMatchObject({ recrawlOf: again.id, maxPages: 10 });
      await crawlToEnd(engine, viaClient.id);
      const results = await client.results(viaClient.id);
      expect(results.items.every((r) => r.change === 'unchanged' && r.status === 304)).toBe(true);
    } finally {
      await site.close();
    }
  });
});

describe('conditional requests in the fetcher', () => {
  it('sends the validators only to their URL; a 304 then is notModified, without one it is an http_error', async () => {
    const seen: Array<{ path: string; inm: string | undefined; ims: string | undefined }> = [];
    const server = await serve((req, res) => {
      seen.push({ path: req.url!, inm: req.headers['if-none-match'] as string | undefined, ims: req.headers['if-modified-since'] as string | undefined });
      if (req.url === '/moved') res.writeHead(301, { location: '/page' }).end();
      else res.writeHead(304, { etag: '"v2"' }).end();
    });
    const fetcher = createFetcher({
      userAgent: 'test',
      timeoutMs: 2000,
      maxBytes: 1_000_000,
      maxRedirects: 5,
      maxRetryAfterMs: 1000,
      allowPrivateNetwork: true,
    });
    try {
      const page = `${server.origin}/page`;
      const conditional = { url: page, etag: '"v1"', lastModified: 'Wed, 21 Oct 2015 07:28:00 GMT' };
      const notModified = await fetcher.fetch(page, () => null, { conditional });
      expect(notModified).toMatchObject({ status: 304, notModified: true, error: null, html: null });
      expect(notModified.headers.etag).toBe('"v2"');
      // Through a redirect: only the hop to the validators' URL carries them.
      const redirected = await fetcher.fetch(`${server.origin}/moved`, () => null, { conditional });
      expect(redirected).toMatchObject({ status: 304, notModified: true, finalUrl: page });
      // A validator that cannot be a header value is not sent.
      await fetcher.fetch(page, () => null, { conditional: { url: page, etag: 'bad\nvalue' } });
      const plain = await fetcher.fetch(page, () => null);
      expect(plain.notModified).toBeUndefined();
      expect(plain.error?.code).toBe('http_error');
      expect(seen).toEqual([
        { path: '/page', inm: '"v1"', ims: 'Wed, 21 Oct 2015 07:28:00 GMT' },
        { path: '/moved', inm: undefined, ims: undefined },
        { path: '/page', inm: '"v1"', ims: 'Wed, 21 Oct 2015 07:28:00 GMT' },
        { path: '/page', inm: undefined, ims: undefined },
        { path: '/page', inm: undefined, ims: undefined },
      ]);
    } finally {
      await fetcher.close();
      await server.close();
    }
  });
});

describe('recrawl without ETags (memory)', () => {
  it('Last-Modified alone: If-Modified-Since gets the 304s', async () => {
    const site = await recrawlSite(30, { etag: false, lastModified: true });
    try {
      const engine = testEngine({}, memoryStorage());
      const first = await engine.jobs.create({ url: site.url, maxPages: 100 });
      await crawlToEnd(engine, first.id);
      site.change(3);
      site.resetCounts();
      const again = await engine.jobs.recrawl(first.id);
      await crawlToEnd(engine, again.id);
      const results = await allResults(engine, again.id);
      expect(site.notModified).toBe(40);
      expect(results.filter((r) => r.change === 'changed').map((r) => new URL(r.url).pathname)).toEqual(['/p/3']);
      expect(results.every((r) => typeof r.lastModified === 'string')).toBe(true);
    } finally {
      await site.close();
    }
  });

  it('no validators at all: every page fetched whole, compared by hash; unchanged content is stored once all the same', async () => {
    const site = await recrawlSite(30, { etag: false });
    try {
      const storage = memoryStorage();
      const engine = testEngine({}, storage);
      const first = await engine.jobs.create({ url: site.url, maxPages: 100, formats: ['markdown'] });
      await crawlToEnd(engine, first.id);
      site.change(8);
      const again = await engine.jobs.recrawl(first.id);
      await crawlToEnd(engine, again.id);
      expect(site.notModified).toBe(0);
      const results = byPath(await allResults(engine, again.id));
      expect([...results.values()].filter((r) => r.change !== 'unchanged').map((r) => [new URL(r.url).pathname, r.change])).toEqual([['/p/8', 'changed']]);
      const same = results.get('/p/9')!;
      expect([same.status, same.contentFrom]).toEqual([200, first.id]);
      expect(same.markdown).toContain('Version 1 of page 9');
      expect((await storage.getResults!(again.id, [same.url]))[0]!.markdown).toBeUndefined();
      expect(results.get('/p/8')!.markdown).toContain('Version 2 of page 8');
      // The exports fill the content in too, and the CSV says what changed.
      const job = (await engine.jobs.get(again.id))!;
      let jsonl = '';
      for await (const chunk of exportChunks(engine.jobs, job, 'jsonl')) jsonl += chunk;
      const exported = jsonl
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as PageResult);
      expect(exported.find((r) => r.url === same.url)!.markdown).toBe(same.markdown);
      let csv = '';
      for await (const chunk of exportChunks(engine.jobs, job, 'csv')) csv += chunk;
      const [header, ...rows] = csv.trim().split('\r\n');
      const changeAt = header!.split(',').indexOf('change');
      expect(rows.map((row) => row.split(',')[changeAt]).sort()).toEqual(['changed', ...Array(40).fill('unchanged')]);
    } finally {
      await site.close();
    }
  });
});

describe('recrawl on an engine with retention (memory)', () => {
  it('unchanged pages keep a copy of their content, so the earlier job can go by age', async () => {
    const site = await recrawlSite(12);
    try {
      const storage = memoryStorage();
      const engine = testEngine({ retention: { finishedJobsMaxAgeMs: 3_600_000 } }, storage);
      const first = await engine.jobs.create({ url: site.url, maxPages: 100, formats: ['links', 'text'] });
      await crawlToEnd(engine, first.id);
      const again = await engine.jobs.recrawl(first.id);
      await crawlToEnd(engine, again.id);
      expect(site.notModified).toBe(23);
      const page = byPath(await allResults(engine, again.id)).get('/p/3')!;
      expect([page.status, page.change, page.contentFrom]).toEqual([304, 'unchanged', undefined]);
      const [stored] = await storage.getResults!(again.id, [page.url]);
      expect(stored!.text).toContain('Version 1 of page 3');
      expect(stored!.outlinks).toEqual([]);
      // As the retention sweep would: the earlier job goes, the recrawl's content stays.
      expect((await storage.deleteJob!(first.id, Date.now())).deleted).toBe(true);
      expect(byPath(await allResults(engine, again.id)).get('/p/3')!.text).toContain('Version 1 of page 3');
    } finally {
      await site.close();
    }
  });
});

describe('memoryStorage maxFinishedJobs and recrawls', () => {
  it('the cap passes over a job a recrawl points to, until the recrawl is deleted', async () => {
    const site = await recrawlSite(5);
    try {
      const storage = memoryStorage({ maxFinishedJobs: 2 });
      const engine = testEngine({}, storage);
      const crawled = async (input: { url: string; maxPages: number; formats?: Array<'text'> }) =>
        (await crawlToEnd(engine, (await engine.jobs.create(input)).id)).id;
      const first = await crawled({ url: site.url, maxPages: 100, formats: ['text'] });
      const again = (await crawlToEnd(engine, (await engine.jobs.recrawl(first)).id)).id;
      const other = await crawled({ url: site.url, maxPages: 1 });
      // Three finished jobs, two kept by the cap, and the one the recrawl points to on top.
      expect(await engine.jobs.get(first)).not.toBeNull();
      expect(await engine.jobs.get(again)).not.toBeNull();
      expect(await engine.jobs.get(other)).not.toBeNull();
      expect(byPath(await allResults(engine, again)).get('/p/2')!.text).toContain('Version 1 of page 2');
      expect(await engine.jobs.delete(again)).toBe(true);
      await crawled({ url: site.url, maxPages: 1 });
      expect(await engine.jobs.get(first)).toBeNull();
      expect(await engine.jobs.get(other)).not.toBeNull();
    } finally {
      await site.close();
    }
  });
});

describe('recrawl on KV with finishedTtlSeconds', () => {
  it('finished jobs expire by themselves: unchanged pages keep a copy of their content', async () => {
    const site = await recrawlSite(5);
    try {
      const { kvStorage } = await import('../adapters/kv/index.js');
      const RedisMock = (await import('ioredis-mock')).default;
      const storage = kvStorage({ client: new RedisMock() as never, prefix: `ttl${Date.now()}:`, finishedTtlSeconds: 3600 });
      expect(storage.capabilities.expiresFinishedJobs).toBe(true);
      const engine = testEngine({}, storage);
      const first = await engine.jobs.create({ url: site.url, maxPages: 100, formats: ['text'] });
      await crawlToEnd(engine, first.id);
      const again = await engine.jobs.recrawl(first.id);
      await crawlToEnd(engine, again.id);
      const page = byPath(await allResults(engine, again.id)).get('/p/1')!;
      expect([page.status, page.contentFrom]).toEqual([304, undefined]);
      expect((await storage.getResults!(again.id, [page.url]))[0]!.text).toContain('Version 1 of page 1');
    } finally {
      await site.close();
    }
  });
});

describe('recrawl with a webhook (memory)', () => {
  it('keeps the earlier job’s webhook (secret included) unless overridden; its page deliveries say how each page changed', async () => {
    const site = await recrawlSite(20);
    const posted: WebhookPayload[] = [];
    const hook = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        // Signed with the first job's own secret, which the recrawl carried over in storage.
        posted.push(await verifyWebhook(body, req.headers, JOB_SECRET));
        res.writeHead(204).end();
      });
    });
    const JOB_SECRET = createWebhookSecret();
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: {} }, memoryStorage());
      const webhook = { url: `${hook.origin}/hook`, events: ['page' as const, 'job.completed' as const], secret: JOB_SECRET };
      const first = await engine.jobs.create({ url: site.url, maxPages: 100, maxDepth: 2, webhook });
      await crawlToEnd(engine, first.id);
      site.change(3);
      site.remove(7);
      const again = await engine.jobs.recrawl(first.id);
      expect(again.options.webhook).toEqual({ url: webhook.url, events: webhook.events });
      await crawlToEnd(engine, again.id);
      for (let i = 0; i < 50; i++) {
        const pending = [...(await engine.jobs.deliveries(first.id)).items, ...(await engine.jobs.deliveries(again.id)).items].filter(
          (d) => d.state === 'pending',
        );
        if (pending.length === 0) break;
        await engine.processor.run({ budgetMs: 1000 });
      }
      const pagesOf = (jobId: string) =>
        posted.flatMap((p) => (p.type === 'page' && p.data.jobId === jobId ? p.data.pages : [])).sort((a, b) => a.url.localeCompare(b.url));
      expect(pagesOf(first.id)).toHaveLength(31);
      expect(pagesOf(first.id).every((p) => p.change === undefined && typeof p.contentHash === 'string')).toBe(true);
      const changes = pagesOf(again.id).map((p) => `${new URL(p.url).pathname} ${p.change}`);
      expect(changes).toHaveLength(31);
      expect(changes.filter((c) => !c.endsWith(' unchanged')).sort()).toEqual(['/p/3 changed', '/p/7 gone', '/s/7 changed']);
      expect(posted.filter((p) => p.type === 'job.completed')).toHaveLength(2);

      // webhook: null in the overrides: the recrawl posts nothing.
      const quiet = await engine.jobs.recrawl(again.id, { webhook: null });
      expect(quiet.options.webhook).toBeUndefined();
      await crawlToEnd(engine, quiet.id);
      expect((await engine.jobs.deliveries(quiet.id)).items).toEqual([]);
      // An engine without the webhooks option refuses to recrawl a job that has one, naming the field.
      const plain = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] } }, memoryStorage());
      const bare = await plain.jobs.create({ url: site.url, maxPages: 1 });
      await crawlToEnd(plain, bare.id);
      await expect(plain.jobs.recrawl(bare.id, { webhook })).rejects.toMatchObject({ code: 'invalid_input', message: expect.stringContaining('webhook') });
      await engine.close();
      await plain.close();
    } finally {
      await hook.close();
      await site.close();
    }
  }, 60_000);
});
