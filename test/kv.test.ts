import Redis from 'ioredis';
import RedisMock from 'ioredis-mock';
import { afterAll, describe, expect, test } from 'vitest';
import { kvStorage } from '../adapters/kv/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import { jobRecord, runStorageConformance } from '../src/testing/index.js';

const REDIS_URL = process.env.REDIS_URL || null;
let counter = 0;
const freshPrefix = () => `t${process.pid}_${Date.now().toString(36)}_${counter++}:`;

const real = REDIS_URL ? new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 2 }) : null;
afterAll(async () => {
  if (real) {
    const keys = await real.keys(`t${process.pid}_*`);
    if (keys.length > 0) await real.del(...keys);
    real.disconnect();
  }
});

runStorageConformance({
  name: 'kv on ioredis-mock',
  storage: () => kvStorage({ client: new RedisMock() as never, prefix: freshPrefix(), maxEventsPerJob: 20 }),
  test,
  describe,
  eventLimit: 20,
});

if (real) {
  runStorageConformance({
    name: 'kv on the real Redis (ioredis)',
    storage: () => kvStorage({ client: real as never, prefix: freshPrefix(), maxEventsPerJob: 20 }),
    test,
    describe,
    eventLimit: 20,
  });
}

describe('kvStorage()', () => {
  test('bad options name the field', () => {
    expect(() => kvStorage({ client: {} as never })).toThrow(/client: expected an @upstash\/redis/);
    expect(() => kvStorage({ client: new RedisMock() as never, prefix: 'has space' })).toThrow(/prefix: expected/);
    expect(() => kvStorage({ client: new RedisMock() as never, listen: 'yes' as never })).toThrow(/listen: expected a boolean/);
    const restLike = { eval: async () => null, evalsha: async () => null };
    expect(() => kvStorage({ client: restLike as never, listen: true })).toThrow(/listen: needs a client with duplicate\(\) \(ioredis\)/);
    expect(kvStorage({ client: restLike as never }).capabilities.push).toBe(false);
    expect(kvStorage({ client: new RedisMock() as never, listen: false }).capabilities.push).toBe(false);
  });

  test('with ioredis, a subscriber is woken through pub/sub by events another client stores, not by polling', async () => {
    const prefix = freshPrefix();
    const reader = kvStorage({ client: new RedisMock() as never, prefix });
    const writer = kvStorage({ client: new RedisMock() as never, prefix });
    expect(reader.capabilities.push).toBe(true);
    const follower = createCrawlEngine({ storage: reader });
    const other = createCrawlEngine({ storage: writer });
    const job = await other.jobs.create({ url: 'https://example.com/' });
    const seen: Array<[string, number]> = [];
    // pollMs is a minute: only a push can deliver the cancellation within the test.
    const following = (async () => {
      for await (const event of follower.progress.subscribe(job.id, { pollMs: 60_000 })) seen.push([event.type, Date.now()]);
    })();
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 10));
    const cancelledAt = Date.now();
    await other.jobs.cancel(job.id);
    await following;
    expect(seen.map(([type]) => type)).toEqual(['job:created', 'job:cancelled']);
    expect(seen[1]![1] - cancelledAt).toBeLessThan(500);
    await reader.close?.();
  });
});

// Upstash's REST protocol, served on loopback by an Upstash-compatible server in front of the real
// Redis (@humanwhocodes/upstash-redis-server); the client is the real @upstash/redis.
if (REDIS_URL) {
  describe('kv through @upstash/redis (REST)', async () => {
    const { createServer } = await import('node:http');
    const { createRequestListener } = await import('@remix-run/node-fetch-server');
    const { createApp } = await import('@humanwhocodes/upstash-redis-server');
    const { Redis: UpstashRedis } = await import('@upstash/redis');
    const app = createApp({ token: 'test-token', redisUrl: REDIS_URL! });
    const server = createServer(createRequestListener((req) => app.fetch(req)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    afterAll(
      () =>
        new Promise((r) => {
          server.closeAllConnections();
          server.close(r);
        }),
    );
    const upstash = new UpstashRedis({ url, token: 'test-token', enableTelemetry: false });

    runStorageConformance({
      name: 'kv on Upstash REST',
      storage: () => kvStorage({ client: upstash as never, prefix: freshPrefix(), maxEventsPerJob: 20 }),
      test,
      describe,
      eventLimit: 20,
    });

    test('a @vercel/kv client (createClient) works through the same REST path', async () => {
      const { createClient } = await import('@vercel/kv');
      const vercelKv = createClient({ url, token: 'test-token', enableTelemetry: false } as never);
      const storage = kvStorage({ client: vercelKv as never, prefix: freshPrefix() });
      const job = jobRecord({
        id: 'job_vercel_kv',
        url: 'http://a.test/',
        options: { maxPages: 5, maxDepth: 1, scope: 'any', respectRobots: false, maxRetries: 0, perHostConcurrency: 2 },
      });
      await storage.createJob(job, { url: job.url, key: job.url, depth: 0, host: 'a.test' });
      const { leases } = await storage.claim({ limit: 5, leaseMs: 1000, now: Date.now(), jobId: job.id });
      expect(leases.map((l) => l.url)).toEqual(['http://a.test/']);
      expect((await storage.getJob(job.id))?.status).toBe('running');
    });

    test('Upstash replies are not mangled by its automatic JSON parsing (a result with JSON-looking strings)', async () => {
      const storage = kvStorage({ client: upstash as never, prefix: freshPrefix() });
      const job = jobRecord({
        id: 'job_upstash_json',
        url: 'http://a.test/',
        metadata: { nested: { n: 1 }, text: '{"not":"parsed"}' },
        options: { maxPages: 5, maxDepth: 1, scope: 'any', respectRobots: false, maxRetries: 0, perHostConcurrency: 2 },
      });
      await storage.createJob(job, { url: job.url, key: job.url, depth: 0, host: 'a.test' });
      expect((await storage.getJob(job.id))?.metadata).toEqual({ nested: { n: 1 }, text: '{"not":"parsed"}' });
    });
  });
}

describe('finishedTtlSeconds', () => {
  test("a finished job's keys get the TTL and an expired job leaves the listing", async () => {
    const client = new RedisMock();
    const prefix = freshPrefix();
    const storage = kvStorage({ client: client as never, prefix, finishedTtlSeconds: 60 });
    const job = jobRecord({
      id: 'job_ttl',
      url: 'http://a.test/',
      options: { maxPages: 5, maxDepth: 1, scope: 'any', respectRobots: false, maxRetries: 0, perHostConcurrency: 2 },
    });
    await storage.createJob(job, { url: job.url, key: job.url, depth: 0, host: 'a.test' });
    expect(await client.ttl(`${prefix}{job:job_ttl}:job`)).toBe(-1);
    await storage.cancelJob(job.id, Date.now());
    const ttl = await client.ttl(`${prefix}{job:job_ttl}:job`);
    expect(ttl).toBeGreaterThan(50);
    expect(ttl).toBeLessThanOrEqual(60);
    await client.del(`${prefix}{job:job_ttl}:job`);
    expect((await storage.listJobs({ limit: 10 })).items).toEqual([]);
    expect(await client.zcard(`${prefix}{index}:jobs`)).toBe(0);
  });
});
