/**
 * Conformance tests: the webhook outbox (optional: `addWebhookJob` … `listWebhookDeliveries`, all
 * or none). Registrations with their pump state (compare-and-set on `seq`), deliveries claimed with
 * leases, settled by the current token only, listed in enqueue order, and removed with their job.
 *
 * Claims serve every job at once (there is no `jobId` to scope them), so these tests expect the
 * outbox of each test's storage to hold only what the test stored: a storage that shares one
 * database between tests needs its outbox emptied (or its own tables) per test.
 */
import assert from 'node:assert/strict';
import type {
  CrawlStorage,
  NewWebhookDelivery,
  WebhookDelivery,
  WebhookDeliveryLease,
  WebhookEventType,
  WebhookJob,
  WebhookPumpState,
} from '../core/storage.js';
import { jobId, LEASE, makeJob, type Register, rejectsWithCode, result, seedOf, T0 } from './fixtures.js';

/** The outbox methods, present (the group is skipped for a storage without them). */
type Outbox = Required<
  Pick<
    CrawlStorage,
    | 'addWebhookJob'
    | 'listWebhookJobs'
    | 'removeWebhookJob'
    | 'enqueueWebhookDeliveries'
    | 'claimWebhookDeliveries'
    | 'settleWebhookDelivery'
    | 'listWebhookDeliveries'
  >
> &
  CrawlStorage;

function outboxOf(s: CrawlStorage, skip: (reason: string) => never): Outbox {
  if (typeof s.claimWebhookDeliveries !== 'function') skip('the webhook outbox is optional and not implemented');
  for (const name of [
    'addWebhookJob',
    'listWebhookJobs',
    'removeWebhookJob',
    'enqueueWebhookDeliveries',
    'settleWebhookDelivery',
    'listWebhookDeliveries',
  ] as const) {
    assert.equal(typeof s[name], 'function', `the webhook outbox is all of its methods or none: ${name} is missing`);
  }
  return s as Outbox;
}

/** A pump state with `seq` (the rest as a processor might leave it). */
function pump(seq: number, done = false, sent: WebhookEventType[] = ['job.started']): WebhookPumpState {
  return { seq, resultsCursor: seq > 0 ? String(seq * 7) : null, resultsSkip: seq % 3, sent, done };
}

function delivery(job: string, n: number, createdAt: number, payload?: string, event: WebhookEventType = 'page'): NewWebhookDelivery {
  return {
    id: `${job}_d${n}`,
    jobId: job,
    event,
    url: `http://hooks.example.test/receive?job=${job}&n=${n}`,
    payload: payload ?? JSON.stringify({ type: event, jobId: job, n }),
    createdAt,
  };
}

/** What a delivery reads as right after it was enqueued. */
const stored = (d: NewWebhookDelivery): WebhookDelivery => ({
  ...d,
  state: 'pending',
  attempts: 0,
  nextAttemptAt: d.createdAt,
  deliveredAt: null,
  lastError: null,
});

async function allDeliveries(s: Outbox, job: string, pageSize = 100): Promise<WebhookDelivery[]> {
  const out: WebhookDelivery[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const got: { items: WebhookDelivery[]; nextCursor: string | null } = await s.listWebhookDeliveries(job, { limit: pageSize, cursor });
    out.push(...got.items);
    cursor = got.nextCursor;
    if (cursor === null) break;
  }
  return out;
}

/** A registration without its `ordinal` (a number each storage picks). */
function withoutOrdinal(w: WebhookJob | undefined): Omit<WebhookJob, 'ordinal'> | undefined {
  if (w === undefined) return undefined;
  const { ordinal: _ordinal, ...rest } = w;
  return rest;
}

async function registered(s: Outbox, limit = 1000): Promise<WebhookJob[]> {
  return s.listWebhookJobs(limit);
}

/** Registers a job and enqueues `deliveries` with one compare-and-set from no state to `pump(1)`. */
async function withDeliveries(s: Outbox, job: string, deliveries: NewWebhookDelivery[], now = T0): Promise<void> {
  await s.addWebhookJob(job, now);
  assert.equal(await s.enqueueWebhookDeliveries(job, null, pump(1), deliveries), true, 'the first enqueue of a registered job is stored');
}

const ids = (leases: WebhookDeliveryLease[]) => leases.map((l) => l.delivery.id);
const serverError = { code: 'http_error', message: 'HTTP 503 from the receiver', status: 503 };
const noAnswer = { code: 'timeout', message: 'no answer in 10000 ms', status: null };

export function webhookTests(it: Register): void {
  it('webhooks: addWebhookJob() is idempotent, listWebhookJobs() lists oldest registration first up to limit, removeWebhookJob() forgets one', async (st, skip) => {
    const s = outboxOf(st, skip);
    const [a, b, c] = [jobId(), jobId(), jobId()];
    await s.addWebhookJob(a, T0 + 1);
    await s.addWebhookJob(b, T0 + 2);
    await s.addWebhookJob(c, T0 + 3);
    await s.addWebhookJob(a, T0 + 9);
    const mine = (list: WebhookJob[]) => list.filter((w) => [a, b, c].includes(w.jobId));
    const first = mine(await registered(s));
    assert.deepEqual(
      first.map(({ ordinal: _, ...rest }) => rest),
      [
        { jobId: a, registeredAt: T0 + 1, state: null },
        { jobId: b, registeredAt: T0 + 2, state: null },
        { jobId: c, registeredAt: T0 + 3, state: null },
      ],
      'oldest registration first; a second addWebhookJob keeps the first registeredAt; no state before the first enqueue',
    );
    for (const w of first) assert.ok(Number.isSafeInteger(w.ordinal) && w.ordinal > 0, `ordinal is a positive integer: ${w.ordinal}`);
    assert.ok(first[0]!.ordinal < first[1]!.ordinal && first[1]!.ordinal < first[2]!.ordinal, 'ordinals increase with registration');
    assert.equal((await s.listWebhookJobs(2)).length, 2, 'at most limit');
    // The job rows are not needed: registrations come before createJob, and need no job.
    assert.equal(await s.getJob(a), null, 'a registration creates no job');
    await s.removeWebhookJob(b);
    await s.removeWebhookJob(jobId());
    assert.deepEqual(
      mine(await registered(s)).map((w) => w.jobId),
      [a, c],
      'removeWebhookJob() forgets that registration only (an unknown one is no error)',
    );
    assert.equal(await s.enqueueWebhookDeliveries(b, null, pump(1), [delivery(b, 1, T0)]), false, 'a removed registration takes no deliveries');
    assert.deepEqual(await allDeliveries(s, b), []);
    await s.addWebhookJob(b, T0 + 20);
    assert.deepEqual(
      mine(await registered(s)).map((w) => [w.jobId, w.registeredAt]),
      [
        [a, T0 + 1],
        [c, T0 + 3],
        [b, T0 + 20],
      ],
      'registered again: a new registration',
    );
  });

  it('webhooks: listWebhookJobs(limit, after) pages the registrations by ordinal', async (st, skip) => {
    const s = outboxOf(st, skip);
    const jobs = Array.from({ length: 7 }, () => jobId());
    for (const [i, job] of jobs.entries()) await s.addWebhookJob(job, T0 + i);
    const seen: string[] = [];
    let after = 0;
    for (let page = 0; page < 20; page++) {
      const got = await s.listWebhookJobs(3, after);
      assert.ok(got.length <= 3, 'at most limit');
      for (const w of got) assert.ok(w.ordinal > after, `only ordinals after ${after}: ${w.ordinal}`);
      seen.push(...got.map((w) => w.jobId));
      if (got.length < 3) break;
      after = got[got.length - 1]!.ordinal;
    }
    assert.deepEqual(
      seen.filter((id) => jobs.includes(id)),
      jobs,
      'paging with after visits every registration once, in registration order',
    );
    const all = await s.listWebhookJobs(1000);
    const last = all[all.length - 1]!;
    assert.deepEqual(await s.listWebhookJobs(10, last.ordinal), [], 'nothing after the newest');
    // Done (or removed) ones leave the listing; a new registration comes after every earlier one.
    assert.equal(await s.enqueueWebhookDeliveries(jobs[6]!, null, pump(1, true), []), true);
    await s.removeWebhookJob(jobs[5]!);
    const late = jobId();
    await s.addWebhookJob(late, T0 + 100);
    const after5 = await s.listWebhookJobs(10, all.find((w) => w.jobId === jobs[4])!.ordinal);
    assert.deepEqual(
      after5.map((w) => w.jobId),
      [late],
      'after the fifth: the done and removed ones are gone, the new registration follows',
    );
    assert.ok(after5[0]!.ordinal > last.ordinal, 'a new registration has a greater ordinal than any before it');
  });

  it('webhooks: enqueueWebhookDeliveries() is a compare-and-set on the pump state: a stale expected state or an unregistered job stores nothing', async (st, skip) => {
    const s = outboxOf(st, skip);
    const job = jobId();
    const d = (n: number, payload?: string) => delivery(job, n, T0 + n, payload);
    assert.equal(await s.enqueueWebhookDeliveries(job, null, pump(1), [d(1)]), false, 'an unregistered job takes no deliveries');
    assert.deepEqual(await allDeliveries(s, job), [], 'and nothing of them is stored');

    await s.addWebhookJob(job, T0);
    const first = pump(2, false, ['job.started']);
    assert.equal(await s.enqueueWebhookDeliveries(job, null, first, [d(1), d(2)]), true);
    assert.deepEqual(await allDeliveries(s, job), [stored(d(1)), stored(d(2))], 'stored pending, 0 attempts, due at their createdAt');
    assert.deepEqual(
      withoutOrdinal((await registered(s)).find((w) => w.jobId === job)),
      { jobId: job, registeredAt: T0, state: first },
      'the next state is stored as given',
    );

    assert.equal(await s.enqueueWebhookDeliveries(job, null, pump(3), [d(3)]), false, 'expected none, but a state is stored');
    assert.equal(await s.enqueueWebhookDeliveries(job, pump(1), pump(3), [d(3)]), false, 'expected an older seq');
    assert.equal(await s.enqueueWebhookDeliveries(job, pump(5), pump(6), [d(3)]), false, 'expected a newer seq');
    assert.deepEqual(await allDeliveries(s, job), [stored(d(1)), stored(d(2))], 'a refused enqueue stores no delivery');
    assert.deepEqual((await registered(s)).find((w) => w.jobId === job)?.state, first, 'nor a state');

    // The stored state is compared by seq only; an id that exists is left as it is.
    const second = pump(4, false, ['job.started', 'job.completed']);
    assert.equal(await s.enqueueWebhookDeliveries(job, { ...first, resultsSkip: 99, sent: [] }, second, [d(2, '{"changed":true}'), d(3), d(3), d(4)]), true);
    assert.deepEqual(
      await allDeliveries(s, job),
      [stored(d(1)), stored(d(2)), stored(d(3)), stored(d(4))],
      'a duplicate id (stored before, or twice in one call) is kept once, as first stored',
    );
    assert.deepEqual((await registered(s)).find((w) => w.jobId === job)?.state, second);
    assert.equal(await s.enqueueWebhookDeliveries(job, second, pump(5), []), true, 'an enqueue of no deliveries moves the state on');

    // Two processors race from the same state: one wins.
    const raced = await Promise.all([s.enqueueWebhookDeliveries(job, pump(5), pump(6), [d(5)]), s.enqueueWebhookDeliveries(job, pump(5), pump(6), [d(6)])]);
    assert.deepEqual(
      raced.filter((ok) => ok),
      [true],
      'of two enqueues from the same state at once, exactly one is stored',
    );
    const winner = raced[0] ? 5 : 6;
    assert.deepEqual(
      (await allDeliveries(s, job)).map((x) => x.id),
      [1, 2, 3, 4, winner].map((n) => d(n).id),
      "only the winner's delivery",
    );

    const done = pump(7, true, ['job.started', 'job.completed']);
    assert.equal(await s.enqueueWebhookDeliveries(job, pump(6), done, [d(7)]), true, 'the last enqueue');
    assert.ok(!(await registered(s)).some((w) => w.jobId === job), 'a done state ends the registration: the job is not listed');
    assert.equal(await s.enqueueWebhookDeliveries(job, done, pump(8), [d(8)]), false, 'nor does it take more deliveries');
    assert.equal((await allDeliveries(s, job)).length, 6, 'its deliveries stay, to be delivered');
    assert.equal((await s.claimWebhookDeliveries({ limit: 100, leaseMs: LEASE, now: T0 + 100 })).filter((l) => l.delivery.jobId === job).length, 6);
  });

  it('webhooks: claimWebhookDeliveries() hands out due pending deliveries, earliest nextAttemptAt first, with fresh tokens and attempts counted', async (st, skip) => {
    const s = outboxOf(st, skip);
    const job = jobId();
    const [late, early, middle, future] = [delivery(job, 1, T0 + 3), delivery(job, 2, T0 + 1), delivery(job, 3, T0 + 2), delivery(job, 4, T0 + 500)];
    await withDeliveries(s, job, [late, early, middle, future]);
    assert.deepEqual(await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 }), [], 'nothing is due yet');

    const first = await s.claimWebhookDeliveries({ limit: 2, leaseMs: LEASE, now: T0 + 10 });
    assert.deepEqual(ids(first), [early.id, middle.id], 'at most limit, earliest nextAttemptAt first');
    const rest = await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 11 });
    assert.deepEqual(ids(rest), [late.id], 'the leased ones are not handed out again, the future one not yet');
    for (const [lease, d, now] of [
      [first[0]!, early, T0 + 10],
      [first[1]!, middle, T0 + 10],
      [rest[0]!, late, T0 + 11],
    ] as const) {
      assert.deepEqual(lease.delivery, { ...stored(d), attempts: 1 }, 'the delivery as stored, with this claim counted');
      assert.equal(lease.expiresAt, now + LEASE, 'the lease ends leaseMs after now');
      assert.equal(typeof lease.token, 'string');
    }
    assert.equal(new Set([...first, ...rest].map((l) => l.token)).size, 3, 'a fresh token each');
    assert.deepEqual(await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 499 }), [], 'all leased or not due');
    const [due] = await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 500 });
    assert.equal(due?.delivery.id, future.id, 'due at its createdAt');

    // The leases of the first three run out at T0 + 10 + LEASE and T0 + 11 + LEASE.
    const again = await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 10 + LEASE });
    assert.deepEqual(ids(again), [early.id, middle.id], 'an expired lease is dead: its delivery is claimed again');
    assert.deepEqual(
      again.map((l) => l.delivery.attempts),
      [2, 2],
      'attempts raised again',
    );
    assert.ok(!again.some((l) => first.some((f) => f.token === l.token)), 'with new tokens');
    assert.equal(await s.settleWebhookDelivery(first[0]!, { state: 'delivered', now: T0 + 12 + LEASE }), false, 'the old token is refused');
    assert.equal(await s.settleWebhookDelivery(again[0]!, { state: 'delivered', now: T0 + 12 + LEASE }), true, 'the new one settles it');
    assert.equal(
      await s.settleWebhookDelivery(rest[0]!, { state: 'delivered', now: T0 + 12 + LEASE }),
      true,
      'a lease that ran out but was not re-claimed still settles',
    );
    const listed = await allDeliveries(s, job);
    assert.deepEqual(
      listed.map((x) => [x.id, x.state, x.attempts]),
      [
        [late.id, 'delivered', 1],
        [early.id, 'delivered', 2],
        [middle.id, 'pending', 2],
        [future.id, 'pending', 1],
      ],
    );
  });

  it('webhooks: claimWebhookDeliveries() never hands one delivery to two live leases, even when claims race', async (st, skip) => {
    const s = outboxOf(st, skip);
    const jobs = [jobId(), jobId()];
    for (const job of jobs) {
      await withDeliveries(
        s,
        job,
        Array.from({ length: 12 }, (_, i) => delivery(job, i, T0 + i)),
      );
    }
    const rounds = await Promise.all(Array.from({ length: 6 }, () => s.claimWebhookDeliveries({ limit: 5, leaseMs: LEASE, now: T0 + 50 })));
    const claimed = rounds.flat();
    assert.equal(new Set(ids(claimed)).size, claimed.length, 'no delivery in two leases');
    assert.ok(claimed.length <= 24);
    const more = await s.claimWebhookDeliveries({ limit: 100, leaseMs: LEASE, now: T0 + 51 });
    const all = [...claimed, ...more];
    assert.equal(new Set(ids(all)).size, all.length, 'nor in a later claim while the leases live');
    assert.equal(all.length, 24, 'every delivery was handed out once');
    assert.ok(
      all.every((l) => l.delivery.attempts === 1),
      'each counted once',
    );
    // Settles race with claims of expired leases: each delivery is settled by one holder only.
    const expired = T0 + 51 + LEASE;
    const [reclaimed, settled] = await Promise.all([
      s.claimWebhookDeliveries({ limit: 100, leaseMs: LEASE, now: expired }),
      Promise.all(all.map((l) => s.settleWebhookDelivery(l, { state: 'delivered', now: expired }))),
    ]);
    for (const lease of all) {
      const i = all.indexOf(lease);
      const again = reclaimed.some((r) => r.delivery.id === lease.delivery.id);
      assert.ok(!(again && settled[i]), `${lease.delivery.id}: settled by its old lease and claimed again`);
      assert.ok(again || settled[i], `${lease.delivery.id}: either settled or claimed again`);
    }
  });

  it('webhooks: settleWebhookDelivery() records delivered, pending with a later nextAttemptAt, and failed; only pending ones are claimed again', async (st, skip) => {
    const s = outboxOf(st, skip);
    const job = jobId();
    const [ok, retried, given] = [
      delivery(job, 1, T0, undefined, 'job.started'),
      delivery(job, 2, T0, undefined, 'page'),
      delivery(job, 3, T0, undefined, 'job.failed'),
    ];
    await withDeliveries(s, job, [ok, retried, given]);
    const leases = await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 1 });
    const lease = (id: string) => leases.find((l) => l.delivery.id === id)!;
    assert.equal(leases.length, 3);

    assert.equal(await s.settleWebhookDelivery(lease(ok.id), { state: 'delivered', now: T0 + 2 }), true);
    assert.equal(await s.settleWebhookDelivery(lease(retried.id), { state: 'pending', nextAttemptAt: T0 + 5_000, error: serverError }), true);
    assert.equal(await s.settleWebhookDelivery(lease(given.id), { state: 'failed', error: noAnswer }), true);
    assert.deepEqual(await allDeliveries(s, job), [
      { ...stored(ok), state: 'delivered', attempts: 1, deliveredAt: T0 + 2 },
      { ...stored(retried), attempts: 1, nextAttemptAt: T0 + 5_000, lastError: serverError },
      { ...stored(given), state: 'failed', attempts: 1, lastError: noAnswer },
    ]);
    for (const l of leases) {
      assert.equal(await s.settleWebhookDelivery(l, { state: 'delivered', now: T0 + 3 }), false, `${l.delivery.id}: a settled lease is spent`);
    }
    assert.equal(
      await s.settleWebhookDelivery({ ...lease(ok.id), delivery: { ...lease(ok.id).delivery, id: `${job}_missing` } }, { state: 'delivered', now: T0 + 3 }),
      false,
      'a lease of a delivery that does not exist is refused',
    );

    assert.deepEqual(await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 4_999 }), [], 'the retry waits for its nextAttemptAt');
    const [retry] = await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 5_000 });
    assert.deepEqual(
      retry?.delivery,
      { ...stored(retried), attempts: 2, nextAttemptAt: T0 + 5_000, lastError: serverError },
      'claimed again at its time, its last error kept',
    );
    assert.deepEqual(
      await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 5_001 }),
      [],
      'delivered and failed ones are not claimed, nor the retry under its live lease',
    );
    const third = await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 5_000 + 100 * LEASE });
    assert.deepEqual(
      third.map((l) => [l.delivery.id, l.delivery.attempts]),
      [[retried.id, 3]],
      'long after: only the pending one, its lease run out, is claimed again',
    );
  });

  it('webhooks: a released delivery is handed back untried: pending, its attempt given back, its last error kept', async (st, skip) => {
    const s = outboxOf(st, skip);
    const job = jobId();
    const d = delivery(job, 1, T0);
    await withDeliveries(s, job, [d]);
    const [first] = await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 1 });
    assert.equal(await s.settleWebhookDelivery(first!, { state: 'pending', nextAttemptAt: T0 + 10, error: serverError }), true);
    const [second] = await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 10 });
    assert.equal(second?.delivery.attempts, 2);
    assert.equal(await s.settleWebhookDelivery(second!, { state: 'released', nextAttemptAt: T0 + 50 }), true);
    assert.deepEqual(
      await allDeliveries(s, job),
      [{ ...stored(d), attempts: 1, nextAttemptAt: T0 + 50, lastError: serverError }],
      'pending, one attempt (the released claim given back), the earlier error kept, due at the given time',
    );
    assert.equal(await s.settleWebhookDelivery(second!, { state: 'delivered', now: T0 + 20 }), false, 'the released lease is spent');
    assert.deepEqual(await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 49 }), [], 'not before its nextAttemptAt');
    const [third] = await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 50 });
    assert.deepEqual([third?.delivery.id, third?.delivery.attempts], [d.id, 2], 'claimed again from then on, attempts counted from the given-back number');
  });

  it('webhooks: listWebhookDeliveries() pages a job in enqueue order and refuses a cursor it did not hand out', async (st, skip) => {
    const s = outboxOf(st, skip);
    const [job, other] = [jobId(), jobId()];
    await s.addWebhookJob(job, T0);
    await s.addWebhookJob(other, T0);
    const made: NewWebhookDelivery[] = [];
    let state: WebhookPumpState | null = null;
    for (let round = 0; round < 4; round++) {
      // createdAt decreasing: enqueue order, not time order, is what the listing follows.
      const batch = [0, 1, 2].map((i) => delivery(job, round * 3 + i, T0 + 1000 - round * 3 - i));
      const next = pump(round + 1);
      assert.equal(await s.enqueueWebhookDeliveries(job, state, next, batch), true);
      assert.equal(await s.enqueueWebhookDeliveries(other, state, next, [delivery(other, round, T0)]), true);
      state = next;
      made.push(...batch);
    }
    const pages: string[][] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const page: { items: WebhookDelivery[]; nextCursor: string | null } = await s.listWebhookDeliveries(job, { limit: 5, cursor });
      pages.push(page.items.map((x) => x.id));
      cursor = page.nextCursor;
      if (cursor === null) break;
    }
    assert.deepEqual(
      pages,
      [made.slice(0, 5), made.slice(5, 10), made.slice(10)].map((p) => p.map((x) => x.id)),
      '12 in pages of 5, in enqueue order (a cursor past 9 catches text ordering)',
    );
    assert.deepEqual(await allDeliveries(s, job, 12), made.map(stored), 'a page of exactly all of them ends the listing');
    assert.deepEqual(
      (await allDeliveries(s, other)).map((x) => x.id),
      [0, 1, 2, 3].map((n) => delivery(other, n, T0).id),
      "another job's deliveries are its own",
    );
    assert.deepEqual(await s.listWebhookDeliveries(jobId(), { limit: 5 }), { items: [], nextCursor: null }, 'an unknown job has none');
    for (const bad of ['nope', '-1', '1.5', 'x'.repeat(30)]) {
      await rejectsWithCode(s.listWebhookDeliveries(job, { limit: 5, cursor: bad }), 'invalid_input', `cursor ${bad}`);
      await assert.rejects(s.listWebhookDeliveries(job, { limit: 5, cursor: bad }), (error: unknown) => {
        const errors = (error as { details?: { errors?: Array<{ path: string }> } }).details?.errors;
        assert.ok(String((error as Error).message).includes('cursor') || errors?.some((e) => e.path === 'cursor'), 'the error names cursor');
        return true;
      });
    }
  });

  it('webhooks: payloads, urls and events round-trip byte for byte (unicode, JSON-looking text, ~200 KB)', async (st, skip) => {
    const s = outboxOf(st, skip);
    const job = jobId();
    const payloads = [
      '{"title":"héllo — 日本語 🎉 \\u0000 Ω\u2028\u2029","q":"\\"quoted\\" | ~ \' ` \\\\ \\n"}',
      ' { "spaced" : [ 1 , 2.50 , 1e3 ] ,"dup":1,"dup":2 }\n',
      '~{"looks":"like a reply"}',
      '[]',
      `{"big":"${'页面 results 🎉 '.repeat(12_000)}"}`,
    ];
    const deliveries = payloads.map((payload, i) => ({
      ...delivery(job, i, T0 + i, payload, (['job.started', 'page', 'job.completed', 'job.failed', 'job.cancelled'] as const)[i]),
      url: `https://hooks.example.test/é/${i}?a=1&b=%20|~`,
    }));
    assert.ok(payloads[4]!.length > 150_000);
    await withDeliveries(s, job, deliveries);
    assert.deepEqual(await allDeliveries(s, job), deliveries.map(stored), 'listed exactly as enqueued');
    const leases = await s.claimWebhookDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 10 });
    assert.deepEqual(
      leases.map((l) => l.delivery.payload),
      payloads,
      'claimed exactly as enqueued',
    );
    for (const [i, l] of leases.entries()) assert.equal(Buffer.from(l.delivery.payload).equals(Buffer.from(payloads[i]!)), true);
  });

  it('webhooks: deleteJob() and the retention sweep remove a job’s registration and deliveries, and nothing of another job', async (st, skip) => {
    const s = outboxOf(st, skip);
    if (typeof s.deleteJob !== 'function') skip('deleteJob() is optional and not implemented');
    const made = async () => {
      const job = makeJob();
      await s.addWebhookJob(job.id, T0);
      await s.createJob(job, seedOf(job));
      assert.equal(
        await s.enqueueWebhookDeliveries(
          job.id,
          null,
          pump(3),
          [0, 1, 2].map((n) => delivery(job.id, n, T0 + n)),
        ),
        true,
      );
      return job;
    };
    const doomed = await made();
    const kept = await made();
    const lonely = jobId();
    await s.addWebhookJob(lonely, T0);
    const [leased] = (await s.claimWebhookDeliveries({ limit: 1, leaseMs: LEASE, now: T0 + 10 })).filter((l) => l.delivery.jobId === doomed.id);
    const keptBefore = await allDeliveries(s, kept.id);

    assert.equal((await s.deleteJob!(doomed.id, T0 + 20)).deleted, true);
    assert.deepEqual(await allDeliveries(s, doomed.id), [], 'its deliveries are gone');
    assert.ok(!(await registered(s)).some((w) => w.jobId === doomed.id), 'so is its registration');
    assert.equal(await s.enqueueWebhookDeliveries(doomed.id, pump(3), pump(4), [delivery(doomed.id, 9, T0)]), false, 'it takes no more deliveries');
    if (leased !== undefined)
      assert.equal(await s.settleWebhookDelivery(leased, { state: 'delivered', now: T0 + 21 }), false, 'a live lease of it settles nothing');
    assert.deepEqual(await allDeliveries(s, kept.id), keptBefore, "another job's deliveries are as they were");
    assert.deepEqual(
      (await registered(s)).filter((w) => w.jobId === kept.id || w.jobId === lonely).map((w) => [w.jobId, w.state?.seq ?? null]),
      [
        [kept.id, 3],
        [lonely, null],
      ],
      'other registrations stay, a registration without a job too',
    );
    const claimed = await s.claimWebhookDeliveries({ limit: 1000, leaseMs: LEASE, now: T0 + 100 * LEASE });
    assert.ok(!claimed.some((l) => l.delivery.jobId === doomed.id), 'no delivery of it is claimed');
    assert.equal(claimed.filter((l) => l.delivery.jobId === kept.id).length, 3, "the other job's are");

    if (typeof s.deleteFinishedJobs !== 'function') return;
    // Two months before the other tests' clock (and a month before the retention test's), so that
    // a shared storage's other jobs are never due.
    const TS = T0 - 60 * 86_400_000;
    const old = { ...makeJob(), createdAt: new Date(TS).toISOString() };
    await s.addWebhookJob(old.id, TS);
    await s.createJob(old, seedOf(old));
    assert.equal(await s.enqueueWebhookDeliveries(old.id, null, pump(1), [delivery(old.id, 0, TS)]), true);
    const [l] = (await s.claim({ limit: 1, leaseMs: LEASE, now: TS + 1, jobId: old.id })).leases;
    assert.ok(l);
    assert.equal((await s.complete(l, { result: result(l), links: [], now: TS + 2 })).ok, true);
    assert.equal((await s.getJob(old.id))?.status, 'completed');
    assert.deepEqual(await s.deleteFinishedJobs({ finishedBefore: TS + 10, limit: 10 }), { deleted: 1 });
    assert.deepEqual(await allDeliveries(s, old.id), [], 'the sweep removes its deliveries');
    assert.ok(!(await registered(s)).some((w) => w.jobId === old.id), 'and its registration');
    assert.equal((await allDeliveries(s, kept.id)).length, 3);
  });
}
