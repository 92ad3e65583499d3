/**
 * Conformance tests: completeMany() (group commit). Each item must be exactly complete() applied
 * in order: fenced by its own lease, its links deduplicated against earlier items, maxPages and the
 * job's finish as if the items came one by one. Each scenario is also run with complete() item
 * after item on a twin job, and the two must agree. Skipped for adapters without completeMany().
 */
import assert from 'node:assert/strict';
import type { CompleteItem, CompleteResult, CrawlStorage, Lease } from '../core/storage.js';
import type { Job, ProgressEvent } from '../core/types.js';
import { allowed, assertCountsAddUp, disallowed, LEASE, link, type Register, result, robotsResult, seeded, T0, unknown } from './fixtures.js';

const NO_METHOD = 'the adapter has no completeMany() (optional: the processor then calls complete() once per page)';

type CompleteMany = (items: CompleteItem[]) => Promise<CompleteResult[]>;

function manyOf(s: CrawlStorage, skip: (reason: string) => never): CompleteMany {
  if (typeof s.completeMany !== 'function') skip(NO_METHOD);
  return (items) => s.completeMany!(items);
}

/** The jobs a scenario made and the items it stores. */
interface Scenario {
  jobs: Job[];
  items: CompleteItem[];
}

/** An event as both ways of storing must agree on (ids and job ids differ between twins). */
const eventView = (e: ProgressEvent) => ({ type: e.type, at: e.at, url: e.url ?? null, error: e.error ?? null, counts: e.counts });

/** What a scenario's jobs look like after its items were stored, checked for what holds either way. */
async function observe(s: CrawlStorage, scenario: Scenario, marks: Array<string | null>, results: CompleteResult[]) {
  assert.equal(results.length, scenario.items.length, 'one result per item, in order');
  const jobs = [];
  for (const [j, job] of scenario.jobs.entries()) {
    const returned = results.flatMap((out, i) => (scenario.items[i]!.lease.jobId === job.id ? out.events : []));
    const logged = await s.readEvents(job.id, marks[j] ?? null, 1000);
    assert.deepEqual(logged, returned, `job ${j}: the events the items returned, in item order, are the ones appended`);
    let last = marks[j] ?? null;
    for (const event of logged) {
      assert.equal(event.jobId, job.id);
      assert.ok(last === null || BigInt(event.id) > BigInt(last), `job ${j}: event ids increase (${event.id} after ${last})`);
      last = event.id;
    }
    const stored = await s.getJob(job.id);
    assert.ok(stored, 'the job exists');
    jobs.push({
      status: stored.status,
      counts: stored.counts,
      finishedAt: stored.finishedAt,
      error: stored.error,
      results: (await s.listResults(job.id, { limit: 1000 })).items,
      events: logged.map(eventView),
    });
  }
  return { results: results.map((out) => ({ ok: out.ok, admitted: out.admitted, events: out.events.map(eventView) })), jobs };
}

async function lastIds(s: CrawlStorage, jobs: Job[]): Promise<Array<string | null>> {
  return Promise.all(jobs.map(async (job) => (await s.readEvents(job.id, null, 1000)).at(-1)?.id ?? null));
}

/**
 * Runs `setup` twice; stores the first copy's items with one completeMany() call and the second's
 * with complete() one by one, and asserts that both end the same. Returns the batched copy.
 */
async function againstSequential(s: CrawlStorage, many: CompleteMany, setup: (s: CrawlStorage) => Promise<Scenario>) {
  const batched = await setup(s);
  const twin = await setup(s);
  const batchedMarks = await lastIds(s, batched.jobs);
  const results = await many(batched.items);
  const viaMany = await observe(s, batched, batchedMarks, results);
  const twinMarks = await lastIds(s, twin.jobs);
  const sequential: CompleteResult[] = [];
  for (const { lease, input } of twin.items) sequential.push(await s.complete(lease, input));
  const viaComplete = await observe(s, twin, twinMarks, sequential);
  assert.deepEqual(viaMany, viaComplete, 'completeMany() ends as complete() called item after item does');
  for (const job of batched.jobs) {
    const stored = await s.getJob(job.id);
    // A cancel drops what was queued or in progress from the counts, and only those.
    if (stored?.status !== 'cancelled') assertCountsAddUp(stored);
  }
  return { ...batched, results, view: viaMany };
}

const byPath = (leases: Lease[], path: string): Lease => {
  const found = leases.find((lease) => lease.key === link(path).key);
  assert.ok(found, `a lease of ${path}`);
  return found;
};

const REFUSED = { ok: false, admitted: 0, events: [] };

export function batchTests(it: Register): void {
  it('completeMany() of no items returns no results', async (s, skip) => {
    const many = manyOf(s, skip);
    assert.deepEqual(await many([]), []);
  });

  it('completeMany() fences each item by its own lease: a stale one (or one given twice) stores nothing, the others are stored', async (s, skip) => {
    const many = manyOf(s, skip);
    const { jobs, results, view } = await againstSequential(s, many, async (st) => {
      const job = await seeded(st, {}, [link('/a'), link('/b'), link('/c')]);
      const first = (await st.claim({ limit: 3, leaseMs: 1000, now: T0 + 1, jobId: job.id })).leases;
      const fresh = (await st.claim({ limit: 3, leaseMs: LEASE, now: T0 + 5000, jobId: job.id })).leases;
      assert.equal(fresh.length, 3, 'expired leases are claimed again');
      const [a, staleB, c] = [byPath(fresh, '/a'), byPath(first, '/b'), byPath(fresh, '/c')];
      const items: CompleteItem[] = [
        { lease: a, input: { result: result(a), links: [link('/x', 2), link('/y', 2)], now: T0 + 5001 } },
        { lease: staleB, input: { result: result(staleB), links: [link('/stale', 2)], skipped: [disallowed(link('/s', 2))], now: T0 + 5002 } },
        { lease: c, input: { result: result(c), links: [link('/x', 2), link('/z', 2)], now: T0 + 5003 } },
        { lease: a, input: { result: result(a), links: [link('/again', 2)], now: T0 + 5004 } },
      ];
      return { jobs: [job], items };
    });
    assert.deepEqual(results[1], REFUSED, 'the stale lease is refused');
    assert.deepEqual(results[3], REFUSED, 'a lease already spent earlier in the call is refused');
    assert.deepEqual(
      results.map((out) => [out.ok, out.admitted]),
      [
        [true, 2],
        [false, 0],
        [true, 1],
        [false, 0],
      ],
      '/x, found by an earlier item of the call, is not admitted again',
    );
    const job = await s.getJob(jobs[0]!.id);
    assert.deepEqual(job?.counts, { discovered: 7, queued: 3, inProgress: 1, succeeded: 3, failed: 0, skipped: 0 });
    assert.deepEqual(
      view.jobs[0]!.results.map((r) => r.url),
      [jobs[0]!.url, link('/a').url, link('/c').url],
      'nothing of the refused items is stored',
    );
  });

  it('completeMany() admits exactly maxPages URLs across its items, refunds included, as complete() one by one does', async (s, skip) => {
    const many = manyOf(s, skip);
    const { jobs, results } = await againstSequential(s, many, async (st) => {
      const job = await seeded(st, { maxPages: 5 }, [link('/a'), link('/b')].map(allowed));
      const leases = (await st.claim({ limit: 2, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      const [a, b] = [byPath(leases, '/a'), byPath(leases, '/b')];
      const items: CompleteItem[] = [
        { lease: a, input: { result: result(a), links: ['/c', '/d', '/e', '/f'].map((p) => unknown(link(p, 2))), now: T0 + 2 } },
        // robots.txt turned out to disallow /b: its charge goes to the oldest spare, /e.
        { lease: b, input: { result: robotsResult(b.url, b.depth, b.attempts), links: [], now: T0 + 3 } },
      ];
      return { jobs: [job], items };
    });
    assert.equal(
      results.reduce((sum, out) => sum + out.admitted, 0),
      2,
    );
    const c = (await s.getJob(jobs[0]!.id))!.counts;
    assert.equal(c.queued + c.inProgress + c.succeeded + c.failed, 5, 'pages fetched or to fetch: exactly maxPages');
    const rest = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 4, jobId: jobs[0]!.id })).leases;
    assert.deepEqual(
      rest.map((lease) => lease.key).sort(),
      ['/c', '/d', '/e'].map((p) => link(p).key),
    );
  });

  it('completeMany() admits new links first come first served across its items up to maxPages, failures included, as complete() one by one does', async (s, skip) => {
    const many = manyOf(s, skip);
    const { jobs, results, view } = await againstSequential(s, many, async (st) => {
      // robots.txt allows every link: no link is unsure, so none is kept as a spare past the room.
      const job = await seeded(st, { maxPages: 6 }, [link('/a'), link('/b'), link('/c')].map(allowed));
      const leases = (await st.claim({ limit: 3, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      const [a, b, c] = [byPath(leases, '/a'), byPath(leases, '/b'), byPath(leases, '/c')];
      const found = (paths: string[]) => paths.map((p) => allowed(link(p, 2)));
      const items: CompleteItem[] = [
        { lease: c, input: { result: result(c), links: found(['/d', '/b', '/d', '/e']), now: T0 + 2 } },
        { lease: a, input: { result: result(a, false), links: found(['/e', '/f']), now: T0 + 3 } },
        { lease: b, input: { result: result(b), links: found(['/g']), now: T0 + 4 } },
      ];
      return { jobs: [job], items };
    });
    assert.deepEqual(
      results.map((out) => [out.ok, out.admitted]),
      [
        [true, 2],
        [true, 0],
        [true, 0],
      ],
      'the first item fills the room; the later ones find none',
    );
    assert.deepEqual(
      results.map((out) => out.events.map((e) => [e.type, e.counts.inProgress, e.counts.discovered, e.counts.failed])),
      [[['page:done', 2, 6, 0]], [['page:failed', 1, 6, 1]], [['page:done', 0, 6, 1]]],
      'each page event carries the counts as they stood after its item',
    );
    assert.deepEqual(view.jobs[0]!.error, null);
    const rest = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 5, jobId: jobs[0]!.id })).leases;
    assert.deepEqual(
      rest.map((lease) => lease.key).sort(),
      ['/d', '/e'].map((p) => link(p).key),
      'the links of the earliest item, in order, each once',
    );
  });

  it('completeMany() whose last page ends the job, with no skipped link, appends job:completed after it', async (s, skip) => {
    const many = manyOf(s, skip);
    const { jobs, results } = await againstSequential(s, many, async (st) => {
      const job = await seeded(st, {}, [link('/a'), link('/b')].map(allowed));
      const leases = (await st.claim({ limit: 2, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      const items: CompleteItem[] = leases.map((lease, i) => ({ lease, input: { result: result(lease, i === 0), links: [], now: T0 + 2 + i } }));
      return { jobs: [job], items };
    });
    assert.deepEqual(
      results.map((out) => out.events.map((e) => e.type)),
      [['page:done'], ['page:failed', 'job:completed']],
    );
    const job = await s.getJob(jobs[0]!.id);
    assert.equal(job?.status, 'completed');
    assert.equal(job?.finishedAt, new Date(T0 + 3).toISOString());
  });

  it('completeMany() that finishes the job appends one job:completed, after its last item', async (s, skip) => {
    const many = manyOf(s, skip);
    const { jobs, results } = await againstSequential(s, many, async (st) => {
      const job = await seeded(st, {}, [link('/a'), link('/b'), link('/c')]);
      const leases = (await st.claim({ limit: 3, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      const [a, b, c] = [byPath(leases, '/a'), byPath(leases, '/b'), byPath(leases, '/c')];
      const items: CompleteItem[] = [
        { lease: a, input: { result: result(a), links: [], now: T0 + 2 } },
        { lease: b, input: { result: result(b, false), links: [], now: T0 + 3 } },
        { lease: c, input: { result: result(c), links: [], skipped: [disallowed(link('/s', 2))], now: T0 + 4 } },
      ];
      return { jobs: [job], items };
    });
    assert.deepEqual(
      results.map((out) => out.events.map((e) => e.type)),
      [['page:done'], ['page:failed'], ['page:done', 'page:skipped', 'job:completed']],
    );
    const job = await s.getJob(jobs[0]!.id);
    assert.equal(job?.status, 'completed');
    assert.equal(job?.finishedAt, new Date(T0 + 4).toISOString());
    assert.deepEqual(job?.counts, { discovered: 5, queued: 0, inProgress: 0, succeeded: 3, failed: 1, skipped: 1 });
    assert.equal((await s.readEvents(jobs[0]!.id, null, 1000)).filter((e) => e.type === 'job:completed').length, 1);
  });

  it('completeMany() for a cancelled job refuses every item and stores nothing', async (s, skip) => {
    const many = manyOf(s, skip);
    let counts: Job['counts'] | undefined;
    const { jobs, results, view } = await againstSequential(s, many, async (st) => {
      const job = await seeded(st, {}, [link('/a'), link('/b')]);
      const leases = (await st.claim({ limit: 2, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
      assert.equal(leases.length, 2);
      const cancelled = await st.cancelJob(job.id, T0 + 2);
      counts ??= cancelled.job?.counts;
      const items = leases.map((lease) => ({ lease, input: { result: result(lease), links: [link('/n', 2)], now: T0 + 3 } }));
      return { jobs: [job], items };
    });
    assert.deepEqual(results, [REFUSED, REFUSED]);
    assert.deepEqual(view.jobs[0]!.events, [], 'no event appended');
    assert.equal(view.jobs[0]!.results.length, 1, 'only the start URL, stored before the cancel');
    const job = await s.getJob(jobs[0]!.id);
    assert.equal(job?.status, 'cancelled');
    assert.deepEqual(job?.counts, counts);
  });

  it('completeMany() with items of two jobs stores each job as complete() one by one would', async (s, skip) => {
    const many = manyOf(s, skip);
    const { jobs, results } = await againstSequential(s, many, async (st) => {
      const one = await seeded(st, {}, [link('/a'), link('/b')]);
      const two = await seeded(st, { maxPages: 4 }, [link('/a'), link('/b')]);
      const ones = (await st.claim({ limit: 2, leaseMs: LEASE, now: T0 + 1, jobId: one.id })).leases;
      const twos = (await st.claim({ limit: 2, leaseMs: LEASE, now: T0 + 1, jobId: two.id })).leases;
      const lease = (leases: Lease[], path: string, links: string[], now: number): CompleteItem => {
        const held = byPath(leases, path);
        return { lease: held, input: { result: result(held), links: links.map((p) => link(p, 2)), now } };
      };
      const items = [lease(ones, '/a', ['/c'], T0 + 2), lease(twos, '/a', [], T0 + 2), lease(ones, '/b', ['/c', '/d'], T0 + 3), lease(twos, '/b', [], T0 + 3)];
      return { jobs: [one, two], items };
    });
    assert.deepEqual(
      results.map((out) => [out.admitted, out.events.map((e) => e.type)]),
      [
        [1, ['page:done']],
        [0, ['page:done']],
        [1, ['page:done']],
        [0, ['page:done', 'job:completed']],
      ],
    );
    assert.ok(
      results.every((out, i) => out.events.every((e) => e.jobId === jobs[i % 2]!.id)),
      'each item returns events of its own job',
    );
    assert.equal((await s.getJob(jobs[0]!.id))?.status, 'running');
    assert.deepEqual((await s.getJob(jobs[0]!.id))?.counts, { discovered: 5, queued: 2, inProgress: 0, succeeded: 3, failed: 0, skipped: 0 });
    assert.equal((await s.getJob(jobs[1]!.id))?.status, 'completed');
  });
}
