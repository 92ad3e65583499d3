/** Conformance tests: complete(): fencing, exactly-once results, link dedup, and how a job finishes. */
import assert from 'node:assert/strict';
import { assertCountsAddUp, disallowed, LEASE, link, makeJob, type Register, result, seeded, seedOf, T0 } from './fixtures.js';

export function completionTests(it: Register): void {
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
}
