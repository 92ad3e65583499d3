/**
 * Webhooks next to a processor run: while the run crawls, a loop pumps registered jobs' progress
 * into the outbox and posts what is due (every {@link PASS_INTERVAL_MS}); when the run's pages are
 * stored, one more pass posts what they caused (a job's last pages, its end). Every way of running
 * the processor (`run()`, `start()`, `crawl()`, the HTTP process route, Next.js `after()`) thus
 * delivers webhooks, with no daemon of its own.
 */
import type { Fetcher } from '../../crawl/fetcher.js';
import type { CrawlStorage } from '../storage.js';
import { type DeliverReport, deliverWebhooks } from './deliver.js';
import type { EngineWebhookSettings } from './options.js';
import { type PumpCursor, pumpWebhooks } from './pump.js';

/** Time between two passes of the loop that runs beside a run's crawling. */
export const PASS_INTERVAL_MS = 1000;
/** Longest time between two passes while they find nothing to do. */
export const IDLE_INTERVAL_MS = 5000;
/**
 * How long an engine that posts no webhooks (only schedules are its business) leaves the outbox
 * alone after a pass found it empty: within a run, and from one run to the next.
 */
export const QUIET_MS = 10_000;

/** What a run did for webhooks (`RunReport.webhooks`). */
export interface WebhookRunReport {
  /** Deliveries added to the outbox. */
  enqueued: number;
  /** Scheduled recrawls started (jobs with a `schedule` whose time had come). */
  recrawls: number;
  /** Posted and answered with a 2xx. */
  delivered: number;
  /** Failed, to be tried again later. */
  retried: number;
  /** Given up (their attempts ran out, or the address is refused). */
  failed: number;
  /** Storage errors; what they concern is done by a later pass. */
  errors: string[];
}

export interface WebhookPassDeps {
  storage: CrawlStorage;
  fetcher: () => Fetcher;
  settings: EngineWebhookSettings;
  now: () => number;
  /** Whether webhooks are posted (else handed back: schedules only). Default true. */
  posts?: boolean;
  recrawlScheduled?: (entry: { id: string; jobId: string }) => Promise<'started' | 'gone'>;
}

/** Whether the storage has the outbox (else webhooks are off). */
export const hasOutbox = (storage: CrawlStorage) =>
  storage.listWebhookJobs !== undefined && storage.claimWebhookDeliveries !== undefined && storage.settleWebhookDelivery !== undefined;

/**
 * Starts the loop beside a run; `finish()` stops it after its current pass, does the final pass
 * (within `deadline`), and reports. `signal` (a worker's `stop()`) aborts posts in flight and ends
 * the loop; `cursor` carries the pump's place from one run of a processor to the next.
 */
export function startWebhookPasses(
  deps: WebhookPassDeps,
  deadline: number,
  signal?: AbortSignal,
  cursor: PumpCursor = { after: 0 },
): { finish: () => Promise<WebhookRunReport & { empty: boolean }> } {
  const report: WebhookRunReport = { enqueued: 0, recrawls: 0, delivered: 0, retried: 0, failed: 0, errors: [] };
  /** Whether every pass found no registration and claimed nothing. */
  let empty = true;
  /** Whether the last pass did. */
  let lastEmpty = false;
  let stopped = false;
  let wake: (() => void) | null = null;
  /** Whether the pass found anything to do (else the loop waits longer before the next). */
  const pass = async (): Promise<boolean> => {
    lastEmpty = false;
    // A schedule entry this processor enqueued is due: this pass's claim takes it (or another did).
    if (cursor.dueAt !== undefined && deps.now() >= cursor.dueAt) delete cursor.dueAt;
    try {
      const pumped = await pumpWebhooks(deps.storage, deps.now, deadline, cursor, deps.posts !== false);
      report.enqueued += pumped.enqueued;
      report.errors.push(...pumped.errors);
      const sent = await deliverWebhooks(deps, deadline, signal);
      add(report, sent);
      // Nothing of this engine's business: no registration it pumps, nothing claimed but what it
      // handed back to other engines.
      lastEmpty = pumped.registrations === 0 && sent.claimed === sent.handedBack;
      return pumped.enqueued + sent.delivered + sent.recrawls + sent.retried + sent.failed > 0;
    } catch (error) {
      report.errors.push(`webhooks: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    } finally {
      if (!lastEmpty) empty = false;
    }
  };
  /** An engine that posts no webhooks, after a pass that found the outbox empty, leaves it for QUIET_MS. */
  const quiet = () => deps.posts === false && lastEmpty;
  const onAbort = () => {
    stopped = true;
    (wake as (() => void) | null)?.();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const loop = (async () => {
    let idle = 0;
    while (!stopped && !signal?.aborted && deps.now() < deadline) {
      idle = (await pass()) ? 0 : idle + 1;
      if (stopped) break;
      // An idle outbox is looked at less often: 1 s, 2 s, 4 s, then every IDLE_INTERVAL_MS.
      const wait = quiet()
        ? Math.max(PASS_INTERVAL_MS, Math.min(QUIET_MS, (cursor.dueAt ?? Number.POSITIVE_INFINITY) - deps.now()))
        : Math.min(IDLE_INTERVAL_MS, PASS_INTERVAL_MS * 2 ** Math.min(idle, 3));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  })();
  return {
    async finish() {
      stopped = true;
      (wake as (() => void) | null)?.();
      await loop;
      signal?.removeEventListener('abort', onAbort);
      if (deps.now() < deadline && !signal?.aborted && !quiet()) await pass();
      return { ...report, empty };
    },
  };
}

function add(report: WebhookRunReport, delivered: DeliverReport): void {
  report.delivered += delivered.delivered;
  report.recrawls += delivered.recrawls;
  report.retried += delivered.retried;
  report.failed += delivered.failed;
  report.errors.push(...delivered.errors);
}
