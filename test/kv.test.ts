// Over 300 lines: the KV adapter's tests on every client (ioredis-mock, Redis, Upstash REST, Vercel KV), completeMany included.
import { createHash } from 'node:crypto';
import Redis from 'ioredis';
import RedisMock from 'ioredis-mock';
import { afterAll, describe, expect, test } from 'vitest';
import { REST_MAX_CALL_CHARS, TOUCH_DEFER_MS } from '../adapters/kv/client.js';
import { kvStorage } from '../adapters/kv/index.js';
import { indexKeys, jobKeys } from '../adapters/kv/keys.js';
import * as S from '../adapters/kv/scripts.js';
import { createCrawlEngine } from '../src/core/engine.js';
import type { CompleteInput, CrawlStorage, FrontierLink, Lease } from '../src/core/storage.js';
import type { JobOptions } from '../src/core/types.js';
import { disallowed, LEASE, link, makeJob, result, robotsResult, seedOf, T0 } from '../src/testing/fixtures.js';
import { jobRecord, runStorageConformance } from '../src/testing/index.js';
import { startUpstashStandIn } from './helpers/upstash.js';

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

// completeMany: the helpers below are shared by the ioredis, Upstash and Vercel KV tests.

/** Script names by SHA1, to tell which script a call ran. */
const scriptNames = (() => {
  const k = jobKeys('p:', 'id');
  const ix = indexKeys('p:');
  const all = [
    S.CREATE(k, 'h'),
    S.CLAIM(k),
    S.COMPLETE(k),
    S.COMPLETE_MANY(k),
    S.RETRY(k),
    S.RELEASE(k),
    S.INDEX_APPLY(ix),
    S.INDEX_ACTIVE(ix),
    S.INDEX_ADD(ix, 'id'),
  ];
  return new Map(all.map((c) => [createHash('sha1').update(c.lua).digest('hex'), c.name]));
})();

/** The client, with every script call it makes recorded as `evalsha:<name>` or `eval:<name>` (one round trip each). */
function recorded<T extends object>(client: T): { client: T; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(client, {
    get(target, name) {
      const value = Reflect.get(target, name) as unknown;
      if (typeof value !== 'function') return value;
      if (name !== 'eval' && name !== 'evalsha') return value.bind(target);
      return (script: string, ...rest: unknown[]) => {
        const sha = name === 'eval' ? createHash('sha1').update(script).digest('hex') : script;
        calls.push(`${name}:${scriptNames.get(sha) ?? '?'}`);
        return value.call(target, script, ...rest);
      };
    },
  });
  return { client: proxy, calls };
}

/** Creates job `id`, claims its start URL and completes it with `links`. */
async function startJob(storage: CrawlStorage, id: string, options: Partial<JobOptions>, links: FrontierLink[]): Promise<void> {
  const job = makeJob(options, id);
  await storage.createJob(job, seedOf(job));
  const { leases } = await storage.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: id });
  expect((await storage.complete(leases[0]!, { result: result(leases[0]!), links, now: T0 })).ok).toBe(true);
}

const claimAll = async (storage: CrawlStorage, id: string, limit: number, now = T0 + 1) =>
  (await storage.claim({ limit, leaseMs: LEASE, now, jobId: id })).leases;

/**
 * Twin jobs (same id, two prefixes): one stores five pages with complete(), one after another, the
 * other the same pages with one completeMany(). Pages succeed, fail, and are skipped for robots.txt
 * (which refunds a charge to a spare); links repeat across pages; one page brings disallowed links.
 */
async function batchEqualsSequential(make: (prefix: string) => CrawlStorage): Promise<void> {
  const base = freshPrefix();
  const [one, many] = [make(`${base}a:`), make(`${base}b:`)];
  const id = 'job_twin';
  const start = ['/1', '/2', '/3', '/4', '/5'].map((path) => ({ ...link(path), robots: 'unknown' as const }));
  for (const storage of [one, many]) await startJob(storage, id, { maxPages: 9 }, start);
  const [leasesOne, leasesMany] = [await claimAll(one, id, 5), await claimAll(many, id, 5)];
  expect(leasesMany.map((l) => l.url)).toEqual(leasesOne.map((l) => l.url));
  const inputs: CompleteInput[] = leasesOne.map((lease, i) => ({
    result: i === 2 ? robotsResult(lease.url, lease.depth, lease.attempts) : result(lease, i !== 1),
    links: i === 1 || i === 2 ? [] : [link(`/new${i}`, 2), link(`/shared`, 2), link('/1', 2), link(`/more${i}`, 2)],
    ...(i === 0 ? { skipped: [disallowed(link('/private', 2)), disallowed(link('/2', 2))] } : {}),
    now: T0 + 10 + i,
  }));
  const sequential = [];
  for (const [i, lease] of leasesOne.entries()) sequential.push(await one.complete(lease, inputs[i]!));
  const batched = await many.completeMany!(leasesMany.map((lease, i) => ({ lease, input: inputs[i]! })));
  expect(batched).toEqual(sequential);
  // The events: one page event each, the disallowed link's, ids in order across the batch.
  expect(batched.map((r) => r.events.map((e) => e.type))).toEqual([
    ['page:done', 'page:skipped'],
    ['page:failed'],
    ['page:skipped'],
    ['page:done'],
    ['page:done'],
  ]);
  const ids = batched.flatMap((r) => r.events.map((e) => Number(e.id)));
  expect(ids).toEqual(ids.map((_, i) => ids[0]! + i));
  expect(batched.map((r) => r.ok)).toEqual([true, true, true, true, true]);
  expect(await many.getJob(id)).toEqual(await one.getJob(id));
  expect(await many.listResults(id, { limit: 100 })).toEqual(await one.listResults(id, { limit: 100 }));
  expect(await many.readEvents(id, null, 100)).toEqual(await one.readEvents(id, null, 100));
  // And the job goes on the same way: the next claims give the same URLs.
  expect((await claimAll(many, id, 10, T0 + 100)).map((l) => l.url)).toEqual((await claimAll(one, id, 10, T0 + 100)).map((l) => l.url));
}

describe('claims of one job (the crawl() loop)', () => {
  const clients: Array<[string, () => Redis]> = [
    ['ioredis-mock', () => new RedisMock() as unknown as Redis],
    ...(real ? [['the real Redis', () => real] as [string, () => Redis]] : []),
  ];

  test.each(clients)(
    'defer the index touch: one command each; a claim across jobs applies it first, so the job just served waits its turn (%s)',
    async (_, client) => {
      const prefix = freshPrefix();
      const storage = kvStorage({ client: client() as never, prefix, listen: false });
      const { active } = indexKeys(prefix);
      const paths = ['/1', '/2', '/3', '/4'].map((p) => link(p));
      await startJob(storage, 'job_first', { perHostConcurrency: 10 }, paths);
      await startJob(storage, 'job_second', { perHostConcurrency: 10 }, paths);
      const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
      // The setup's own touches go first; both jobs' last claims were then the setup's (T0).
      await sleep(TOUCH_DEFER_MS + 50);
      const before = await client().zscore(active, 'job_first');
      const started = performance.now();
      expect((await storage.claim({ limit: 1, leaseMs: LEASE, now: T0 + 100, jobId: 'job_first' })).leases).toHaveLength(1);
      expect((await storage.claim({ limit: 1, leaseMs: LEASE, now: T0 + 101, jobId: 'job_first' })).leases).toHaveLength(1);
      const meanwhile = await client().zscore(active, 'job_first');
      // (On a machine so loaded that TOUCH_DEFER_MS went by, the touch may have gone already.)
      if (performance.now() - started < TOUCH_DEFER_MS) expect(meanwhile, 'the touch waits').toBe(before);
      const across = await storage.claim({ limit: 1, leaseMs: LEASE, now: T0 + 102 });
      expect(
        across.leases.map((lease) => lease.jobId),
        'the touch was applied before the claim read the line',
      ).toEqual(['job_second']);
      expect(Number(await client().zscore(active, 'job_first'))).toBe(T0 + 101);
      // Alone, a deferred touch is applied within TOUCH_DEFER_MS, with no other call.
      expect((await storage.claim({ limit: 1, leaseMs: LEASE, now: T0 + 200, jobId: 'job_first' })).leases).toHaveLength(1);
      const deadline = performance.now() + 5000;
      while (Number(await client().zscore(active, 'job_first')) !== T0 + 200 && performance.now() < deadline) await sleep(20);
      expect(Number(await client().zscore(active, 'job_first'))).toBe(T0 + 200);
    },
  );
});

describe('completeMany (ioredis)', () => {
  const clients: Array<[string, () => Redis]> = [
    ['ioredis-mock', () => new RedisMock() as unknown as Redis],
    ...(real ? [['the real Redis', () => real] as [string, () => Redis]] : []),
  ];

  test.each(clients)('equals complete() page by page on a twin job: results, events, counts, stored results (%s)', async (_, client) => {
    await batchEqualsSequential((prefix) => kvStorage({ client: client() as never, prefix, listen: false }));
  });

  test('a stale lease among fresh ones is refused and changes nothing; the others are stored', async () => {
    const storage = kvStorage({ client: new RedisMock() as never, prefix: freshPrefix(), listen: false });
    await startJob(storage, 'job_stale', {}, [link('/1'), link('/2'), link('/3')]);
    const [a, b, c] = await claimAll(storage, 'job_stale', 3);
    const input = (lease: Lease, links: FrontierLink[] = []) => ({ result: result(lease), links, now: T0 + 5 });
    expect((await storage.complete(a!, input(a!))).ok).toBe(true);
    const before = await storage.getJob('job_stale');
    const out = await storage.completeMany!([
      { lease: b!, input: input(b!, [link('/4')]) },
      { lease: a!, input: input(a!, [link('/5')]) }, // spent
      { lease: { ...c!, token: 'not-the-token' }, input: input(c!, [link('/6')]) },
      { lease: { ...c!, jobId: 'job_missing' }, input: input(c!) },
      { lease: c!, input: input(c!) },
    ]);
    expect(out.map((r) => [r.ok, r.admitted, r.events.length])).toEqual([
      [true, 1, 1],
      [false, 0, 0],
      [false, 0, 0],
      [false, 0, 0],
      [true, 0, 1],
    ]);
    const after = await storage.getJob('job_stale');
    expect(after?.counts).toEqual({ ...before!.counts, discovered: 5, queued: 1, inProgress: 0, succeeded: 4 });
    expect((await storage.listResults('job_stale', { limit: 10 })).items.map((r) => r.url)).toEqual(
      ['/', '/1', '/2', '/3'].map((path) => `http://example.test${path}`),
    );
  });

  test('a batch crossing maxPages admits exactly up to it, and the item after which nothing is left finishes the job once', async () => {
    const { client, calls } = recorded(new RedisMock() as unknown as Redis);
    const prefix = freshPrefix();
    const storage = kvStorage({ client: client as never, prefix, listen: false });
    await startJob(storage, 'job_max', { maxPages: 4 }, [link('/1'), link('/2')]);
    const [a, b] = await claimAll(storage, 'job_max', 2);
    const first = await storage.completeMany!([
      { lease: a!, input: { result: result(a!), links: [link('/3', 2), link('/4', 2)], now: T0 + 5 } },
      { lease: b!, input: { result: result(b!), links: [link('/5', 2)], now: T0 + 6 } },
    ]);
    expect(first.map((r) => r.admitted)).toEqual([1, 0]);
    expect((await storage.getJob('job_max'))?.counts.discovered).toBe(4);
    const [last] = await claimAll(storage, 'job_max', 2);
    expect(last?.url).toBe('http://example.test/3');
    calls.length = 0;
    const out = await storage.completeMany!([
      { lease: last!, input: { result: result(last!), links: [link('/6', 3)], now: T0 + 7 } },
      { lease: a!, input: { result: result(a!), links: [], now: T0 + 8 } }, // spent: nothing after the end
    ]);
    const made = calls.filter((c) => c.startsWith('evalsha:'));
    expect(out.map((r) => r.events.map((e) => e.type))).toEqual([['page:done', 'job:completed'], []]);
    const job = await storage.getJob('job_max');
    expect([job?.status, job?.counts.succeeded, job?.counts.discovered]).toEqual(['completed', 4, 4]);
    expect((await storage.readEvents('job_max', null, 100)).filter((e) => e.type === 'job:completed')).toHaveLength(1);
    // One script call, then one index update: the finished job leaves the index.
    expect(made).toEqual(['evalsha:complete-many', 'evalsha:index-apply']);
    expect(await client.zscore(indexKeys(prefix).active, 'job_max')).toBeNull();
  });

  test('items of two jobs in one call: one script call per job, results in the order given, each job its own events', async () => {
    const { client, calls } = recorded(new RedisMock() as unknown as Redis);
    const storage = kvStorage({ client: client as never, prefix: freshPrefix(), listen: false });
    for (const id of ['job_one', 'job_two']) await startJob(storage, id, {}, [link('/1'), link('/2')]);
    const [one, two] = [await claimAll(storage, 'job_one', 2), await claimAll(storage, 'job_two', 2)];
    await storage.completeMany!([]); // no call at all
    expect(calls.filter((c) => c.includes('complete-many'))).toEqual([]);
    const items = [one[0]!, two[0]!, one[1]!, two[1]!].map((lease, i) => ({
      lease,
      input: { result: result(lease), links: [link(`/n${i}`, 2)], now: T0 + 5 + i },
    }));
    const out = await storage.completeMany!(items);
    expect(out.map((r) => [r.ok, r.admitted, r.events[0]?.jobId, r.events[0]?.url])).toEqual(items.map((i) => [true, 1, i.lease.jobId, i.lease.url]));
    for (const id of ['job_one', 'job_two']) {
      const eventIds = out.flatMap((r) => r.events.filter((e) => e.jobId === id).map((e) => Number(e.id)));
      expect(eventIds[1]).toBe(eventIds[0]! + 1);
      expect((await storage.getJob(id))?.counts).toMatchObject({ discovered: 5, succeeded: 3, queued: 2, inProgress: 0 });
    }
    calls.length = 0;
    const [three, four] = [await claimAll(storage, 'job_one', 1, T0 + 20), await claimAll(storage, 'job_two', 1, T0 + 20)];
    calls.length = 0;
    await storage.completeMany!([three[0]!, four[0]!].map((lease) => ({ lease, input: { result: result(lease), links: [], now: T0 + 30 } })));
    // (An index-apply may go too: the claims' deferred touches.)
    expect(calls.filter((c) => !c.includes('index-apply')).sort()).toEqual(['evalsha:complete-many', 'evalsha:complete-many']);
  });

  test('bad input names the field', async () => {
    const storage = kvStorage({ client: new RedisMock() as never, prefix: freshPrefix(), listen: false });
    await expect(storage.completeMany!('x' as never)).rejects.toMatchObject({
      code: 'invalid_input',
      message: expect.stringMatching(/completeMany items: expected an array/),
    });
    await expect(storage.completeMany!([{ lease: null, input: {} }] as never)).rejects.toMatchObject({
      code: 'invalid_input',
      message: expect.stringMatching(/items\[0\]: expected \{ lease, input \}/),
    });
  });
});

// Upstash's REST protocol, served on loopback by an Upstash-compatible server in front of the real
// Redis (@humanwhocodes/upstash-redis-server); the client is the real @upstash/redis.
if (REDIS_URL) {
  describe('kv through @upstash/redis (REST)', async () => {
    const { Redis: UpstashRedis } = await import('@upstash/redis');
    // With the /subscribe/<channel> endpoint: watch() runs over REST too (the conformance watch test included).
    const standIn = await startUpstashStandIn(REDIS_URL!);
    const { url } = standIn;
    afterAll(() => standIn.close());
    const upstash = new UpstashRedis({ url, token: 'test-token', enableTelemetry: false });

    test('an @upstash/redis client has push (subscribe over HTTP streaming)', () => {
      expect(kvStorage({ client: upstash as never }).capabilities.push).toBe(true);
    });

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

    test('completeMany over REST equals complete() page by page on a twin job (@upstash/redis, @vercel/kv)', async () => {
      await batchEqualsSequential((prefix) => kvStorage({ client: upstash as never, prefix }));
      const { createClient } = await import('@vercel/kv');
      const vercelKv = createClient({ url, token: 'test-token', enableTelemetry: false } as never);
      await batchEqualsSequential((prefix) => kvStorage({ client: vercelKv as never, prefix }));
    });

    test(`a batch of one job over ${REST_MAX_CALL_CHARS} characters of arguments goes in calls under that, in order`, async () => {
      const { client, calls } = recorded(upstash);
      const storage = kvStorage({ client: client as never, prefix: freshPrefix() });
      await startJob(storage, 'job_big', {}, [link('/1'), link('/2'), link('/3')]);
      const leases = await claimAll(storage, 'job_big', 3);
      await storage.completeMany!([]);
      calls.length = 0;
      const big = 'x'.repeat(Math.floor(REST_MAX_CALL_CHARS * 0.4));
      const out = await storage.completeMany!(
        leases.map((lease, i) => ({ lease, input: { result: { ...result(lease), data: { big, i } }, links: [], now: T0 + 5 } })),
      );
      expect(out.map((r) => [r.ok, r.events.map((e) => e.type)])).toEqual([
        [true, ['page:done']],
        [true, ['page:done']],
        [true, ['page:done', 'job:completed']],
      ]);
      // Two items fit in one call, the third goes in a second one; then the finished job leaves the index.
      expect(calls.filter((c) => c === 'evalsha:complete-many')).toHaveLength(2);
      const stored = (await storage.listResults('job_big', { limit: 10 })).items.slice(1);
      expect(stored.map((r) => [r.url, (r.data as { big: string; i: number }).big.length, (r.data as { i: number }).i])).toEqual(
        leases.map((l, i) => [l.url, big.length, i]),
      );
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

describe('deleting jobs on KV', () => {
  const client = () => (real ?? new RedisMock()) as unknown as Redis;
  /** Every key under the prefix, with its value (a dump of what is stored). */
  async function dump(redis: Redis, prefix: string): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    for (const key of (await redis.keys(`${prefix}*`)).sort()) {
      const type = await redis.type(key);
      if (type === 'hash') out.set(key, await redis.hgetall(key));
      else if (type === 'list') out.set(key, await redis.lrange(key, 0, -1));
      else if (type === 'zset') out.set(key, await redis.zrange(key, 0, -1, 'WITHSCORES'));
      else if (type === 'set') out.set(key, (await redis.smembers(key)).sort());
      else out.set(key, await redis.get(key));
    }
    return out;
  }
  async function running(storage: CrawlStorage, host: string) {
    const job = jobRecord({ url: `http://${host}/`, options: { perHostConcurrency: 1, maxPages: 10 } });
    await storage.createJob(job, seedOf(job));
    await storage.putRobots(job.id, {
      origin: `http://${host}`,
      status: 'ok',
      rules: [],
      crawlDelayMs: 5,
      httpStatus: 200,
      fetchedAt: new Date(T0).toISOString(),
      expiresAt: T0 + 1e9,
    });
    const [seed] = (await storage.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: job.id })).leases;
    const links = [link('/a', 1, host), link('/b', 1, `other.${host}`), link('/c', 1, host)];
    await storage.complete(seed!, { result: result(seed!), links, now: T0 + 1 });
    const leases = (await storage.claim({ limit: 5, leaseMs: LEASE, now: T0 + 100, jobId: job.id })).leases;
    await storage.retry(leases[0]!, { notBefore: T0 + 10_000, error: { code: 'timeout', message: 't' }, now: T0 + 101 });
    return job;
  }

  test('deleteJob() leaves no key of the job nor any index entry, and changes no key of another job', async () => {
    const redis = client();
    const prefix = freshPrefix();
    const storage = kvStorage({ client: redis as never, prefix, maxEventsPerJob: 20 });
    await running(storage, 'before.test');
    const doomed = await running(storage, 'doomed.test');
    const after = await running(storage, 'after.test');
    await storage.cancelJob(after.id, T0 + 200);
    const others = (stored: Map<string, unknown>) => new Map([...stored].filter(([key]) => !key.includes(doomed.id)));
    const stored = await dump(redis, prefix);
    expect([...stored.keys()].filter((key) => key.includes(`{job:${doomed.id}}`)).length).toBeGreaterThanOrEqual(10);

    const out = await storage.deleteJob!(doomed.id, T0 + 300);
    expect(out.events.map((e) => e.type)).toEqual(['job:cancelled']);
    const left = await dump(redis, prefix);
    expect([...left.keys()].filter((key) => key.includes(doomed.id))).toEqual([]);
    for (const [key, value] of left) {
      if (Array.isArray(value)) expect(value, key).not.toContain(doomed.id);
    }
    // The index's sets lose the job; nothing else changes, key for key.
    const strip = (m: Map<string, unknown>) =>
      new Map(
        [...m].map(([key, value]) => [
          key,
          Array.isArray(value) && key.includes('{index}') ? value.filter((_, i, all) => !(all[i] === doomed.id || all[i - 1] === doomed.id)) : value,
        ]),
      );
    expect(left).toEqual(strip(others(stored)));
  });

  test("deleteJob() removes the job's webhook registration and delivery keys ({webhooks}) and none of another job's; listJobs drops the outbox of a job it finds gone", async () => {
    const redis = client();
    const prefix = freshPrefix();
    const storage = kvStorage({ client: redis as never, prefix, maxEventsPerJob: 20 });
    const withOutbox = async (host: string) => {
      const job = await running(storage, host);
      await storage.addWebhookJob!(job.id, T0);
      const deliveries = [0, 1].map((n) => ({
        id: `${job.id}_${n}`,
        jobId: job.id,
        event: 'page' as const,
        url: 'http://hook.test/',
        payload: `{"n":${n}}`,
        createdAt: T0 + n,
      }));
      expect(await storage.enqueueWebhookDeliveries!(job.id, null, { seq: 2, resultsCursor: null, resultsSkip: 0, sent: [], done: false }, deliveries)).toBe(
        true,
      );
      return job;
    };
    const kept = await withOutbox('kept.test');
    const doomed = await withOutbox('doomed.test');
    const lost = await withOutbox('lost.test');
    // Some deliveries leased, some not: both sets hold members.
    expect(await storage.claimWebhookDeliveries!({ limit: 3, leaseMs: LEASE, now: T0 })).toHaveLength(3);
    const outboxKeys = async () => new Map([...(await dump(redis, prefix))].filter(([key]) => key.includes('{webhooks}')));
    const mentions = (m: Map<string, unknown>, id: string) =>
      [...m].filter(([key, value]) => key.includes(id) || JSON.stringify(value).includes(id)).map(([key]) => key);
    const keptDeliveries = await storage.listWebhookDeliveries!(kept.id, { limit: 10 });
    expect(mentions(await outboxKeys(), doomed.id).length).toBeGreaterThanOrEqual(5);

    await storage.deleteJob!(doomed.id, T0 + 300);
    const left = await outboxKeys();
    expect(mentions(left, doomed.id)).toEqual([]);
    const members = (key: string) => ((left.get(`${prefix}{webhooks}:${key}`) as string[] | undefined) ?? []).filter((_, i) => i % 2 === 0);
    const listed = [...members(`list:${kept.id}`), ...members(`list:${lost.id}`)].sort();
    expect([...members('due'), ...members('leased')].sort()).toEqual(listed);
    expect([...left.keys()].filter((key) => key.includes('{webhooks}:d:'))).toHaveLength(4);
    expect(await storage.listWebhookDeliveries!(kept.id, { limit: 10 })).toEqual(keptDeliveries);

    // Its data gone without the outbox step (a delete whose second script failed, or finishedTtlSeconds).
    await redis.del(jobKeys(prefix, lost.id).job);
    await storage.listJobs({ limit: 100 });
    expect(mentions(await outboxKeys(), lost.id)).toEqual([]);
    expect((await storage.listWebhookJobs!(10)).map((w) => w.jobId)).toEqual([kept.id]);
    expect(await storage.listWebhookDeliveries!(kept.id, { limit: 10 })).toEqual(keptDeliveries);
  });

  test('finished jobs are indexed by finish time; the sweep drops entries of jobs whose data expired and never finds them again', async () => {
    const redis = client();
    const prefix = freshPrefix();
    const storage = kvStorage({ client: redis as never, prefix });
    const finishedKey = `${prefix}{index}:finished`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const job = jobRecord();
      await storage.createJob(job, seedOf(job));
      await storage.cancelJob(job.id, T0 + i);
      ids.push(job.id);
    }
    expect(await redis.zrange(finishedKey, 0, -1, 'WITHSCORES')).toEqual([ids[0], String(T0), ids[1], String(T0 + 1), ids[2], String(T0 + 2)]);
    // The first job's data expired (finishedTtlSeconds): its entry goes, and does not count.
    await redis.del(`${prefix}{job:${ids[0]}}:job`);
    expect(await storage.deleteFinishedJobs!({ finishedBefore: T0 + 2, limit: 1 })).toEqual({ deleted: 0 });
    expect(await storage.deleteFinishedJobs!({ finishedBefore: T0 + 2, limit: 1 })).toEqual({ deleted: 1 });
    expect(await storage.getJob(ids[1]!)).toBeNull();
    expect(await redis.zrange(finishedKey, 0, -1)).toEqual([ids[2]]);
    expect((await storage.listJobs({ limit: 10 })).items.map((j) => j.id)).toEqual([ids[2]]);
  });

  test("createJob writes the job's data before its index entry: a claim or listing in between never finds an entry without data", async () => {
    const { client: redis, calls } = recorded(client());
    const prefix = freshPrefix();
    const storage = kvStorage({ client: redis as never, prefix });
    const job = jobRecord();
    await storage.createJob(job, seedOf(job));
    expect(calls.map((c) => c.replace(/^eval(sha)?:/, ''))).toEqual(['create', 'index-add']);
    // A claim still finds it, and admits it.
    const claimed = await storage.claim({ limit: 5, leaseMs: LEASE, now: T0, maxActiveJobs: 10 });
    expect(claimed.leases.map((l) => l.jobId)).toEqual([job.id]);
  });

  test("a job admitted while its index entry has no data (a delete's second step not yet applied) is requeued, not lost, and goes after 20 tries", async () => {
    const redis = client();
    const prefix = freshPrefix();
    const storage = kvStorage({ client: redis as never, prefix });
    const job = jobRecord();
    const add = S.INDEX_ADD(indexKeys(prefix), job.id);
    await redis.eval(add.lua, add.keys.length, ...add.keys, job.id, 0);
    expect((await storage.claim({ limit: 5, leaseMs: LEASE, now: T0, maxActiveJobs: 10 })).leases).toEqual([]);
    expect(await redis.zrange(`${prefix}{index}:line`, 0, -1)).toEqual([job.id]);
    for (let i = 0; i < 20; i++) await storage.claim({ limit: 5, leaseMs: LEASE, now: T0 + 1 + i, maxActiveJobs: 10 });
    expect(await redis.zrange(`${prefix}{index}:line`, 0, -1)).toEqual([]);
    expect(await redis.zrange(`${prefix}{index}:jobs`, 0, -1)).toEqual([]);
  });

  test('a finish applied to the index after the job was deleted (its second round trip arriving late) adds no entry', async () => {
    const redis = client();
    const prefix = freshPrefix();
    const storage = kvStorage({ client: redis as never, prefix });
    const job = jobRecord();
    await storage.createJob(job, seedOf(job));
    await storage.deleteJob!(job.id, T0);
    const apply = S.INDEX_APPLY(indexKeys(prefix));
    await redis.eval(apply.lua, apply.keys.length, ...apply.keys, 'finish', job.id, 0, T0 + 1, 0);
    expect(await redis.zrange(`${prefix}{index}:finished`, 0, -1)).toEqual([]);
    const kept = jobRecord();
    await storage.createJob(kept, seedOf(kept));
    await redis.eval(apply.lua, apply.keys.length, ...apply.keys, 'finish', kept.id, 0, T0 + 2, 0);
    expect(await redis.zrange(`${prefix}{index}:finished`, 0, -1)).toEqual([kept.id]);
  });
});

describe('lastmod in KV URL entries', () => {
  test("a link's lastmod is stored in its entry as dp~n and the lastmod before the url; an entry of the previous form reads as before", async () => {
    const redis = new RedisMock();
    const prefix = freshPrefix();
    const storage = kvStorage({ client: redis as never, prefix });
    const job = makeJob();
    await storage.createJob(job, seedOf(job));
    const [seed] = (await storage.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: job.id })).leases;
    const lastmod = '2030-01-02|~é';
    const dated: FrontierLink = { ...link('/a|b'), robots: 'allowed', lastmod };
    await storage.complete(seed!, { result: result(seed!), links: [dated, { ...link('/plain'), robots: 'allowed' }], now: T0 + 1 });
    const { urls } = jobKeys(prefix, job.id);
    const bytes = Buffer.byteLength(lastmod);
    expect(await redis.hget(urls, dated.key)).toBe(`p||0|0|0|1~${bytes}|example.test|${lastmod}${dated.url}`);
    expect(await redis.hget(urls, link('/plain').key)).toBe(`p||0|0|0|1|example.test|${link('/plain').url}`);
    // An entry written before lastmod existed, as that version wrote it.
    const old = link('/old', 2);
    await redis.hset(urls, old.key, `p||0|0|0|2|example.test|${old.url}`);
    await redis.rpush(`${jobKeys(prefix, job.id).readyPrefix}example.test`, old.key);
    const leases = (await storage.claim({ limit: 10, leaseMs: LEASE, now: T0 + 2, jobId: job.id })).leases;
    const byKey = new Map(leases.map((l) => [l.key, l]));
    expect(byKey.get(dated.key)).toMatchObject({ url: dated.url, depth: 1, host: 'example.test', lastmod });
    expect(byKey.get(link('/plain').key)).not.toHaveProperty('lastmod');
    expect(byKey.get(old.key)).toMatchObject({ url: old.url, depth: 2, host: 'example.test' });
    expect(byKey.get(old.key)).not.toHaveProperty('lastmod');
    // Leased, the entry keeps its lastmod (state, token and lease end change around it).
    const stored = await redis.hget(urls, dated.key);
    expect(stored).toMatch(new RegExp(`^l\\|[^|]+\\|1\\|${T0 + 2 + LEASE}\\|0\\|1~${bytes}\\|example\\.test\\|`));
    expect(stored!.endsWith(`|${lastmod}${dated.url}`)).toBe(true);
  });
});
