/**
 * The model-based test: fast-check generates sequences of operations (create jobs, claim with
 * various limits, complete with links and skipped links, completeMany of several current or stale
 * leases when the adapter has it, retry, release, cancel, robots.txt
 * records, the clock moving on); each runs on the adapter and on the reference model
 * (model-reference.ts), and after every step the adapter's job, its new events and, at the end,
 * its results must be what the model says. fast-check is loaded only here, when the test runs.
 */
import assert from 'node:assert/strict';
import type * as FastCheck from 'fast-check';
import type { CrawlStorage, Lease } from '../core/storage.js';
import type { Job, PageResult, ProgressEvent } from '../core/types.js';
import { makeJob, type Register, seedOf, T0 } from './fixtures.js';
import { type CreateOp, completeInput, describeOp, type ExpectedEvent, HOSTS, type LeasePick, linkUrl, type Op, sequence } from './model-ops.js';
import { JobModel } from './model-reference.js';

/** How the model test runs; the defaults keep it to a few seconds per adapter. */
export interface ConformanceModelOptions {
  /** Operation sequences to run. @default 100 */
  numRuns?: number;
  /** Operations per sequence, at most. @default 40 */
  maxSteps?: number;
  /**
   * No new sequence starts after this long (once 5 have run), so a slow adapter runs fewer of them
   * rather than timing out. A failure found is shrunk and reported with its seed all the same.
   * @default 10000
   */
  timeBudgetMs?: number;
  /** Replays a failure: the seed its message printed. */
  seed?: number;
  /** With `seed`: the path its message printed (replays the shrunk sequence alone). */
  path?: string;
}

const MODEL_TEST = 'model: random sequences of operations agree with a reference model (fast-check)';

/** Jobs one sequence creates, at most. */
const MAX_JOBS = 4;

interface RunJob {
  job: Job;
  model: JobModel;
  maxDepth: number;
  lastEventId: string | null;
}

/** One sequence against one storage: a fresh set of jobs, a clock from T0. */
class Run {
  private now = T0;
  private readonly jobs: RunJob[] = [];
  /** Every lease handed out, stale ones included (completing those must be refused). */
  private readonly leases: Array<{ lease: Lease; run: RunJob }> = [];

  constructor(private readonly s: CrawlStorage) {}

  /** The `i`-th newest job still active, or of all jobs when none is. */
  private jobAt(i: number): RunJob {
    const active = this.jobs.filter((run) => run.model.active);
    const from = active.length > 0 ? active : this.jobs;
    return from[from.length - 1 - (i % from.length)]!;
  }

  /** A lease of the run (of `of` alone when given), current or stale as `pick` says. */
  private leaseAt(pick: LeasePick, of?: RunJob): { lease: Lease; run: RunJob } | undefined {
    const from = this.leases.filter((held) => (of === undefined || held.run === of) && held.run.model.isCurrent(held.lease) !== pick.stale);
    return from.length === 0 ? undefined : from[from.length - 1 - (pick.n % from.length)];
  }

  async create(op: CreateOp): Promise<void> {
    if (this.jobs.length >= MAX_JOBS) return;
    const { maxPages, perHostConcurrency, perHostDelayMs, maxDepth } = op;
    const job = {
      ...makeJob({ maxPages, perHostConcurrency, perHostDelayMs, maxDepth }),
      url: linkUrl({ host: 0, path: 0 }),
      createdAt: new Date(this.now).toISOString(),
    };
    const created = await this.s.createJob(job, seedOf(job));
    const run: RunJob = { job, model: new JobModel(job.id, { maxPages, perHostConcurrency, perHostDelayMs }, seedOf(job)), maxDepth, lastEventId: null };
    this.jobs.push(run);
    assert.deepEqual(view(created.job), view(run.model), 'createJob() returns the job as stored');
    await this.verify(run, created.events, [{ type: 'job:created', url: job.url, counts: run.model.counts() }]);
  }

  async step(op: Op): Promise<void> {
    const now = this.now;
    switch (op.kind) {
      case 'create':
        return this.create(op);
      case 'tick':
        this.now += op.ms;
        return;
      case 'recreate': {
        const run = this.jobAt(op.job);
        const again = { ...makeJob({ maxPages: 1 }, run.job.id), url: 'http://other.test/' };
        await assert.rejects(
          this.s.createJob(again, seedOf(again)),
          (e: { code?: unknown }) => e?.code === 'conflict',
          'createJob() of an existing id: conflict',
        );
        return this.verify(run, [], []);
      }
      case 'claim': {
        const run = this.jobAt(op.job);
        const query = { limit: op.limit, leaseMs: op.leaseMs, now, jobId: run.job.id };
        const out = await this.s.claim(query);
        const expected = run.model.claim(out.leases, query, out.nextReadyAt);
        for (const lease of out.leases) this.leases.push({ lease, run });
        return this.verify(run, out.events, expected);
      }
      case 'complete': {
        const held = this.leaseAt(op.lease);
        if (held === undefined) return;
        const { lease, run } = held;
        const input = completeInput(run.maxDepth, lease, op, now);
        const out = await this.s.complete(lease, input);
        const expected = run.model.complete(lease, input);
        assert.deepEqual({ ok: out.ok, admitted: out.admitted }, expected.value, 'complete() outcome');
        return this.verify(run, out.events, expected.events);
      }
      case 'completeMany': {
        if (typeof this.s.completeMany !== 'function') return;
        const run = this.jobAt(op.job);
        // Leases are picked before any is applied, so one may come twice (the second is refused).
        const items = op.items.flatMap((spec) => {
          const held = this.leaseAt(spec.lease, run);
          return held === undefined ? [] : [{ lease: held.lease, input: completeInput(run.maxDepth, held.lease, spec, now) }];
        });
        if (items.length === 0) return;
        const out = await this.s.completeMany(items);
        assert.equal(out.length, items.length, 'completeMany() returns one result per item');
        const expected: ExpectedEvent[] = [];
        for (const [i, { lease, input }] of items.entries()) {
          const step = run.model.complete(lease, input);
          assert.deepEqual({ ok: out[i]!.ok, admitted: out[i]!.admitted }, step.value, `completeMany() item ${i}: as complete() in order`);
          expected.push(...step.events);
        }
        return this.verify(
          run,
          out.flatMap((item) => item.events),
          expected,
        );
      }
      case 'retry': {
        const held = this.leaseAt(op.lease);
        if (held === undefined) return;
        const input = { notBefore: now + op.backoffMs, error: { code: 'timeout', message: 'timed out' }, now };
        assert.equal(await this.s.retry(held.lease, input), held.run.model.retry(held.lease, input), 'retry() outcome');
        return this.verify(held.run, [], []);
      }
      case 'release': {
        const picked = op.leases.flatMap((i) => this.leaseAt(i) ?? []);
        if (picked.length === 0) return;
        const released = await this.s.release(picked.map((p) => p.lease));
        assert.equal(released, picked.filter((p) => p.run.model.release(p.lease)).length, 'release() count');
        for (const run of new Set(picked.map((p) => p.run))) await this.verify(run, [], []);
        return;
      }
      case 'cancel': {
        const run = this.jobAt(op.job);
        const out = await this.s.cancelJob(run.job.id, now);
        const expected = run.model.cancel(now);
        assert.ok(out.job, 'cancelJob() of a job that exists returns it');
        assert.deepEqual(view(out.job), view(run.model), 'cancelJob() returns the job as stored');
        return this.verify(run, out.events, expected);
      }
      case 'robots': {
        const run = this.jobAt(op.job);
        const origin = `http://${HOSTS[op.host]}`;
        const record = {
          origin,
          status: 'ok' as const,
          rules: [],
          crawlDelayMs: op.crawlDelayMs,
          httpStatus: 200,
          fetchedAt: new Date(now).toISOString(),
          expiresAt: now + 86_400_000,
        };
        await this.s.putRobots(run.job.id, record);
        run.model.putRobots(HOSTS[op.host]!, op.crawlDelayMs);
        assert.deepEqual(await this.s.getRobots(run.job.id, origin), record, 'getRobots() returns what putRobots() stored');
        return this.verify(run, [], []);
      }
    }
  }

  /** The job as stored and the events appended since the last step, against the model. */
  private async verify(run: RunJob, returned: ProgressEvent[], expected: ExpectedEvent[]): Promise<void> {
    run.model.checkInvariants();
    assert.deepEqual(view(await this.s.getJob(run.job.id)), view(run.model), 'getJob() agrees with the model');
    const logged = await this.s.readEvents(run.job.id, run.lastEventId, 100);
    assert.deepEqual(logged, returned, 'the events the operation returned are the ones it appended');
    assert.deepEqual(
      logged.map((e) => e.type),
      expected.map((e) => e.type),
      'event types',
    );
    for (const [i, event] of logged.entries()) {
      const want = expected[i]!;
      assert.equal(event.jobId, run.job.id);
      assert.ok(run.lastEventId === null || BigInt(event.id) > BigInt(run.lastEventId), `event ids increase (${event.id} after ${run.lastEventId})`);
      run.lastEventId = event.id;
      assert.deepEqual({ url: event.url ?? undefined, error: event.error ?? undefined }, { url: want.url, error: want.error }, `${event.type} event`);
      const c = event.counts;
      if (want.counts !== undefined) assert.deepEqual(c, want.counts, `counts carried by ${event.type}`);
      else assert.equal(c.queued + c.inProgress + c.succeeded + c.failed + c.skipped, c.discovered, `counts carried by ${event.type} add up`);
    }
  }

  /** Every job as stored at the end (untouched jobs unchanged), and its results, page by page. */
  async finish(): Promise<void> {
    for (const run of this.jobs) {
      await this.verify(run, [], []);
      const results: PageResult[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 100; page++) {
        const got: { items: PageResult[]; nextCursor: string | null } = await this.s.listResults(run.job.id, { limit: 4, cursor });
        results.push(...got.items);
        cursor = got.nextCursor;
        if (cursor === null) break;
      }
      assert.deepEqual(results, run.model.results, 'listResults() holds every result stored, once, in order');
    }
  }
}

function view(job: (Pick<Job, 'status' | 'startedAt' | 'finishedAt' | 'error'> & { counts: Job['counts'] | (() => Job['counts']) }) | null) {
  if (job === null) return null;
  const counts = typeof job.counts === 'function' ? job.counts() : job.counts;
  return { status: job.status, counts: { ...counts }, startedAt: job.startedAt, finishedAt: job.finishedAt, error: job.error };
}

const MISSING = new Set(['ERR_MODULE_NOT_FOUND', 'MODULE_NOT_FOUND']);
/** Sequences run whatever the time budget. */
const MIN_RUNS = 5;

/** Refuses bad model options at registration, naming the field. */
function checkOptions(options: ConformanceModelOptions): void {
  const integer = (field: 'numRuns' | 'maxSteps' | 'timeBudgetMs' | 'seed', min: number) => {
    const value = options[field];
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= min)) {
      throw new TypeError(`[crawl-engine] runStorageConformance: model.${field}: expected an integer >= ${min}, got ${String(value)}`);
    }
  };
  integer('numRuns', 1);
  integer('maxSteps', 0);
  integer('timeBudgetMs', 0);
  integer('seed', Number.MIN_SAFE_INTEGER);
  if (options.path !== undefined && (typeof options.path !== 'string' || options.seed === undefined)) {
    throw new TypeError('[crawl-engine] runStorageConformance: model.path: expected a string, with model.seed');
  }
}

export function modelTests(it: Register, options: ConformanceModelOptions, timeoutMs: number): void {
  checkOptions(options);
  it(MODEL_TEST, async (s, skip) => {
    let fc: typeof FastCheck;
    try {
      fc = await import('fast-check');
    } catch (error) {
      if (MISSING.has((error as { code?: string }).code ?? '') && String(error).includes('fast-check')) {
        skip('fast-check is not installed: `npm install --save-dev fast-check` to run the model-based test');
      }
      throw error;
    }
    // The budget bounds the search: past it, new sequences pass without running (fast-check has no
    // "stop early" that is not a failure). Once one failed, shrinking it runs on, up to the timeout.
    const deadline = Date.now() + (options.timeBudgetMs ?? 10_000);
    let ran = 0;
    let failing = false;
    const ops = sequence(fc, options.maxSteps ?? 40, { completeMany: typeof s.completeMany === 'function' });
    const property = fc.asyncProperty(ops, async ([first, steps]) => {
      if (!failing && ran >= MIN_RUNS && Date.now() > deadline) return;
      ran++;
      const run = new Run(s);
      for (const [i, op] of [first as Op, ...steps].entries()) {
        try {
          await run.step(op);
        } catch (error) {
          failing = true;
          throw new Error(`step ${i} (${describeOp(op)}): ${(error as Error).message}`, { cause: error });
        }
      }
      try {
        await run.finish();
      } catch (error) {
        failing = true;
        throw error;
      }
    });
    const details = await fc.check(property, {
      numRuns: options.numRuns ?? 100,
      ...(options.seed === undefined ? {} : { seed: options.seed }),
      ...(options.path === undefined ? {} : { path: options.path }),
      // Stop shrinking in time to report the failure rather than time out.
      interruptAfterTimeLimit: Math.max(1000, timeoutMs - 5000),
    });
    if (details.failed) {
      const replay = details.counterexamplePath === null ? '' : `, path: '${details.counterexamplePath}'`;
      const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      throw new Error(
        `${fc.defaultReportMessage(details)}\n\n${cause}\n\nReplay it with runStorageConformance({ ..., model: { seed: ${details.seed}${replay} } })`,
        { cause: details.errorInstance },
      );
    }
  });
}
