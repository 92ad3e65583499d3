/** Conformance tests: How `maxPages` is charged: admitted links, skipped links, refunds and spares, alone and under concurrent calls. */
import assert from 'node:assert/strict';
import { allowed, assertCountsAddUp, disallowed, LEASE, link, makeJob, type Register, result, robotsResult, seeded, seedOf, T0, unknown } from './fixtures.js';

export function maxPagesTests(it: Register): void {
  it('complete() never admits more than maxPages URLs, even under concurrent calls', async (s) => {
    const job = await seeded(s, { maxPages: 10 }, [link('/a'), link('/b'), link('/c')]);
    const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
    assert.equal(leases.length, 3);
    const outcomes = await Promise.all(
      leases.map((lease, i) =>
        s.complete(lease, { result: result(lease), links: Array.from({ length: 10 }, (_, j) => link(`/n${i * 5 + j}`, 2)), now: T0 + 2 }),
      ),
    );
    assert.equal(
      outcomes.reduce((sum, o) => sum + o.admitted, 0),
      6,
    );
    const after = await s.getJob(job.id);
    assert.equal(after?.counts.discovered, 10);
    assertCountsAddUp(after);
    const rest = (await s.claim({ limit: 50, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases;
    assert.equal(rest.length, 6);
    assert.equal(new Set(rest.map((l) => l.key)).size, 6);
  });

  it('complete() records skipped links (robots.txt disallows them) at once, past maxPages and without a charge, at most maxPages of them', async (s) => {
    const job = makeJob({ maxPages: 3 });
    await s.createJob(job, seedOf(job));
    const [seed] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: job.id })).leases;
    const done = await s.complete(seed!, {
      result: result(seed!),
      links: [link('/a'), link('/b'), link('/c')].map(allowed),
      skipped: [link('/x1'), link('/x2'), link('/x1'), link('/a')].map(disallowed),
      now: T0 + 1,
    });
    assert.equal(done.admitted, 2, 'the links fill maxPages');
    assert.deepEqual(
      done.events.map((e) => [e.type, e.url]),
      [
        ['page:done', job.url],
        ['page:skipped', link('/x1').url],
        ['page:skipped', link('/x2').url],
      ],
      'each new skipped link is recorded once, after the page; one already admitted is not',
    );
    assert.deepEqual(done.events[1]!.error, { code: 'robots', message: 'disallowed by robots.txt (Disallow: /)' });
    assert.deepEqual(done.events[2]!.counts, { discovered: 5, queued: 2, inProgress: 0, succeeded: 1, failed: 0, skipped: 2 });
    assert.deepEqual((await s.getJob(job.id))?.counts, { discovered: 5, queued: 2, inProgress: 0, succeeded: 1, failed: 0, skipped: 2 });
    assert.deepEqual((await s.listResults(job.id, { limit: 10 })).items, [result(seed!), disallowed(link('/x1')).result, disallowed(link('/x2')).result]);
    const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 2, jobId: job.id })).leases;
    assert.deepEqual(leases.map((l) => l.key).sort(), [link('/a').key, link('/b').key], 'skipped links are never claimed');
    // At most maxPages skipped links are recorded; past that they are dropped.
    const more = await s.complete(leases[0]!, {
      result: result(leases[0]!),
      links: [],
      skipped: [link('/x2'), link('/x3'), link('/x4')].map(disallowed),
      now: T0 + 3,
    });
    assert.deepEqual(
      more.events.map((e) => [e.type, e.url]),
      [
        ['page:done', leases[0]!.url],
        ['page:skipped', link('/x3').url],
      ],
    );
    const last = await s.complete(leases[1]!, { result: result(leases[1]!), links: [], skipped: [disallowed(link('/x5'))], now: T0 + 4 });
    assert.deepEqual(
      last.events.map((e) => e.type),
      ['page:done', 'job:completed'],
    );
    const after = await s.getJob(job.id);
    assert.equal(after?.status, 'completed');
    assert.deepEqual(after?.counts, { discovered: 6, queued: 0, inProgress: 0, succeeded: 3, failed: 0, skipped: 3 });
    assert.equal((await s.listResults(job.id, { limit: 10 })).items.length, 6);
  });

  it('a URL skipped for robots.txt after it was admitted gives its charge back, so a later link is admitted', async (s) => {
    // Their robots.txt was known to allow them: no spare is kept.
    const job = await seeded(s, { maxPages: 3 }, [link('/a'), link('/b'), link('/c')].map(allowed));
    const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
    assert.deepEqual(leases.map((l) => l.key).sort(), [link('/a').key, link('/b').key]);
    const [a, b] = [leases.find((l) => l.key === link('/a').key)!, leases.find((l) => l.key === link('/b').key)!];
    // The rules learned after admission disallow /a.
    const skipped = await s.complete(a, { result: robotsResult(a.url, a.depth, a.attempts), links: [], now: T0 + 2 });
    assert.deepEqual(
      skipped.events.map((e) => e.type),
      ['page:skipped'],
    );
    assert.equal((await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases.length, 0, 'nothing stands in for it yet');
    const done = await s.complete(b, { result: result(b), links: [link('/c', 2), link('/d', 2)].map(allowed), now: T0 + 4 });
    assert.equal(done.admitted, 1, 'the refunded charge admits one link');
    const [c] = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 5, jobId: job.id })).leases;
    assert.equal(c?.key, link('/c').key);
    const end = await s.complete(c!, { result: result(c!), links: [link('/e', 3)].map(allowed), now: T0 + 6 });
    assert.equal(end.admitted, 0, 'maxPages pages fetched: no more room');
    const after = await s.getJob(job.id);
    assert.equal(after?.status, 'completed');
    assert.deepEqual(after?.counts, { discovered: 4, queued: 0, inProgress: 0, succeeded: 3, failed: 0, skipped: 1 });
  });

  it('a refunded charge goes to the oldest spare: links kept past maxPages while URLs of unknown robots.txt are unfinished', async (s) => {
    const job = await seeded(s, { maxPages: 3 }, [link('/a'), link('/b'), link('/c'), link('/d'), link('/e')].map(unknown));
    // Two URLs of unknown robots.txt are unfinished: two spares (/c, /d), not claimable, not counted.
    assert.deepEqual((await s.getJob(job.id))?.counts, { discovered: 3, queued: 2, inProgress: 0, succeeded: 1, failed: 0, skipped: 0 });
    const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
    assert.deepEqual(leases.map((l) => l.key).sort(), [link('/a').key, link('/b').key]);
    const byKey = (path: string) => leases.find((l) => l.key === link(path).key)!;
    await s.complete(byKey('/a'), { result: robotsResult(byKey('/a').url, 1, 1), links: [], now: T0 + 2 });
    const [c] = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases;
    assert.equal(c?.key, link('/c').key, 'the oldest spare is admitted in place of the refunded URL, at once');
    await s.complete(byKey('/b'), { result: robotsResult(byKey('/b').url, 1, 1), links: [], now: T0 + 4 });
    const [d] = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 5, jobId: job.id })).leases;
    assert.equal(d?.key, link('/d').key);
    assert.deepEqual((await s.getJob(job.id))?.counts, { discovered: 5, queued: 0, inProgress: 2, succeeded: 1, failed: 0, skipped: 2 });
    await s.complete(c!, { result: result(c!), links: [unknown(link('/e'))], now: T0 + 6 });
    const done = await s.complete(d!, { result: result(d!), links: [], now: T0 + 7 });
    assert.deepEqual(
      done.events.map((e) => e.type),
      ['page:done', 'job:completed'],
    );
    const after = await s.getJob(job.id);
    assert.deepEqual(after?.counts, { discovered: 5, queued: 0, inProgress: 0, succeeded: 3, failed: 0, skipped: 2 }, 'maxPages pages fetched');
    const urls = (await s.listResults(job.id, { limit: 10 })).items.map((r) => r.url);
    assert.ok(!urls.includes(link('/e').url), 'a link past maxPages and past the spares is dropped');
  });

  it('maxPages holds under concurrent complete() calls that refund charges, admit spares and record skipped links', async (s) => {
    const first = Array.from({ length: 9 }, (_, i) => unknown(link(`/p${i}`)));
    const spares = Array.from({ length: 9 }, (_, i) => unknown(link(`/q${i}`)));
    const job = await seeded(s, { maxPages: 10 }, [...first, ...spares]);
    const leases = (await s.claim({ limit: 20, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
    assert.deepEqual(leases.map((l) => l.key).sort(), first.map((l) => l.key).sort());
    const outcomes = await Promise.all(
      leases.map((lease, i) =>
        i < 4
          ? s.complete(lease, { result: robotsResult(lease.url, 1, 1), links: [], now: T0 + 2 })
          : s.complete(lease, {
              result: result(lease),
              links: Array.from({ length: 5 }, (_, j) => unknown(link(`/n${i}_${j}`, 2))),
              skipped: Array.from({ length: 3 }, (_, j) => disallowed(link(`/s${i}_${j}`, 2))),
              now: T0 + 2,
            }),
      ),
    );
    assert.ok(outcomes.every((o) => o.ok));
    assert.equal(
      outcomes.reduce((sum, o) => sum + o.admitted, 0),
      0,
      'no room for new links: the refunds went to spares',
    );
    const after = await s.getJob(job.id);
    assertCountsAddUp(after);
    const c = after!.counts;
    assert.equal(c.succeeded + c.failed + c.queued + c.inProgress, 10, `fetched or to be fetched: exactly maxPages (${JSON.stringify(c)})`);
    assert.equal(c.skipped, 4 + 10, 'four refunded, and maxPages skipped links recorded of the fifteen');
    const log = await s.readEvents(job.id, null, 1000);
    assert.equal(log.filter((e) => e.type === 'page:skipped').length, 14);
    const rest = (await s.claim({ limit: 50, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases;
    assert.deepEqual(
      rest.map((l) => l.key).sort(),
      spares
        .slice(0, 4)
        .map((l) => l.key)
        .sort(),
      'the four oldest spares, once each',
    );
    for (const lease of rest) await s.complete(lease, { result: result(lease), links: [], now: T0 + 4 });
    const end = await s.getJob(job.id);
    assert.equal(end?.status, 'completed');
    assert.deepEqual(end?.counts, { discovered: 24, queued: 0, inProgress: 0, succeeded: 10, failed: 0, skipped: 14 });
  });
}
