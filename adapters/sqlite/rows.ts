/**
 * What every operation shares: the job row and its JSON, appending an event, a host's lease
 * slot. All of it runs inside a transaction of the caller.
 */
import type { ErrorInfo, Job, JobCounts, JobStatus, NewEvent, ProgressEvent } from '../../src/storage/index.js';
import type { Connection } from './driver.js';
import type { Tables } from './schema.js';

export interface Ctx {
  c: Connection;
  t: Tables;
  maxEvents: number;
}

export interface JobRow {
  ordinal: number;
  id: string;
  status: JobStatus;
  url: string;
  options: string;
  metadata: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  error: string | null;
  first_error: string | null;
  discovered: number;
  queued: number;
  in_progress: number;
  succeeded: number;
  failed: number;
  skipped: number;
  event_seq: number;
  trimmed: string | null;
  last_claim: number;
  max_pages: number;
  per_host_concurrency: number;
  per_host_delay_ms: number;
  robots_free: number;
  refunds: number;
  unsure: number;
  spares: number;
  ready_at: number;
  wait_at: number;
  /** 1 while counted against the claims' `maxActiveJobs` (schema version 3). */
  admitted: number;
}

export interface FrontierRow {
  seq: number;
  job_id: string;
  url_key: string;
  url: string;
  depth: number;
  host: string;
  state: 'pending' | 'leased' | 'done' | 'failed' | 'spare';
  token: string | null;
  attempts: number;
  lease_until: number;
  not_before: number;
  prio: number;
  unsure: number;
  /** The link's sitemap `lastmod`, NULL when it had none. */
  lastmod: string | null;
}

export const isActive = (status: string) => status === 'queued' || status === 'running';

/** The smallest of the values that are not null (SQL's `least`). */
export function least(...values: Array<number | null | undefined>): number | null {
  let out: number | null = null;
  for (const v of values) if (v !== null && v !== undefined && (out === null || v < out)) out = v;
  return out;
}

const countsOf = (j: JobRow): JobCounts => ({
  discovered: j.discovered,
  queued: j.queued,
  inProgress: j.in_progress,
  succeeded: j.succeeded,
  failed: j.failed,
  skipped: j.skipped,
});

export function jobJson(j: JobRow): Job {
  return {
    id: j.id,
    status: j.status,
    url: j.url,
    options: JSON.parse(j.options) as Job['options'],
    counts: countsOf(j),
    createdAt: j.created_at,
    startedAt: j.started_at,
    finishedAt: j.finished_at,
    error: j.error === null ? null : (JSON.parse(j.error) as ErrorInfo),
    metadata: JSON.parse(j.metadata) as Job['metadata'],
  };
}

export const jobRow = (x: Ctx, id: string) => x.c.get<JobRow>(`SELECT * FROM ${x.t.jobs} WHERE id = ?`, id);

/** The next value of the serve counter: claims visit jobs and hosts least recently served first. */
export const nextServe = (x: Ctx) => x.c.get<{ value: number }>(`UPDATE ${x.t.meta} SET value = value + 1 WHERE key = 'serve' RETURNING value`)!.value;

/** Appends one event with the job's current counts, and trims the job's log. */
export function appendEvent(x: Ctx, jobId: string, event: NewEvent): ProgressEvent {
  const { c, t, maxEvents } = x;
  const j = c.get<JobRow>(`UPDATE ${t.jobs} SET event_seq = event_seq + 1 WHERE id = ? RETURNING *`, jobId)!;
  const stored: ProgressEvent = {
    id: String(j.event_seq),
    jobId,
    type: event.type,
    at: event.at,
    counts: countsOf(j),
    ...(event.url === undefined || event.url === null ? {} : { url: event.url }),
    ...(event.error === undefined || event.error === null ? {} : { error: { ...event.error } }),
  };
  c.run(`INSERT INTO ${t.events} (job_id, id, event) VALUES (?, ?, ?)`, jobId, j.event_seq, JSON.stringify(stored));
  // Trim in slices, as the Postgres adapter does: the log holds maxEvents to maxEvents + slack events.
  const slack = Math.max(16, Math.floor(maxEvents / 8));
  if (j.event_seq > maxEvents + slack && j.event_seq % slack === 0) {
    const cut = j.event_seq - maxEvents;
    c.run(`UPDATE ${t.jobs} SET trimmed = (SELECT event FROM ${t.events} WHERE job_id = ? AND id = ?) WHERE id = ?`, jobId, cut, jobId);
    c.run(`DELETE FROM ${t.events} WHERE job_id = ? AND id <= ?`, jobId, cut);
  }
  return stored;
}

/** Frees a lease's host slot; a request that was made also starts the host's delay. */
export function endLease(x: Ctx, j: JobRow, host: string, now: number, started: boolean): void {
  const { c, t } = x;
  if (!started) {
    c.run(`UPDATE ${t.hosts} SET in_flight = max(0, in_flight - 1) WHERE job_id = ? AND host = ?`, j.id, host);
    return;
  }
  // The delay is the job's, or the host's Crawl-delay if longer.
  c.run(
    `UPDATE ${t.hosts} SET in_flight = max(0, in_flight - 1),
       next_at = CASE WHEN max(?, crawl_delay_ms) > 0 THEN max(next_at, ? + max(?, crawl_delay_ms)) ELSE next_at END
     WHERE job_id = ? AND host = ?`,
    j.per_host_delay_ms,
    now,
    j.per_host_delay_ms,
    j.id,
    host,
  );
}

/** The job finished exactly once: nothing queued, nothing in progress. */
export function finishIfDone(x: Ctx, jobId: string, nowIso: string, events: ProgressEvent[]): void {
  const j = jobRow(x, jobId)!;
  if (j.queued !== 0 || j.in_progress !== 0 || !isActive(j.status)) return;
  const failed = j.succeeded === 0;
  const error = failed ? (j.first_error ?? JSON.stringify({ code: 'failed', message: 'no page could be fetched' })) : null;
  x.c.run(`UPDATE ${x.t.jobs} SET status = ?, finished_at = ?, error = ? WHERE id = ?`, failed ? 'failed' : 'completed', nowIso, error, jobId);
  events.push(
    appendEvent(x, jobId, { type: failed ? 'job:failed' : 'job:completed', at: nowIso, ...(error === null ? {} : { error: JSON.parse(error) as ErrorInfo }) }),
  );
}
