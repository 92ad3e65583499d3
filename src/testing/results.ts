/**
 * Conformance tests: `getResults` (recrawls) finds a job's results by URL, those stored by
 * `complete`, `completeMany` and the robots.txt skips recorded with a page, in the order asked,
 * with null for URLs without one and for unknown jobs; results of other jobs stay apart; a deleted
 * job has none; the fields a recrawl adds (`etag`, `lastModified`, `contentHash`, `change`,
 * `contentFrom`) come back as stored. Skipped for a storage without `getResults`.
 */
import assert from 'node:assert/strict';
import type { Lease } from '../core/storage.js';
import { disallowed, LEASE, link, makeJob, type Register, result, seedOf, T0 } from './fixtures.js';

export function resultsTests(it: Register): void {
  it('getResults: results by URL, in the order asked, null where there is none', async (s, skip) => {
    if (s.getResults === undefined) skip('the storage has no getResults (recrawls unsupported)');
    const job = makeJob();
    await s.createJob(job, seedOf(job));
    const [seed] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: job.id })).leases;
    const recrawlFields = {
      etag: 'W/"a \\"quoted\\" tag"',
      lastModified: 'Wed, 21 Oct 2015 07:28:00 GMT',
      contentHash: 'ab'.repeat(32),
      change: 'unchanged' as const,
      contentFrom: 'job_earlier',
    };
    const done = await s.complete(seed!, {
      result: { ...result(seed!), ...recrawlFields },
      links: [link('/a'), link('/b')],
      skipped: [disallowed(link('/private'))],
      now: T0 + 1,
    });
    assert.equal(done.ok, true);
    const leases = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 2, jobId: job.id })).leases;
    const byPath = (path: string): Lease => leases.find((l) => l.key === link(path).key)!;
    const items = [{ lease: byPath('/a'), input: { result: result(byPath('/a')), links: [], now: T0 + 3 } }];
    if (s.completeMany !== undefined) assert.equal((await s.completeMany(items))[0]?.ok, true);
    else assert.equal((await s.complete(items[0]!.lease, items[0]!.input)).ok, true);
    assert.equal((await s.complete(byPath('/b'), { result: result(byPath('/b'), false), links: [], now: T0 + 4 })).ok, true);

    const found = await s.getResults!(job.id, [link('/b').url, 'http://example.test/none', job.url, link('/private').url, link('/a').url]);
    assert.equal(found.length, 5);
    assert.equal(found[0]?.status, 404, 'the failed page');
    assert.equal(found[1], null, 'no result for a URL never stored');
    assert.deepEqual({ ...found[2], ...recrawlFields }, found[2], 'the recrawl fields come back as stored');
    assert.equal(found[2]?.title, `title of ${job.url}`);
    assert.equal(found[3]?.error?.code, 'robots', 'a robots.txt skip recorded with a page');
    assert.equal(found[4]?.url, link('/a').url, 'stored by completeMany');
    assert.deepEqual(await s.getResults!(job.id, []), []);
    assert.deepEqual(await s.getResults!('job_unknown', [job.url]), [null], 'an unknown job has none');
  });

  it('getResults: jobs stay apart, and a deleted job has none', async (s, skip) => {
    if (s.getResults === undefined) skip('the storage has no getResults (recrawls unsupported)');
    const one = makeJob();
    const two = makeJob();
    for (const job of [one, two]) {
      await s.createJob(job, seedOf(job));
      const [lease] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0, jobId: job.id })).leases;
      assert.equal((await s.complete(lease!, { result: { ...result(lease!), title: job.id }, links: [], now: T0 + 1 })).ok, true);
    }
    assert.deepEqual(
      (await s.getResults!(one.id, [one.url])).map((r) => r?.title),
      [one.id],
    );
    assert.deepEqual(
      (await s.getResults!(two.id, [two.url])).map((r) => r?.title),
      [two.id],
    );
    if (s.deleteJob === undefined) return;
    assert.equal((await s.deleteJob(one.id, T0 + 2)).deleted, true);
    assert.deepEqual(await s.getResults!(one.id, [one.url]), [null], 'deleted with its job');
    assert.deepEqual(
      (await s.getResults!(two.id, [two.url])).map((r) => r?.title),
      [two.id],
    );
  });
}
