/** Conformance tests: Jobs as records: createJob(), cancelJob(), listJobs() and listResults(). */
import assert from 'node:assert/strict';
import type { Job, PageResult } from '../core/types.js';
import { LEASE, link, makeJob, type Register, result, seeded, seedOf, T0 } from './fixtures.js';

export function jobTests(it: Register): void {
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
}
