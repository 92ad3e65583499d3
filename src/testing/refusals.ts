/** Conformance tests: what storage refuses, a job id that exists already and one that does not exist. */
import assert from 'node:assert/strict';
import type { RobotsRecord } from '../core/storage.js';
import type { Job } from '../core/types.js';
import { disallowed, jobId, LEASE, link, makeJob, type Register, rejectsWithCode, result, robotsResult, seeded, seedOf, strayLease, T0 } from './fixtures.js';

const robotsRecord = (origin: string): RobotsRecord => ({
  origin,
  status: 'ok',
  rules: [{ allow: false, pattern: '/private' }],
  crawlDelayMs: 1000,
  httpStatus: 200,
  fetchedAt: new Date(T0).toISOString(),
  expiresAt: T0 + 86_400_000,
});

/** A record for the same id as `job`, different in everything else. */
const impostor = (job: Job): Job => ({ ...makeJob({ maxPages: 3, perHostConcurrency: 1 }, job.id), url: 'http://other.test/', metadata: { impostor: true } });

export function refusalTests(it: Register): void {
  it('createJob() refuses an id that exists with a conflict error and leaves that job as it was', async (s) => {
    const job = await seeded(s, { maxPages: 10 }, [link('/a'), link('/b')]);
    const [held] = (await s.claim({ limit: 1, leaseMs: LEASE, now: T0 + 1, jobId: job.id })).leases;
    assert.ok(held);
    const before = { job: await s.getJob(job.id), events: await s.readEvents(job.id, null, 100), results: await s.listResults(job.id, { limit: 100 }) };
    const other = impostor(job);
    await rejectsWithCode(s.createJob(other, seedOf(other)), 'conflict', 'createJob() of an id that exists');
    assert.deepEqual(await s.getJob(job.id), before.job, 'the stored job is unchanged');
    assert.deepEqual(await s.readEvents(job.id, null, 100), before.events, 'no event was appended');
    assert.deepEqual(await s.listResults(job.id, { limit: 100 }), before.results);
    // The frontier is as it was: the other start URL was not added, and the live lease is still current.
    const rest = (await s.claim({ limit: 10, leaseMs: LEASE, now: T0 + 2, jobId: job.id })).leases;
    assert.deepEqual(
      rest.map((l) => l.key),
      [link('/a').key, link('/b').key].filter((key) => key !== held.key),
    );
    assert.equal((await s.complete(held, { result: result(held), links: [], now: T0 + 3 })).ok, true);
  });

  it('createJob() of one id twice at once stores one job: the other call gets a conflict error', async (s) => {
    const job = makeJob();
    const other = impostor(job);
    const outcomes = await Promise.allSettled([s.createJob(job, seedOf(job)), s.createJob(other, seedOf(other))]);
    const won = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i === 0 ? job : other] : []));
    const lost = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as { code?: unknown }] : []));
    assert.equal(won.length, 1, 'exactly one createJob() succeeds');
    assert.equal(lost[0]?.code, 'conflict', `the other is refused with code conflict, got ${String(lost[0])}`);
    const stored = await s.getJob(job.id);
    assert.equal(stored?.url, won[0]!.url);
    assert.deepEqual(stored?.options, won[0]!.options);
    assert.deepEqual(stored?.counts, { discovered: 1, queued: 1, inProgress: 0, succeeded: 0, failed: 0, skipped: 0 });
    assert.deepEqual(
      (await s.readEvents(job.id, null, 100)).map((e) => e.type),
      ['job:created'],
    );
  });

  it('createJob() with an id that exists does not move that job in listJobs()', async (s) => {
    const first = { ...makeJob(), createdAt: new Date(T0).toISOString() };
    const second = { ...makeJob(), createdAt: new Date(T0 + 1).toISOString() };
    await s.createJob(first, seedOf(first));
    await s.createJob(second, seedOf(second));
    const other = impostor(first);
    await rejectsWithCode(s.createJob(other, seedOf(other)), 'conflict', 'createJob() of an id that exists');
    const ids = (await s.listJobs({ limit: 100 })).items.map((j) => j.id).filter((id) => id === first.id || id === second.id);
    assert.deepEqual(ids, [second.id, first.id], 'newest first, each once');
  });

  it('every operation on a job id that does not exist answers as documented and stores nothing', async (s) => {
    const id = jobId();
    assert.equal(await s.getJob(id), null);
    assert.deepEqual(await s.cancelJob(id, T0), { job: null, events: [] });
    assert.deepEqual(await s.readEvents(id, null, 100), []);
    assert.deepEqual(await s.readEvents(id, '5', 100), []);
    assert.deepEqual(await s.listResults(id, { limit: 10 }), { items: [], nextCursor: null });
    assert.equal(await s.getRobots(id, 'http://example.test'), null);
    const claimed = await s.claim({ limit: 5, leaseMs: LEASE, now: T0, jobId: id });
    assert.deepEqual(claimed.leases, []);
    assert.deepEqual(claimed.events, []);
    assert.equal(claimed.nextReadyAt ?? null, null, 'nothing waits on the clock');
    const stray = strayLease(id);
    assert.deepEqual(await s.complete(stray, { result: result(stray), links: [link('/x')], skipped: [disallowed(link('/s'))], now: T0 }), {
      ok: false,
      admitted: 0,
      events: [],
    });
    assert.deepEqual(await s.complete(stray, { result: robotsResult(stray.url, 0, 1), links: [], now: T0 }), { ok: false, admitted: 0, events: [] });
    assert.equal(await s.retry(stray, { notBefore: T0 + 100, error: { code: 'timeout', message: 't' }, now: T0 }), false);
    assert.equal(await s.release([stray]), 0);
    if (s.appendEvents !== undefined) {
      await rejectsWithCode(s.appendEvents(id, [{ type: 'page:done', at: new Date(T0).toISOString() }]), 'not_found', 'appendEvents() of a missing job');
    }
    // None of it brought the job into being.
    assert.equal(await s.getJob(id), null);
    assert.deepEqual(await s.readEvents(id, null, 100), []);
    assert.deepEqual(await s.listResults(id, { limit: 10 }), { items: [], nextCursor: null });
    assert.ok(!(await s.listJobs({ limit: 100 })).items.some((j) => j.id === id), 'listJobs() does not list it');
  });

  it('a lease for a URL a job does not have is refused like a stale one', async (s) => {
    const job = await seeded(s, {}, [link('/a')]);
    const before = await s.getJob(job.id);
    const stray = { ...strayLease(job.id), url: link('/nowhere').url, key: link('/nowhere').key };
    assert.deepEqual(await s.complete(stray, { result: result(stray), links: [link('/x')], now: T0 + 1 }), { ok: false, admitted: 0, events: [] });
    assert.equal(await s.retry(stray, { notBefore: T0 + 100, error: { code: 'timeout', message: 't' }, now: T0 + 1 }), false);
    assert.equal(await s.release([stray]), 0);
    // The pending URL with a made-up token: not a lease either.
    const forged = { ...strayLease(job.id), url: link('/a').url, key: link('/a').key };
    assert.deepEqual(await s.complete(forged, { result: result(forged), links: [], now: T0 + 1 }), { ok: false, admitted: 0, events: [] });
    assert.deepEqual(await s.getJob(job.id), before);
  });

  it('putRobots() for a job that does not exist stores nothing (it may throw not_found)', async (s) => {
    const id = jobId();
    const record = robotsRecord('http://example.test');
    try {
      await s.putRobots(id, record);
    } catch (error) {
      assert.equal((error as { code?: unknown }).code, 'not_found', `putRobots() of a missing job may only throw not_found, got ${String(error)}`);
    }
    assert.equal(await s.getRobots(id, record.origin), null, 'no robots.txt record is kept for a job that does not exist');
    assert.equal(await s.getJob(id), null);
  });
}
