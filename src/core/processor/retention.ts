/**
 * Retention: the processor deletes finished jobs older than `finishedJobsMaxAgeMs`, one bounded
 * batch (`batchSize` jobs) at most every `intervalMs` per processor, alongside a run, so that every
 * way of running it (`run()`, `start()`, the HTTP process route, Next.js `after()`) applies it. A
 * sweep runs next to the run's fetches, never fails the run, and one at a time.
 */
import type { CrawlStorage } from '../storage.js';
import { message } from './shared.js';
import type { RetentionSettings } from './types.js';

/** `deadline`: epoch ms by which the sweep stops between two jobs (the run's own budget). */
export type Sweeper = (deadline: number) => Promise<{ deleted: number; error?: string }> | null;

/** A sweep if one is due (null if not, or one is under way); the promise never rejects. */
export function createSweeper(storage: CrawlStorage, settings: RetentionSettings, now: () => number): Sweeper {
  let nextAt = 0;
  let sweeping = false;
  return (deadline) => {
    const at = now();
    if (sweeping || at < nextAt || storage.deleteFinishedJobs === undefined) return null;
    sweeping = true;
    nextAt = at + settings.intervalMs;
    return storage
      .deleteFinishedJobs({ finishedBefore: at - settings.finishedJobsMaxAgeMs, limit: settings.batchSize, deadline })
      .then(
        ({ deleted }) => ({ deleted }),
        (error: unknown) => ({ deleted: 0, error: `deleteFinishedJobs: ${message(error)}` }),
      )
      .finally(() => {
        sweeping = false;
      });
  };
}
