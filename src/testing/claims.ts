/** Conformance tests: claim(), retry() and release(): leases, fencing tokens, not-before times, fairness across jobs and parked jobs. */
import assert from 'node:assert/strict';
import type { Lease } from '../core/storage.js';
import type { Job } from '../core/types.js';
import { assertCountsAddUp, LEASE, link, makeJob, type Register, result, seeded, seedOf, T0 } from './fixtures.js';

export function claimTests(it: Register): void {
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
    for (let i = 0; i < 5 && idle.leases.length === 0 && idle.nextReadyAt === T0 + 100; i++) idle = await s.claim({ limit: 5, leaseMs: LEASE, now: T0 + 100 });
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
}
