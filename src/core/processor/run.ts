/**
 * The scheduler behind `run()`: claims URLs and starts their pipelines with bounded concurrency
 * inside a time budget, then releases whatever it claimed but did not start, and returns once
 * every outcome its pages queued for storage is stored.
 */
import { BUDGETS } from '../constants.js';
import type { Lease } from '../storage.js';
import type { RunReport } from '../types.js';
import { TERMINAL_STATUSES } from '../types.js';
import { batchSettings, createBatcher } from './batcher.js';
import { type JobContext, jobContext, type Pipeline, type RunState } from './pipeline.js';
import { emptyRunReport } from './report.js';
import { newRobotsRunCache } from './robots-policy.js';
import { message, sleep } from './shared.js';
import type { ProcessorDeps, RunOptions } from './types.js';

export async function runScheduler(deps: ProcessorDeps, pipeline: Pipeline, options: RunOptions = {}): Promise<RunReport> {
  const { storage, emit, now } = deps;
  const budgetMs = options.budgetMs ?? BUDGETS.runMs;
  const concurrency = options.concurrency ?? 20;
  if (!Number.isFinite(budgetMs) || budgetMs < 0) throw new RangeError(`[crawl-engine] run(): budgetMs: expected a number >= 0, got ${String(budgetMs)}`);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new RangeError(`[crawl-engine] run(): concurrency: expected an integer >= 1, got ${String(concurrency)}`);
  const batch = batchSettings(options.batch, 'run()');
  const started = now();
  const deadline = started + budgetMs;
  const { signal } = options;
  const report = emptyRunReport();
  const touched = new Set<string>();
  // Pages launched and not yet ended: each may still queue one outcome with the batcher.
  let working = 0;
  // A lease must outlive its outcome's wait in the queue by far: the linger is kept to a tenth of it.
  const batcher = createBatcher(storage, batch && { ...batch, lingerMs: Math.min(batch.lingerMs, deps.leaseMs / 10) }, {
    working: () => working,
    onError: (error) => report.errors.push(`completeMany: ${message(error)} (stored page by page instead)`),
  });
  const state: RunState = { report, started, deadline, robots: newRobotsRunCache(), batcher, ...(signal === undefined ? {} : { signal }) };
  const contexts = new Map<string, Promise<JobContext | null>>();
  const buffer: Lease[] = [];
  // `concurrency` bounds fetches in flight. A page's parse and store run after its fetch slot is
  // freed, so the next fetch overlaps them; `tasks` (fetching or processing) is capped at twice
  // the concurrency so that parsing cannot fall behind without bound.
  let fetching = 0;
  const tasks = new Set<Promise<void>>();
  const maxTasks = concurrency * 2;
  let broken = false;
  // One waiter at a time (the loop); tasks wake it when a fetch slot frees or a task ends, and a
  // claim when it returns. Cheaper than Promise.race over every task on each turn. `version`
  // counts task changes only (a page that ends may have stored links: worth claiming again).
  let wake: (() => void) | null = null;
  let ticks = 0;
  let version = 0;
  const poke = () => {
    ticks++;
    const resolve = wake;
    wake = null;
    resolve?.();
  };
  const notify = () => {
    version++;
    poke();
  };
  const changedSince = (seen: number) => (ticks !== seen ? Promise.resolve() : new Promise<void>((resolve) => (wake = resolve)));

  const contextFor = (jobId: string) => {
    let found = contexts.get(jobId);
    if (found === undefined) {
      found = storage.getJob(jobId).then((job) => (job === null || TERMINAL_STATUSES.has(job.status) ? null : jobContext(job)));
      contexts.set(jobId, found);
    }
    return found;
  };

  /** Hands the pipeline each job's leases of a claim (a recrawl looks up their earlier results at once). */
  const primeLookups = (leases: Lease[]) => {
    const byJob = new Map<string, Lease[]>();
    for (const lease of leases) {
      const list = byJob.get(lease.jobId);
      if (list === undefined) byJob.set(lease.jobId, [lease]);
      else list.push(lease);
    }
    for (const [jobId, list] of byJob) {
      void contextFor(jobId).then(
        (ctx) => {
          if (ctx !== null) pipeline.claimed(list, ctx);
        },
        () => undefined,
      );
    }
  };

  const launch = (lease: Lease) => {
    let slotFree = false;
    const launchedAt = now();
    const freeSlot = () => {
      if (slotFree) return;
      slotFree = true;
      slotMs = average(slotMs, Math.max(1, now() - launchedAt));
      fetching--;
      notify();
    };
    fetching++;
    working++;
    const task = (async () => {
      try {
        const ctx = await contextFor(lease.jobId);
        if (ctx !== null) await pipeline.work(lease, ctx, state, freeSlot);
      } catch (error) {
        // The lease is left to expire, so the URL is retried by a later claim.
        report.errors.push(`${lease.url}: ${message(error)}`);
      } finally {
        freeSlot();
        working--;
        // Outcomes lingering for this page to join them go now if no other page can.
        batcher.recheck();
      }
    })();
    tasks.add(task);
    void task.then(() => {
      tasks.delete(task);
      notify();
    });
  };

  const open = () => !broken && !signal?.aborted && now() < deadline;
  const room = () => fetching < concurrency && tasks.size < maxTasks;

  // Claims run in the background while pages start from `buffer`, one at a time. `ahead` is how
  // many slots are likely to free during one claim's round trip, doubled: the concurrency times
  // the claim time over the time a page holds its slot (both averaged as the run goes). With
  // storage a round trip away (10 ms and more from a serverless function), claims ask for that many
  // more and start before the buffer runs dry, so a slot that frees starts its next page at once
  // instead of a round trip later. Storage in memory or next door keeps `ahead` at 0: claims then
  // come only as slots free, as many as are free. What is claimed but not started when the run
  // ends is released.
  let claiming: Promise<void> | null = null;
  let claimMs = 0;
  let slotMs = 0;
  const average = (mean: number, sample: number) => (mean === 0 ? sample : 0.8 * mean + 0.2 * sample);
  const ahead = () => (slotMs === 0 ? 0 : Math.min(concurrency, Math.floor((2 * concurrency * claimMs) / slotMs)));
  /** The last claim gave nothing: the task version it started at and when something may be ready. */
  let empty = null as { version: number; readyAt: number | null } | null;
  const startClaim = (extra: number) => {
    const before = version;
    const at = now();
    claiming = (async () => {
      try {
        // At least a quarter of the concurrency at a time: fewer round trips to shared storage.
        const claimed = await storage.claim({
          limit: Math.max(Math.max(0, concurrency - fetching - buffer.length) + extra, Math.ceil(concurrency / 4)),
          leaseMs: deps.leaseMs,
          now: now(),
          ...(options.jobId === undefined ? { maxActiveJobs: deps.maxActiveJobs } : { jobId: options.jobId }),
        });
        emit(claimed.events);
        report.claimed += claimed.leases.length;
        for (const lease of claimed.leases) touched.add(lease.jobId);
        buffer.push(...claimed.leases);
        primeLookups(claimed.leases);
        empty = claimed.leases.length === 0 ? { version: before, readyAt: claimed.nextReadyAt ?? null } : null;
        claimMs = average(claimMs, now() - at);
      } catch (error) {
        report.errors.push(`claim: ${message(error)}`);
        broken = true;
      } finally {
        claiming = null;
        poke();
      }
    })();
  };

  const stale: Lease[] = [];
  const releasing = new Set<Promise<void>>();
  const releaseStale = () => {
    const released = storage.release(stale.splice(0)).then(
      (n) => {
        report.released += n;
      },
      (error: unknown) => {
        report.errors.push(`release: ${message(error)}`);
      },
    );
    releasing.add(released);
    void released.then(() => releasing.delete(released));
  };

  while (open()) {
    const seen = ticks;
    while (buffer.length > 0 && room() && open()) {
      const lease = buffer.shift()!;
      // Waited in the buffer past half its time (slots stuck on slow pages): it could expire
      // mid-fetch and be fetched twice, so it goes back instead.
      // Of a job storage refused an outcome of (cancelled, most likely): not fetched, released.
      if (lease.expiresAt - now() < deps.leaseMs / 2 || state.refused?.has(lease.jobId) === true) stale.push(lease);
      else launch(lease);
    }
    if (stale.length > 0) releaseStale();
    if (!open()) break;
    const extra = ahead();
    if (claiming === null && tasks.size < maxTasks && (room() ? buffer.length <= extra : buffer.length < extra)) {
      if (empty === null || empty.version !== version) {
        // Nothing claimed yet, something was, or a page ended since the empty claim started
        // (it may have stored links): claim.
        startClaim(extra);
        continue;
      }
      if (tasks.size === 0 && buffer.length === 0) {
        // Nothing ready and nothing running. URLs waiting out a backoff or a host delay that ends
        // inside the budget: wait for them; else the run is over.
        const { readyAt } = empty;
        if (readyAt === null || readyAt >= deadline) break;
        await sleep(Math.max(1, readyAt - now()), signal);
        empty = null;
        continue;
      }
    }
    await changedSince(seen);
  }
  // A claim still in flight lands its leases in `buffer`, released below.
  await claiming;

  // No new page starts: what is queued goes now rather than after its linger.
  const flushed = batcher.flush();
  if (buffer.length > 0) {
    try {
      report.released += await storage.release(buffer.splice(0));
    } catch (error) {
      report.errors.push(`release: ${message(error)}`);
    }
  }
  await Promise.all([...tasks, ...releasing]);
  await flushed;
  await batcher.flush();
  report.jobsTouched = [...touched];
  report.durationMs = now() - started;
  return report;
}
