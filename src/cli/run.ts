/**
 * Works one job to the end in this process, for `crawl` (a new job) and `resume` (a stored one):
 * progress, Ctrl-C, the results (one JSON line per page of the job) and the summary.
 */
import { createCrawlEngine, type CrawlEngine } from '../core/engine.js';
import { hasOutbox } from '../core/webhooks/index.js';
import type { CrawlStorage, Lease } from '../core/storage.js';
import type { Job, ProgressEvent } from '../core/types.js';
import { TERMINAL_STATUSES } from '../core/types.js';
import { nextScheduledAt } from '../core/schedule.js';
import { type RunSettings, shellCommand } from './args.js';
import { EXIT } from './errors.js';
import { writeOutput } from './output.js';
import { abortHttpRequests, exitCodeOf, interrupt, within } from './interrupt.js';
import { createProgress } from './render.js';
import type { OpenedStorage } from './storage.js';

/**
 * The storage, keeping the leases this process holds: claimed and not yet completed (one by one or
 * in a batch), retried or released. Their number is the URLs being fetched (or stored) right now, which the job's counts
 * in the last event cannot tell; on Ctrl-C with a durable storage they are released.
 */
function trackLeases(storage: CrawlStorage): { storage: CrawlStorage; held: () => Lease[] } {
  const held = new Map<string, Lease>();
  const drop = (lease: Lease) => held.delete(lease.token);
  const wrapped = new Proxy(storage, {
    get(target, property) {
      if (property === 'claim') {
        return async (...args: Parameters<CrawlStorage['claim']>) => {
          const claimed = await target.claim(...args);
          for (const lease of claimed.leases) held.set(lease.token, lease);
          return claimed;
        };
      }
      if (property === 'complete' || property === 'retry') {
        return async (lease: Lease, input: never) => {
          try {
            return await (target[property] as (lease: Lease, input: never) => Promise<unknown>)(lease, input);
          } finally {
            drop(lease);
          }
        };
      }
      if (property === 'completeMany') {
        const completeMany = target.completeMany;
        if (completeMany === undefined) return undefined;
        return async (items: Parameters<NonNullable<CrawlStorage['completeMany']>>[0]) => {
          try {
            return await completeMany.call(target, items);
          } finally {
            for (const item of items) drop(item.lease);
          }
        };
      }
      if (property === 'release') {
        return async (leases: Lease[]) => {
          try {
            return await target.release(leases);
          } finally {
            for (const lease of leases) drop(lease);
          }
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { storage: wrapped, held: () => [...held.values()] };
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    const stop = () => {
      clearTimeout(timer);
      resolve();
    };
    signal.addEventListener('abort', stop, { once: true });
  });

/**
 * Runs the job until it is finished (its final state) or the signal aborts (null). Unlike
 * `engine.crawl()`, an abort leaves the job as it is: the caller cancels it, or leaves it to resume.
 */
async function drive(engine: CrawlEngine, jobId: string, concurrency: number, signal: AbortSignal): Promise<Job | null> {
  let idle = 0;
  for (;;) {
    if (signal.aborted) return null;
    const report = await engine.processor.run({ jobId, budgetMs: 60_000, concurrency, signal });
    if (report.errors.length > 0 && report.claimed === 0) throw new Error(`[crawl-engine] crawl(): storage failed: ${report.errors.join('; ')}`);
    const current = await engine.jobs.get(jobId);
    if (current === null || TERMINAL_STATUSES.has(current.status)) return current;
    if (signal.aborted) return null;
    // Waiting out a retry backoff, a host delay or an expired lease: poll gently.
    idle = report.claimed === 0 ? Math.min(idle + 50, 500) : 0;
    if (idle > 0) await sleep(idle, signal);
  }
}

export interface RunInput {
  /** Creates the job (crawl) or returns the stored one (resume). */
  start(engine: CrawlEngine): Promise<Job>;
  /** The job as stored when `resume` took it over; null for a new job. */
  resumed: Job | null;
  maxPages: number;
  /** The job renders pages (`render` always or auto): the engine gets the browser of `--chromium` / `--browser-ws`. */
  renders?: boolean;
}

export async function runJob(opened: OpenedStorage, settings: RunSettings, input: RunInput): Promise<number> {
  if ('migrate' in opened.storage) await (opened.storage as { migrate(): Promise<unknown> }).migrate();
  const { timeoutMs, quiet } = settings;
  const leases = trackLeases(opened.storage);
  const engine: CrawlEngine = createCrawlEngine({
    storage: leases.storage,
    fetch: {
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(settings.userAgent === undefined ? {} : { userAgent: settings.userAgent }),
      allowPrivateNetwork: settings.allowPrivateNetwork,
    },
    // A rendering page keeps its lease through its fetch and its render (30 s at most) and reading.
    ...(timeoutMs === undefined ? {} : { leaseMs: Math.max(60_000, timeoutMs + (input.renders === true ? 60_000 : 0)) }),
    ...(input.renders === true ? { render: settings.browser } : {}),
    // Deliveries of a job with a webhook (its secret is the job's own, from
    // CRAWL_ENGINE_WEBHOOK_SECRET): retried sooner than a server's defaults, as the command waits.
    ...(hasOutbox(leases.storage) ? { webhooks: { retryBaseMs: 1000, retryMaxMs: 5000 } } : {}),
  });
  const err = process.stderr;
  const progress = createProgress({ quiet, maxPages: input.maxPages, before: input.resumed?.counts ?? null, inFlight: () => leases.held().length });
  const resumeCommand = (id: string) => `crawl-engine resume ${shellCommand([id, ...opened.args, ...settings.args])}`;

  let jobId: string | null = input.resumed?.id ?? null;
  const early: ProgressEvent[] = [];
  const onEvent = (_type: unknown, event: ProgressEvent) => {
    if (jobId === null) early.push(event);
    else if (event.jobId === jobId) progress.onEvent(event, interrupt.signal !== null);
  };
  engine.events.on('*', onEvent);

  const controller = new AbortController();
  let onInterrupted: () => void = () => undefined;
  const interrupted = new Promise<'interrupted'>((resolve) => (onInterrupted = () => resolve('interrupted')));
  interrupt.onFirst = () => {
    // Written at once, before anything is awaited.
    progress.stop();
    err.write(`${progress.clearLine()}${opened.durable ? 'stopping' : 'cancelling'}… (Ctrl-C again to exit at once)\n`);
    controller.abort();
    onInterrupted();
  };

  const crawling = (async () => {
    const job = await input.start(engine);
    jobId = job.id;
    if (opened.durable) {
      interrupt.resumeHint = `To continue: ${resumeCommand(job.id)}`;
      // Before the first progress line: after a crash, this is where the job id is found.
      if (!quiet && input.resumed === null)
        err.write(`Job ${job.id} is stored in ${opened.kind} at ${opened.where}; if it stops, continue it with: ${resumeCommand(job.id)}\n`);
    }
    for (const event of early.splice(0)) if (event.jobId === jobId) progress.onEvent(event, interrupt.signal !== null);
    return drive(engine, job.id, settings.concurrency, controller.signal);
  })();
  crawling.catch(() => undefined); // awaited below, or abandoned after an interrupt
  let job: Job | null = null;
  let settled = true;
  let webhooks: DeliveryCounts | null = null;
  try {
    const first = await Promise.race([crawling, interrupted]);
    if (first !== 'interrupted') {
      job = first;
      // The job's last deliveries (its end, a retry or two) go out before the engine closes.
      if (job !== null && job.options.webhook !== undefined) webhooks = await drainWebhooks(engine, job.id, WEBHOOK_DRAIN_MS);
    } else if (!opened.durable) {
      // The processor stops starting fetches when the signal aborts, but waits for those in
      // flight: cancel the job in storage (no URL of it is fetched again, by any process), then
      // abort the requests in flight, and give the crawl a moment to wind down.
      const cancelled = jobId === null ? null : await within(engine.jobs.cancel(jobId), 2000, null);
      abortHttpRequests();
      const ended = await within(
        crawling.then((final) => ({ final })),
        500,
        null,
      );
      settled = ended !== null;
      job = ended?.final ?? cancelled ?? (jobId === null ? null : await within(engine.jobs.get(jobId), 1000, null));
    } else {
      // The job stays as it is for `resume`: give back the URLs in flight first (their pages are
      // fetched again then; a complete() arriving after this is refused), then abort the requests.
      await within(leases.storage.release(leases.held()), 2000, 0);
      abortHttpRequests();
      settled =
        (await within(
          crawling.then(() => true),
          500,
          false,
        )) === true;
      // Claims that were on their way when the first release ran.
      if (leases.held().length > 0) await within(leases.storage.release(leases.held()), 1000, 0);
      job = jobId === null ? null : await within(engine.jobs.get(jobId), 1000, null);
    }
  } finally {
    interrupt.onFirst = null;
    engine.events.off('*', onEvent);
    progress.stop();
    // engine.close() waits for requests in flight; after an interrupt they were aborted.
    if (settled) await engine.close();
    else void engine.close().catch(() => undefined);
  }
  if (!settled) interrupt.forceExit = true;
  if (job === null) {
    // Only after an interrupt, when the storage did not answer in time.
    const what = opened.durable ? 'confirm that it stopped' : 'confirm the cancellation';
    err.write(
      jobId === null
        ? 'Interrupted before the job started.\n'
        : `Job ${jobId}: ${opened.kind} at ${opened.where} did not ${what} in time; the job may still be stored as running.\n${opened.durable ? `To continue: ${resumeCommand(jobId)}\n` : ''}`,
    );
    interrupt.forceExit = true;
    return exitCodeOf(interrupt.signal ?? 'SIGINT');
  }
  if (TERMINAL_STATUSES.has(job.status)) progress.absorb(job);
  progress.finish();

  const { failures, files } = await writeOutput(engine.jobs, job, settings.format, settings.out);
  const stopped = interrupt.signal !== null && !TERMINAL_STATUSES.has(job.status);
  if (!quiet) {
    const status =
      job.status === 'completed'
        ? 'Done'
        : stopped
          ? 'Stopped (interrupted)'
          : `Job ${job.status}${interrupt.signal !== null && job.status === 'cancelled' ? ' (interrupted)' : ''}`;
    err.write(`${progress.summary(job, status, failures, settings.out)}\n`);
    if (files !== undefined) err.write(`${filesLine(files, settings.out!)}\n`);
  }
  if (webhooks !== null && (!quiet || webhooks.pending + webhooks.failed > 0)) err.write(`${webhooksLine(webhooks, opened.durable)}\n`);
  if (!quiet && job.options.schedule !== undefined && (job.status === 'completed' || job.status === 'failed')) err.write(`${await scheduleLine(job)}\n`);
  if (stopped && opened.durable) err.write(`To continue: ${resumeCommand(job.id)}\n`);
  if (job.status === 'completed') return EXIT.completed;
  if (interrupt.signal !== null) {
    interrupt.forceExit = true;
    return exitCodeOf(interrupt.signal);
  }
  return EXIT.jobFailed;
}

/** Longest the command waits, after the job ended, for its webhook deliveries to be settled. */
export const WEBHOOK_DRAIN_MS = 30_000;

/** A job's webhook deliveries by state. */
interface DeliveryCounts {
  delivered: number;
  failed: number;
  pending: number;
}

async function countDeliveries(engine: CrawlEngine, jobId: string): Promise<DeliveryCounts> {
  const counts: DeliveryCounts = { delivered: 0, failed: 0, pending: 0 };
  let cursor: string | null = null;
  do {
    const page: { items: Array<{ state: keyof DeliveryCounts }>; nextCursor: string | null } = await engine.jobs.deliveries(jobId, { limit: 1000, cursor });
    for (const item of page.items) counts[item.state]++;
    cursor = page.nextCursor;
  } while (cursor !== null);
  return counts;
}

/**
 * After the job ended: runs the processor's webhook passes (the job has nothing left to crawl)
 * until every delivery of the job is delivered or failed, `ms` pass, or Ctrl-C; the counts then.
 */
async function drainWebhooks(engine: CrawlEngine, jobId: string, ms: number): Promise<DeliveryCounts | null> {
  const end = Date.now() + ms;
  const controller = new AbortController();
  const stop = () => controller.abort();
  const previous = interrupt.onFirst;
  interrupt.onFirst = stop;
  try {
    for (;;) {
      const counts = await countDeliveries(engine, jobId);
      const left = end - Date.now();
      if (counts.pending === 0 || left <= 0 || controller.signal.aborted || interrupt.signal !== null) return counts;
      await engine.processor.run({ jobId, budgetMs: Math.min(5000, Math.max(1000, left)), signal: controller.signal });
      await sleep(100, controller.signal);
    }
  } catch {
    return null;
  } finally {
    interrupt.onFirst = previous;
  }
}

function webhooksLine(counts: DeliveryCounts, durable: boolean): string {
  const parts = [`${counts.delivered} delivered`, ...(counts.failed > 0 ? [`${counts.failed} failed`] : [])];
  if (counts.pending > 0) {
    parts.push(
      `${counts.pending} not delivered yet (${durable ? 'kept in the outbox: any processor on this storage sends them' : 'lost with the in-memory storage when this command exits'})`,
    );
  }
  return `Webhooks: ${parts.join(', ')}.`;
}

/** What `--format md` wrote, for the summary. */
export function filesLine(files: { written: number; withoutMarkdown: number }, dir: string): string {
  return `Wrote ${files.written} markdown file${files.written === 1 ? '' : 's'} to ${dir}${files.withoutMarkdown > 0 ? ` (${files.withoutMarkdown} page${files.withoutMarkdown === 1 ? '' : 's'} without markdown: failed, not HTML, or skipped)` : ''}.`;
}

/** When a scheduled job's recrawl is due, and what starts it. */
async function scheduleLine(job: Job): Promise<string> {
  const { schedule, scheduleTimezone } = job.options;
  const due = await nextScheduledAt(schedule!, scheduleTimezone, Date.parse(job.finishedAt ?? new Date().toISOString()));
  const when = due === null ? 'no time to come' : new Date(due).toISOString();
  return `Schedule "${schedule}" (${scheduleTimezone ?? 'UTC'}): the next recrawl is due at ${when}; a processor on this storage (your app's process route, or a worker) starts it.`;
}

/** Closes a command's storage once its run is over: waited for, or at most 1 s after an interrupt. */
export async function closeAfterRun(opened: OpenedStorage): Promise<void> {
  const closing = opened.close().catch(() => undefined);
  if (interrupt.signal === null) await closing;
  else await within(closing, 1000, undefined);
}
