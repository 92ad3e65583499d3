// Progress push over REST (Upstash SUBSCRIBE over HTTP streaming) and the polling backoff of subscribe().
import Redis from 'ioredis';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { kvStorage } from '../adapters/kv/index.js';
import { memoryStorage } from '../adapters/memory/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import type { CrawlStorage } from '../src/core/storage.js';
import { LEASE, link, result, seeded, sleep, T0 } from '../src/testing/fixtures.js';
import { startUpstashStandIn } from './helpers/upstash.js';

const REDIS_URL = process.env.REDIS_URL || null;
let counter = 0;
const freshPrefix = () => `tp${process.pid}_${Date.now().toString(36)}_${counter++}:`;

async function until(done: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** Claims and completes one more page of the job through `s`: one event, one PUBLISH. */
function pulser(s: CrawlStorage, jobId: string) {
  let now = T0 + 1;
  return async () => {
    now += 1;
    const [lease] = (await s.claim({ limit: 1, leaseMs: LEASE, now, jobId })).leases;
    expect(lease).toBeDefined();
    expect((await s.complete(lease!, { result: result(lease!), links: [], now })).ok).toBe(true);
  };
}

const links = Array.from({ length: 40 }, (_, i) => link(`/p${i}`));

if (REDIS_URL) {
  describe('watch() over Upstash REST (subscribe over HTTP streaming)', async () => {
    const { Redis: UpstashRedis } = await import('@upstash/redis');
    const standIn = await startUpstashStandIn(REDIS_URL);
    const real = new Redis(REDIS_URL);
    afterAll(async () => {
      await standIn.close();
      const keys = await real.keys(`tp${process.pid}_*`);
      if (keys.length > 0) await real.del(...keys);
      real.disconnect();
    });
    const rest = () => new UpstashRedis({ url: standIn.url, token: standIn.token, enableTelemetry: false });
    /** A REST reader and an ioredis writer on the same keys. */
    const pair = () => {
      const prefix = freshPrefix();
      return { reader: kvStorage({ client: rest() as never, prefix }), writer: kvStorage({ client: real as never, prefix, listen: false }) };
    };

    test('a REST watcher is woken within ~100 ms of a complete() through another client', async () => {
      const { reader, writer } = pair();
      expect(reader.capabilities.push).toBe(true);
      const job = await seeded(writer, {}, links);
      let woken = 0;
      const unwatch = reader.watch!(job.id, () => {
        woken = performance.now();
      });
      const pulse = pulser(writer, job.id);
      try {
        expect(await until(() => standIn.openStreams() === 1, 2000)).toBe(true);
        const latencies: number[] = [];
        for (let i = 0; i < 9; i++) {
          woken = 0;
          const started = performance.now();
          await pulse();
          expect(await until(() => woken > 0, 2000)).toBe(true);
          latencies.push(woken - started);
          await sleep(20);
        }
        latencies.sort((a, b) => a - b);
        expect(latencies[4]).toBeLessThan(100);
      } finally {
        unwatch();
        await reader.close?.();
      }
    });

    test('progress.subscribe() on REST follows a job by push, not polling (pollMs of a minute)', async () => {
      const { reader, writer } = pair();
      const follower = createCrawlEngine({ storage: reader });
      const job = await seeded(writer, {}, links);
      const seen: string[] = [];
      const following = (async () => {
        for await (const event of follower.progress.subscribe(job.id, { pollMs: 60_000 })) seen.push(event.type);
      })();
      expect(await until(() => seen.length === 3 && standIn.openStreams() === 1, 2000)).toBe(true);
      await sleep(50);
      const pulse = pulser(writer, job.id);
      await pulse();
      expect(await until(() => seen.length === 4, 1000)).toBe(true);
      await writer.cancelJob(job.id, T0 + 10_000);
      await following;
      expect(seen).toEqual(['job:created', 'job:started', 'page:done', 'page:done', 'job:cancelled']);
      expect(await until(() => standIn.openStreams() === 0, 2000)).toBe(true);
    });

    test('watchers of one job share one stream; unsubscribing the last closes it', async () => {
      const { reader, writer } = pair();
      const job = await seeded(writer, {}, links);
      const before = standIn.subscribes();
      const calls = [0, 0];
      const stops = [reader.watch!(job.id, () => void calls[0]!++), reader.watch!(job.id, () => void calls[1]!++)];
      expect(await until(() => standIn.openStreams() === 1, 2000)).toBe(true);
      expect(standIn.subscribes() - before).toBe(1);
      await pulser(writer, job.id)();
      expect(await until(() => calls[0]! > 0 && calls[1]! > 0, 2000)).toBe(true);
      stops[0]!();
      await sleep(50);
      expect(standIn.openStreams()).toBe(1);
      stops[1]!();
      expect(await until(() => standIn.openStreams() === 0, 2000)).toBe(true);
      await sleep(300);
      expect(standIn.subscribes() - before).toBe(1); // closed for good: no reconnect
    });

    test('a stream the server cuts is opened again, and its watchers are called again', async () => {
      const { reader, writer } = pair();
      const job = await seeded(writer, {}, links);
      let calls = 0;
      const unwatch = reader.watch!(job.id, () => void calls++);
      try {
        expect(await until(() => standIn.openStreams() === 1, 2000)).toBe(true);
        const before = standIn.subscribes();
        standIn.cutStreams();
        expect(await until(() => standIn.subscribes() > before && standIn.openStreams() === 1, 3000)).toBe(true);
        await sleep(50);
        calls = 0;
        await pulser(writer, job.id)();
        expect(await until(() => calls > 0, 2000)).toBe(true);
      } finally {
        unwatch();
        await reader.close?.();
      }
    });

    test('a server that ends every stream at once is asked again with growing delays, not every 100 ms', async () => {
      const flaky = await startUpstashStandIn(REDIS_URL, { endStreamsAtOnce: true });
      const client = new UpstashRedis({ url: flaky.url, token: flaky.token, enableTelemetry: false });
      const storage = kvStorage({ client: client as never, prefix: freshPrefix() });
      const unwatch = storage.watch!('job_flaky', () => undefined);
      try {
        await sleep(2000);
        // 100 + 200 + 400 + 800 ms of backoff: at most 5 streams in 2 s (20 with a reset on every confirm).
        expect(flaky.subscribes()).toBeGreaterThanOrEqual(2);
        expect(flaky.subscribes()).toBeLessThanOrEqual(6);
      } finally {
        unwatch();
        await storage.close?.();
        await flaky.close();
      }
    });

    /** A REST stand-in without /subscribe, a REST reader on it and an ioredis writer, sharing a prefix. */
    const withoutSubscribe = async () => {
      const plain = await startUpstashStandIn(REDIS_URL, { subscribe: false });
      const prefix = freshPrefix();
      const reader = kvStorage({ client: new UpstashRedis({ url: plain.url, token: plain.token, enableTelemetry: false }) as never, prefix });
      const writer = kvStorage({ client: real as never, prefix, listen: false });
      return { plain, reader, writer };
    };

    test('a REST server without /subscribe turns push off, and subscribers poll', async () => {
      const { plain, reader, writer } = await withoutSubscribe();
      try {
        expect(reader.capabilities.push).toBe(true);
        const job = await seeded(writer, {}, links);
        const unwatch = reader.watch!(job.id, () => undefined);
        expect(await until(() => !reader.capabilities.push, 2000)).toBe(true);
        unwatch();
        const follower = createCrawlEngine({ storage: reader });
        const seen: string[] = [];
        const following = (async () => {
          for await (const event of follower.progress.subscribe(job.id, { pollMs: 20 })) seen.push(event.type);
        })();
        await writer.cancelJob(job.id, T0 + 10_000);
        await following;
        expect(seen).toEqual(['job:created', 'job:started', 'page:done', 'job:cancelled']);
      } finally {
        await plain.close();
      }
    });

    test('a subscriber that started before push turned out unavailable switches to polling at pollMs, not the 1 s safety net', async () => {
      const { plain, reader, writer } = await withoutSubscribe();
      try {
        const job = await seeded(writer, {}, links);
        const follower = createCrawlEngine({ storage: reader });
        const seen: string[] = [];
        let cancelledAt = 0;
        let arrivedAt = 0;
        const following = (async () => {
          for await (const event of follower.progress.subscribe(job.id, { pollMs: 20 })) {
            seen.push(event.type);
            if (event.type === 'job:cancelled') arrivedAt = performance.now();
          }
        })();
        expect(await until(() => !reader.capabilities.push, 2000)).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 100));
        cancelledAt = performance.now();
        await writer.cancelJob(job.id, T0 + 10_000);
        await following;
        expect(seen.at(-1)).toBe('job:cancelled');
        // Polling backs off to at most 1.5 × 20 ms per empty read from 20 ms: well under the safety net's 1 s.
        expect(arrivedAt - cancelledAt).toBeLessThan(700);
      } finally {
        await plain.close();
      }
    });
  });
}

/** A storage that cannot push and counts its readEvents() calls. */
function countingPoller(): { storage: CrawlStorage; reads: () => number } {
  const inner = memoryStorage();
  let reads = 0;
  const storage: CrawlStorage = new Proxy(inner, {
    get(target, key, receiver) {
      if (key === 'capabilities') return { push: false };
      if (key === 'watch') return undefined;
      if (key === 'readEvents') {
        return (...args: Parameters<CrawlStorage['readEvents']>) => {
          reads++;
          return target.readEvents(...args);
        };
      }
      return Reflect.get(target, key, receiver);
    },
  });
  return { storage, reads: () => reads };
}

describe('subscribe() polling backoff (storage without push)', () => {
  test('an idle subscription reads ≤ 40 times a minute with the defaults (240 without backoff)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const { storage, reads } = countingPoller();
      const engine = createCrawlEngine({ storage });
      const job = await engine.jobs.create({ url: 'https://example.com/' });
      const controller = new AbortController();
      const following = (async () => {
        for await (const _ of engine.progress.subscribe(job.id, { signal: controller.signal })) void _;
      })();
      await vi.advanceTimersByTimeAsync(1);
      const start = reads();
      await vi.advanceTimersByTimeAsync(60_000);
      const perMinute = reads() - start;
      expect(perMinute).toBeGreaterThan(20); // still polling, every 2 s at most
      expect(perMinute).toBeLessThanOrEqual(40);
      controller.abort();
      await following;
    } finally {
      vi.useRealTimers();
    }
  });

  test('an event after a long idle spell is delivered within maxPollMs', async () => {
    const { storage, reads } = countingPoller();
    const engine = createCrawlEngine({ storage });
    const job = await engine.jobs.create({ url: 'https://example.com/' });
    const seen: Array<[string, number]> = [];
    const following = (async () => {
      for await (const event of engine.progress.subscribe(job.id, { pollMs: 10, maxPollMs: 150 })) seen.push([event.type, Date.now()]);
    })();
    await sleep(1500);
    // 1.5 s idle: 10, 15, 22, ... up to 150 ms is about 16 reads (150 at a fixed 10 ms).
    expect(reads()).toBeLessThan(30);
    const cancelledAt = Date.now();
    await engine.jobs.cancel(job.id);
    await following;
    expect(seen.map(([type]) => type)).toEqual(['job:created', 'job:cancelled']);
    expect(seen[1]![1] - cancelledAt).toBeLessThanOrEqual(150 + 100);
  });

  test('maxPollMs must be a positive number, named in the error', () => {
    const engine = createCrawlEngine({ storage: memoryStorage() });
    expect(() => engine.progress.subscribe('job_x', { maxPollMs: 0 })).toThrow(/maxPollMs: expected a positive number/);
    expect(() => engine.progress.subscribe('job_x', { maxPollMs: '1s' as never })).toThrow(/maxPollMs/);
  });
});
