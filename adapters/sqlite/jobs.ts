/** Job-level operations: create, cancel, delete, robots.txt records, the event log, listings. */
import {
  type CancelResult,
  CrawlEngineError,
  type DeleteResult,
  type FrontierLink,
  type Job,
  type NewEvent,
  type Paginated,
  type PageResult,
  type ProgressEvent,
  type RobotsRecord,
} from '../../src/storage/index.js';
import { appendEvent, type Ctx, isActive, jobJson, type JobRow, jobRow } from './rows.js';
import { FINISHED } from './schema.js';
import { forgetWebhookJob } from './webhooks.js';

const notFound = (jobId: string) => new CrawlEngineError('not_found', `job ${JSON.stringify(jobId)} does not exist`);

export function createJob(x: Ctx, job: Job, seed: FrontierLink): { job: Job; events: ProgressEvent[] } {
  const { c, t } = x;
  if (jobRow(x, job.id) !== undefined) throw new CrawlEngineError('conflict', `job ${job.id} already exists`);
  // The start URL is an admitted URL like any other: unsure while its robots.txt is not known.
  const unsure = seed.robots === 'allowed' ? 0 : 1;
  c.run(
    `INSERT INTO ${t.jobs} (id, status, url, options, metadata, created_at, max_pages, per_host_concurrency, per_host_delay_ms, unsure, priority)
     VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    job.id,
    job.url,
    JSON.stringify(job.options),
    JSON.stringify(job.metadata ?? {}),
    job.createdAt,
    job.options.maxPages,
    job.options.perHostConcurrency,
    job.options.perHostDelayMs,
    unsure,
    job.options.priority ?? 0,
  );
  c.run(
    `INSERT INTO ${t.frontier} (job_id, url_key, url, depth, host, unsure, lastmod) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    job.id,
    seed.key,
    seed.url,
    seed.depth,
    seed.host,
    unsure,
    seed.lastmod ?? null,
  );
  c.run(`INSERT INTO ${t.hosts} (job_id, host) VALUES (?, ?)`, job.id, seed.host);
  const event = appendEvent(x, job.id, { type: 'job:created', at: job.createdAt, url: job.url });
  return { job: jobJson(jobRow(x, job.id)!), events: [event] };
}

/**
 * Idempotent. Only the job row changes: claims visit active jobs only, and complete, retry and
 * release refuse the leases of a job that is not active, so the frontier needs no update (which
 * keeps this transaction short however large the frontier is).
 */
export function cancelJob(x: Ctx, id: string, now: number): CancelResult {
  const j = jobRow(x, id);
  if (j === undefined) return { job: null, events: [] };
  if (!isActive(j.status)) return { job: jobJson(j), events: [] };
  const nowIso = new Date(now).toISOString();
  x.c.run(`UPDATE ${x.t.jobs} SET status = 'cancelled', finished_at = ?, queued = 0, in_progress = 0, ready_at = 0, wait_at = 0 WHERE id = ?`, nowIso, id);
  const event = appendEvent(x, id, { type: 'job:cancelled', at: nowIso });
  return { job: jobJson(jobRow(x, id)!), events: [event] };
}

/**
 * Deletes the job and every row it owns, in the caller's transaction; an active job is cancelled
 * first (its job:cancelled returned). With `finishedBefore` (ISO time), only a finished job that
 * finished before it: the retention sweep, which reads the due jobs before this transaction.
 */
export function deleteJob(x: Ctx, id: string, now: number, finishedBefore: string | null = null): DeleteResult {
  const j = jobRow(x, id);
  if (j === undefined) return { deleted: false, events: [] };
  if (finishedBefore !== null && (isActive(j.status) || j.finished_at === null || j.finished_at >= finishedBefore)) return { deleted: false, events: [] };
  const { events } = isActive(j.status) ? cancelJob(x, id, now) : { events: [] };
  const { c, t } = x;
  for (const table of [t.frontier, t.hosts, t.results, t.events, t.robots]) c.run(`DELETE FROM ${table} WHERE job_id = ?`, id);
  forgetWebhookJob(x, id);
  c.run(`DELETE FROM ${t.jobs} WHERE id = ?`, id);
  return { deleted: true, events };
}

/**
 * The ids of at most `limit` finished jobs that finished before `finishedBefore`, oldest first.
 * INDEXED BY: without statistics the planner took jobs_status and sorted every finished job.
 */
export function dueJobs(x: Ctx, prefix: string, finishedBefore: string, limit: number): string[] {
  return x.c
    .all<{ id: string }>(
      `SELECT id FROM ${x.t.jobs} INDEXED BY "${prefix}jobs_finished" WHERE ${FINISHED} AND finished_at < ? ORDER BY finished_at, ordinal LIMIT ?`,
      finishedBefore,
      limit,
    )
    .map((r) => r.id);
}

export function putRobots(x: Ctx, jobId: string, record: RobotsRecord): void {
  const { c, t } = x;
  // A job deleted while its robots.txt was being fetched: nothing to keep it for (as on Postgres and KV).
  if (jobRow(x, jobId) === undefined) return;
  c.run(
    `INSERT INTO ${t.robots} (job_id, origin, record) VALUES (?, ?, ?) ON CONFLICT (job_id, origin) DO UPDATE SET record = excluded.record`,
    jobId,
    record.origin,
    JSON.stringify(record),
  );
  c.run(
    `INSERT INTO ${t.hosts} (job_id, host, crawl_delay_ms) VALUES (?, ?, ?) ON CONFLICT (job_id, host) DO UPDATE SET crawl_delay_ms = excluded.crawl_delay_ms`,
    jobId,
    new URL(record.origin).hostname,
    record.crawlDelayMs ?? 0,
  );
  // A shorter Crawl-delay may give a host more slots at once: claims visit the job again.
  c.run(`UPDATE ${t.jobs} SET ready_at = 0, wait_at = 0 WHERE id = ?`, jobId);
}

export function getRobots(x: Ctx, jobId: string, origin: string): RobotsRecord | null {
  const row = x.c.get<{ record: string }>(`SELECT record FROM ${x.t.robots} WHERE job_id = ? AND origin = ?`, jobId, origin);
  return row === undefined ? null : (JSON.parse(row.record) as RobotsRecord);
}

export function appendEvents(x: Ctx, jobId: string, events: NewEvent[]): ProgressEvent[] {
  if (jobRow(x, jobId) === undefined) throw notFound(jobId);
  return events.map((event) => appendEvent(x, jobId, event));
}

/** Events after `after`; a `progress` snapshot first when some of them were trimmed. */
export function readEvents(x: Ctx, jobId: string, after: number, limit: number): ProgressEvent[] {
  const row = x.c.get<{ trimmed: string | null }>(`SELECT trimmed FROM ${x.t.jobs} WHERE id = ?`, jobId);
  if (row === undefined) return [];
  const out: ProgressEvent[] = [];
  let from = after;
  if (row.trimmed !== null) {
    const snapshot = JSON.parse(row.trimmed) as ProgressEvent;
    if (after < Number(snapshot.id)) {
      out.push({ ...snapshot, type: 'progress' });
      from = Number(snapshot.id);
    }
  }
  const rows = x.c.all<{ event: string }>(`SELECT event FROM ${x.t.events} WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?`, jobId, from, limit - out.length);
  for (const r of rows) out.push(JSON.parse(r.event) as ProgressEvent);
  return out;
}

export function listJobs(x: Ctx, status: string | null, before: bigint | null, limit: number): Paginated<Job> {
  const rows = x.c.all<JobRow>(
    `SELECT * FROM ${x.t.jobs} WHERE (? IS NULL OR status = ?) AND (? IS NULL OR ordinal < ?) ORDER BY ordinal DESC LIMIT ?`,
    status,
    status,
    before,
    before,
    limit + 1,
  );
  const page = rows.slice(0, limit);
  return { items: page.map(jobJson), nextCursor: rows.length > limit ? String(page[page.length - 1]!.ordinal) : null };
}

export function listResults(x: Ctx, jobId: string, after: bigint, limit: number): Paginated<PageResult> {
  const rows = x.c.all<{ seq: number; result: string }>(
    `SELECT seq, result FROM ${x.t.results} WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
    jobId,
    after,
    limit + 1,
  );
  const page = rows.slice(0, limit);
  return { items: page.map((r) => JSON.parse(r.result) as PageResult), nextCursor: rows.length > limit ? String(page[page.length - 1]!.seq) : null };
}

/**
 * The newest result of each URL in a job, in order: through the results_url index (version 6),
 * named with INDEXED BY so the planner never prefers scanning the job's results.
 */
export function getResults(x: Ctx, jobId: string, urls: string[]): Array<PageResult | null> {
  const found = new Map<string, string>();
  for (let from = 0; from < urls.length; from += 200) {
    const batch = urls.slice(from, from + 200);
    const rows = x.c.all<{ u: string; result: string }>(
      `SELECT json_extract(result, '$.url') AS u, result FROM ${x.t.results} INDEXED BY ${x.t.resultsUrl}
        WHERE job_id = ? AND json_extract(result, '$.url') IN (${batch.map(() => '?').join(', ')}) ORDER BY seq`,
      jobId,
      ...batch,
    );
    for (const row of rows) found.set(row.u, row.result);
  }
  return urls.map((url) => {
    const json = found.get(url);
    return json === undefined ? null : (JSON.parse(json) as PageResult);
  });
}
