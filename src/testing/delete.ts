/** Conformance tests: deleteJob() and the retention sweep deleteFinishedJobs() (both optional). */
import assert from 'node:assert/strict';
import type { CrawlStorage, Lease, RobotsRecord } from '../core/storage.js';
import type { Job, PageResult, ProgressEvent } from '../core/types.js';
import { LEASE, link, makeJob, type Register, result, seeded, seedOf, sleep, T0 } from './fixtures.js';

const ORIGIN = 'http://example.test';

function robotsRecord(crawlDelayMs: number | null): RobotsRecord {
  return {
    origin: ORIGIN,
    status: 'ok',
    rules: [{ allow: false, pattern: '/private' }],
    crawlDelayMs,
    httpStatus: 200,
    fetchedAt: new Date(T0).toISOString(),
    expiresAt: T0 + 86_400_000,
  };
}

async function allResults(s: CrawlStorage, jobId: string): Promise<PageResult[]> {
  const out: PageResult[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const got: { items: PageResult[]; nextCursor: string | null } = await s.listResults(jobId, { limit: 100, cursor });
    out.push(...got.items);
    cursor = got.nextCursor;
    if (cursor === null) break;
  }
  return out;
}

/** Everything the contract can read of a job. */
async function snapshot(
  s: CrawlStorage,
  jobId: string,
): Promise<{ job: Job | null; results: PageResult[]; events: ProgressEvent[]; robots: RobotsRecord | null }> {
  return {
    job: await s.getJob(jobId),
    results: await allResults(s, jobId),
    events: await s.readEvents(jobId, null, 1000),
    robots: await s.getRobots(jobId, ORIGIN),
  };
}

/** Asserts that nothing of the job can be read any more. */
async function assertGone(s: CrawlStorage, jobId: string, what: string): Promise<void> {
  assert.deepEqual(await snapshot(s, jobId), { job: null, results: [], events: [], robots: null }, `${what}: nothing of the job is left`);
  const listed = await listedIds(s);
  assert.ok(!listed.includes(jobId), `${what}: listJobs() does not list it`);
}

async function listedIds(s: CrawlStorage, status?: Job['status']): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const got: { items: Job[]; nextCursor: string | null } = await s.listJobs({ limit: 2, cursor, ...(status ? { status } : {}) });
    ids.push(...got.items.map((j) => j.id));
    cursor = got.nextCursor;
    if (cursor === null) break;
  }
  return ids;
}

/** A job with results, robots.txt, a live lease and URLs still pending. */
async function busyJob(s: CrawlStorage, tag: string): Promise<{ job: Job; lease: Lease }> {
  const job = await seeded(
    s,
    {},
    Array.from({ length: 4 }, (_, i) => link(`/${tag}${i}`)),
  );
  await s.putRobots(job.id, robotsRecord(null));
  const [done] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
  assert.ok(done);
  assert.equal((await s.complete(done, { result: result(done), links: [], now: T0 + 2 })).ok, true);
  const [lease] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases;
  assert.ok(lease);
  return { job, lease };
}

/** The other jobs still work: their live lease completes, and their pending URLs are claimed. */
async function assertStillWorks(s: CrawlStorage, job: Job, lease: Lease, now: number): Promise<void> {
  assert.equal((await s.complete(lease, { result: result(lease), links: [], now })).ok, true, `job ${job.id}: its live lease still completes`);
  const { leases } = await s.claim({ limit: 10, leaseMs: LEASE, now: now + 1, jobId: job.id });
  assert.equal(leases.length, 2, `job ${job.id}: its two pending URLs are still claimed`);
  for (const l of leases) assert.equal((await s.complete(l, { result: result(l), links: [], now: now + 2 })).ok, true);
  const after = await s.getJob(job.id);
  assert.equal(after?.status, 'completed');
  assert.equal(after?.counts.succeeded, 5);
  assert.equal((await allResults(s, job.id)).length, 5);
}

export function deleteTests(it: Register): void {
  it('deleteJob() removes a finished job and all it holds, and touches nothing of the jobs created before and after it', async (s, skip) => {
    if (typeof s.deleteJob !== 'function') skip('deleteJob() is optional and not implemented');
    const before = await busyJob(s, 'before');
    const doomed = await seeded(s, {}, [link('/x1'), link('/x2')]);
    await s.putRobots(doomed.id, robotsRecord(null));
    for (const l of (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 4, jobId: doomed.id })).leases) {
      assert.equal((await s.complete(l, { result: result(l), links: [], now: T0 + 5 })).ok, true);
    }
    assert.equal((await s.getJob(doomed.id))?.status, 'completed');
    const after = await busyJob(s, 'after');
    const kept = [await snapshot(s, before.job.id), await snapshot(s, after.job.id)];
    const listed = (await listedIds(s)).filter((id) => id !== doomed.id);

    assert.deepEqual(await s.deleteJob!(doomed.id, T0 + 10), { deleted: true, events: [] }, 'a finished job is deleted without an event');
    await assertGone(s, doomed.id, 'deleted');
    assert.ok(!(await listedIds(s, 'completed')).includes(doomed.id), 'listJobs() by status does not list it');
    assert.deepEqual(await listedIds(s), listed, 'listJobs() pages over the gap it left, newest first');
    assert.deepEqual([await snapshot(s, before.job.id), await snapshot(s, after.job.id)], kept, 'the other jobs read exactly as before');

    await assertStillWorks(s, before.job, before.lease, T0 + 20);
    await assertStillWorks(s, after.job, after.lease, T0 + 30);
    assert.deepEqual(await s.deleteJob!(doomed.id, T0 + 40), { deleted: false, events: [] }, 'deleting it again finds nothing');
    assert.deepEqual(await s.deleteJob!('job_conf_missing', T0 + 40), { deleted: false, events: [] }, 'an unknown id finds nothing');
  });

  it('deleteJob() cancels a running job first: job:cancelled is returned and wakes watchers, and its live leases store nothing', async (s, skip) => {
    if (typeof s.deleteJob !== 'function') skip('deleteJob() is optional and not implemented');
    const other = await busyJob(s, 'other');
    const job = await seeded(
      s,
      {},
      Array.from({ length: 8 }, (_, i) => link(`/r${i}`)),
    );
    await s.putRobots(job.id, robotsRecord(null));
    const leases = (await s.claim({ limit: 3, leaseMs: LEASE, now: T0 + 4, jobId: job.id })).leases;
    assert.equal(leases.length, 3);
    const kept = await snapshot(s, other.job.id);
    let woken = 0;
    const unwatch = s.capabilities.push && s.watch ? s.watch(job.id, () => void woken++) : null;
    try {
      if (unwatch !== null) {
        // A subscription may take a moment to be live (a LISTEN, a SUBSCRIBE): store pages until it is.
        for (let i = 0; i < 40 && woken === 0; i++) {
          const l = leases.pop();
          if (l === undefined) break;
          assert.equal((await s.complete(l, { result: result(l), links: [], now: T0 + 5 })).ok, true);
          await sleep(100);
        }
        assert.ok(woken > 0, 'watch() called its listener before the delete');
        leases.push(...(await s.claim({ limit: 3 - leases.length, leaseMs: LEASE, now: T0 + 6, jobId: job.id })).leases);
        woken = 0;
      }
      const [l1, l2, l3] = leases;
      assert.ok(l1 && l2 && l3, 'three live leases');

      const deleted = await s.deleteJob!(job.id, T0 + 50);
      assert.equal(deleted.deleted, true);
      assert.deepEqual(
        deleted.events.map((e) => [e.type, e.jobId, e.at]),
        [['job:cancelled', job.id, new Date(T0 + 50).toISOString()]],
        'the job is cancelled first, and its job:cancelled returned',
      );
      if (unwatch !== null) {
        for (let i = 0; i < 200 && woken === 0; i++) await sleep(10);
        assert.ok(woken > 0, 'the delete wakes the watchers of the job');
      }

      assert.equal((await s.complete(l1, { result: result(l1), links: [link('/late')], now: T0 + 51 })).ok, false, 'a live lease cannot complete');
      assert.equal(await s.retry(l2, { notBefore: T0 + 52, error: { code: 'timeout', message: 'late' }, now: T0 + 52 }), false, 'nor retry');
      assert.equal(await s.release([l3]), 0, 'nor release');
      await s.putRobots(job.id, robotsRecord(null)).catch(() => undefined);
      await assertGone(s, job.id, 'after late complete, retry, release and putRobots');
      assert.deepEqual(await snapshot(s, other.job.id), kept, 'the other job reads exactly as before');
      // Before the leases expire, so that the other job's live lease stays live.
      const { leases: later } = await s.claim({ limit: 100, leaseMs: LEASE, now: T0 + 60 });
      assert.ok(!later.some((l) => l.jobId === job.id), 'no URL of the job is claimed again');
      // The claim across jobs may have taken the other job's pending URLs: give them back.
      await s.release(later.filter((l) => l.jobId === other.job.id));
      await assertStillWorks(s, other.job, other.lease, T0 + 70);
    } finally {
      unwatch?.();
    }
  });

  it('deleteFinishedJobs() removes finished jobs older than the cutoff, at most limit, oldest finish first, never an active one', async (s, skip) => {
    if (typeof s.deleteFinishedJobs !== 'function') skip('deleteFinishedJobs() is optional and not implemented');
    // A month before the other tests' clock, so that a shared storage's other jobs are never due.
    const TS = T0 - 30 * 86_400_000;
    const create = async () => {
      const job = { ...makeJob(), createdAt: new Date(TS).toISOString() };
      await s.createJob(job, seedOf(job));
      return job;
    };
    const finish = async (job: Job, at: number, ok: boolean) => {
      const [l] = (await s.claim({ limit: 1, leaseMs: LEASE, now: at, jobId: job.id })).leases;
      assert.ok(l);
      assert.equal((await s.complete(l, { result: result(l, ok), links: [], now: at })).ok, true);
    };
    const [cancelledEarly, completed, failed, running, queued, cancelledLate] = [
      await create(),
      await create(),
      await create(),
      await create(),
      await create(),
      await create(),
    ];
    // Finished out of order, so that an adapter cannot rely on the order of the calls.
    await s.cancelJob(cancelledLate.id, TS + 10);
    await finish(failed, TS + 3, false);
    await s.cancelJob(cancelledEarly.id, TS + 1);
    await finish(completed, TS + 2, true);
    const [live] = (await s.claim({ limit: 1, leaseMs: LEASE, now: TS + 4, jobId: running.id })).leases;
    assert.ok(live);
    assert.deepEqual(await Promise.all([cancelledEarly, completed, failed, running, queued, cancelledLate].map(async (j) => (await s.getJob(j.id))?.status)), [
      'cancelled',
      'completed',
      'failed',
      'running',
      'queued',
      'cancelled',
    ]);

    assert.deepEqual(await s.deleteFinishedJobs!({ finishedBefore: TS + 5, limit: 2 }), { deleted: 2 }, 'at most limit');
    await assertGone(s, cancelledEarly.id, 'the oldest finish');
    await assertGone(s, completed.id, 'the second oldest finish');
    assert.equal((await s.getJob(failed.id))?.status, 'failed', 'the third waits for the next call');
    assert.deepEqual(await s.deleteFinishedJobs!({ finishedBefore: TS + 5, limit: 10 }), { deleted: 1 });
    await assertGone(s, failed.id, 'the failed job');
    assert.deepEqual(await s.deleteFinishedJobs!({ finishedBefore: TS + 5, limit: 10 }), { deleted: 0 }, 'nothing more is due');
    assert.deepEqual(await s.deleteFinishedJobs!({ finishedBefore: TS + 10, limit: 10 }), { deleted: 0 }, 'finished at the cutoff is not before it');
    assert.equal((await s.getJob(cancelledLate.id))?.status, 'cancelled');

    assert.deepEqual(await s.deleteFinishedJobs!({ finishedBefore: TS + 11, limit: 10 }), { deleted: 1 });
    await assertGone(s, cancelledLate.id, 'the job cancelled later');
    assert.equal((await s.getJob(running.id))?.status, 'running', 'a running job is never swept');
    assert.equal((await s.getJob(queued.id))?.status, 'queued', 'a queued job is never swept');
    assert.equal((await s.readEvents(queued.id, null, 10)).length, 1);
    assert.equal((await s.complete(live, { result: result(live), links: [], now: TS + 20 })).ok, true, "the running job's lease still completes");
    assert.equal((await s.getJob(running.id))?.status, 'completed');
  });
}
