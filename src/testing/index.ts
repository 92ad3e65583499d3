/**
 * `runStorageConformance`: one suite that every `CrawlStorage` adapter must pass, the built-in
 * ones and third-party ones alike. It takes the test function of your runner (vitest, jest,
 * node:test, mocha) and asserts with `node:assert`, so it depends on no test framework.
 *
 * @module crawl-engine/testing
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { CrawlStorage, FrontierLink, Lease, SkippedLink } from '../core/storage.js';
import type { Job, JobOptions, PageResult } from '../core/types.js';

/** A runner's `test(name, fn, timeout?)`. */
export type ConformanceTestFn = (name: string, fn: () => Promise<void>, timeout?: number) => unknown;
/** A runner's `describe(name, fn)`; optional. */
export type ConformanceDescribeFn = (name: string, fn: () => void) => unknown;

export interface ConformanceOptions {
  /** Shown in test names: `storage conformance (postgres)`. */
  name: string;
  /** Makes a fresh, empty (or at least isolated) storage for each test. */
  storage: () => CrawlStorage | Promise<CrawlStorage>;
  /** Your runner's test function. @default globalThis.test ?? globalThis.it */
  test?: ConformanceTestFn;
  /** Your runner's describe function. @default globalThis.describe, else no grouping */
  describe?: ConformanceDescribeFn;
  /** Called after each test with the storage it used (close connections here). */
  teardown?: (storage: CrawlStorage) => unknown;
  /** Names (or parts of names) of tests to skip. */
  skip?: string[];
  /**
   * The per-job event limit the factory's storage was configured with; enables the trimming test.
   */
  eventLimit?: number;
  /** Per-test timeout passed to `test`. @default 30000 */
  timeoutMs?: number;
}

const T0 = Date.UTC(2030, 0, 1);
const LEASE = 30_000;

function jobId(): string {
  return `job_conf_${randomBytes(8).toString('hex')}`;
}

/**
 * A job record as `jobs.create()` would store it (queued, counts of a job with its start URL
 * admitted), for tests that call a storage adapter directly. Options default to those below.
 */
export function jobRecord(overrides: Partial<Omit<Job, 'options'>> & { options?: Partial<JobOptions> } = {}): Job {
  const { options, ...rest } = overrides;
  return {
    id: jobId(),
    status: 'queued',
    url: 'http://example.test/',
    counts: { discovered: 1, queued: 1, inProgress: 0, succeeded: 0, failed: 0, skipped: 0 },
    createdAt: new Date().toISOString(),
    startedAt: null,
    finishedAt: null,
    error: null,
    metadata: {},
    ...rest,
    options: {
      maxPages: 100,
      maxDepth: 5,
      scope: 'same-hostname',
      include: [],
      exclude: [],
      respectRobots: true,
      maxRetries: 2,
      perHostConcurrency: 100,
      perHostDelayMs: 0,
      ...options,
    },
  };
}

function makeJob(options: Partial<JobOptions> = {}, id = jobId()): Job {
  return jobRecord({ id, options, createdAt: new Date(T0).toISOString(), metadata: { suite: 'conformance' } });
}

const link = (path: string, depth = 1, host = 'example.test'): FrontierLink => {
  const url = `http://${host}${path}`;
  return { url, key: url, depth, host };
};

const seedOf = (job: Job): FrontierLink => ({ url: job.url, key: job.url, depth: 0, host: new URL(job.url).hostname });

/** A link whose robots.txt the processor knew to allow it. */
const allowed = (found: FrontierLink): FrontierLink => ({ ...found, robots: 'allowed' });
/** A link whose robots.txt was not known when it was found. */
const unknown = (found: FrontierLink): FrontierLink => ({ ...found, robots: 'unknown' });

function robotsResult(url: string, depth: number, attempts: number): PageResult {
  return {
    url,
    finalUrl: url,
    depth,
    status: null,
    ok: false,
    contentType: null,
    title: null,
    description: null,
    canonical: null,
    links: 0,
    wordCount: 0,
    error: { code: 'robots', message: 'disallowed by robots.txt (Disallow: /)' },
    attempts,
    durationMs: 0,
    fetchedAt: new Date(T0).toISOString(),
    data: null,
  };
}

/** A link robots.txt disallows, as the processor hands it to complete(). */
const disallowed = (found: FrontierLink): SkippedLink => ({ link: found, result: robotsResult(found.url, found.depth, 0) });

function result(lease: Lease, ok = true): PageResult {
  return {
    url: lease.url,
    finalUrl: lease.url,
    depth: lease.depth,
    status: ok ? 200 : 404,
    ok,
    contentType: 'text/html',
    title: `title of ${lease.url}`,
    description: null,
    canonical: null,
    links: 0,
    wordCount: 3,
    error: ok ? null : { code: 'http_error', message: 'HTTP 404' },
    attempts: lease.attempts,
    durationMs: 1,
    fetchedAt: new Date(T0).toISOString(),
    data: { n: 1 },
  };
}

function assertCountsAddUp(job: Job | null): void {
  assert.ok(job, 'job exists');
  const c = job.counts;
  assert.equal(c.queued + c.inProgress + c.succeeded + c.failed + c.skipped, c.discovered, `counts add up: ${JSON.stringify(c)}`);
}

async function seeded(storage: CrawlStorage, options: Partial<JobOptions> = {}, links: FrontierLink[] = []) {
  const job = makeJob(options);
  await storage.createJob(job, seedOf(job));
  const { leases } = await storage.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: job.id });
  assert.equal(leases.length, 1, 'the seed is claimable');
  const done = await storage.complete(leases[0]!, { result: result(leases[0]!), links, now: T0 });
  assert.equal(done.ok, true);
  return job;
}

/** Registers the conformance tests with your runner. */
export function runStorageConformance(options: ConformanceOptions): void {
  const g = globalThis as { test?: ConformanceTestFn; it?: ConformanceTestFn; describe?: ConformanceDescribeFn };
  const test = options.test ?? g.test ?? g.it;
  if (typeof test !== 'function') {
    throw new TypeError("[crawl-engine] runStorageConformance: pass your runner's test function, e.g. `import { test } from 'vitest'`");
  }
  const describe = options.describe ?? g.describe ?? ((_: string, fn: () => void) => fn());
  const timeout = options.timeoutMs ?? 30_000;
  const skip = options.skip ?? [];

  const it = (name: string, body: (storage: CrawlStorage) => Promise<void>) => {
    if (skip.some((s) => name.includes(s))) return;
    test(
      name,
      async () => {
        const storage = await options.storage();
        try {
          await body(storage);
        } finally {
          await options.teardown?.(storage);
        }
      },
      timeout,
    );
  };

  describe(`storage conformance (${options.name})`, () => {
    it('createJob() stores the job and its start URL together', async (s) => {
      const job = makeJob();
      const created = await s.createJob(job, seedOf(job));
      assert.equal(created.job.id, job.id);
      assert.deepEqual(
        created.events.map((e) => e.type),
        ['job:created'],
      );
      const stored = await s.getJob(job.id);
      assert.ok(stored);
      assert.equal(stored.status, 'queued');
      assert.deepEqual(stored.options, job.options);
      assert.deepEqual(stored.metadata, { suite: 'conformance' });
      assert.deepEqual(stored.counts, { discovered: 1, queued: 1, inProgress: 0, succeeded: 0, failed: 0, skipped: 0 });
      const { leases } = await s.claim({ limit: 10, leaseMs: LEASE, now: T0, jobId: job.id });
      assert.deepEqual(
        leases.map((l) => [l.url, l.depth]),
        [[job.url, 0]],
      );
      assert.equal(await s.getJob('job_conf_missing'), null);
    });

    it('claim() hands out a fresh lease token, counts the attempt and marks the job running once', async (s) => {
      const job = makeJob();
      await s.createJob(job, seedOf(job));
      const first = await s.claim({ limit: 5, leaseMs: LEASE, now: T0, jobId: job.id });
      assert.equal(first.leases.length, 1);
      const [lease] = first.leases;
      assert.equal(lease!.attempts, 1);
      assert.equal(lease!.expiresAt, T0 + LEASE);
      assert.equal(typeof lease!.token, 'string');
      assert.ok(lease!.token.length > 0);
      assert.deepEqual(
        first.events.map((e) => e.type),
        ['job:started'],
      );
      const stored = await s.getJob(job.id);
      assert.equal(stored?.status, 'running');
      assert.equal(stored?.startedAt, new Date(T0).toISOString());
      assert.deepEqual(stored?.counts, { discovered: 1, queued: 0, inProgress: 1, succeeded: 0, failed: 0, skipped: 0 });
      const second = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 1, jobId: job.id });
      assert.equal(second.leases.length, 0, 'a live lease is not handed out again');
      assert.equal(second.events.length, 0);
    });

    it('claim() never hands one URL to two processors, even when claims race', async (s) => {
      const links = Array.from({ length: 40 }, (_, i) => link(`/p${i}`));
      const job = await seeded(s, {}, links);
      const batches = await Promise.all(Array.from({ length: 12 }, () => s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 1, jobId: job.id })));
      const keys = batches.flatMap((b) => b.leases.map((l) => l.key));
      assert.equal(new Set(keys).size, keys.length, 'no key twice');
      assert.equal(keys.length, 40, 'every ready URL claimed once');
      assertCountsAddUp(await s.getJob(job.id));
    });

    it('claim() skips URLs whose not-before time has not come', async (s) => {
      const job = await seeded(s, {}, [link('/a')]);
      const { leases } = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 1, jobId: job.id });
      assert.equal(leases.length, 1);
      assert.equal(await s.retry(leases[0]!, { notBefore: T0 + 10_000, error: { code: 'timeout', message: 't' }, now: T0 + 2 }), true);
      assert.equal((await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 9_999, jobId: job.id })).leases.length, 0);
      const later = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 10_000, jobId: job.id });
      assert.equal(later.leases.length, 1);
      assert.equal(later.leases[0]!.attempts, 2, 'the retry counted an attempt');
    });

    it('a claim with a clock behind the last one (a skewed or delayed processor) loses no URL', async (s) => {
      const job = await seeded(s, { perHostConcurrency: 2 }, [link('/a'), link('/b'), link('/c')]);
      const first = (await s.claim({ limit: 2, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      assert.equal(first.length, 2);
      const [held, retried] = first as [Lease, Lease];
      assert.equal(await s.retry(retried, { notBefore: T0 + 100, error: { code: 'timeout', message: 't' }, now: T0 + 2 }), true);
      const [third] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases;
      assert.ok(third, 'the free slot goes to the third URL');
      // The backoff is over by this claim's clock, but the host is full: the URL waits, ready.
      assert.equal((await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 200, jobId: job.id })).leases.length, 0);
      await s.complete(held, { result: result(held), links: [], now: T0 + 201 });
      // A processor whose clock is behind (or whose claim was delayed in transit) claims next.
      const skewed = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 50, jobId: job.id });
      const later = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 1000, jobId: job.id });
      const keys = [...skewed.leases, ...later.leases].map((l) => l.key);
      assert.deepEqual(keys, [retried.key], 'the retried URL is still claimable');
      assertCountsAddUp(await s.getJob(job.id));
    });

    it('claim() re-claims a URL whose lease expired, with a new token', async (s) => {
      const job = makeJob();
      await s.createJob(job, seedOf(job));
      const [first] = (await s.claim({ limit: 1, leaseMs: 1000, now: T0, jobId: job.id })).leases;
      assert.equal((await s.claim({ limit: 1, leaseMs: 1000, now: T0 + 999, jobId: job.id })).leases.length, 0);
      const [second] = (await s.claim({ limit: 1, leaseMs: 1000, now: T0 + 1000, jobId: job.id })).leases;
      assert.ok(first && second);
      assert.equal(second.key, first.key);
      assert.notEqual(second.token, first.token);
      assert.equal(second.attempts, 2);
      assertCountsAddUp(await s.getJob(job.id));
      assert.equal((await s.getJob(job.id))?.counts.inProgress, 1);
    });

    it('complete() refuses a stale lease after the URL was re-claimed, and accepts the current one', async (s) => {
      const job = makeJob();
      await s.createJob(job, seedOf(job));
      const [stale] = (await s.claim({ limit: 1, leaseMs: 1000, now: T0, jobId: job.id })).leases;
      const [fresh] = (await s.claim({ limit: 1, leaseMs: 1000, now: T0 + 5000, jobId: job.id })).leases;
      const refused = await s.complete(stale!, { result: result(stale!), links: [link('/x')], skipped: [disallowed(link('/s'))], now: T0 + 5001 });
      assert.deepEqual(refused, { ok: false, admitted: 0, events: [] });
      assert.equal((await s.listResults(job.id, { limit: 10 })).items.length, 0);
      assert.equal(await s.retry(stale!, { notBefore: T0, error: { code: 'x', message: 'x' }, now: T0 }), false);
      assert.equal(await s.release([stale!]), 0);
      const accepted = await s.complete(fresh!, { result: result(fresh!), links: [link('/x')], now: T0 + 5002 });
      assert.equal(accepted.ok, true);
      assert.equal(accepted.admitted, 1);
      const after = await s.getJob(job.id);
      assert.deepEqual(after?.counts, { discovered: 2, queued: 1, inProgress: 0, succeeded: 1, failed: 0, skipped: 0 });
    });

    it('complete() stores the result exactly once and refuses the same lease twice', async (s) => {
      const job = makeJob();
      await s.createJob(job, seedOf(job));
      const [lease] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: job.id })).leases;
      const [a, b] = await Promise.all([
        s.complete(lease!, { result: result(lease!), links: [link('/a')], now: T0 + 1 }),
        s.complete(lease!, { result: result(lease!), links: [link('/b')], now: T0 + 1 }),
      ]);
      assert.equal([a, b].filter((r) => r.ok).length, 1, 'exactly one complete wins');
      const results = await s.listResults(job.id, { limit: 10 });
      assert.equal(results.items.length, 1);
      assert.deepEqual(results.items[0], result(lease!));
      assert.equal((await s.getJob(job.id))?.counts.discovered, 2);
    });

    it('complete() admits new links deduplicated by key, within one call and across calls', async (s) => {
      const job = await seeded(s, {}, [link('/a'), link('/a'), link('/b')]);
      assert.equal((await s.getJob(job.id))?.counts.discovered, 3);
      const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      assert.deepEqual(leases.map((l) => l.key).sort(), [link('/a').key, link('/b').key]);
      const done = await s.complete(leases[0]!, {
        result: result(leases[0]!),
        links: [link('/a', 2), link('/b', 2), link('/', 2), link('/c', 2)],
        now: T0 + 2,
      });
      assert.equal(done.admitted, 1, 'only /c is new');
      const next = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases;
      assert.deepEqual(
        next.map((l) => [l.key, l.depth]),
        [[link('/c').key, 2]],
      );
      assertCountsAddUp(await s.getJob(job.id));
    });

    it('complete() never admits more than maxPages URLs, even under concurrent calls', async (s) => {
      const job = await seeded(s, { maxPages: 10 }, [link('/a'), link('/b'), link('/c')]);
      const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      assert.equal(leases.length, 3);
      const outcomes = await Promise.all(
        leases.map((lease, i) =>
          s.complete(lease, { result: result(lease), links: Array.from({ length: 10 }, (_, j) => link(`/n${i * 5 + j}`, 2)), now: T0 + 2 }),
        ),
      );
      assert.equal(
        outcomes.reduce((sum, o) => sum + o.admitted, 0),
        6,
      );
      const after = await s.getJob(job.id);
      assert.equal(after?.counts.discovered, 10);
      assertCountsAddUp(after);
      const rest = (await s.claim({ limit: 50, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases;
      assert.equal(rest.length, 6);
      assert.equal(new Set(rest.map((l) => l.key)).size, 6);
    });

    it('complete() records skipped links (robots.txt disallows them) at once, past maxPages and without a charge, at most maxPages of them', async (s) => {
      const job = makeJob({ maxPages: 3 });
      await s.createJob(job, seedOf(job));
      const [seed] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: job.id })).leases;
      const done = await s.complete(seed!, {
        result: result(seed!),
        links: [link('/a'), link('/b'), link('/c')].map(allowed),
        skipped: [link('/x1'), link('/x2'), link('/x1'), link('/a')].map(disallowed),
        now: T0 + 1,
      });
      assert.equal(done.admitted, 2, 'the links fill maxPages');
      assert.deepEqual(
        done.events.map((e) => [e.type, e.url]),
        [
          ['page:done', job.url],
          ['page:skipped', link('/x1').url],
          ['page:skipped', link('/x2').url],
        ],
        'each new skipped link is recorded once, after the page; one already admitted is not',
      );
      assert.deepEqual(done.events[1]!.error, { code: 'robots', message: 'disallowed by robots.txt (Disallow: /)' });
      assert.deepEqual(done.events[2]!.counts, { discovered: 5, queued: 2, inProgress: 0, succeeded: 1, failed: 0, skipped: 2 });
      assert.deepEqual((await s.getJob(job.id))?.counts, { discovered: 5, queued: 2, inProgress: 0, succeeded: 1, failed: 0, skipped: 2 });
      assert.deepEqual((await s.listResults(job.id, { limit: 10 })).items, [result(seed!), disallowed(link('/x1')).result, disallowed(link('/x2')).result]);
      const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 2, jobId: job.id })).leases;
      assert.deepEqual(leases.map((l) => l.key).sort(), [link('/a').key, link('/b').key], 'skipped links are never claimed');
      // At most maxPages skipped links are recorded; past that they are dropped.
      const more = await s.complete(leases[0]!, {
        result: result(leases[0]!),
        links: [],
        skipped: [link('/x2'), link('/x3'), link('/x4')].map(disallowed),
        now: T0 + 3,
      });
      assert.deepEqual(
        more.events.map((e) => [e.type, e.url]),
        [
          ['page:done', leases[0]!.url],
          ['page:skipped', link('/x3').url],
        ],
      );
      const last = await s.complete(leases[1]!, { result: result(leases[1]!), links: [], skipped: [disallowed(link('/x5'))], now: T0 + 4 });
      assert.deepEqual(
        last.events.map((e) => e.type),
        ['page:done', 'job:completed'],
      );
      const after = await s.getJob(job.id);
      assert.equal(after?.status, 'completed');
      assert.deepEqual(after?.counts, { discovered: 6, queued: 0, inProgress: 0, succeeded: 3, failed: 0, skipped: 3 });
      assert.equal((await s.listResults(job.id, { limit: 10 })).items.length, 6);
    });

    it('a URL skipped for robots.txt after it was admitted gives its charge back, so a later link is admitted', async (s) => {
      // Their robots.txt was known to allow them: no spare is kept.
      const job = await seeded(s, { maxPages: 3 }, [link('/a'), link('/b'), link('/c')].map(allowed));
      const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      assert.deepEqual(leases.map((l) => l.key).sort(), [link('/a').key, link('/b').key]);
      const [a, b] = [leases.find((l) => l.key === link('/a').key)!, leases.find((l) => l.key === link('/b').key)!];
      // The rules learned after admission disallow /a.
      const skipped = await s.complete(a, { result: robotsResult(a.url, a.depth, a.attempts), links: [], now: T0 + 2 });
      assert.deepEqual(
        skipped.events.map((e) => e.type),
        ['page:skipped'],
      );
      assert.equal((await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases.length, 0, 'nothing stands in for it yet');
      const done = await s.complete(b, { result: result(b), links: [link('/c', 2), link('/d', 2)].map(allowed), now: T0 + 4 });
      assert.equal(done.admitted, 1, 'the refunded charge admits one link');
      const [c] = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 5, jobId: job.id })).leases;
      assert.equal(c?.key, link('/c').key);
      const end = await s.complete(c!, { result: result(c!), links: [link('/e', 3)].map(allowed), now: T0 + 6 });
      assert.equal(end.admitted, 0, 'maxPages pages fetched: no more room');
      const after = await s.getJob(job.id);
      assert.equal(after?.status, 'completed');
      assert.deepEqual(after?.counts, { discovered: 4, queued: 0, inProgress: 0, succeeded: 3, failed: 0, skipped: 1 });
    });

    it('a refunded charge goes to the oldest spare: links kept past maxPages while URLs of unknown robots.txt are unfinished', async (s) => {
      const job = await seeded(s, { maxPages: 3 }, [link('/a'), link('/b'), link('/c'), link('/d'), link('/e')].map(unknown));
      // Two URLs of unknown robots.txt are unfinished: two spares (/c, /d), not claimable, not counted.
      assert.deepEqual((await s.getJob(job.id))?.counts, { discovered: 3, queued: 2, inProgress: 0, succeeded: 1, failed: 0, skipped: 0 });
      const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      assert.deepEqual(leases.map((l) => l.key).sort(), [link('/a').key, link('/b').key]);
      const byKey = (path: string) => leases.find((l) => l.key === link(path).key)!;
      await s.complete(byKey('/a'), { result: robotsResult(byKey('/a').url, 1, 1), links: [], now: T0 + 2 });
      const [c] = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases;
      assert.equal(c?.key, link('/c').key, 'the oldest spare is admitted in place of the refunded URL, at once');
      await s.complete(byKey('/b'), { result: robotsResult(byKey('/b').url, 1, 1), links: [], now: T0 + 4 });
      const [d] = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 5, jobId: job.id })).leases;
      assert.equal(d?.key, link('/d').key);
      assert.deepEqual((await s.getJob(job.id))?.counts, { discovered: 5, queued: 0, inProgress: 2, succeeded: 1, failed: 0, skipped: 2 });
      await s.complete(c!, { result: result(c!), links: [unknown(link('/e'))], now: T0 + 6 });
      const done = await s.complete(d!, { result: result(d!), links: [], now: T0 + 7 });
      assert.deepEqual(
        done.events.map((e) => e.type),
        ['page:done', 'job:completed'],
      );
      const after = await s.getJob(job.id);
      assert.deepEqual(after?.counts, { discovered: 5, queued: 0, inProgress: 0, succeeded: 3, failed: 0, skipped: 2 }, 'maxPages pages fetched');
      const urls = (await s.listResults(job.id, { limit: 10 })).items.map((r) => r.url);
      assert.ok(!urls.includes(link('/e').url), 'a link past maxPages and past the spares is dropped');
    });

    it('maxPages holds under concurrent complete() calls that refund charges, admit spares and record skipped links', async (s) => {
      const first = Array.from({ length: 9 }, (_, i) => unknown(link(`/p${i}`)));
      const spares = Array.from({ length: 9 }, (_, i) => unknown(link(`/q${i}`)));
      const job = await seeded(s, { maxPages: 10 }, [...first, ...spares]);
      const leases = (await s.claim({ limit: 20, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      assert.deepEqual(leases.map((l) => l.key).sort(), first.map((l) => l.key).sort());
      const outcomes = await Promise.all(
        leases.map((lease, i) =>
          i < 4
            ? s.complete(lease, { result: robotsResult(lease.url, 1, 1), links: [], now: T0 + 2 })
            : s.complete(lease, {
                result: result(lease),
                links: Array.from({ length: 5 }, (_, j) => unknown(link(`/n${i}_${j}`, 2))),
                skipped: Array.from({ length: 3 }, (_, j) => disallowed(link(`/s${i}_${j}`, 2))),
                now: T0 + 2,
              }),
        ),
      );
      assert.ok(outcomes.every((o) => o.ok));
      assert.equal(
        outcomes.reduce((sum, o) => sum + o.admitted, 0),
        0,
        'no room for new links: the refunds went to spares',
      );
      const after = await s.getJob(job.id);
      assertCountsAddUp(after);
      const c = after!.counts;
      assert.equal(c.succeeded + c.failed + c.queued + c.inProgress, 10, `fetched or to be fetched: exactly maxPages (${JSON.stringify(c)})`);
      assert.equal(c.skipped, 4 + 10, 'four refunded, and maxPages skipped links recorded of the fifteen');
      const log = await s.readEvents(job.id, null, 1000);
      assert.equal(log.filter((e) => e.type === 'page:skipped').length, 14);
      const rest = (await s.claim({ limit: 50, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases;
      assert.deepEqual(
        rest.map((l) => l.key).sort(),
        spares
          .slice(0, 4)
          .map((l) => l.key)
          .sort(),
        'the four oldest spares, once each',
      );
      for (const lease of rest) await s.complete(lease, { result: result(lease), links: [], now: T0 + 4 });
      const end = await s.getJob(job.id);
      assert.equal(end?.status, 'completed');
      assert.deepEqual(end?.counts, { discovered: 24, queued: 0, inProgress: 0, succeeded: 10, failed: 0, skipped: 14 });
    });

    it('a job completes exactly once when concurrent completes finish its last URLs', async (s) => {
      const job = await seeded(
        s,
        {},
        Array.from({ length: 8 }, (_, i) => link(`/last${i}`)),
      );
      const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      const outcomes = await Promise.all(leases.map((lease, i) => s.complete(lease, { result: result(lease, i % 3 !== 0), links: [], now: T0 + 2 })));
      const completions = outcomes.flatMap((o) => o.events).filter((e) => e.type === 'job:completed');
      assert.equal(completions.length, 1, 'one job:completed event');
      const after = await s.getJob(job.id);
      assert.equal(after?.status, 'completed');
      assert.equal(after?.finishedAt, new Date(T0 + 2).toISOString());
      assert.deepEqual(after?.counts, { discovered: 9, queued: 0, inProgress: 0, succeeded: 6, failed: 3, skipped: 0 });
      const log = await s.readEvents(job.id, null, 1000);
      assert.equal(log.filter((e) => e.type === 'job:completed').length, 1);
      assert.equal(log[log.length - 1]!.type, 'job:completed');
      assert.equal((await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + LEASE * 10, jobId: job.id })).leases.length, 0);
    });

    it('a job whose every page failed ends as failed with the first error', async (s) => {
      const job = makeJob();
      await s.createJob(job, seedOf(job));
      const [lease] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: job.id })).leases;
      const done = await s.complete(lease!, { result: result(lease!, false), links: [], now: T0 + 1 });
      assert.deepEqual(
        done.events.map((e) => e.type),
        ['page:failed', 'job:failed'],
      );
      const after = await s.getJob(job.id);
      assert.equal(after?.status, 'failed');
      assert.deepEqual(after?.error, { code: 'http_error', message: 'HTTP 404' });
    });

    it('retry() puts the URL back as queued with a not-before time, and refuses a stale lease', async (s) => {
      const job = makeJob();
      await s.createJob(job, seedOf(job));
      const [lease] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: job.id })).leases;
      assert.equal(await s.retry(lease!, { notBefore: T0 + 500, error: { code: 'http_error', message: 'HTTP 503' }, now: T0 + 1 }), true);
      assert.deepEqual((await s.getJob(job.id))?.counts, { discovered: 1, queued: 1, inProgress: 0, succeeded: 0, failed: 0, skipped: 0 });
      assert.equal(await s.retry(lease!, { notBefore: T0 + 500, error: { code: 'x', message: 'x' }, now: T0 + 1 }), false);
      assert.equal((await s.complete(lease!, { result: result(lease!), links: [], now: T0 + 2 })).ok, false);
      assert.equal((await s.getJob(job.id))?.status, 'running', 'a job waiting on a retry is not finished');
    });

    it('release() returns unstarted claims at once without counting an attempt', async (s) => {
      const job = await seeded(s, {}, [link('/a'), link('/b'), link('/c')]);
      const leases = (await s.claim({ limit: 3, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      assert.equal(await s.release(leases.slice(0, 2)), 2);
      assert.equal(await s.release(leases.slice(0, 2)), 0, 'a second release is a no-op');
      assert.deepEqual((await s.getJob(job.id))?.counts, { discovered: 4, queued: 2, inProgress: 1, succeeded: 1, failed: 0, skipped: 0 });
      const again = (await s.claim({ limit: 3, leaseMs: LEASE, now: T0 + 2, jobId: job.id })).leases;
      assert.deepEqual(
        again.map((l) => l.key).sort(),
        leases
          .slice(0, 2)
          .map((l) => l.key)
          .sort(),
      );
      assert.deepEqual(
        again.map((l) => l.attempts),
        [1, 1],
      );
    });

    it('cancelJob() stops a job: nothing is claimed again, live leases are refused, and it is idempotent', async (s) => {
      const job = await seeded(s, {}, [link('/a'), link('/b'), link('/c')]);
      const [lease] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      const cancelled = await s.cancelJob(job.id, T0 + 2);
      assert.equal(cancelled.job?.status, 'cancelled');
      assert.equal(cancelled.job?.finishedAt, new Date(T0 + 2).toISOString());
      assert.deepEqual(
        cancelled.events.map((e) => e.type),
        ['job:cancelled'],
      );
      assert.equal(cancelled.job?.counts.queued, 0);
      assert.equal(cancelled.job?.counts.inProgress, 0);
      assert.equal((await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + LEASE * 10 })).leases.filter((l) => l.jobId === job.id).length, 0);
      assert.equal((await s.complete(lease!, { result: result(lease!), links: [link('/new')], now: T0 + 3 })).ok, false);
      const again = await s.cancelJob(job.id, T0 + 4);
      assert.equal(again.job?.status, 'cancelled');
      assert.equal(again.events.length, 0);
      assert.equal(again.job?.finishedAt, new Date(T0 + 2).toISOString());
      assert.equal((await s.readEvents(job.id, null, 100)).filter((e) => e.type === 'job:cancelled').length, 1);
      assert.deepEqual(await s.cancelJob('job_conf_missing', T0), { job: null, events: [] });
    });

    it('cancelJob() leaves a finished job as it was', async (s) => {
      const job = await seeded(s);
      const { job: after, events } = await s.cancelJob(job.id, T0 + 5);
      assert.equal(after?.status, 'completed');
      assert.equal(events.length, 0);
    });

    it('claim() keeps at most perHostConcurrency URLs of one host in flight', async (s) => {
      const links = [...Array.from({ length: 6 }, (_, i) => link(`/a${i}`, 1, 'a.test')), ...Array.from({ length: 6 }, (_, i) => link(`/b${i}`, 1, 'b.test'))];
      const job = await seeded(s, { perHostConcurrency: 2 }, links);
      const first = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      const perHost = (leases: Lease[]) => {
        const counts: Record<string, number> = {};
        for (const l of leases) counts[l.host] = (counts[l.host] ?? 0) + 1;
        return counts;
      };
      assert.deepEqual(perHost(first), { 'a.test': 2, 'b.test': 2 });
      assert.equal((await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 2, jobId: job.id })).leases.length, 0, 'both hosts are full');
      const a = first.find((l) => l.host === 'a.test')!;
      await s.complete(a, { result: result(a), links: [], now: T0 + 3 });
      const b = first.find((l) => l.host === 'b.test')!;
      assert.equal(await s.release([b]), 1);
      const next = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 4, jobId: job.id })).leases;
      assert.deepEqual(perHost(next), { 'a.test': 1, 'b.test': 1 });
      assert.equal(next.find((l) => l.host === 'b.test')!.key, b.key, 'a released URL is handed out first');
    });

    it('a host with a delay gets one request at a time, the next only after the delay since the last ended', async (s) => {
      const job = await seeded(
        s,
        { perHostConcurrency: 5, perHostDelayMs: 1000 },
        Array.from({ length: 4 }, (_, i) => link(`/d${i}`)),
      );
      // The seed finished at T0, so the host is free again at T0 + 1000.
      const blocked = await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 999, jobId: job.id });
      assert.equal(blocked.leases.length, 0);
      assert.equal(blocked.nextReadyAt, T0 + 1000, 'nextReadyAt says when the host is free again');
      const [one, ...rest] = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1000, jobId: job.id })).leases;
      assert.ok(one);
      assert.equal(rest.length, 0, 'one at a time');
      await s.complete(one, { result: result(one), links: [], now: T0 + 1500 });
      assert.equal((await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 2499, jobId: job.id })).leases.length, 0);
      const [two] = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 2500, jobId: job.id })).leases;
      assert.ok(two);
      assert.equal(await s.retry(two, { notBefore: T0 + 2600, error: { code: 'timeout', message: 't' }, now: T0 + 2700 }), true);
      assert.equal((await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 3699, jobId: job.id })).leases.length, 0, 'a retry also starts the delay');
      assert.equal((await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 3700, jobId: job.id })).leases.length, 1);
    });

    it('claim() reports when a retry backoff ends in nextReadyAt', async (s) => {
      const job = await seeded(s, {}, [link('/r')]);
      const [lease] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      await s.retry(lease!, { notBefore: T0 + 5000, error: { code: 'timeout', message: 't' }, now: T0 + 2 });
      const claimed = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 3, jobId: job.id });
      assert.equal(claimed.leases.length, 0);
      assert.equal(claimed.nextReadyAt, T0 + 5000);
    });

    it("putRobots() stores a job's robots.txt record and its Crawl-delay throttles that host", async (s) => {
      const job = await seeded(
        s,
        { perHostConcurrency: 4 },
        Array.from({ length: 4 }, (_, i) => link(`/c${i}`)),
      );
      const record = {
        origin: 'http://example.test',
        status: 'ok' as const,
        rules: [{ allow: false, pattern: '/private' }],
        crawlDelayMs: 2000,
        httpStatus: 200,
        fetchedAt: new Date(T0).toISOString(),
        expiresAt: T0 + 86_400_000,
      };
      assert.equal(await s.getRobots(job.id, record.origin), null);
      await s.putRobots(job.id, record);
      assert.deepEqual(await s.getRobots(job.id, record.origin), record);
      assert.equal(await s.getRobots(job.id, 'http://other.test'), null);
      const first = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      assert.equal(first.length, 1, 'the crawl delay allows one request at a time');
      await s.complete(first[0]!, { result: result(first[0]!), links: [], now: T0 + 10 });
      assert.equal((await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 2009, jobId: job.id })).leases.length, 0);
      assert.equal((await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 2010, jobId: job.id })).leases.length, 1);
    });

    it('a page skipped for robots.txt counts as skipped, not failed', async (s) => {
      const job = await seeded(s, {}, [link('/private')]);
      const [lease] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      const skipped = { ...result(lease!, false), status: null, error: { code: 'robots', message: 'disallowed by robots.txt' } };
      const done = await s.complete(lease!, { result: skipped, links: [], now: T0 + 2 });
      assert.deepEqual(
        done.events.map((e) => e.type),
        ['page:skipped', 'job:completed'],
      );
      const after = await s.getJob(job.id);
      assert.deepEqual(after?.counts, { discovered: 2, queued: 0, inProgress: 0, succeeded: 1, failed: 0, skipped: 1 });
      assert.equal(after?.status, 'completed');
    });

    it('claim() is fair across jobs: a small job is not starved by a large one', async (s) => {
      const big = await seeded(
        s,
        { maxPages: 500 },
        Array.from({ length: 200 }, (_, i) => link(`/big${i}`)),
      );
      const small = makeJob();
      await s.createJob(small, seedOf(small));
      for (let round = 0; round < 3; round++) {
        const { leases } = await s.claim({ limit: 4, leaseMs: LEASE, now: T0 + 10 + round });
        const mine = leases.filter((l) => l.jobId === big.id || l.jobId === small.id);
        if (mine.some((l) => l.jobId === small.id)) return;
      }
      assert.fail('the small job got no claim in three rounds of four');
    });

    it('a job whose hosts all wait on a delay does not hide other jobs from claims', async (s) => {
      // More parked jobs than an adapter may look at in one claim: each stored its first page at T0
      // and has one more URL, on a host that waits until T0 + 600 s.
      const DELAY = 600_000;
      const parked: Job[] = [];
      for (let i = 0; i < 101; i++) parked.push(await seeded(s, { perHostDelayMs: DELAY }, [link('/next')]));
      const fresh = makeJob({ maxPages: 100 });
      await s.createJob(fresh, seedOf(fresh));
      // Claims across all jobs hand out the new job's start URL, then the links it finds, at once.
      const claimed: string[] = [];
      let rounds = 0;
      for (; rounds < 10 && claimed.length < 11; rounds++) {
        const { leases } = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 10 + rounds });
        assert.deepEqual(
          leases.filter((l) => l.jobId !== fresh.id).map((l) => l.url),
          [],
          'the parked jobs wait out their delay',
        );
        for (const lease of leases) {
          claimed.push(lease.key);
          const links = lease.depth === 0 ? Array.from({ length: 10 }, (_, i) => link(`/fresh${i}`)) : [];
          assert.equal((await s.complete(lease, { result: result(lease), links, now: T0 + 10 + rounds })).ok, true);
        }
      }
      assert.equal(claimed.length, 11, `the new job's 11 URLs were claimed (got ${claimed.length} in ${rounds} claims)`);
      assert.equal((await s.getJob(fresh.id))?.status, 'completed');
      // With nothing else to do, a claim says when the first parked job's host is free again.
      let idle = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 100 });
      for (let i = 0; i < 5 && idle.leases.length === 0 && idle.nextReadyAt === T0 + 100; i++)
        idle = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 100 });
      assert.equal(idle.leases.length, 0);
      assert.equal(idle.nextReadyAt, T0 + DELAY);
      // Once the delay has passed, every parked job's URL is handed out.
      const later = new Set<string>();
      for (let i = 0; i < 10 && later.size < parked.length; i++) {
        const { leases } = await s.claim({ limit: 50, leaseMs: LEASE, now: T0 + DELAY + i });
        for (const lease of leases) later.add(lease.jobId);
      }
      assert.equal(later.size, parked.length, 'every parked job is claimed again after its delay');
    });

    it('a job parked while its only URL is in flight is claimable as soon as that page completes with new links', async (s) => {
      const job = makeJob();
      await s.createJob(job, seedOf(job));
      const [lease] = (await s.claim({ limit: 5, leaseMs: LEASE, now: T0 })).leases;
      assert.ok(lease);
      const idle = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 1 });
      assert.equal(idle.leases.length, 0, 'nothing else is ready');
      assert.equal(idle.nextReadyAt ?? null, null, 'nothing waits on the clock (a page in flight does not)');
      await s.complete(lease, { result: result(lease), links: [link('/a'), link('/b')], now: T0 + 2 });
      const next = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 3 });
      assert.deepEqual(next.leases.map((l) => l.key).sort(), [link('/a').key, link('/b').key]);
      // Woken by retry() and release() too, and by a lease that expires.
      const [a, b] = next.leases as [Lease, Lease];
      assert.equal((await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 4 })).leases.length, 0);
      assert.equal(await s.retry(a, { notBefore: T0 + 500, error: { code: 'timeout', message: 't' }, now: T0 + 5 }), true);
      const waiting = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 6 });
      assert.equal(waiting.leases.length, 0);
      assert.equal(waiting.nextReadyAt, T0 + 500);
      assert.deepEqual(
        (await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 500 })).leases.map((l) => l.key),
        [a.key],
      );
      assert.equal(await s.release([b]), 1);
      const [again] = (await s.claim({ limit: 5, leaseMs: 1000, now: T0 + 501 })).leases;
      assert.equal(again?.key, b.key, 'a released URL is claimable at once');
      assert.equal((await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 502 })).leases.length, 0);
      const expired = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 1501 });
      assert.deepEqual(
        expired.leases.map((l) => [l.key, l.attempts]),
        [[b.key, 2]],
        'an expired lease is claimed again',
      );
    });

    it('claim({ jobId }) claims only from that job', async (s) => {
      const a = await seeded(s, {}, [link('/a1'), link('/a2')]);
      const b = await seeded(s, {}, [link('/b1')]);
      const { leases } = await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: b.id });
      assert.deepEqual(
        leases.map((l) => l.jobId),
        [b.id],
      );
      assert.equal((await s.getJob(a.id))?.counts.queued, 2);
    });

    it('events have increasing ids, carry counts, and readEvents() resumes after an id', async (s) => {
      const job = await seeded(s, {}, [link('/a'), link('/b')]);
      const leases = (await s.claim({ limit: 2, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      await s.complete(leases[0]!, { result: result(leases[0]!), links: [], now: T0 + 2 });
      const appended = await s.appendEvents(job.id, [{ type: 'page:done', at: new Date(T0).toISOString(), url: 'http://example.test/custom' }]);
      assert.equal(appended.length, 1);
      await s.complete(leases[1]!, { result: result(leases[1]!, false), links: [], now: T0 + 3 });
      const all = await s.readEvents(job.id, null, 100);
      assert.deepEqual(
        all.map((e) => e.type),
        ['job:created', 'job:started', 'page:done', 'page:done', 'page:done', 'page:failed', 'job:completed'],
      );
      const ids = all.map((e) => BigInt(e.id));
      for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, 'ids increase');
      assert.ok(all.every((e) => e.jobId === job.id));
      assert.equal(all[2]!.url, job.url);
      assert.deepEqual(all[all.length - 1]!.counts, { discovered: 3, queued: 0, inProgress: 0, succeeded: 2, failed: 1, skipped: 0 });
      assert.deepEqual(all[5]!.error, { code: 'http_error', message: 'HTTP 404' });
      const tail = await s.readEvents(job.id, all[3]!.id, 100);
      assert.deepEqual(
        tail.map((e) => e.id),
        all.slice(4).map((e) => e.id),
      );
      const page = await s.readEvents(job.id, null, 2);
      assert.deepEqual(
        page.map((e) => e.id),
        all.slice(0, 2).map((e) => e.id),
      );
      assert.deepEqual(await s.readEvents(job.id, all[all.length - 1]!.id, 100), []);
      assert.deepEqual(await s.readEvents('job_conf_missing', null, 100), []);
    });

    if (options.eventLimit !== undefined) {
      const limit = options.eventLimit;
      it('readEvents() gives a progress snapshot first when the requested events were trimmed', async (s) => {
        const links = Array.from({ length: limit * 3 }, (_, i) => link(`/t${i}`));
        const job = await seeded(s, { maxPages: limit * 4 }, links);
        const leases = (await s.claim({ limit: limit * 3, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
        for (const lease of leases) await s.complete(lease, { result: result(lease), links: [], now: T0 + 2 });
        const events = await s.readEvents(job.id, null, limit * 10);
        assert.equal(events[0]!.type, 'progress', 'a snapshot stands in for the trimmed events');
        assert.ok(events.length <= limit * 2 + 1, `the log is bounded (${events.length} events for a limit of ${limit})`);
        const ids = events.map((e) => BigInt(e.id));
        for (let i = 1; i < ids.length; i++) assert.equal(ids[i], ids[i - 1]! + 1n, 'no gap after the snapshot');
        assert.equal(events[events.length - 1]!.type, 'job:completed');
        const fromOne = await s.readEvents(job.id, '1', limit * 10);
        assert.equal(fromOne[0]!.type, 'progress');
        const recent = await s.readEvents(job.id, events[events.length - 3]!.id, 10);
        assert.equal(recent.length, 2);
        assert.notEqual(recent[0]!.type, 'progress');
      });
    }

    it('listJobs() pages newest first and filters by status', async (s) => {
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const job = { ...makeJob(), createdAt: new Date(T0 + i).toISOString() };
        await s.createJob(job, seedOf(job));
        ids.push(job.id);
      }
      await s.cancelJob(ids[1]!, T0 + 10);
      await s.cancelJob(ids[3]!, T0 + 10);
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 10; page++) {
        const got: { items: Job[]; nextCursor: string | null } = await s.listJobs({ limit: 5, cursor });
        seen.push(...got.items.map((j) => j.id).filter((id) => ids.includes(id)));
        cursor = got.nextCursor;
        if (cursor === null) break;
      }
      assert.deepEqual(seen, [...ids].reverse());
      const cancelled = await s.listJobs({ status: 'cancelled', limit: 100 });
      const mine = cancelled.items.map((j) => j.id).filter((id) => ids.includes(id));
      assert.deepEqual(mine, [ids[3], ids[1]]);
      assert.ok(cancelled.items.every((j) => j.status === 'cancelled'));
    });

    it('listResults() pages in the order results were stored', async (s) => {
      // Twelve results in pages of five: cursors past 9 catch ordering by text instead of number.
      const job = await seeded(
        s,
        {},
        Array.from({ length: 11 }, (_, i) => link(`/r${i}`)),
      );
      const leases = (await s.claim({ limit: 11, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      for (const lease of leases) await s.complete(lease, { result: result(lease), links: [], now: T0 + 2 });
      const urls: string[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 10; page++) {
        const got: { items: PageResult[]; nextCursor: string | null } = await s.listResults(job.id, { limit: 5, cursor });
        urls.push(...got.items.map((r) => r.url));
        cursor = got.nextCursor;
        if (cursor === null) break;
      }
      assert.deepEqual(urls, [job.url, ...leases.map((l) => l.url)]);
    });
  });
}
