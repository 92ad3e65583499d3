/** Conformance tests: The event log: ids, counts, paging, trimming. */
import assert from 'node:assert/strict';
import { LEASE, link, type Register, result, seeded, T0 } from './fixtures.js';

export function eventTests(it: Register, eventLimit: number | undefined): void {
  it('events have increasing ids, carry counts, and readEvents() resumes after an id', async (s) => {
    const job = await seeded(s, {}, [link('/a'), link('/b')]);
    const leases = (await s.claim({ limit: 2, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
    await s.complete(leases[0]!, { result: result(leases[0]!), links: [], now: T0 + 2 });
    // appendEvents() is optional (deprecated): when the adapter has it, its event joins the log in order.
    const custom = s.appendEvents !== undefined;
    if (s.appendEvents !== undefined) {
      const appended = await s.appendEvents(job.id, [{ type: 'page:done', at: new Date(T0).toISOString(), url: 'http://example.test/custom' }]);
      assert.equal(appended.length, 1);
    }
    await s.complete(leases[1]!, { result: result(leases[1]!, false), links: [], now: T0 + 3 });
    const all = await s.readEvents(job.id, null, 100);
    assert.deepEqual(
      all.map((e) => e.type),
      ['job:created', 'job:started', 'page:done', 'page:done', ...(custom ? ['page:done'] : []), 'page:failed', 'job:completed'],
    );
    const ids = all.map((e) => BigInt(e.id));
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, 'ids increase');
    assert.ok(all.every((e) => e.jobId === job.id));
    assert.equal(all[2]!.url, job.url);
    assert.deepEqual(all[all.length - 1]!.counts, { discovered: 3, queued: 0, inProgress: 0, succeeded: 2, failed: 1, skipped: 0 });
    assert.deepEqual(all.find((e) => e.type === 'page:failed')?.error, { code: 'http_error', message: 'HTTP 404' });
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

  if (eventLimit !== undefined) {
    const limit = eventLimit;
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
}
