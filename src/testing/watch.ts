/** Conformance tests: watch(), the push that wakes progress subscribers (adapters with `capabilities.push`). */
import assert from 'node:assert/strict';
import type { CrawlStorage } from '../core/storage.js';
import type { Job } from '../core/types.js';
import { LEASE, link, type Register, result, seeded, sleep, T0 } from './fixtures.js';

/** Counts a listener's calls. */
function counter() {
  const c = { calls: 0, listener: () => void c.calls++ };
  return c;
}

/** Waits until `done()` holds, for at most `ms`; false on timeout. */
async function until(done: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** Fetches one more page of `job` (claim and complete, no links): appends a `page:done` event. */
function pulser(s: CrawlStorage, job: Job) {
  let now = T0 + 1;
  return async () => {
    now += 1;
    const [lease] = (await s.claim({ limit: 1, leaseMs: LEASE, now, jobId: job.id })).leases;
    assert.ok(lease, 'the job has pages left to fetch');
    assert.equal((await s.complete(lease, { result: result(lease), links: [], now })).ok, true);
  };
}

export function watchTests(it: Register): void {
  it('watch() calls its listeners after complete() and cancelJob() append events, only for their job, until unsubscribed', async (s, skip) => {
    if (!s.capabilities.push) skip('capabilities.push is false: the engine polls readEvents() instead of calling watch()');
    assert.equal(typeof s.watch, 'function', 'capabilities.push is true, so watch() must be implemented (else the engine polls)');
    const watch = s.watch!.bind(s);
    const links = Array.from({ length: 60 }, (_, i) => link(`/w${i}`));
    const job = await seeded(s, {}, links);
    const other = await seeded(s, {}, links);
    const [a, b, c] = [counter(), counter(), counter()];
    const unsubscribes = [watch(job.id, a.listener), watch(job.id, b.listener), watch(other.id, c.listener)];
    const stopped = new Set<number>();
    const stop = (i: number) => {
      if (!stopped.has(i)) unsubscribes[i]!();
      stopped.add(i);
    };
    try {
      // A subscription may take a moment to be live (a LISTEN, a SUBSCRIBE): pulse until it is.
      const pulse = pulser(s, job);
      const pulseOther = pulser(s, other);
      assert.ok(await warmUp(pulse, () => a.calls > 0 && b.calls > 0), 'watch() never called its listeners');
      assert.ok(await warmUp(pulseOther, () => c.calls > 0), "watch() never called the other job's listener");
      await sleep(50);
      a.calls = 0;
      b.calls = 0;
      c.calls = 0;

      await pulse();
      assert.ok(await until(() => a.calls > 0 && b.calls > 0, 2000), 'complete() appended an event: every watcher of the job is called');
      await sleep(50);
      assert.equal(c.calls, 0, "another job's watcher is not called");

      stop(1);
      a.calls = 0;
      b.calls = 0;
      await pulse();
      assert.ok(await until(() => a.calls > 0, 2000), 'the remaining watcher is still called');
      await sleep(50);
      assert.equal(b.calls, 0, 'an unsubscribed listener is not called again');

      a.calls = 0;
      const cancelled = await s.cancelJob(job.id, T0 + 10_000);
      assert.equal(cancelled.events.length, 1);
      assert.ok(await until(() => a.calls > 0, 2000), 'cancelJob() appended job:cancelled: the watcher is called');
      await sleep(50);
      assert.equal(b.calls, 0);
      assert.equal(c.calls, 0);

      // Unsubscribing everything leaves nothing behind that calls a listener.
      stop(0);
      stop(2);
      a.calls = 0;
      await pulseOther();
      await sleep(100);
      assert.deepEqual([a.calls, b.calls, c.calls], [0, 0, 0], 'no listener is called after unsubscribing');
    } finally {
      for (let i = 0; i < unsubscribes.length; i++) stop(i);
    }
  });
}

/** Pulses every 100 ms until `ready()`, at most 40 times. */
async function warmUp(pulse: () => Promise<void>, ready: () => boolean): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    await pulse();
    if (await until(ready, 100)) return true;
  }
  return false;
}
