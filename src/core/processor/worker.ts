/** The worker loop behind `start()`: runs one pass after another until stopped, idling when a pass found nothing. */
import { BUDGETS } from '../constants.js';
import type { RunReport } from '../types.js';
import { batchSettings } from './batcher.js';
import { emptyRunReport } from './report.js';
import { message, sleep } from './shared.js';
import type { RunOptions, StartOptions, Worker } from './types.js';

export function startWorker(run: (options: RunOptions) => Promise<RunReport>, options: StartOptions = {}): Worker {
  // Refused here rather than by every run of the loop.
  batchSettings(options.batch, 'start()');
  const controller = new AbortController();
  const idleMs = options.idleMs ?? 1000;
  const loop = (async () => {
    while (!controller.signal.aborted) {
      const report = await run({
        budgetMs: options.budgetMs ?? BUDGETS.workerPassMs,
        concurrency: options.concurrency ?? 20,
        signal: controller.signal,
        ...(options.batch === undefined ? {} : { batch: options.batch }),
      }).catch((error: unknown): RunReport => ({ ...emptyRunReport(), errors: [message(error)] }));
      options.onRun?.(report);
      if (report.claimed === 0 || report.errors.length > 0) await sleep(idleMs, controller.signal);
    }
  })();
  return {
    async stop() {
      controller.abort();
      await loop;
    },
  };
}
