/** Conformance tests: Politeness enforced at claim time: per-host concurrency, per-host delay, Crawl-delay, nextReadyAt. */
import assert from 'node:assert/strict';
import type { Lease } from '../core/storage.js';
import { LEASE, link, type Register, result, seeded, T0 } from './fixtures.js';

export function politenessTests(it: Register): void {
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
}
