/**
 * The pump: turns a registered job's progress into webhook deliveries in the storage's outbox.
 * It reads what storage already holds (the job, and its results from a cursor on) and enqueues
 * the deliveries with a compare-and-set on the job's pump state, so any number of processors may
 * pump at once: one of them stores each step, and a delivery's id (its `webhook-id`) is fixed by
 * its place in the job's sequence. A processor killed mid-pump loses nothing: the state did not
 * move, and the next pump does the step again.
 */
import type { CrawlStorage, NewWebhookDelivery, WebhookJob, WebhookPumpState } from '../storage.js';
import type { Job, PageResult, WebhookEvent, WebhookJobSummary, WebhookPage } from '../types.js';
import { TERMINAL_STATUSES } from '../types.js';
import { nextScheduledAt, SCHEDULE_EVENT, SCHEDULE_TARGET } from '../schedule.js';

/** Registered jobs looked at per pump (the next pump goes on from where this one stopped). */
export const PUMP_JOBS = 25;
/** Results per `page` delivery (and per read: content jobs' results can be large). */
export const PAGE_BATCH = 25;
/**
 * A running job's new results are read when a whole batch of them is stored, or when the first
 * of them has waited this long: results (with their content) are read about once, not again on
 * every pass.
 */
export const PAGE_WAIT_MS = 5000;
/** Reads of results per job and pump, so one big job does not hold the others up. */
const READS_PER_JOB = 8;
/** A registration whose job does not exist this long after it was made is dropped (its create failed). */
export const ORPHAN_MS = 10 * 60_000;

const TERMINAL_EVENT: Record<string, WebhookEvent> = { completed: 'job.completed', failed: 'job.failed', cancelled: 'job.cancelled' };

/** The job as a webhook payload carries it (no options: they may hold the secret). */
export function jobSummary(job: Job): WebhookJobSummary {
  return {
    id: job.id,
    status: job.status,
    url: job.url,
    counts: job.counts,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    error: job.error,
    metadata: job.metadata,
  };
}

/** A page result as a `page` delivery carries it: its metadata, not its content (read that from the API). */
export function pageSummary(result: PageResult): WebhookPage {
  return {
    url: result.url,
    finalUrl: result.finalUrl,
    depth: result.depth,
    status: result.status,
    ok: result.ok,
    contentType: result.contentType,
    title: result.title,
    description: result.description,
    canonical: result.canonical,
    links: result.links,
    wordCount: result.wordCount,
    error: result.error,
    attempts: result.attempts,
    durationMs: result.durationMs,
    fetchedAt: result.fetchedAt,
    ...(result.contentHash === undefined ? {} : { contentHash: result.contentHash }),
    ...(result.change === undefined ? {} : { change: result.change }),
  };
}

/** The JSON body of a delivery, as Standard Webhooks suggests: `{ type, timestamp, data }`. */
export function payload(type: WebhookEvent, at: number, data: object): string {
  return JSON.stringify({ type, timestamp: new Date(at).toISOString(), data });
}

/** The stable id of a job's `seq`th delivery: its `webhook-id` on every try. */
export const deliveryId = (jobId: string, seq: number) => `msg_${jobId}_${seq}`;

export interface PumpReport {
  enqueued: number;
  /** Registrations pumped that are this engine's business (0: none, or only other engines' webhooks). */
  registrations: number;
  errors: string[];
}

/**
 * What a processor's pumps keep from one run to the next: where the next goes on from (the
 * `ordinal` of the last registration pumped), and when the earliest schedule entry it enqueued is
 * due (an engine that posts no webhooks does not leave the outbox alone past that).
 */
export interface PumpCursor {
  after: number;
  dueAt?: number;
}

/**
 * One pump over the registered jobs: at most {@link PUMP_JOBS}, from `cursor` on (wrapping round
 * to the oldest after the newest), so that long-running jobs at the front do not hide the rest;
 * stops between jobs at `deadline`. Returns how many registrations it saw (none: nothing to pump).
 */
export async function pumpWebhooks(
  storage: CrawlStorage,
  now: () => number,
  deadline: number,
  cursor: PumpCursor = { after: 0 },
  /** Whether this engine posts webhooks: else it pumps only the jobs with a schedule and no webhook. */
  posts = true,
): Promise<PumpReport> {
  const report: PumpReport = { enqueued: 0, registrations: 0, errors: [] };
  if (storage.listWebhookJobs === undefined) return report;
  let registered = await storage.listWebhookJobs(PUMP_JOBS, cursor.after);
  if (registered.length < PUMP_JOBS && cursor.after > 0) {
    // Past the newest: round to the oldest, up to the ones just listed.
    const from = registered[0]?.ordinal ?? Number.POSITIVE_INFINITY;
    const wrapped = (await storage.listWebhookJobs(PUMP_JOBS - registered.length, 0)).filter((w) => w.ordinal < from && w.ordinal <= cursor.after);
    registered = [...registered, ...wrapped];
  }
  cursor.after = registered.length < PUMP_JOBS ? 0 : registered[registered.length - 1]!.ordinal;
  for (const entry of registered) {
    if (now() >= deadline) break;
    try {
      const pumped = await pumpJob(storage, entry, now, posts);
      if (pumped.ours) report.registrations++;
      report.enqueued += pumped.enqueued;
      if (pumped.dueAt !== undefined) cursor.dueAt = Math.min(cursor.dueAt ?? pumped.dueAt, pumped.dueAt);
    } catch (error) {
      report.errors.push(`webhooks of ${entry.jobId}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return report;
}

/**
 * The pump state as this engine keeps it: the storage's fields, plus `seen` (the job's stored
 * results when they were last read) and `waitingSince` (when new results were first seen unread).
 */
interface PumpState extends WebhookPumpState {
  seen?: number;
  waitingSince?: number;
}

async function pumpJob(
  storage: CrawlStorage,
  entry: WebhookJob,
  now: () => number,
  posts: boolean,
): Promise<{ enqueued: number; ours: boolean; dueAt?: number }> {
  const job = await storage.getJob(entry.jobId);
  const webhook = job?.options.webhook;
  const schedule = job?.options.schedule;
  // A job with a webhook is pumped by the engines that post webhooks (its schedule with it).
  if (!posts && webhook !== undefined) return { enqueued: 0, ours: false };
  if (job === null || (webhook === undefined && schedule === undefined)) {
    // Registered, and its job never stored (or stored with neither a webhook nor a schedule):
    // dropped once it is clearly not coming.
    if (now() - entry.registeredAt > ORPHAN_MS) await storage.removeWebhookJob!(entry.jobId);
    return { enqueued: 0, ours: true };
  }
  const wants = new Set<WebhookEvent>(webhook?.events ?? []);
  let scheduleError: Error | null = null;
  const at = now();
  const state: PumpState =
    entry.state === null ? { seq: 0, resultsCursor: null, resultsSkip: 0, sent: [], done: false } : { ...entry.state, sent: [...entry.state.sent] };
  const deliveries: NewWebhookDelivery[] = [];
  const add = (event: WebhookEvent, data: object) => {
    deliveries.push({ id: deliveryId(job.id, state.seq++), jobId: job.id, event, url: webhook!.url, payload: payload(event, at, data), createdAt: at });
  };
  const once = (event: WebhookEvent, data: () => object) => {
    if (state.sent.includes(event)) return;
    state.sent.push(event);
    if (wants.has(event)) add(event, data());
  };

  // Started: claimed once at least (a job cancelled while queued never started).
  if (job.startedAt !== null) once('job.started', () => ({ job: jobSummary(job) }));
  // Results from the cursor on: every one ends up in exactly one `page` delivery. With no page
  // event wanted they are not read at all; nor while no new one is stored (the job's counts say
  // how many there are), nor, while the job runs, until a batch is full or has waited PAGE_WAIT_MS.
  const terminal = TERMINAL_STATUSES.has(job.status) ? TERMINAL_EVENT[job.status] : undefined;
  const total = job.counts.succeeded + job.counts.failed + job.counts.skipped;
  const unread = total - (state.seen ?? 0);
  let atEnd = !wants.has('page');
  if (!atEnd && terminal === undefined && unread < PAGE_BATCH) {
    if (unread <= 0) atEnd = true;
    else if (state.waitingSince === undefined) {
      state.waitingSince = at;
      atEnd = true;
    } else if (at - state.waitingSince < PAGE_WAIT_MS) atEnd = true;
  }
  for (let reads = 0; !atEnd && reads < READS_PER_JOB; reads++) {
    const page = await storage.listResults(job.id, { limit: PAGE_BATCH, cursor: state.resultsCursor });
    const fresh = page.items.slice(state.resultsSkip);
    if (fresh.length > 0) add('page', { jobId: job.id, pages: fresh.map(pageSummary) });
    if (page.nextCursor === null) {
      // The last page so far: the next pump reads it again and skips what was sent.
      state.resultsSkip = page.items.length;
      atEnd = true;
      // Every result the job's counts (read before) said were stored has been read.
      state.seen = total;
      delete state.waitingSince;
    } else {
      state.resultsCursor = page.nextCursor;
      state.resultsSkip = 0;
    }
  }
  // The job was read first: if it had ended, every result was stored before it did.
  if (terminal !== undefined && atEnd) {
    once(terminal, () => ({ job: jobSummary(job) }));
    // A schedule goes on after a job that completed or failed, not after one that was cancelled:
    // its entry is due at the first time the schedule names after the job ended.
    state.done = true;
    if (schedule !== undefined && job.status !== 'cancelled' && !state.sent.includes(SCHEDULE_EVENT)) {
      let due: number | null = null;
      try {
        due = await nextScheduledAt(schedule, job.options.scheduleTimezone, Date.parse(job.finishedAt ?? new Date(at).toISOString()));
        state.sent.push(SCHEDULE_EVENT);
      } catch (error) {
        // Read at creation, unreadable now (the time zone data of another Node.js?): the job's
        // other deliveries go out, the registration stays, and the next pump tries again.
        scheduleError = error instanceof Error ? error : new Error(String(error));
        state.done = false;
      }
      if (due !== null) {
        const data = {
          jobId: job.id,
          schedule,
          ...(job.options.scheduleTimezone === undefined ? {} : { timezone: job.options.scheduleTimezone }),
          dueAt: new Date(due).toISOString(),
        };
        deliveries.push({
          id: deliveryId(job.id, state.seq++),
          jobId: job.id,
          event: SCHEDULE_EVENT,
          url: SCHEDULE_TARGET,
          payload: JSON.stringify({ type: SCHEDULE_EVENT, data }),
          createdAt: due,
        });
      }
    }
  }
  const before = entry.state ?? { seq: 0, resultsCursor: null, resultsSkip: 0, sent: [], done: false };
  if (deliveries.length === 0) {
    if (JSON.stringify(before) === JSON.stringify(state)) {
      if (scheduleError !== null) throw scheduleError;
      return { enqueued: 0, ours: true };
    }
    // Moved without a delivery (events not wanted): the sequence still advances, so that the
    // compare-and-set on it refuses any pump that started from the older state.
    state.seq++;
  }
  const stored = await storage.enqueueWebhookDeliveries!(job.id, entry.state, state, deliveries);
  const due = deliveries.find((d) => d.event === SCHEDULE_EVENT)?.createdAt;
  if (scheduleError !== null) throw scheduleError;
  return stored ? { enqueued: deliveries.length, ours: true, ...(due === undefined ? {} : { dueAt: due }) } : { enqueued: 0, ours: true };
}
