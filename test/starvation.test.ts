// Starvation: jobs whose hosts all wait out a long perHostDelayMs must not hide other jobs from
// claims. 1,000 such jobs are parked on each adapter, then a new 40-page job is crawled by
// processor runs that claim across all jobs (no jobId); it must finish about as fast as the same
// job on an otherwise empty storage of the same adapter. Those jobs are started by claims of their
// own (uncounted); a variant has jobs admitted by claims across jobs under the default bound, which
// must give up their places once parked on the clock.
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import RedisMock from 'ioredis-mock';
import { afterAll, describe, expect, test } from 'vitest';
import { kvStorage } from '../adapters/kv/index.js';
import { memoryStorage } from '../adapters/memory/index.js';
import { postgresStorage } from '../adapters/postgres/index.js';
import { startSite } from './fixtures/site.mjs';
import type { CrawlStorage, Lease } from '../src/core/storage.js';
import { jobRecord } from '../src/testing/index.js';
import { DEFAULT_MAX_ACTIVE_JOBS } from '../src/core/engine.js';
import type { Job, PageResult } from '../src/core/types.js';
import { testEngine } from './helpers/engine.js';
import { closeAll, DATABASE_URL, freshSchema, pglite, realPool } from './helpers/postgres.js';

const PARKED = 1000;
/** Jobs admitted by claims under the default bound, then parked: three times the bound. */
const ADMITTED = 3 * DEFAULT_MAX_ACTIVE_JOBS;
const PAGES = 40;
/** A crawl that has not finished by then counts as starved. */
const CAP_MS = 20_000;
const SLACK_MS = 300;
const DELAY_MS = 600_000;

const REDIS_URL = process.env.REDIS_URL || null;
const redis = REDIS_URL ? new Redis(REDIS_URL, { maxRetriesPerRequest: 2 }) : null;
const kvPrefix = (n: number) => `starve${process.pid}_${Date.now().toString(36)}_${n}:`;
let kvCount = 0;

const schemas: string[] = [];
afterAll(async () => {
  if (redis) {
    const keys = await redis.keys(`starve${process.pid}_*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
    redis.disconnect();
  }
  if (schemas.length > 0) {
    const client: { query(text: string): Promise<unknown> } = DATABASE_URL ? realPool() : pglite();
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }
  await closeAll();
});

interface Target {
  name: string;
  storage: () => Promise<CrawlStorage>;
}

const targets: Target[] = [
  { name: 'memory', storage: async () => memoryStorage() },
  {
    name: DATABASE_URL ? 'postgres (real server)' : 'postgres (PGlite)',
    storage: async () => {
      const schema = freshSchema();
      schemas.push(schema);
      const storage = postgresStorage({ client: (DATABASE_URL ? realPool() : pglite()) as never, schema, listen: false });
      await storage.migrate();
      return storage;
    },
  },
  {
    name: REDIS_URL ? 'kv (real Redis)' : 'kv (ioredis-mock)',
    storage: async () => kvStorage({ client: (redis ?? new RedisMock()) as never, prefix: kvPrefix(kvCount++), listen: false }),
  },
];

function parkedJob(i: number): Job {
  const url = `http://parked-${i}.invalid/`;
  return jobRecord({
    id: `job_parked_${i}_${Date.now().toString(36)}`,
    url,
    options: { maxPages: 10, maxDepth: 3, respectRobots: false, perHostConcurrency: 2, perHostDelayMs: DELAY_MS },
  });
}

const pageResult = (lease: Lease): PageResult => ({
  url: lease.url,
  finalUrl: lease.url,
  depth: lease.depth,
  status: 200,
  ok: true,
  contentType: 'text/html',
  title: null,
  description: null,
  canonical: null,
  links: 1,
  wordCount: 1,
  error: null,
  attempts: lease.attempts,
  durationMs: 1,
  fetchedAt: new Date().toISOString(),
  data: null,
});

/**
 * Creates `n` jobs and stores their first page with one new link, so each job has a URL waiting out
 * its host's 10-minute delay. Then claims across all jobs until the storage has looked at every one
 * of them (a claim reports nothing ready before the delays end), as processors would.
 */
async function parkJobs(storage: CrawlStorage, n: number): Promise<{ seedMs: number; settleMs: number; settleClaims: number }> {
  const started = performance.now();
  for (let from = 0; from < n; from += 25) {
    await Promise.all(
      Array.from({ length: Math.min(25, n - from) }, async (_, k) => {
        const job = parkedJob(from + k);
        const host = new URL(job.url).hostname;
        await storage.createJob(job, { url: job.url, key: job.url, depth: 0, host });
        const { leases } = await storage.claim({ limit: 1, leaseMs: 60_000, now: Date.now(), jobId: job.id });
        const next = `${job.url}next`;
        const done = await storage.complete(leases[0]!, { result: pageResult(leases[0]!), links: [{ url: next, key: next, depth: 1, host }], now: Date.now() });
        expect(done.admitted).toBe(1);
      }),
    );
  }
  const seeded = performance.now();
  let settleClaims = 0;
  for (;;) {
    const now = Date.now();
    const claimed = await storage.claim({ limit: 20, leaseMs: 60_000, now });
    settleClaims++;
    expect(claimed.leases).toEqual([]);
    if (claimed.nextReadyAt === null || claimed.nextReadyAt === undefined || claimed.nextReadyAt > now + DELAY_MS / 2) break;
    if (settleClaims > n) throw new Error('claims never settled');
  }
  return { seedMs: seeded - started, settleMs: performance.now() - seeded, settleClaims };
}

/**
 * Creates `n` queued jobs and lets claims across jobs under the default bound (`maxActiveJobs` 10)
 * admit them, as processors would: each admitted job's first page is stored with one new link,
 * which then waits out its host's 10-minute delay. Claims go on until two in a row find nothing.
 * Returns the jobs, which all run (admitted in turns) once their predecessors parked on the clock.
 */
async function parkAdmittedJobs(storage: CrawlStorage, n: number): Promise<Job[]> {
  const jobs = Array.from({ length: n }, (_, i) => parkedJob(PARKED + i));
  for (const job of jobs) await storage.createJob(job, { url: job.url, key: job.url, depth: 0, host: new URL(job.url).hostname });
  for (let empty = 0, i = 0; empty < 2; i++) {
    if (i > 10 * n) throw new Error('claims never settled');
    const { leases } = await storage.claim({ limit: 20, leaseMs: 60_000, now: Date.now(), maxActiveJobs: DEFAULT_MAX_ACTIVE_JOBS });
    empty = leases.length === 0 ? empty + 1 : 0;
    for (const lease of leases) {
      const next = `http://${lease.host}/next`;
      const link = { url: next, key: next, depth: 1, host: lease.host };
      const done = await storage.complete(lease, { result: pageResult(lease), links: [link], now: Date.now() });
      expect(done.ok).toBe(true);
    }
  }
  return jobs;
}

/** Crawls a new 40-page job with processor runs that claim across all jobs; returns its time. */
async function crawlNewJob(storage: CrawlStorage): Promise<Crawl> {
  const site = await startSite({ pages: PAGES, fanout: 4 });
  const engine = testEngine({}, storage);
  try {
    const job = await engine.jobs.create({ url: site.url, maxPages: PAGES, maxDepth: 10, perHostConcurrency: 4 });
    const started = performance.now();
    let runs = 0;
    let current = job;
    while (performance.now() - started < CAP_MS) {
      await engine.processor.run({ concurrency: 8, budgetMs: 5000 });
      runs++;
      current = (await engine.jobs.get(job.id))!;
      if (current.status !== 'queued' && current.status !== 'running') break;
    }
    return { ms: performance.now() - started, runs, succeeded: current.counts.succeeded, status: current.status };
  } finally {
    await engine.close();
    await site.close();
  }
}

interface Crawl {
  ms: number;
  runs: number;
  succeeded: number;
  status: string;
}

/** The faster of two crawls, one after the other on the same storage (the machine is shared). */
async function bestOfTwo(storage: CrawlStorage): Promise<Crawl & { all: number[] }> {
  const first = await crawlNewJob(storage);
  if (first.status !== 'completed') return { ...first, all: [first.ms] };
  const second = await crawlNewJob(storage);
  const best = second.status === 'completed' && second.ms < first.ms ? second : first;
  return { ...best, all: [first.ms, second.ms] };
}

const round = (ms: number) => Math.round(ms);

describe('starvation', () => {
  for (const target of targets) {
    test(`starvation: 1,000 jobs parked on perHostDelayMs do not slow a new job (${target.name})`, async () => {
      // Warm up (modules, JIT, connections), then the new job alone on an empty storage.
      const warm = await target.storage();
      await crawlNewJob(warm);
      await warm.close?.();
      const empty = await target.storage();
      const alone = await bestOfTwo(empty);
      await empty.close?.();
      expect(alone.status).toBe('completed');

      const storage = await target.storage();
      const parking = await parkJobs(storage, PARKED);
      // A claim over all jobs, with every one of them parked, stays cheap.
      const claimStart = performance.now();
      for (let i = 0; i < 20; i++) await storage.claim({ limit: 20, leaseMs: 60_000, now: Date.now() });
      const claimMs = (performance.now() - claimStart) / 20;
      const crowded = await bestOfTwo(storage);
      await storage.close?.();
      const times = (c: { all: number[] }) => c.all.map(round).join(' / ');
      console.log(
        `[starvation] ${target.name}: new ${PAGES}-page job alone ${times(alone)} ms (best ${round(alone.ms)}); ` +
          `with ${PARKED} parked jobs ${times(crowded)} ms (best ${round(crowded.ms)}, ${crowded.runs} runs, ${crowded.status}, ${crowded.succeeded} pages); ` +
          `parking: seed ${round(parking.seedMs)} ms, settle ${round(parking.settleMs)} ms in ${parking.settleClaims} claims; ` +
          `an idle claim over ${PARKED} parked jobs ${claimMs.toFixed(2)} ms`,
      );
      expect(crowded.status).toBe('completed');
      expect(crowded.succeeded).toBe(PAGES);
      expect(crowded.ms).toBeLessThanOrEqual(2 * alone.ms + SLACK_MS);
    }, 400_000);
  }

  for (const target of targets) {
    test(`starvation: ${ADMITTED} admitted jobs parked on perHostDelayMs give up their places: all run, and a new job is not slowed (${target.name})`, async () => {
      const empty = await target.storage();
      await crawlNewJob(empty);
      const alone = await bestOfTwo(empty);
      await empty.close?.();
      expect(alone.status).toBe('completed');

      const storage = await target.storage();
      const jobs = await parkAdmittedJobs(storage, ADMITTED);
      const statuses = await Promise.all(jobs.map(async (job) => (await storage.getJob(job.id))?.status));
      expect(
        statuses.filter((status) => status !== 'running'),
        'each parked job gave up its place to the next in line',
      ).toEqual([]);
      const crowded = await bestOfTwo(storage);
      await storage.close?.();
      console.log(
        `[starvation] ${target.name}: new ${PAGES}-page job alone ${round(alone.ms)} ms; with ${ADMITTED} admitted jobs parked ` +
          `${crowded.all.map(round).join(' / ')} ms (${crowded.status}, ${crowded.succeeded} pages)`,
      );
      expect(crowded.status).toBe('completed');
      expect(crowded.succeeded).toBe(PAGES);
      expect(crowded.ms).toBeLessThanOrEqual(2 * alone.ms + SLACK_MS);
    }, 400_000);
  }
});
