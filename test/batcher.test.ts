import { afterEach, describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import type { CrawlEngine } from '../src/core/engine.js';
import { createBatcher, MAX_CALL_CONTENT_CHARS } from '../src/core/processor/batcher.js';
import type { RunOptions } from '../src/core/processor/index.js';
import type { CompleteInput, CompleteItem, CompleteResult, CrawlStorage, Lease } from '../src/core/storage.js';
import { type Job, type ProgressEvent, type RunReport, TERMINAL_STATUSES } from '../src/core/types.js';
import { type Site, startSite } from './fixtures/site.mjs';
import { allResults, testEngine } from './helpers/engine.js';
import { html, serve, type TestServer } from './helpers/server.js';

let site: Site | null = null;
let server: TestServer | null = null;
afterEach(async () => {
  await site?.close();
  await server?.close();
  site = null;
  server = null;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Calls {
  complete: number;
  completeMany: number;
  /** Item count of each completeMany call. */
  sizes: number[];
  inFlight: number;
}

/**
 * Memory storage that counts its write calls. `many` replaces completeMany (`null`: the storage has
 * none); `one` replaces complete. Both get the real method to call.
 */
function counting(
  options: {
    many?: ((items: CompleteItem[], real: (items: CompleteItem[]) => Promise<CompleteResult[]>, call: number) => Promise<CompleteResult[]>) | null;
    one?: (lease: Lease, input: CompleteInput, real: CrawlStorage['complete']) => Promise<CompleteResult>;
  } = {},
) {
  const inner = memoryStorage();
  const calls: Calls = { complete: 0, completeMany: 0, sizes: [], inFlight: 0 };
  const track = async <T>(work: () => Promise<T>): Promise<T> => {
    calls.inFlight++;
    try {
      return await work();
    } finally {
      calls.inFlight--;
    }
  };
  const { completeMany: realMany, ...rest } = inner;
  const real = (items: CompleteItem[]) => realMany!(items);
  const storage: CrawlStorage = {
    ...rest,
    complete(lease, input) {
      calls.complete++;
      return track(() => (options.one ? options.one(lease, input, inner.complete) : inner.complete(lease, input)));
    },
    ...(options.many === null
      ? {}
      : {
          completeMany(items: CompleteItem[]) {
            const call = ++calls.completeMany;
            calls.sizes.push(items.length);
            return track(() => (options.many ? options.many(items, real, call) : real(items)));
          },
        }),
  };
  return { storage, calls };
}

/** Runs the job until it ends (at most `rounds` runs). */
async function runToEnd(engine: CrawlEngine, jobId: string, options: RunOptions = {}, rounds = 20): Promise<{ job: Job; reports: RunReport[] }> {
  const reports: RunReport[] = [];
  for (let i = 0; i < rounds; i++) {
    reports.push(await engine.processor.run({ jobId, concurrency: 20, ...options }));
    const job = await engine.jobs.get(jobId);
    if (job !== null && TERMINAL_STATUSES.has(job.status)) return { job, reports };
  }
  throw new Error(`job ${jobId} did not end in ${rounds} runs`);
}

/** Crawls the site with its own storage and engine, counting storage calls and the job's events. */
async function crawlSite(s: Site, options: RunOptions, storageOptions: Parameters<typeof counting>[0] = {}, perHostConcurrency = 2) {
  const { storage, calls } = counting(storageOptions);
  const engine = testEngine({}, storage);
  const events: ProgressEvent[] = [];
  engine.events.on('*', (_type, event) => events.push(event));
  const created = await engine.jobs.create({ url: s.url, maxDepth: 50, maxPages: s.opts.pages, perHostConcurrency });
  const { job, reports } = await runToEnd(engine, created.id, options);
  await engine.close();
  const results = await allResults(engine, job.id);
  return { job, reports, results, calls, events: events.filter((e) => e.jobId === job.id) };
}

describe('group commit in a crawl', () => {
  test('batched, a crawl makes far fewer storage calls than pages and stores the same pages; batch: false makes one complete() per page', async () => {
    site = await startSite({ pages: 400, fanout: 5, latencyMs: 2 });
    // The site is one host: at the default perHostConcurrency (2), no batch could hold more than 2 pages.
    const batched = await crawlSite(site, {}, {}, 20);
    const single = await crawlSite(site, { batch: false }, {}, 20);
    for (const crawl of [batched, single]) {
      expect(crawl.job.status).toBe('completed');
      expect(crawl.results).toHaveLength(400);
      expect(new Set(crawl.results.map((r) => r.url)).size).toBe(400);
      // Events reach listeners in the order storage appended them.
      const ids = crawl.events.map((e) => Number(e.id));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(crawl.events.filter((e) => e.type === 'page:done')).toHaveLength(400);
    }
    expect(new Set(batched.results.map((r) => r.url))).toEqual(new Set(single.results.map((r) => r.url)));
    expect(single.calls).toMatchObject({ complete: 400, completeMany: 0 });
    expect(batched.calls.complete).toBe(0);
    expect(batched.calls.sizes.reduce((a, b) => a + b, 0)).toBe(400);
    expect(Math.max(...batched.calls.sizes)).toBeLessThanOrEqual(16);
    expect(batched.calls.completeMany / 400).toBeLessThanOrEqual(0.3);
    expect(batched.reports.flatMap((r) => r.errors)).toEqual([]);
    expect(batched.reports.reduce((sum, r) => sum + r.succeeded, 0)).toBe(400);
  });

  test('a storage without completeMany gets one complete() per page', async () => {
    site = await startSite({ pages: 60, fanout: 4 });
    const crawl = await crawlSite(site, { batch: { maxItems: 8, lingerMs: 20 } }, { many: null });
    expect(crawl.job.status).toBe('completed');
    expect(crawl.calls).toMatchObject({ complete: 60, completeMany: 0 });
  });

  test.each([
    ['before storing anything', false],
    ['after storing its items', true],
  ])('a completeMany() that rejects once (%s): every page is stored exactly once', async (_, storedFirst) => {
    site = await startSite({ pages: 150, fanout: 5, latencyMs: 2 });
    const crawl = await crawlSite(
      site,
      {},
      {
        async many(items, real, call) {
          if (call !== 3) return real(items);
          if (storedFirst) await real(items);
          throw new Error('connection reset');
        },
      },
    );
    expect(crawl.job.status).toBe('completed');
    expect(crawl.job.counts).toMatchObject({ discovered: 150, succeeded: 150, failed: 0 });
    expect(crawl.results).toHaveLength(150);
    expect(new Set(crawl.results.map((r) => r.url)).size).toBe(150);
    expect([...site.hits.entries()].filter(([path, n]) => path !== '/robots.txt' && n !== 1)).toEqual([]);
    const errors = crawl.reports.flatMap((r) => r.errors);
    expect(errors).toEqual([expect.stringMatching(/^completeMany: connection reset \(stored page by page instead\)$/)]);
    // The failed call's items go one by one with complete(); stored already, they are refused.
    expect(crawl.calls.complete).toBe(crawl.calls.sizes[2]);
    const reported = crawl.reports.reduce((sum, r) => sum + r.succeeded, 0);
    expect(reported).toBe(storedFirst ? 150 - crawl.calls.sizes[2]! : 150);
  });

  test('one page whose result storage refuses fails alone: the rest of its batch is stored, and it is retried once its lease expires', async () => {
    const leaves = Array.from({ length: 10 }, (_, i) => `/leaf${i}`);
    server = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html(req.url === '/' ? leaves.map((path) => `<a href="${path}">${path}</a>`).join('') : '<p>leaf</p>'));
    });
    const bad = `${server.origin}/leaf3`;
    let refusals = 0;
    let refusedBatch = 0;
    const { storage } = counting({
      many: async (items, real) => {
        if (refusals === 0 && items.some((item) => item.lease.url === bad)) {
          refusedBatch = items.length;
          throw new Error('value too long for type');
        }
        return real(items);
      },
      one: async (lease, input, real) => {
        if (lease.url === bad && refusals++ === 0) throw new Error('value too long for type');
        return real(lease, input);
      },
    });
    const engine = testEngine({ leaseMs: 500, fetch: { timeoutMs: 500 } }, storage);
    const job = await engine.jobs.create({ url: server.url, maxDepth: 1, respectRobots: false });
    const first = await engine.processor.run({ jobId: job.id, concurrency: 20, batch: { maxItems: 16, lingerMs: 50 } });
    expect(refusedBatch).toBeGreaterThan(1);
    expect(first.errors).toEqual(['completeMany: value too long for type (stored page by page instead)', `${bad}: value too long for type`]);
    expect(first.succeeded).toBe(10);
    const mid = await engine.jobs.get(job.id);
    expect(mid?.counts).toMatchObject({ succeeded: 10, inProgress: 1 });
    await sleep(550);
    await engine.processor.run({ jobId: job.id, concurrency: 20 });
    await engine.close();
    const results = await allResults(engine, job.id);
    expect((await engine.jobs.get(job.id))?.status).toBe('completed');
    expect(results).toHaveLength(11);
    expect(results.find((r) => r.url === bad)?.attempts).toBe(2);
  });

  test('the linger flushes a lone outcome after lingerMs, while other pages are still being fetched', async () => {
    const lingerMs = 100;
    let fastServedAt = 0;
    let slowServedAt = 0;
    server = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      if (req.url === '/') res.end(html('<a href="/fast">f</a><a href="/slow">s</a>'));
      else if (req.url === '/fast') {
        fastServedAt = Date.now();
        res.end(html('<p>fast</p>'));
      } else {
        setTimeout(() => {
          slowServedAt = Date.now();
          res.end(html('<p>slow</p>'));
        }, 1500);
      }
    });
    const engine = testEngine();
    let fastDoneAt = 0;
    engine.events.on('page:done', (event) => {
      if (event.url?.endsWith('/fast')) fastDoneAt = Date.now();
    });
    const job = await engine.jobs.create({ url: server.url, maxDepth: 1, respectRobots: false });
    const report = await engine.processor.run({ jobId: job.id, concurrency: 20, batch: { lingerMs } });
    await engine.close();
    expect(report.succeeded).toBe(3);
    expect(fastDoneAt).toBeGreaterThan(0);
    // It waited for /slow to join its batch, but no longer than the linger.
    expect(fastDoneAt - fastServedAt).toBeGreaterThanOrEqual(lingerMs - 10);
    expect(fastDoneAt - fastServedAt).toBeLessThan(lingerMs + 400);
    expect(fastDoneAt).toBeLessThan(slowServedAt);
  });

  test('run() returns only once every queued outcome is stored, without waiting out a long linger', async () => {
    site = await startSite({ pages: 200, fanout: 5, latencyMs: 5 });
    const { storage, calls } = counting({
      async many(items, real) {
        await sleep(50);
        return real(items);
      },
    });
    const engine = testEngine({}, storage);
    const job = await engine.jobs.create({ url: site.url, maxDepth: 50, maxPages: 200 });
    const budgetMs = 300;
    const report = await engine.processor.run({ jobId: job.id, concurrency: 4, budgetMs, batch: { maxItems: 16, lingerMs: 1000 } });
    expect(calls.inFlight).toBe(0);
    const after = await engine.jobs.get(job.id);
    expect(after?.counts.inProgress).toBe(0);
    expect(after?.counts.succeeded).toBe(report.succeeded);
    expect((await allResults(engine, job.id)).length).toBe(report.succeeded);
    expect(report.succeeded).toBeGreaterThan(0);
    expect(report.durationMs).toBeLessThan(budgetMs + 700);
    await engine.close();
  });

  test('bad batch options are refused, naming the field', async () => {
    const engine = testEngine();
    const cases: Array<[unknown, RegExp]> = [
      [{ maxItems: 0 }, /run\(\): batch\.maxItems: expected an integer from 1 to 1000, got 0/],
      [{ maxItems: 2.5 }, /batch\.maxItems/],
      [{ lingerMs: -1 }, /run\(\): batch\.lingerMs: expected a number from 0 to 1000, got -1/],
      [{ lingerMs: 1001 }, /batch\.lingerMs/],
      [{ lingerMs: '5' }, /batch\.lingerMs: .* got "5"/],
      [{ maxitems: 4 }, /run\(\): batch\.maxitems: unknown option/],
      [true, /run\(\): batch: expected false or an object/],
      [null, /run\(\): batch: expected false or an object/],
    ];
    for (const [batch, message] of cases) {
      await expect(engine.processor.run({ batch: batch as RunOptions['batch'] })).rejects.toThrow(RangeError);
      await expect(engine.processor.run({ batch: batch as RunOptions['batch'] })).rejects.toThrow(message);
    }
    expect(() => engine.processor.start({ batch: { lingerMs: -1 } })).toThrow(/start\(\): batch\.lingerMs/);
    await engine.close();
  });

  test('start() passes batch on to its runs', async () => {
    site = await startSite({ pages: 30, fanout: 3 });
    const { storage, calls } = counting();
    const engine = testEngine({}, storage);
    const worker = engine.processor.start({ concurrency: 4, idleMs: 20, batch: false });
    const job = await engine.jobs.create({ url: site.url, maxDepth: 5, maxPages: 30 });
    for (let i = 0; i < 200 && (await engine.jobs.get(job.id))?.status !== 'completed'; i++) await sleep(25);
    await worker.stop();
    await engine.close();
    expect((await engine.jobs.get(job.id))?.status).toBe('completed');
    expect(calls).toMatchObject({ complete: 30, completeMany: 0 });
  });
});

describe('createBatcher()', () => {
  const lease = (jobId: string, n: number): Lease => ({
    jobId,
    url: `http://x.test/${n}`,
    key: `http://x.test/${n}`,
    depth: 1,
    host: 'x.test',
    token: `t${n}`,
    attempts: 1,
    expiresAt: 0,
  });
  const input = (n: number): CompleteInput => ({ result: { url: `http://x.test/${n}` } as CompleteInput['result'], links: [], now: n });
  const answer = (lease: Lease): CompleteResult => ({ ok: true, admitted: 0, events: [{ id: lease.token } as ProgressEvent] });

  /** A storage whose calls are logged and answered when `release()` is called (or at once). */
  function fake(options: { hold?: boolean; many?: (items: CompleteItem[]) => void; one?: (lease: Lease) => void } = {}) {
    const log: string[] = [];
    const held: Array<() => void> = [];
    let active = 0;
    let maxActive = 0;
    const storage = {
      async complete(l: Lease) {
        log.push(`complete ${l.token}`);
        options.one?.(l);
        return answer(l);
      },
      async completeMany(items: CompleteItem[]) {
        log.push(`many ${items.map((i) => i.lease.token).join(',')}`);
        active++;
        maxActive = Math.max(maxActive, active);
        try {
          if (options.hold) await new Promise<void>((resolve) => held.push(resolve));
          options.many?.(items);
          return items.map((i) => answer(i.lease));
        } finally {
          active--;
        }
      },
    } as unknown as CrawlStorage;
    const release = () => {
      for (const resolve of held.splice(0)) resolve();
    };
    return { storage, log, release, maxActive: () => maxActive };
  }

  test('one call per job, items in queue order, each resolved with its own result, in order', async () => {
    const { storage, log } = fake();
    const batcher = createBatcher(storage, { maxItems: 16, lingerMs: 1000 });
    const order: string[] = [];
    const pending = [lease('a', 1), lease('b', 2), lease('a', 3), lease('b', 4), lease('a', 5)].map((l, i) =>
      batcher.complete(l, input(i)).then((r) => order.push(r.events[0]!.id)),
    );
    expect(log).toEqual([]);
    await batcher.flush();
    await Promise.all(pending);
    expect(log).toEqual(['many t1,t3,t5', 'many t2,t4']);
    expect(order.filter((t) => ['t1', 't3', 't5'].includes(t))).toEqual(['t1', 't3', 't5']);
    expect(order).toHaveLength(5);
  });

  test('a full queue goes at once; a job’s calls never overlap, and what queues meanwhile goes in the next call', async () => {
    const { storage, log, release, maxActive } = fake({ hold: true });
    const batcher = createBatcher(storage, { maxItems: 2, lingerMs: 1000 });
    const all = [1, 2, 3, 4, 5].map((n) => batcher.complete(lease('a', n), input(n)));
    await sleep(0);
    expect(log).toEqual(['many t1,t2']);
    release();
    await sleep(0);
    expect(log).toEqual(['many t1,t2', 'many t3,t4']);
    const flushed = batcher.flush();
    for (let i = 0; i < 3; i++) {
      release();
      await sleep(0);
    }
    await flushed;
    await Promise.all(all);
    expect(log).toEqual(['many t1,t2', 'many t3,t4', 'many t5']);
    expect(maxActive()).toBe(1);
  });

  test('a call carries at most MAX_CALL_CONTENT_CHARS of page content past its first item: pages with megabytes of markdown and html go in several calls', async () => {
    const { storage, log } = fake();
    const batcher = createBatcher(storage, { maxItems: 16, lingerMs: 1000 });
    // 900,000 characters a page: two fit in a call (1.8 M), a third would pass 2 M.
    const heavy = (n: number): CompleteInput => ({ ...input(n), result: { ...input(n).result, markdown: 'm'.repeat(600_000), html: 'h'.repeat(300_000) } });
    const all = [1, 2, 3, 4, 5].map((n) => batcher.complete(lease('a', n), heavy(n)));
    await sleep(0);
    // Five queued pages hold 4.5 M characters, past the bound: the queue went without waiting for the linger.
    expect(log[0]).toBe('many t1,t2');
    await batcher.flush();
    await Promise.all(all);
    // Every call within the bound (two pages at most), every page stored once, in order.
    for (const call of log) expect(call.split(',').length).toBeLessThanOrEqual(2);
    expect(log.join(',').replace(/many /g, '')).toBe('t1,t2,t3,t4,t5');
    expect(MAX_CALL_CONTENT_CHARS).toBe(2_000_000);
  });

  test('the linger sends a partial batch after lingerMs; with every working page queued it goes at once', async () => {
    const { storage, log } = fake();
    const lingering = createBatcher(storage, { maxItems: 16, lingerMs: 40 });
    const started = Date.now();
    await lingering.complete(lease('a', 1), input(1));
    expect(Date.now() - started).toBeGreaterThanOrEqual(35);
    let working = 2;
    const eager = createBatcher(storage, { maxItems: 16, lingerMs: 1000 }, { working: () => working });
    const first = eager.complete(lease('a', 2), input(2));
    await sleep(10);
    expect(log).toEqual(['many t1']);
    working = 1;
    eager.recheck();
    expect(log).toEqual(['many t1', 'many t2']);
    await first;
  });

  test('a failed call is stored item by item; an item storage refuses rejects alone', async () => {
    const errors: unknown[] = [];
    const { storage, log } = fake({
      many: () => {
        throw new Error('batch refused');
      },
      one: (l) => {
        if (l.token === 't2') throw new Error('t2 refused');
      },
    });
    const batcher = createBatcher(storage, { maxItems: 3, lingerMs: 1000 }, { onError: (error) => errors.push(error) });
    const outcomes = await Promise.allSettled([1, 2, 3].map((n) => batcher.complete(lease('a', n), input(n))));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toEqual(new Error('t2 refused'));
    expect(log).toEqual(['many t1,t2,t3', 'complete t1', 'complete t2', 'complete t3']);
    expect(errors).toEqual([new Error('batch refused')]);
  });

  test('without completeMany, or with batching off, every outcome goes straight to complete()', async () => {
    const { storage, log } = fake();
    const off = createBatcher(storage, false);
    await off.complete(lease('a', 1), input(1));
    const { completeMany: _, ...bare } = storage;
    const plain = createBatcher(bare as CrawlStorage, { maxItems: 16, lingerMs: 1000 });
    await plain.complete(lease('a', 2), input(2));
    expect(log).toEqual(['complete t1', 'complete t2']);
  });
});
