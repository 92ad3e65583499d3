/**
 * Conformance tests: a frontier link's sitemap `<lastmod>` (`FrontierLink.lastmod`) is stored with
 * its entry when the link is admitted (by `createJob`'s seed, `complete`, `completeMany`, or later
 * from the spares) and handed back on every lease of the URL; a link without one has none; the
 * first admission of a URL wins over later duplicates.
 */
import assert from 'node:assert/strict';
import type { FrontierLink, Lease } from '../core/storage.js';
import { LEASE, link, makeJob, type Register, result, robotsResult, seeded, seedOf, T0, unknown } from './fixtures.js';

const dated = (found: FrontierLink, lastmod: string): FrontierLink => ({ ...found, lastmod });

/**
 * 64 UTF-16 units (the most a frontier entry keeps) of characters an adapter's encoding could trip
 * on: separators, quotes, backslashes, a tab, a newline, non-ASCII and a surrogate pair.
 */
const AWKWARD = `2030-01-02T03:04:05.678+01:00 |~,;:"'\\\t\n{}[]%_*?é漢😀`.padEnd(64, 'z');

const byKey = (leases: Lease[], path: string): Lease => {
  const found = leases.find((l) => l.key === link(path).key);
  assert.ok(found, `a lease of ${path}`);
  return found;
};

export function lastmodTests(it: Register): void {
  it('lastmod: a link admitted with a lastmod hands it back on its lease, a link without has none', async (s) => {
    assert.equal(AWKWARD.length, 64);
    const job = await seeded(s, {}, [dated(link('/a'), '2030-01-02'), link('/b'), dated(link('/c'), AWKWARD)]);
    const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
    assert.equal(leases.length, 3);
    assert.equal(byKey(leases, '/a').lastmod, '2030-01-02');
    assert.equal(byKey(leases, '/b').lastmod, undefined, 'a link admitted without a lastmod has none');
    assert.equal(byKey(leases, '/c').lastmod, AWKWARD, 'a lastmod of 64 units comes back exactly');
    // And on the lease of a later claim: after a retry, and after the lease expired.
    const a = byKey(leases, '/a');
    assert.equal(await s.retry(a, { notBefore: T0 + 2, error: { code: 'timeout', message: 'timed out' }, now: T0 + 2 }), true);
    const later = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 3 + LEASE, jobId: job.id })).leases;
    assert.equal(later.length, 3, 'the retried URL and the two expired leases');
    assert.equal(byKey(later, '/a').lastmod, '2030-01-02', 'kept across a retry');
    assert.equal(byKey(later, '/b').lastmod, undefined);
    assert.equal(byKey(later, '/c').lastmod, AWKWARD, 'kept when an expired lease is claimed again');
  });

  it('lastmod: the seed of createJob keeps its lastmod; a seed without one has none', async (s) => {
    const job = makeJob();
    await s.createJob(job, dated(seedOf(job), '2030-01-01T00:00:00Z'));
    const [lease] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: job.id })).leases;
    assert.equal(lease?.lastmod, '2030-01-01T00:00:00Z');
    const plain = makeJob();
    await s.createJob(plain, seedOf(plain));
    const [other] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: plain.id })).leases;
    assert.ok(other);
    assert.equal(other.lastmod, undefined);
  });

  it('lastmod: the first admission of a URL keeps its lastmod, within one call and across calls', async (s) => {
    const job = await seeded(s, {}, [link('/c'), dated(link('/a'), 'first'), dated(link('/a'), 'second'), link('/d')]);
    const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
    assert.equal(leases.length, 3);
    assert.equal(byKey(leases, '/a').lastmod, 'first', 'the first of two in one call');
    // /a goes back to pending; /c admits /a again (new lastmod) and /b twice; /d admits /b without one.
    const a = byKey(leases, '/a');
    assert.equal(await s.retry(a, { notBefore: T0 + 2, error: { code: 'timeout', message: 'timed out' }, now: T0 + 2 }), true);
    const c = byKey(leases, '/c');
    const fromC = await s.complete(c, {
      result: result(c),
      links: [dated(link('/a', 2), 'third'), dated(link('/b', 2), 'b1'), dated(link('/b', 2), 'b2')],
      now: T0 + 3,
    });
    assert.equal(fromC.admitted, 1, 'only /b is new');
    const d = byKey(leases, '/d');
    const fromD = await s.complete(d, { result: result(d), links: [link('/b', 2), dated(link('/d', 2), 'again')], now: T0 + 4 });
    assert.equal(fromD.admitted, 0);
    const next = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 5, jobId: job.id })).leases;
    assert.deepEqual(next.map((l) => [l.key, l.lastmod]).sort(), [
      [link('/a').key, 'first'],
      [link('/b').key, 'b1'],
    ]);
  });

  it('lastmod: completeMany() stores each item’s links with their lastmod', async (s, skip) => {
    if (typeof s.completeMany !== 'function') skip('the adapter has no completeMany() (optional)');
    const job = await seeded(s, {}, [link('/p'), link('/q')]);
    const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
    const p = byKey(leases, '/p');
    const q = byKey(leases, '/q');
    const out = await s.completeMany!([
      { lease: p, input: { result: result(p), links: [dated(link('/x', 2), 'x-from-p'), link('/y', 2)], now: T0 + 2 } },
      { lease: q, input: { result: result(q), links: [dated(link('/x', 2), 'x-from-q'), dated(link('/z', 2), AWKWARD)], now: T0 + 2 } },
    ]);
    assert.deepEqual(
      out.map((o) => [o.ok, o.admitted]),
      [
        [true, 2],
        [true, 1],
      ],
    );
    const next = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases;
    assert.deepEqual(next.map((l) => [l.key, l.lastmod]).sort(), [
      [link('/x').key, 'x-from-p'],
      [link('/y').key, undefined],
      [link('/z').key, AWKWARD],
    ]);
  });

  it('lastmod: completeMany() keeps the lastmod of a link admitted past the room as a spare', async (s, skip) => {
    if (typeof s.completeMany !== 'function') skip('the adapter has no completeMany() (optional)');
    // maxPages 3: the seed and /a are charged; /a's page gives /b (charged) and /c (a spare).
    const job = await seeded(s, { maxPages: 3 }, [unknown(link('/a'))]);
    const [a] = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
    assert.ok(a);
    const links = [unknown(dated(link('/b', 2), 'b-lastmod')), unknown(dated(link('/c', 2), 'c-lastmod'))];
    const [out] = await s.completeMany!([{ lease: a, input: { result: result(a), links, now: T0 + 2 } }]);
    assert.deepEqual([out?.ok, out?.admitted], [true, 1]);
    const [b] = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases;
    assert.equal(b?.key, link('/b').key);
    assert.equal(b.lastmod, 'b-lastmod');
    await s.complete(b, { result: robotsResult(b.url, 2, 1), links: [], now: T0 + 4 });
    const [c] = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 5, jobId: job.id })).leases;
    assert.equal(c?.key, link('/c').key, 'the spare is admitted in place of the refunded URL');
    assert.equal(c.lastmod, 'c-lastmod');
  });

  it('lastmod: a spare admitted in place of a refunded URL keeps its lastmod', async (s) => {
    // maxPages 2: the seed and /a are charged; /c is kept as a spare, /e dropped.
    const job = await seeded(s, { maxPages: 2 }, [unknown(link('/a')), unknown(dated(link('/c'), 'spare-lastmod')), dated(link('/e'), 'dropped')]);
    const [a] = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
    assert.equal(a?.key, link('/a').key);
    assert.equal(a.lastmod, undefined);
    await s.complete(a, { result: robotsResult(a.url, 1, 1), links: [], now: T0 + 2 });
    const [c] = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 3, jobId: job.id })).leases;
    assert.equal(c?.key, link('/c').key, 'the spare is admitted in place of the refunded URL');
    assert.equal(c.lastmod, 'spare-lastmod');
  });
}
