/**
 * Builders shared by the conformance tests: job records, links, page results, and the `Register`
 * function each test area adds its tests with.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { CrawlStorage, FrontierLink, Lease, SkippedLink } from '../core/storage.js';
import type { Job, JobOptions, PageResult } from '../core/types.js';

/**
 * Adds one test: `body` gets a fresh storage (torn down afterwards) and `skip`, which marks the
 * test skipped with a reason (through the runner's context when it has one) and ends it.
 */
export type Register = (name: string, body: (storage: CrawlStorage, skip: (reason: string) => never) => Promise<void>) => void;

/** The suite's clock: every test runs at fixed times, so adapters never read the wall clock. */
export const T0 = Date.UTC(2030, 0, 1);
export const LEASE = 30_000;

export function jobId(): string {
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
      priority: 0,
      ...options,
    },
  };
}

export function makeJob(options: Partial<JobOptions> = {}, id = jobId()): Job {
  return jobRecord({ id, options, createdAt: new Date(T0).toISOString(), metadata: { suite: 'conformance' } });
}

export const link = (path: string, depth = 1, host = 'example.test'): FrontierLink => {
  const url = `http://${host}${path}`;
  return { url, key: url, depth, host };
};

export const seedOf = (job: Job): FrontierLink => ({ url: job.url, key: job.url, depth: 0, host: new URL(job.url).hostname });

/** A link whose robots.txt the processor knew to allow it. */
export const allowed = (found: FrontierLink): FrontierLink => ({ ...found, robots: 'allowed' });
/** A link whose robots.txt was not known when it was found. */
export const unknown = (found: FrontierLink): FrontierLink => ({ ...found, robots: 'unknown' });

export function robotsResult(url: string, depth: number, attempts: number): PageResult {
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
export const disallowed = (found: FrontierLink): SkippedLink => ({ link: found, result: robotsResult(found.url, found.depth, 0) });

/** The result of fetching a lease's page: 200 when `ok`, else a 404. */
export function result(lease: Lease, ok = true): PageResult {
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

export function assertCountsAddUp(job: Job | null): void {
  assert.ok(job, 'job exists');
  const c = job.counts;
  assert.equal(c.queued + c.inProgress + c.succeeded + c.failed + c.skipped, c.discovered, `counts add up: ${JSON.stringify(c)}`);
}

/** A job whose start URL was fetched at T0 and gave `links`. */
export async function seeded(storage: CrawlStorage, options: Partial<JobOptions> = {}, links: FrontierLink[] = []): Promise<Job> {
  const job = makeJob(options);
  await storage.createJob(job, seedOf(job));
  const { leases } = await storage.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: job.id });
  assert.equal(leases.length, 1, 'the seed is claimable');
  const done = await storage.complete(leases[0]!, { result: result(leases[0]!), links, now: T0 });
  assert.equal(done.ok, true);
  return job;
}

/** A lease of a job that does not exist. */
export function strayLease(jobId: string): Lease {
  return {
    jobId,
    url: 'http://example.test/',
    key: 'http://example.test/',
    depth: 0,
    host: 'example.test',
    token: 'stray',
    attempts: 1,
    expiresAt: T0 + LEASE,
  };
}

/** Asserts that `promise` rejects with an error whose `code` is `code` (a CrawlEngineError's). */
export async function rejectsWithCode(promise: Promise<unknown>, code: string, what: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.equal((error as { code?: unknown })?.code, code, `${what}: expected an error with code ${code}, got ${String(error)}`);
    return true;
  });
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
