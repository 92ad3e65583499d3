// Progress subscribers of one job share one reader of its event log (src/core/feed.ts): storage
// reads do not grow with the number of subscribers, on every adapter.
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import { FeedRegistry, feedsOf } from '../src/core/feed.js';
import { createProgressApi } from '../src/core/progress.js';
import { progressStream } from '../src/http/sse.js';
import type { ProgressApi } from '../src/core/progress.js';
import type { CrawlStorage } from '../src/core/storage.js';
import type { ProgressEvent } from '../src/core/types.js';
import { startSite, type Site } from './fixtures/site.mjs';
import { testEngine } from './helpers/engine.js';
import { closeRedis, everyStorage } from './helpers/storages.js';

let site: Site | null = null;
afterEach(async () => {
  await site?.close();
  site = null;
});
afterAll(closeRedis);

/** `storage` with its `readEvents` calls counted (everything else passes through). */
function counted(storage: CrawlStorage): { storage: CrawlStorage; reads: () => number } {
  let reads = 0;
  const proxy = new Proxy(storage, {
    get(target, prop) {
      if (prop === 'readEvents') {
        return (...args: Parameters<CrawlStorage['readEvents']>) => {
          reads++;
          return target.readEvents(...args);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { storage: proxy, reads: () => reads };
}

async function collect(iterable: AsyncIterable<ProgressEvent>): Promise<ProgressEvent[]> {
  const out: ProgressEvent[] = [];
  for await (const event of iterable) out.push(event);
  return out;
}

/** Crawls a 40-page site while `subscribers` follow it from another engine; returns what they saw and the reads. */
async function crawlWatched(make: () => Promise<CrawlStorage>, subscribers: number) {
  const raw = await make();
  const { storage, reads } = counted(raw);
  const worker = testEngine({}, raw);
  const watcher = createCrawlEngine({ storage });
  const job = await worker.jobs.create({ url: site!.url, maxDepth: 5, maxPages: 40 });
  const following = Array.from({ length: subscribers }, () => collect(watcher.progress.subscribe(job.id, { pollMs: 20 })));
  await worker.processor.run({ concurrency: 4 });
  const seen = await Promise.all(following);
  await worker.close();
  return { seen, reads: reads(), open: feedsOf(storage).size };
}

describe.each(everyStorage)('%s', (_name, make) => {
  test('200 subscribers of one job cost the storage about what one does: each gets every event once, in order', async () => {
    site = await startSite({ pages: 40, fanout: 3, latencyMs: 2 });
    const one = await crawlWatched(make, 1);
    const many = await crawlWatched(make, 200);
    const expected = one.seen[0]!;
    expect(expected[0]!.type).toBe('job:created');
    expect(expected.at(-1)!.type).toBe('job:completed');
    expect(expected.filter((e) => e.type === 'page:done')).toHaveLength(40);
    for (const seen of many.seen) {
      expect(seen.map((e) => e.type)).toEqual(many.seen[0]!.map((e) => e.type));
      const ids = seen.map((e) => Number(e.id));
      expect(ids).toEqual(ids.map((_, i) => i + 1));
      expect(seen.at(-1)!.type).toBe('job:completed');
    }
    // One reader per job: the reads depend on how often the job changed, not on who watches.
    // Without sharing, 200 subscribers read about 200 times as often as one.
    expect(many.reads).toBeLessThanOrEqual(Math.max(20, 2 * one.reads));
    expect(many.reads).toBeLessThanOrEqual(expected.length + 10);
    expect(many.open).toBe(0);
  });
});

describe('the shared reader', () => {
  test('a subscriber that joins late, with the log behind it, catches up on its own reads and sees the same events', async () => {
    site = await startSite({ pages: 60, fanout: 3, latencyMs: 2 });
    const raw = memoryStorage();
    const { storage, reads } = counted(raw);
    const worker = testEngine({}, raw);
    const job = await worker.jobs.create({ url: site.url, maxDepth: 5, maxPages: 60 });
    // A buffer of 8 events: late and slow subscribers fall behind it and must read the log.
    const feeds = new FeedRegistry(storage, 8);
    const progress = createProgressApi(storage, feeds);
    const early = collect(progress.subscribe(job.id, { pollMs: 10 }));
    const slow = (async () => {
      const out: ProgressEvent[] = [];
      for await (const event of progress.subscribe(job.id, { pollMs: 10 })) {
        out.push(event);
        await new Promise((resolve) => setTimeout(resolve, 3));
      }
      return out;
    })();
    const running = worker.processor.run({ concurrency: 4 });
    while ((await raw.readEvents(job.id, null, 1000)).length < 30) await new Promise((resolve) => setTimeout(resolve, 5));
    const late = collect(progress.subscribe(job.id, { pollMs: 10 }));
    const resumed = collect(progress.subscribe(job.id, { after: '5', pollMs: 10 }));
    await running;
    const [a, b, c, d] = await Promise.all([early, slow, late, resumed]);
    const all = await raw.readEvents(job.id, null, 1000);
    expect(all.at(-1)!.type).toBe('job:completed');
    expect(a.map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(b.map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(c.map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(d.map((e) => e.id)).toEqual(all.slice(5).map((e) => e.id));
    expect(c).toEqual(all);
    expect(feeds.size).toBe(0);
    expect(reads()).toBeGreaterThan(0);
    await worker.close();
  });

  test('a subscriber that starts ahead of the log (a forged Last-Event-ID) does not hide events from the others', async () => {
    site = await startSite({ pages: 20, fanout: 3, latencyMs: 2 });
    const storage = memoryStorage();
    const worker = testEngine({}, storage);
    const job = await worker.jobs.create({ url: site.url, maxDepth: 5, maxPages: 20 });
    // The first subscriber creates the feed, at a position far past anything the job will write.
    const ahead = collect(worker.progress.subscribe(job.id, { after: '999999', pollMs: 10 }));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const honest = collect(worker.progress.subscribe(job.id, { pollMs: 10 }));
    const resumed = collect(worker.progress.subscribe(job.id, { after: '2', pollMs: 10 }));
    await worker.processor.run({ concurrency: 4 });
    const all = await storage.readEvents(job.id, null, 1000);
    expect((await honest).map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect((await resumed).map((e) => e.id)).toEqual(all.slice(2).map((e) => e.id));
    // It ends with the job rather than waiting for an id that never comes.
    expect(await ahead).toEqual([]);
    await worker.close();
  });

  test('subscribers that go away release the feed; one that aborts does not end the others', async () => {
    const storage = memoryStorage();
    const engine = createCrawlEngine({ storage });
    const job = await engine.jobs.create({ url: 'https://example.com/' });
    const controllers = [new AbortController(), new AbortController()];
    const got = controllers.map((c) => collect(engine.progress.subscribe(job.id, { signal: c.signal, pollMs: 10 })));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(feedsOf(storage).size).toBe(1);
    controllers[0]!.abort();
    expect((await got[0]!).map((e) => e.type)).toEqual(['job:created']);
    expect(feedsOf(storage).size).toBe(1);
    await engine.jobs.cancel(job.id);
    expect((await got[1]!).map((e) => e.type)).toEqual(['job:created', 'job:cancelled']);
    controllers[1]!.abort();
    expect(feedsOf(storage).size).toBe(0);
  });

  test('a failing read reaches every subscriber of the feed, and the next subscriber starts afresh', async () => {
    const raw = memoryStorage();
    const engine = createCrawlEngine({ storage: raw });
    const job = await engine.jobs.create({ url: 'https://example.com/' });
    let fail = true;
    const flaky = new Proxy(raw, {
      get(target, prop) {
        if (prop === 'readEvents') {
          return (...args: Parameters<CrawlStorage['readEvents']>) => (fail ? Promise.reject(new Error('storage down')) : target.readEvents(...args));
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const progress = createProgressApi(flaky, new FeedRegistry(flaky));
    const outcomes = await Promise.allSettled([collect(progress.subscribe(job.id)), collect(progress.subscribe(job.id))]);
    expect(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).message : 'ok'))).toEqual(['storage down', 'storage down']);
    fail = false;
    await engine.jobs.cancel(job.id);
    expect((await collect(progress.subscribe(job.id))).map((e) => e.type)).toEqual(['job:created', 'job:cancelled']);
  });
});

describe('SSE streams', () => {
  test('a client that stops reading pauses its subscription (backpressure) and later gets every event', async () => {
    site = await startSite({ pages: 150, fanout: 4, latencyMs: 1 });
    const engine = testEngine();
    const job = await engine.jobs.create({ url: site.url, maxDepth: 6, maxPages: 150 });
    // A progress API (not made by createProgressApi, so batches of one) counting what streams take from it.
    let taken = 0;
    const counting: ProgressApi = {
      ...engine.progress,
      subscribe: (jobId, options) => ({
        async *[Symbol.asyncIterator]() {
          for await (const event of engine.progress.subscribe(jobId, options)) {
            taken++;
            yield event;
          }
        },
      }),
    };
    const stalled = progressStream({ ...engine, progress: counting }, job.id, {
      after: null,
      signal: new AbortController().signal,
      maxStreamMs: 60_000,
      heartbeatMs: 60_000,
      retryMs: 1000,
      pollMs: 20,
    });
    await engine.processor.run({ concurrency: 4 });
    const all = await engine.storage.readEvents(job.id, null, 1000);
    expect(all.at(-1)!.type).toBe('job:completed');
    // Unread, the stream took events only up to its 16 kB high-water mark, not the job's ~60 kB.
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThan(all.length / 2);
    const types = [...(await stalled.text()).matchAll(/^event: (.*)$/gm)].map((m) => m[1]);
    expect(types).toEqual(all.map((e) => e.type));
    await engine.close();
  });
});

describe('positions', () => {
  test('a subscriber past the end of a finished job ends, even after another one started the feed ahead of the log', async () => {
    const engine = createCrawlEngine({ storage: memoryStorage() });
    const job = await engine.jobs.create({ url: 'https://example.com/' });
    const controller = new AbortController();
    const ahead = collect(engine.progress.subscribe(job.id, { after: '999999', signal: controller.signal, pollMs: 10 }));
    await new Promise((resolve) => setTimeout(resolve, 30));
    await engine.jobs.cancel(job.id);
    const last = (await engine.storage.readEvents(job.id, null, 10)).at(-1)!;
    expect(last.type).toBe('job:cancelled');
    const timer = setTimeout(() => controller.abort(), 5000);
    expect(await collect(engine.progress.subscribe(job.id, { after: last.id, signal: controller.signal, pollMs: 10 }))).toEqual([]);
    expect(await ahead).toEqual([]);
    expect(controller.signal.aborted).toBe(false);
    clearTimeout(timer);
  });

  test('ids longer than the adapters parse exactly are read as before, and leading zeros place a reader where the digits say', async () => {
    const engine = createCrawlEngine({ storage: memoryStorage() });
    const job = await engine.jobs.create({ url: 'https://example.com/' });
    await engine.jobs.cancel(job.id);
    const direct = async (after: string) => (await engine.storage.readEvents(job.id, after, 10)).map((e) => e.id);
    for (const after of ['10000000000000000000', '0001', '1', '2', '0']) {
      expect(
        (await collect(engine.progress.subscribe(job.id, { after }))).map((e) => e.id),
        after,
      ).toEqual(await direct(after));
    }
  });

  test('subscribers that abort while the job is quiet leave nothing behind in the feed', async () => {
    const storage = memoryStorage();
    const engine = createCrawlEngine({ storage });
    const job = await engine.jobs.create({ url: 'https://example.com/' });
    const steady = new AbortController();
    const following = collect(engine.progress.subscribe(job.id, { signal: steady.signal, pollMs: 10_000 }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const feed = feedsOf(storage).get(job.id, null);
    for (let i = 0; i < 50; i++) {
      const c = new AbortController();
      const got = collect(engine.progress.subscribe(job.id, { signal: c.signal, pollMs: 10_000 }));
      await new Promise((resolve) => setTimeout(resolve, 1));
      c.abort();
      await got;
    }
    expect(feed.subscribers).toBe(1);
    expect(feed.waiting).toBeLessThanOrEqual(1);
    steady.abort();
    await following;
    expect(feedsOf(storage).size).toBe(0);
  });
});
