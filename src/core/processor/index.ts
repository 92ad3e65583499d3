/**
 * The processor: claims URLs, fetches them with bounded concurrency inside a time budget,
 * stores each outcome through the storage's fenced `complete` (batched into `completeMany`
 * calls when the storage has it), retries transient failures with exponential backoff and
 * jitter, and releases whatever it claimed but did not start. It keeps no state between runs,
 * so any number of processes may run it at once.
 *
 * Parts: `robots-policy` (robots.txt records and verdicts), `pipeline` (one lease from fetch to
 * stored outcome), `batcher` (group commit of outcomes), `run` (the scheduler behind `run()`),
 * `worker` (the loop behind `start()`), `retention` (deleting finished jobs past their age).
 */
import { BUDGETS } from '../constants.js';
import { createPipeline } from './pipeline.js';
import { createSweeper } from './retention.js';
import { createRobotsPolicy } from './robots-policy.js';
import { runScheduler } from './run.js';
import type { Processor, ProcessorDeps, RunOptions, StartOptions } from './types.js';
import { startWorker } from './worker.js';
import { hasOutbox, QUIET_MS, startWebhookPasses } from '../webhooks/index.js';
import type { PumpCursor } from '../webhooks/pump.js';

export { backoffMs, LINK_FILTER_BUDGET_MS, LINK_FILTER_WALL_MS } from './pipeline.js';
export { MAX_CRAWL_DELAY_MS } from './robots-policy.js';
export type { BatchOptions, ExtractContext, ExtractFunction, Processor, ProcessorDeps, RunOptions, StartOptions, Worker } from './types.js';

export function createProcessor(deps: ProcessorDeps): Processor {
  const pipeline = createPipeline(deps, createRobotsPolicy(deps));
  const sweep = deps.retention === undefined ? () => null : createSweeper(deps.storage, deps.retention, deps.now);
  // Where the webhook pump goes on from, run after run, and (for an engine that posts no
  // webhooks) until when the outbox is left alone after a pass found it empty.
  const pumpCursor: PumpCursor = { after: 0 };
  const quiet = { until: 0 };
  const run = async (options: RunOptions = {}) => {
    // Started with the run and awaited before it returns (a serverless function may stop then).
    const deadline = Date.now() + (options.budgetMs ?? BUDGETS.runMs);
    const sweeping = sweep(deadline);
    const outbox = deps.outbox;
    // An engine without the webhooks option looks at the outbox only for schedules: at most every
    // QUIET_MS while it holds nothing, so that its runs cost next to nothing for it.
    const webhooks =
      outbox !== undefined && hasOutbox(deps.storage) && (outbox.posts || deps.now() >= quiet.until)
        ? startWebhookPasses(
            {
              storage: deps.storage,
              fetcher: deps.fetcher,
              settings: outbox.settings,
              now: deps.now,
              posts: outbox.posts,
              recrawlScheduled: outbox.recrawlScheduled,
            },
            deadline,
            options.signal,
            pumpCursor,
          )
        : null;
    const report = await runScheduler(deps, pipeline, options);
    if (sweeping !== null) report.retention = await sweeping;
    if (webhooks !== null) {
      const done = await webhooks.finish();
      const { empty, ...reported } = done;
      if (!outbox!.posts) quiet.until = empty ? Math.min(deps.now() + QUIET_MS, pumpCursor.dueAt ?? Number.POSITIVE_INFINITY) : 0;
      // Reported by engines that post webhooks, and by others when they did something.
      if (outbox!.posts || !empty) report.webhooks = reported;
    }
    return report;
  };
  return { run, start: (options: StartOptions = {}) => startWorker(run, options) };
}
