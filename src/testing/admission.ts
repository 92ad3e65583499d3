/**
 * Conformance tests: admission (`ClaimQuery.maxActiveJobs`). Claims across jobs start queued jobs in
 * order of priority (highest first), then creation, never more than the bound at once; a job that
 * ends or is cancelled frees its place; admitted jobs share claims fairly; a claim of one job
 * bypasses admission and is not counted. An admitted job parked on the clock (every host inside a
 * delay or backoff) gives up its place; one parked only at its hosts' concurrency keeps it.
 */
import assert from 'node:assert/strict';
import type { CrawlStorage, Lease } from '../core/storage.js';
import type { Job } from '../core/types.js';
import { LEASE, link, makeJob, type Register, result, seedOf, T0 } from './fixtures.js';

/** Creates queued jobs, one after the other, with these priorities. */
async function queued(s: CrawlStorage, priorities: number[], maxPages = 100): Promise<Job[]> {
  const jobs: Job[] = [];
  for (const priority of priorities) {
    const job = makeJob({ priority, maxPages });
    await s.createJob(job, seedOf(job));
    jobs.push(job);
  }
  return jobs;
}

async function running(s: CrawlStorage, jobs: Job[]): Promise<string[]> {
  const out: string[] = [];
  for (const job of jobs) if ((await s.getJob(job.id))?.status === 'running') out.push(job.id);
  return out;
}

const jobsOf = (leases: Lease[]) => [...new Set(leases.map((l) => l.jobId))].sort();
const ids = (...jobs: Job[]) => jobs.map((j) => j.id).sort();

export function admissionTests(it: Register): void {
  it('admission: claims across jobs admit queued jobs in priority, then creation order, never more than maxActiveJobs', async (s) => {
    const [a, b, c, d, e] = (await queued(s, [0, 0, 5, -1, 5])) as [Job, Job, Job, Job, Job];
    const first = await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, maxActiveJobs: 2 });
    assert.deepEqual(jobsOf(first.leases), ids(c, e), 'the two priority-5 jobs, oldest first, start');
    assert.deepEqual(
      first.events
        .filter((ev) => ev.type === 'job:started')
        .map((ev) => ev.jobId)
        .sort(),
      ids(c, e),
    );
    assert.deepEqual((await running(s, [a, b, c, d, e])).sort(), ids(c, e));
    // Nothing more is admitted while both run, however many claims come.
    for (let i = 0; i < 3; i++) {
      const more = await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 2 + i, maxActiveJobs: 2 });
      assert.deepEqual(more.leases, [], 'no queued job starts while the bound is reached');
    }
    for (const job of [a, b, d]) assert.equal((await s.getJob(job.id))?.status, 'queued');
  });

  it('admission: racing claims never admit more than maxActiveJobs', async (s) => {
    const jobs = await queued(s, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 1 + i, maxActiveJobs: 3 })));
    const started = claims.flatMap((c) => c.events.filter((ev) => ev.type === 'job:started').map((ev) => ev.jobId));
    assert.ok(started.length <= 3, `at most three started, got ${started.length}`);
    assert.ok((await running(s, jobs)).length <= 3);
    // Whatever a racing claim left out, the next one admits: exactly the first three in line run.
    await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 20, maxActiveJobs: 3 });
    assert.deepEqual((await running(s, jobs)).sort(), ids(...jobs.slice(0, 3)));
  });

  it('admission: a job that ends or is cancelled frees its place: the next claim admits the next queued job', async (s) => {
    const [a, b, c, d, e] = (await queued(s, [0, 0, 5, -1, 5])) as [Job, Job, Job, Job, Job];
    const all = [a, b, c, d, e];
    const held = new Map<string, Lease>();
    const claimNext = async (now: number) => {
      const { leases } = await s.claim({ limit: 10, leaseMs: LEASE, now, maxActiveJobs: 2 });
      for (const lease of leases) held.set(lease.jobId, lease);
      assert.ok((await running(s, all)).length <= 2, 'never more than two running');
      return jobsOf(leases);
    };
    assert.deepEqual(await claimNext(T0 + 1), ids(c, e));
    // c completes (its only page, no links): a takes its place, then b when e is cancelled, then d.
    const lease = held.get(c.id)!;
    assert.equal((await s.complete(lease, { result: result(lease), links: [], now: T0 + 2 })).ok, true);
    assert.equal((await s.getJob(c.id))?.status, 'completed');
    assert.deepEqual(await claimNext(T0 + 3), ids(a));
    assert.equal((await s.cancelJob(e.id, T0 + 4)).job?.status, 'cancelled');
    assert.deepEqual(await claimNext(T0 + 5), ids(b));
    assert.deepEqual(await claimNext(T0 + 6), [], 'd waits: a and b run');
    const leaseA = held.get(a.id)!;
    await s.complete(leaseA, { result: result(leaseA), links: [], now: T0 + 7 });
    assert.deepEqual(await claimNext(T0 + 8), ids(d));
    assert.equal((await s.getJob(d.id))?.status, 'running');
  });

  it('admission: a queued job that is cancelled never starts, and frees no place it did not hold', async (s) => {
    const [a, b, c] = (await queued(s, [0, 0, 0])) as [Job, Job, Job];
    assert.equal((await s.cancelJob(a.id, T0 + 1)).job?.status, 'cancelled');
    const { leases } = await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 2, maxActiveJobs: 1 });
    assert.deepEqual(jobsOf(leases), ids(b));
    assert.equal((await s.getJob(a.id))?.status, 'cancelled');
    assert.equal((await s.getJob(c.id))?.status, 'queued');
  });

  it('admission: admitted jobs share claims fairly; queued ones get nothing', async (s) => {
    const jobs = await queued(s, [0, 0, 0], 500);
    const [a, b, c] = jobs as [Job, Job, Job];
    // Start a and b (admission), and give each 40 more URLs.
    const first = await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, maxActiveJobs: 2 });
    assert.deepEqual(jobsOf(first.leases), ids(a, b));
    for (const lease of first.leases) {
      const links = Array.from({ length: 40 }, (_, i) => link(`/${lease.jobId}/${i}`));
      assert.equal((await s.complete(lease, { result: result(lease), links, now: T0 + 2 })).ok, true);
    }
    const got = new Map<string, number>();
    for (let round = 0; round < 5; round++) {
      const { leases } = await s.claim({ limit: 4, leaseMs: LEASE, now: T0 + 3 + round, maxActiveJobs: 2 });
      assert.equal(leases.length, 4);
      for (const lease of leases) got.set(lease.jobId, (got.get(lease.jobId) ?? 0) + 1);
    }
    assert.equal(got.get(c.id), undefined, 'the queued job gets nothing');
    assert.equal(got.get(a.id), 10, `fair shares: ${JSON.stringify(Object.fromEntries(got))}`);
    assert.equal(got.get(b.id), 10, `fair shares: ${JSON.stringify(Object.fromEntries(got))}`);
  });

  it('admission: a claim of one job starts it at once, bypassing admission, and it does not count against the bound', async (s) => {
    const [a, b, c] = (await queued(s, [0, 0, 0])) as [Job, Job, Job];
    // c, last in line, is driven by a claim of its own.
    const own = await s.claim({ limit: 1, leaseMs: LEASE, now: T0 + 1, jobId: c.id });
    assert.deepEqual(jobsOf(own.leases), ids(c));
    assert.equal((await s.getJob(c.id))?.status, 'running');
    // The bound of 1 admits a (c is not counted), and not b.
    const across = await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 2, maxActiveJobs: 1 });
    assert.deepEqual(jobsOf(across.leases), ids(a));
    assert.equal((await s.getJob(b.id))?.status, 'queued');
    // c's other URLs are claimed across jobs too, and c is never admitted a second time.
    const lease = own.leases[0]!;
    await s.complete(lease, { result: result(lease), links: [link('/c1')], now: T0 + 3 });
    const later = await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 4, maxActiveJobs: 1 });
    assert.deepEqual(jobsOf(later.leases), ids(c));
    assert.equal(later.events.filter((ev) => ev.type === 'job:started').length, 0);
    assert.equal((await s.getJob(b.id))?.status, 'queued');
  });

  it('admission: a job parked on the clock gives up its place; one parked at its concurrency keeps it', async (s) => {
    const delayed = () => makeJob({ maxPages: 100, perHostDelayMs: 600_000 });
    const [a, b] = [delayed(), delayed()];
    for (const job of [a, b]) await s.createJob(job, seedOf(job));
    const [c] = (await queued(s, [0])) as [Job];
    const claimAcross = (now: number) => s.claim({ limit: 10, leaseMs: LEASE, now, maxActiveJobs: 2 });
    const first = await claimAcross(T0 + 1);
    assert.deepEqual(jobsOf(first.leases), ids(a, b), 'a and b are admitted');
    // Their seeds are in flight: both hosts are at their concurrency, no clock wait. They keep their places.
    for (let i = 0; i < 3; i++) assert.deepEqual((await claimAcross(T0 + 2 + i)).leases, [], 'c waits while a and b have pages in flight');
    assert.equal((await s.getJob(c.id))?.status, 'queued');
    // Each seed completes with one more page on its host, which now waits out a 10-minute delay.
    for (const lease of first.leases) {
      const more = link(`/${lease.jobId}/next`, 1, lease.host);
      assert.equal((await s.complete(lease, { result: result(lease), links: [more], now: T0 + 10 })).ok, true);
    }
    // The claim that finds a and b parked on the clock frees their places: c is admitted by it or the next.
    const parking = await claimAcross(T0 + 11);
    const got: Lease[] = [...parking.leases];
    if (got.length === 0) {
      const at = parking.nextReadyAt;
      assert.ok(at !== null && at !== undefined && at <= T0 + 11, `the claim that freed places asks for the next one at once, not at ${at}`);
      got.push(...(await claimAcross(T0 + 12)).leases);
    }
    assert.deepEqual(jobsOf(got), ids(c), 'c is admitted and claimed while a and b wait on their delay');
    assert.equal((await s.getJob(c.id))?.status, 'running');
    // a and b keep running, uncounted: when their delay ends they are claimed again, beside c.
    const leaseC = got[0]!;
    assert.equal((await s.complete(leaseC, { result: result(leaseC), links: [link(`/${c.id}/next`, 1, leaseC.host)], now: T0 + 20 })).ok, true);
    const later = await claimAcross(T0 + 10 + 600_001);
    assert.deepEqual(jobsOf(later.leases), ids(a, b, c), 'a and b are claimed again when their delay ends, beside c');
    for (const job of [a, b, c]) assert.equal((await s.getJob(job.id))?.status, 'running');
  });
}
