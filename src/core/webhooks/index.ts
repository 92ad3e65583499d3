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

/** What a run did for webhooks (`RunReport.webhooks`). */
export interface WebhookRunReport {
  /** Deliveries added to the outbox. */
  enqueued: number;
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
): { finish: () => Promise<WebhookRunReport> } {
  const report: WebhookRunReport = { enqueued: 0, delivered: 0, retried: 0, failed: 0, errors: [] };
  let stopped = false;
  let wake: (() => void) | null = null;
  /** Whether the pass found anything to do (else the loop waits longer before the next). */
  const pass = async (): Promise<boolean> => {
    try {
      const pumped = await pumpWebhooks(deps.storage, deps.now, deadline, cursor);
      report.enqueued += pumped.enqueued;
      report.errors.push(...pumped.errors);
      const sent = await deliverWebhooks(deps, deadline, signal);
      add(report, sent);
      return pumped.enqueued + sent.delivered + sent.retried + sent.failed > 0;
    } catch (error) {
      report.errors.push(`webhooks: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    }
  };
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
      const wait = Math.min(IDLE_INTERVAL_MS, PASS_INTERVAL_MS * 2 ** Math.min(idle, 3));
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
      if (deps.now() < deadline && !signal?.aborted) await pass();
      return report;
    },
  };
}

function add(report: WebhookRunReport, delivered: DeliverReport): void {
  report.delivered += delivered.delivered;
  report.retried += delivered.retried;
  report.failed += delivered.failed;
  report.errors.push(...delivered.errors);
}
