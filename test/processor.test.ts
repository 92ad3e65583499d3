import { afterEach, describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { startSite, type Site } from './fixtures/site.mjs';
import { createCrawlEngine, DEFAULT_USER_AGENT } from '../src/core/engine.js';
import { backoffMs } from '../src/core/processor/index.js';
import type { Job, ProgressEvent } from '../src/core/types.js';
import { allResults, testEngine } from './helpers/engine.js';
import { html, serve, type TestServer } from './helpers/server.js';

let site: Site | null = null;
/** Page requests the site saw, robots.txt aside. */
const pages = (s: Site) => s.requests.filter((p) => p !== '/robots.txt');
let server: TestServer | null = null;
afterEach(async () => {
  await site?.close();
  await server?.close();
  site = null;
  server = null;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('processor.run()', () => {
  test('retries transient failures with backoff and stores one result with the attempts', async () => {
    const tries = new Map<string, number>();
    server = await serve((req, res) => {
      const n = (tries.get(req.url!) ?? 0) + 1;
      tries.set(req.url!, n);
      if (req.url === '/') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(html('<a href="/flaky">f</a><a href="/gone">g</a><a href="/down">d</a><a href="/reset">r</a>'));
      } else if (req.url === '/flaky' && n < 3) {
        res.writeHead(503);
        res.end();
      } else if (req.url === '/gone') {
        res.writeHead(404);
        res.end();
      } else if (req.url === '/down') {
        res.writeHead(500);
        res.end();
      } else if (req.url === '/reset') {
        req.socket.destroy();
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(html('<p>fine now</p>'));
      }
    });
    const engine = testEngine();
    const job = await engine.crawl({ url: server.url, maxRetries: 2 });
    await engine.close();
    const byPath = new Map((await allResults(engine, job.id)).map((r) => [new URL(r.url).pathname, r]));
    expect(byPath.get('/flaky')).toMatchObject({ ok: true, attempts: 3, status: 200 });
    expect(byPath.get('/gone')).toMatchObject({ ok: false, attempts: 1, error: { code: 'http_error' } });
    expect(byPath.get('/down')).toMatchObject({ ok: false, attempts: 3, status: 500 });
    expect(byPath.get('/reset')).toMatchObject({ ok: false, attempts: 3, error: { code: 'network' } });
    expect(tries.get('/gone')).toBe(1);
    expect(tries.get('/down')).toBe(3);
    expect(job.counts).toEqual({ discovered: 5, queued: 0, inProgress: 0, succeeded: 2, failed: 3, skipped: 0 });
  });

  test('honours Retry-After before trying again', async () => {
    const times: number[] = [];
    server = await serve((req, res) => {
      if (req.url === '/robots.txt') {
        res.writeHead(404);
        res.end();
        return;
      }
      times.push(Date.now());
      if (times.length === 1) {
        res.writeHead(429, { 'retry-after': '1' });
        res.end();
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(html('ok'));
      }
    });
    const engine = testEngine();
    const job = await engine.crawl({ url: server.url, maxDepth: 0 });
    await engine.close();
    expect(job.status).toBe('completed');
    expect(times).toHaveLength(2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950);
  });

  test('backoff grows exponentially, is capped, and is jittered', () => {
    const samples = Array.from({ length: 200 }, () => backoffMs(3, 100, 10_000));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(200);
    expect(Math.max(...samples)).toBeLessThanOrEqual(400);
    expect(new Set(samples).size).toBeGreaterThan(10);
    expect(backoffMs(30, 100, 5000)).toBeLessThanOrEqual(5000);
  });

  test('stops starting fetches at the budget, releases what it did not start, and a later run finishes', async () => {
    site = await startSite({ pages: 60, fanout: 5, latencyMs: 100 });
    const engine = testEngine({ fetch: { timeoutMs: 1000 } });
    const job = await engine.jobs.create({ url: site.url, maxDepth: 5, maxPages: 60 });
    const first = await engine.processor.run({ budgetMs: 350, concurrency: 2 });
    expect(first.durationMs).toBeLessThan(350 + 1000 + 200);
    expect(first.claimed).toBeGreaterThan(0);
    const mid = await engine.jobs.get(job.id);
    expect(mid?.status).toBe('running');
    expect(mid?.counts.inProgress).toBe(0);
    let guard = 0;
    while ((await engine.jobs.get(job.id))?.status === 'running' && guard++ < 50) await engine.processor.run({ budgetMs: 2000, concurrency: 10 });
    await engine.close();
    const results = await allResults(engine, job.id);
    expect(results).toHaveLength(60);
    expect(new Set(results.map((r) => r.url)).size).toBe(60);
    expect(pages(site)).toHaveLength(60);
  });

  test('a run aborted halfway loses no URL: a later run finishes with every page stored once', async () => {
    site = await startSite({ pages: 300, fanout: 6, latencyMs: 5 });
    const engine = testEngine();
    const job = await engine.jobs.create({ url: site.url, maxDepth: 10, maxPages: 300 });
    const controller = new AbortController();
    let done = 0;
    engine.events.on('page:done', () => {
      if (++done === 100) controller.abort();
    });
    const aborted = await engine.processor.run({ concurrency: 20, signal: controller.signal });
    expect(aborted.succeeded).toBeGreaterThanOrEqual(100);
    expect(aborted.succeeded).toBeLessThan(300);
    const between = await engine.jobs.get(job.id);
    expect(between?.counts.inProgress).toBe(0);
    await engine.processor.run({ concurrency: 20 });
    await engine.close();
    const results = await allResults(engine, job.id);
    expect((await engine.jobs.get(job.id))?.status).toBe('completed');
    expect(results).toHaveLength(300);
    expect(new Set(results.map((r) => r.url)).size).toBe(300);
    expect([...site.hits.values()].every((n) => n === 1)).toBe(true);
  });

  test('with storage a round trip away, claims go ahead of the fetch slots: slots do not wait a round trip for their next page', async () => {
    // Claims take 40 ms (storage far away), pages 40 ms. A slot that frees should find a lease
    // already claimed: the 4 slots stay busy, rather than idle a claim's round trip in two.
    let inFlight = 0;
    /** Each change of the requests in flight: when, and how many after it. */
    const changes: Array<[number, number]> = [];
    const tick = (delta: number) => {
      inFlight += delta;
      changes.push([performance.now(), inFlight]);
    };
    server = await serve((req, res) => {
      tick(1);
      const n = Number(/\/p(\d+)/.exec(req.url ?? '')?.[1] ?? 0);
      const links = [1, 2, 3].map((i) => `<a href="/p${n * 3 + i}">x</a>`).join('');
      setTimeout(() => {
        tick(-1);
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(html(links));
      }, 40);
    });
    const storage = memoryStorage();
    const far = {
      ...storage,
      claim: async (query: Parameters<typeof storage.claim>[0]) => {
        await sleep(40);
        return storage.claim(query);
      },
    };
    const engine = testEngine({}, far);
    const job = await engine.jobs.create({ url: `${server.origin}/p0`, maxPages: 120, maxDepth: 10, respectRobots: false, perHostConcurrency: 20 });
    await engine.processor.run({ jobId: job.id, concurrency: 4 });
    await engine.close();
    expect((await engine.jobs.get(job.id))?.counts.succeeded).toBe(120);
    // The share of the 4 slots' time spent fetching in the middle 60 % of the crawl (its start
    // waits for links to be found, its end for the last pages).
    const [first, last] = [changes[0]![0], changes.at(-1)![0]];
    const [from, to] = [first + 0.2 * (last - first), first + 0.8 * (last - first)];
    let busyMs = 0;
    for (let i = 0; i + 1 < changes.length; i++) {
      const [at, count] = changes[i]!;
      const span = Math.min(changes[i + 1]![0], to) - Math.max(at, from);
      if (span > 0) busyMs += count * span;
    }
    const occupancy = busyMs / (4 * (to - from));
    if (process.env.PARSE_BOUNDS_LOG !== undefined) console.log(`slot occupancy ${occupancy.toFixed(2)}`);
    expect(occupancy, `slot occupancy ${occupancy.toFixed(2)}`).toBeGreaterThan(0.7);
  });

  test('leases of a processor that died are re-claimed after they expire, and nothing is doubled', async () => {
    site = await startSite({ pages: 120, fanout: 4 });
    const storage = memoryStorage();
    const engine = testEngine({ leaseMs: 2000, fetch: { timeoutMs: 1000 } }, storage);
    const job = await engine.jobs.create({ url: site.url, maxDepth: 10, maxPages: 120 });
    // Stop after a few pages (a time budget made this depend on the machine's speed).
    const controller = new AbortController();
    let done = 0;
    engine.events.on('page:done', () => {
      if (++done === 5) controller.abort();
    });
    await engine.processor.run({ concurrency: 4, signal: controller.signal });
    // A "dead" processor claims URLs and never finishes them. On a loaded machine a page of the
    // first run may have timed out and wait out its retry backoff: claim until something is ready.
    let dead = await storage.claim({ limit: 10, leaseMs: 300, now: Date.now() });
    for (let i = 0; i < 100 && dead.leases.length === 0; i++) {
      await sleep(20);
      dead = await storage.claim({ limit: 10, leaseMs: 300, now: Date.now() });
    }
    expect(dead.leases.length).toBeGreaterThan(0);
    await engine.processor.run({ concurrency: 8 });
    expect((await engine.jobs.get(job.id))?.status).toBe('running');
    await sleep(350);
    await engine.processor.run({ concurrency: 8 });
    await engine.close();
    const final = await engine.jobs.get(job.id);
    expect(final?.status).toBe('completed');
    const results = await allResults(engine, job.id);
    expect(results).toHaveLength(120);
    expect(new Set(results.map((r) => r.url)).size).toBe(120);
    for (const lease of dead.leases) {
      expect(results.find((r) => r.url === lease.url)?.attempts).toBe(2);
      expect((await storage.complete(lease, { result: results[0]!, links: [], now: Date.now() })).ok).toBe(false);
    }
  });

  test('a URL whose attempts died with their processors is not fetched more than 1 + maxRetries times', async () => {
    site = await startSite({ pages: 3, fanout: 2 });
    const storage = memoryStorage();
    const engine = testEngine({ leaseMs: 2000 }, storage);
    const job = await engine.jobs.create({ url: site.url, maxDepth: 0, maxPages: 1, maxRetries: 1, respectRobots: false });
    // Two processors claim the start URL, fetch it (the request reaches the site) and die before storing.
    for (let i = 0; i < 2; i++) {
      const { leases } = await storage.claim({ limit: 1, leaseMs: 1, now: Date.now() - 10_000 + i * 1000 });
      expect(leases).toHaveLength(1);
      await fetch(leases[0]!.url);
    }
    expect(pages(site)).toHaveLength(2);
    // The third claim of the URL is past 1 + maxRetries: the processor stores a failure without a request.
    const report = await engine.processor.run({ concurrency: 2 });
    await engine.close();
    expect(report).toMatchObject({ claimed: 1, failed: 1, succeeded: 0 });
    expect(pages(site)).toHaveLength(2);
    const [result] = await allResults(engine, job.id);
    expect(result).toMatchObject({ ok: false, attempts: 3, status: null, error: { code: 'abandoned' } });
    expect(result!.error!.message).toMatch(/2 earlier attempts.*maxRetries is 1/);
    expect((await engine.jobs.get(job.id))?.status).toBe('failed');
  });

  test('cancel mid-crawl: no URL of the job is fetched afterwards', async () => {
    site = await startSite({ pages: 400, fanout: 5, latencyMs: 10 });
    const engine = testEngine();
    const job = await engine.jobs.create({ url: site.url, maxDepth: 10, maxPages: 400 });
    let cancelledAt = -1;
    engine.events.on('page:done', (e) => {
      if (e.counts.succeeded === 40 && cancelledAt < 0) {
        cancelledAt = site!.requests.length;
        void engine.jobs.cancel(job.id);
      }
    });
    await engine.processor.run({ concurrency: 5 });
    await engine.processor.run({ concurrency: 5 });
    await engine.close();
    expect(cancelledAt).toBeGreaterThan(0);
    // Fetches already in flight may finish (at most the concurrency), nothing new starts.
    expect(site.requests.length - cancelledAt).toBeLessThanOrEqual(5);
    expect((await engine.jobs.get(job.id))?.status).toBe('cancelled');
  });

  test('applies fetch defaults to the options not given', async () => {
    let ua = '';
    server = await serve((req, res) => {
      ua = req.headers['user-agent'] ?? '';
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html('hi'));
    });
    const engine = createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: ['127.0.0.1'] } });
    const job = await engine.crawl({ url: server.url, maxDepth: 0 });
    await engine.close();
    expect(job.status).toBe('completed');
    expect(ua).toBe(DEFAULT_USER_AGENT);
  });
});

describe('processor.start()', () => {
  test('a worker loop processes jobs as they arrive and stops cleanly', async () => {
    site = await startSite({ pages: 30, fanout: 3 });
    const engine = testEngine();
    const worker = engine.processor.start({ concurrency: 4, idleMs: 20 });
    const job = await engine.jobs.create({ url: site.url, maxDepth: 5, maxPages: 30 });
    for (let i = 0; i < 200 && (await engine.jobs.get(job.id))?.status !== 'completed'; i++) await sleep(25);
    await worker.stop();
    await engine.close();
    expect((await engine.jobs.get(job.id))?.status).toBe('completed');
    expect(pages(site)).toHaveLength(30);
  });

  test('runs start queued jobs by priority, then creation, at most maxActiveJobs at a time', async () => {
    site = await startSite({ pages: 5, fanout: 2 });
    const engine = testEngine({ maxActiveJobs: 2 });
    const priorities = [0, 0, 3, -2, 3, 0];
    const jobs: Job[] = [];
    for (const priority of priorities) jobs.push(await engine.jobs.create({ url: site.url, maxDepth: 3, maxPages: 5, priority }));
    const started: string[] = [];
    let most = 0;
    let live = 0;
    engine.events.on('*', (_type, event) => {
      if (event.type === 'job:started') {
        started.push(event.jobId);
        most = Math.max(most, ++live);
      } else if (event.type === 'job:completed' || event.type === 'job:failed') live--;
    });
    for (let i = 0; i < 50 && started.length < jobs.length; i++) await engine.processor.run({ concurrency: 4, budgetMs: 5000 });
    await engine.close();
    const order = [2, 4, 0, 1, 5, 3].map((i) => jobs[i]!.id);
    expect(started).toEqual(order);
    expect(most).toBeLessThanOrEqual(2);
    for (const job of jobs) expect((await engine.jobs.get(job.id))?.status).toBe('completed');
  });
});

describe('progress', () => {
  test('subscribe() from another engine on the same storage yields every event in order, resumes after an id, and ends at the terminal event', async () => {
    site = await startSite({ pages: 40, fanout: 3, latencyMs: 2 });
    const storage = memoryStorage();
    const worker = testEngine({}, storage);
    const watcher = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
    const job = await watcher.jobs.create({ url: site.url, maxDepth: 5, maxPages: 40 });
    const seen: ProgressEvent[] = [];
    const following = (async () => {
      for await (const event of watcher.progress.subscribe(job.id)) seen.push(event);
    })();
    await worker.processor.run({ concurrency: 4 });
    await following;
    await worker.close();
    expect(seen[0]!.type).toBe('job:created');
    expect(seen.at(-1)!.type).toBe('job:completed');
    expect(seen.filter((e) => e.type === 'page:done')).toHaveLength(40);
    expect(seen.map((e) => Number(e.id))).toEqual(seen.map((_, i) => i + 1));

    const resumed: ProgressEvent[] = [];
    for await (const event of watcher.progress.subscribe(job.id, { after: seen[10]!.id })) resumed.push(event);
    expect(resumed.map((e) => e.id)).toEqual(seen.slice(11).map((e) => e.id));
  });

  test('subscribe() ends at once for an unknown job and when its signal aborts', async () => {
    const engine = createCrawlEngine({ storage: memoryStorage() });
    const none: ProgressEvent[] = [];
    for await (const e of engine.progress.subscribe('job_missing')) none.push(e);
    expect(none).toEqual([]);
    const job = await engine.jobs.create({ url: 'https://example.com/' });
    const controller = new AbortController();
    const got: ProgressEvent[] = [];
    setTimeout(() => controller.abort(), 50);
    for await (const e of engine.progress.subscribe(job.id, { signal: controller.signal, pollMs: 10 })) got.push(e);
    expect(got.map((e) => e.type)).toEqual(['job:created']);
  });

  test('a subscriber whose position was trimmed gets a progress snapshot, then the rest', async () => {
    site = await startSite({ pages: 80, fanout: 4 });
    const storage = memoryStorage({ maxEventsPerJob: 10 });
    const engine = testEngine({}, storage);
    const job = await engine.crawl({ url: site.url, maxDepth: 5, maxPages: 80 });
    await engine.close();
    const got: ProgressEvent[] = [];
    for await (const e of engine.progress.subscribe(job.id, { after: '1' })) got.push(e);
    expect(got[0]!.type).toBe('progress');
    expect(got.at(-1)!.type).toBe('job:completed');
    expect(got.length).toBeLessThanOrEqual(10 + 16 + 1);
    expect(job.counts.succeeded).toBe(80);
  });
});
