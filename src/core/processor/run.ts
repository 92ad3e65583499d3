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
  const state: RunState = { report, deadline, robots: newRobotsRunCache(), batcher };
  const contexts = new Map<string, Promise<JobContext | null>>();
  const buffer: Lease[] = [];
  // `concurrency` bounds fetches in flight. A page's parse and store run after its fetch slot is
  // freed, so the next fetch overlaps them; `tasks` (fetching or processing) is capped at twice
  // the concurrency so that parsing cannot fall behind without bound.
  let fetching = 0;
  const tasks = new Set<Promise<void>>();
  const maxTasks = concurrency * 2;
  let broken = false;
  // One waiter at a time (the loop); tasks wake it when a fetch slot frees or a task ends.
  // Cheaper than Promise.race over every task on each turn.
  let wake: (() => void) | null = null;
  let version = 0;
  const notify = () => {
    version++;
    const resolve = wake;
    wake = null;
    resolve?.();
  };
  const changed = () => new Promise<void>((resolve) => (wake = resolve));

  const contextFor = (jobId: string) => {
    let found = contexts.get(jobId);
    if (found === undefined) {
      found = storage.getJob(jobId).then((job) => (job === null || TERMINAL_STATUSES.has(job.status) ? null : jobContext(job)));
      contexts.set(jobId, found);
    }
    return found;
  };

  const launch = (lease: Lease) => {
    let slotFree = false;
    const freeSlot = () => {
      if (slotFree) return;
      slotFree = true;
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

  while (open()) {
    if (buffer.length === 0 && room()) {
      let leases: Lease[];
      let readyAt: number | null = null;
      const before = version;
      try {
        // Claim at least a quarter of the concurrency at a time: fewer round trips to shared
        // storage; what is claimed but not started when the run ends is released.
        const claimed = await storage.claim({
          limit: Math.max(concurrency - fetching, Math.ceil(concurrency / 4)),
          leaseMs: deps.leaseMs,
          now: now(),
          ...(options.jobId === undefined ? {} : { jobId: options.jobId }),
        });
        leases = claimed.leases;
        readyAt = claimed.nextReadyAt ?? null;
        emit(claimed.events);
      } catch (error) {
        report.errors.push(`claim: ${message(error)}`);
        broken = true;
        break;
      }
      report.claimed += leases.length;
      for (const lease of leases) touched.add(lease.jobId);
      buffer.push(...leases);
      if (leases.length === 0) {
        // Nothing ready now; a page still in flight may add links. A task that ended while
        // the claim was running may already have added some: then claim again at once.
        if (version !== before) continue;
        if (tasks.size === 0) {
          // URLs waiting out a backoff or a host delay that ends inside the budget: wait for them.
          if (readyAt === null || readyAt >= deadline) break;
          await sleep(Math.max(1, readyAt - now()), signal);
          continue;
        }
        await changed();
        continue;
      }
    }
    while (buffer.length > 0 && room() && open()) launch(buffer.shift()!);
    if (!room()) await changed();
  }

  // No new page starts: what is queued goes now rather than after its linger.
  const flushed = batcher.flush();
  if (buffer.length > 0) {
    try {
      report.released += await storage.release(buffer.splice(0));
    } catch (error) {
      report.errors.push(`release: ${message(error)}`);
    }
  }
  await Promise.all(tasks);
  await flushed;
  await batcher.flush();
  report.jobsTouched = [...touched];
  report.durationMs = now() - started;
  return report;
}
