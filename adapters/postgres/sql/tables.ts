/**
 * Tables, columns and indexes. Frozen: each builder is the DDL one migration ran (named after it in
 * `schema.ts`); a change of shape is a new builder used by a new migration.
 */
import { type Names, namer } from './names.js';

/** The statuses claims visit; the partial indexes below are restricted to them. */
const ACTIVE = `status IN ('queued', 'running')`;

/**
 * Version 1. One row per job: the job as the API returns it (`job_json`), its counts, its event
 * sequence and the options the SQL functions need as columns. Counts, kept by the functions under
 * the row lock: `queued` = frontier rows `pending`, `in_progress` = rows `leased`, `discovered` = rows
 * admitted (not `spare`); `succeeded + failed + skipped` = rows finished. `event_seq` is the id of the last event,
 * `trimmed` the event at the cut of the trimmed log (sent as a `progress` snapshot). `last_claim`
 * (ms) orders jobs for fair claims; `ordinal` breaks ties in creation order.
 */
export function jobsTable(n: Names): string {
  const t = namer(n);
  return `CREATE TABLE ${t('jobs')} (
    id text PRIMARY KEY,
    ordinal bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    status text NOT NULL,
    url text NOT NULL,
    options jsonb NOT NULL,
    metadata jsonb NOT NULL,
    created_at text NOT NULL,
    started_at text,
    finished_at text,
    error jsonb,
    first_error jsonb,
    discovered int NOT NULL DEFAULT 1,
    queued int NOT NULL DEFAULT 1,
    in_progress int NOT NULL DEFAULT 0,
    succeeded int NOT NULL DEFAULT 0,
    failed int NOT NULL DEFAULT 0,
    skipped int NOT NULL DEFAULT 0,
    event_seq bigint NOT NULL DEFAULT 0,
    trimmed jsonb,
    last_claim bigint NOT NULL DEFAULT 0,
    max_pages int NOT NULL,
    per_host_concurrency int NOT NULL,
    per_host_delay_ms int NOT NULL
  )`;
}

/** Version 1 (dropped by version 2): active jobs in claim order. */
export function jobsActiveIndex(n: Names): string {
  return `CREATE INDEX "${n.prefix}jobs_active" ON ${namer(n)('jobs')} (last_claim, ordinal) WHERE ${ACTIVE}`;
}

/** Version 1: jobs listed by status, oldest first. */
export function jobsStatusIndex(n: Names): string {
  return `CREATE INDEX "${n.prefix}jobs_status" ON ${namer(n)('jobs')} (status, ordinal)`;
}

/**
 * Version 1. The URLs of a job, one row per normalised URL (`url_key`), so a URL is admitted once.
 * `state`: `pending` (ready when `not_before` = 0, else backing off until then), `leased` (held by
 * `token` until `lease_until`), `done`, `failed` (skipped ones too), `cancelled`; version 3 adds
 * `spare`. `seq` is admission order, `prio` -1 puts retried and released URLs first.
 */
export function frontierTable(n: Names): string {
  const t = namer(n);
  return `CREATE TABLE ${t('frontier')} (
    job_id text NOT NULL REFERENCES ${t('jobs')} (id) ON DELETE CASCADE,
    url_key text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    url text NOT NULL,
    depth int NOT NULL,
    host text NOT NULL,
    state text NOT NULL DEFAULT 'pending',
    token text,
    attempts int NOT NULL DEFAULT 0,
    lease_until bigint NOT NULL DEFAULT 0,
    not_before bigint NOT NULL DEFAULT 0,
    prio int NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, url_key)
  )`;
}

/** Version 1: the pending URLs of a host in the order claims lease them. */
export function frontierReadyIndex(n: Names): string {
  const t = namer(n);
  return `CREATE INDEX "${n.prefix}frontier_ready" ON ${t('frontier')} (job_id, host, prio, seq)
    WHERE state = 'pending'`;
}

/** Version 1: leases by expiry, for claims taking over expired ones. */
export function frontierLeasedIndex(n: Names): string {
  const t = namer(n);
  return `CREATE INDEX "${n.prefix}frontier_leased" ON ${t('frontier')} (job_id, lease_until) WHERE state = 'leased'`;
}

/** Version 1: retries backing off, by the time they become ready. */
export function frontierWaitingIndex(n: Names): string {
  const t = namer(n);
  return `CREATE INDEX "${n.prefix}frontier_waiting" ON ${t('frontier')} (job_id, not_before)
    WHERE state = 'pending' AND not_before > 0`;
}

/**
 * Version 1. One row per host of a job: `in_flight` = its `leased` URLs (at most the job's
 * per-host concurrency, 1 while a delay applies), `next_at` (ms) when its next request may start,
 * `crawl_delay_ms` from robots.txt, `last_pick` (ms) rotating claims over hosts.
 */
export function hostsTable(n: Names): string {
  const t = namer(n);
  return `CREATE TABLE ${t('hosts')} (
    job_id text NOT NULL REFERENCES ${t('jobs')} (id) ON DELETE CASCADE,
    host text NOT NULL,
    in_flight int NOT NULL DEFAULT 0,
    next_at bigint NOT NULL DEFAULT 0,
    crawl_delay_ms int NOT NULL DEFAULT 0,
    last_pick bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, host)
  )`;
}

/** Version 1. Page results of a job, in the order they were recorded (`seq`). */
export function resultsTable(n: Names): string {
  const t = namer(n);
  return `CREATE TABLE ${t('results')} (
    job_id text NOT NULL REFERENCES ${t('jobs')} (id) ON DELETE CASCADE,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    result jsonb NOT NULL,
    PRIMARY KEY (job_id, seq)
  )`;
}

/** Version 1. The (trimmed) event log of a job; `id` counts per job, from `jobs.event_seq`. */
export function eventsTable(n: Names): string {
  const t = namer(n);
  return `CREATE TABLE ${t('events')} (
    job_id text NOT NULL REFERENCES ${t('jobs')} (id) ON DELETE CASCADE,
    id bigint NOT NULL,
    event jsonb NOT NULL,
    PRIMARY KEY (job_id, id)
  )`;
}

/** Version 1. The robots.txt record of each origin a job reached. */
export function robotsTable(n: Names): string {
  const t = namer(n);
  return `CREATE TABLE ${t('robots')} (
    job_id text NOT NULL REFERENCES ${t('jobs')} (id) ON DELETE CASCADE,
    origin text NOT NULL,
    record jsonb NOT NULL,
    PRIMARY KEY (job_id, origin)
  )`;
}

/**
 * Version 2. `ready_at`: 0 while claims visit the job; otherwise the job is parked (a claim found
 * nothing ready in it) until then, or until woken by complete, retry or release (which reset it to
 * 0). `wait_at`: while parked, when its first URL waiting on the clock alone (a host delay, a retry
 * backoff) becomes ready, 0 if none; claims report the earliest as `nextReadyAt`.
 */
export function parkColumns(n: Names): string[] {
  const t = namer(n);
  const readyAt = `ALTER TABLE ${t('jobs')} ADD COLUMN ready_at bigint NOT NULL DEFAULT 0`;
  const waitAt = `ALTER TABLE ${t('jobs')} ADD COLUMN wait_at bigint NOT NULL DEFAULT 0`;
  return [readyAt, waitAt];
}

/** Version 2: `jobs_active` gives way to the three indexes of parking. */
export function dropJobsActiveIndex(n: Names): string {
  return `DROP INDEX IF EXISTS ${n.schema}."${n.prefix}jobs_active"`;
}

/** Version 2: active jobs that are not parked, in claim order. */
export function jobsEligibleIndex(n: Names): string {
  return `CREATE INDEX "${n.prefix}jobs_eligible" ON ${namer(n)('jobs')} (last_claim, ordinal)
    WHERE ${ACTIVE} AND ready_at = 0`;
}

/** Version 2: parked active jobs, by the end of their park. */
export function jobsParkedIndex(n: Names): string {
  return `CREATE INDEX "${n.prefix}jobs_parked" ON ${namer(n)('jobs')} (ready_at)
    WHERE ${ACTIVE} AND ready_at > 0`;
}

/** Version 2: parked active jobs waiting on the clock, for `nextReadyAt`. */
export function jobsWaitingIndex(n: Names): string {
  return `CREATE INDEX "${n.prefix}jobs_waiting" ON ${namer(n)('jobs')} (wait_at)
    WHERE ${ACTIVE} AND wait_at > 0`;
}

/**
 * Version 3, the charges of `maxPages`. `robots_free`: skipped links recorded without a charge (at
 * most max_pages). `refunds`: charges given back by URLs skipped for robots.txt after they were
 * admitted (at most max_pages). The charged URLs are discovered - robots_free - refunds (at most
 * max_pages). `unsure`: unfinished admitted URLs whose robots.txt was unknown when found (they may
 * be refunded); the frontier flag marks them. `spares`: links kept past max_pages (state `spare`)
 * to stand in for refunded URLs. Jobs of an older version start at 0, which is how they were counted.
 */
export function accountingColumns(n: Names): string[] {
  const t = namer(n);
  return [
    `ALTER TABLE ${t('jobs')} ADD COLUMN robots_free int NOT NULL DEFAULT 0`,
    `ALTER TABLE ${t('jobs')} ADD COLUMN refunds int NOT NULL DEFAULT 0`,
    `ALTER TABLE ${t('jobs')} ADD COLUMN unsure int NOT NULL DEFAULT 0`,
    `ALTER TABLE ${t('jobs')} ADD COLUMN spares int NOT NULL DEFAULT 0`,
    `ALTER TABLE ${t('frontier')} ADD COLUMN unsure boolean NOT NULL DEFAULT false`,
  ];
}

/** Version 3: the spares of a job, oldest first (the next to stand in). */
export function frontierSpareIndex(n: Names): string {
  return `CREATE INDEX "${n.prefix}frontier_spare" ON ${namer(n)('frontier')} (job_id, seq) WHERE state = 'spare'`;
}

/**
 * Version 7, admission. `priority` (from `options.priority`, 0 for jobs created without one; higher
 * is admitted first), generated so that `create_job` stays as it is. `admitted`: started by a claim
 * across jobs under `maxActiveJobs`, so counted against it while running (jobs started by a claim
 * of their own, or before version 7, are not).
 */
export function admissionColumnsV7(n: Names): string[] {
  const t = namer(n);
  return [
    `ALTER TABLE ${t('jobs')} ADD COLUMN priority int NOT NULL
      GENERATED ALWAYS AS (coalesce((options->>'priority')::int, 0)) STORED`,
    `ALTER TABLE ${t('jobs')} ADD COLUMN admitted boolean NOT NULL DEFAULT false`,
  ];
}

/** Version 7: the admission line, queued jobs in the order claims start them. */
export function jobsLineIndexV7(n: Names): string {
  return `CREATE INDEX "${n.prefix}jobs_line" ON ${namer(n)('jobs')} (priority DESC, ordinal) WHERE status = 'queued'`;
}

/** Version 7: running jobs started by admission, counted against the bound. */
export function jobsAdmittedIndexV7(n: Names): string {
  return `CREATE INDEX "${n.prefix}jobs_admitted" ON ${namer(n)('jobs')} (ordinal) WHERE status = 'running' AND admitted`;
}

/**
 * Version 7: running jobs that are not parked, in claim order, and parked running jobs by the end of
 * their park: claims with a bound visit these, never reading the queued jobs.
 */
export function jobsRunningIndexesV7(n: Names): string[] {
  const t = namer(n);
  return [
    `CREATE INDEX "${n.prefix}jobs_running_eligible" ON ${t('jobs')} (last_claim, ordinal) WHERE status = 'running' AND ready_at = 0`,
    `CREATE INDEX "${n.prefix}jobs_running_parked" ON ${t('jobs')} (ready_at) WHERE status = 'running' AND ready_at > 0`,
  ];
}

/** Version 8: a frontier row's sitemap `<lastmod>` (`FrontierLink.lastmod`), NULL when it had none. */
export function frontierLastmodColumnV8(n: Names): string {
  const t = namer(n);
  return `ALTER TABLE ${t('frontier')} ADD COLUMN lastmod text`;
}

/**
 * Version 10. Results by URL within a job (`getResults`: a recrawl looks up each page's earlier
 * result, and reads fill in the content of unchanged pages), so a lookup never scans a job.
 */
export function resultsUrlIndexV10(n: Names): string {
  return `CREATE INDEX "${n.prefix}results_url" ON ${namer(n)('results')} (job_id, (result->>'url'))`;
}
