/**
 * The SQLite schema as versioned migrations, applied in one `BEGIN IMMEDIATE` transaction by the
 * first operation of a storage (so several processes opening one new file agree on it). The
 * columns are those of the Postgres adapter; JSON values are stored as text.
 */
import { CrawlEngineError } from '../../src/storage/index.js';
import type { Connection } from './driver.js';

/** Quoted names of the tables, and of `resultsUrl`, the index getResults names (INDEXED BY). */
export type Tables = Record<
  'migrations' | 'meta' | 'jobs' | 'frontier' | 'hosts' | 'results' | 'events' | 'robots' | 'webhookJobs' | 'webhookDeliveries' | 'resultsUrl',
  string
>;

export function tables(prefix: string): Tables {
  const q = (name: string) => `"${prefix}${name}"`;
  return {
    migrations: q('migrations'),
    meta: q('meta'),
    jobs: q('jobs'),
    frontier: q('frontier'),
    hosts: q('hosts'),
    results: q('results'),
    resultsUrl: q('results_url'),
    events: q('events'),
    robots: q('robots'),
    webhookJobs: q('webhook_jobs'),
    webhookDeliveries: q('webhook_deliveries'),
  };
}

/** Jobs that claims visit. */
export const ACTIVE = `status IN ('queued', 'running')`;
/** Jobs the retention sweep may delete. */
export const FINISHED = `status IN ('completed', 'failed', 'cancelled')`;

interface Migration {
  version: number;
  name: string;
  statements: (t: Tables, prefix: string) => string[];
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'jobs, frontier, hosts, results, events, robots',
    statements: (t, p) => [
      // serve: bumped for every job and host a claim serves, so both are visited least recently served first.
      `CREATE TABLE ${t.meta} (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID`,
      `INSERT INTO ${t.meta} (key, value) VALUES ('serve', 0)`,
      // ready_at: 0 while claims visit the job, else parked until then (or until woken by complete,
      // retry, release, putRobots). wait_at: while parked, when its first URL waiting on the clock
      // alone becomes ready (0: none). robots_free, refunds, unsure, spares: the maxPages accounting
      // (see the Postgres adapter's schema).
      `CREATE TABLE ${t.jobs} (
        ordinal INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        url TEXT NOT NULL,
        options TEXT NOT NULL,
        metadata TEXT NOT NULL,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        error TEXT,
        first_error TEXT,
        discovered INTEGER NOT NULL DEFAULT 1,
        queued INTEGER NOT NULL DEFAULT 1,
        in_progress INTEGER NOT NULL DEFAULT 0,
        succeeded INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        event_seq INTEGER NOT NULL DEFAULT 0,
        trimmed TEXT,
        last_claim INTEGER NOT NULL DEFAULT 0,
        max_pages INTEGER NOT NULL,
        per_host_concurrency INTEGER NOT NULL,
        per_host_delay_ms INTEGER NOT NULL,
        robots_free INTEGER NOT NULL DEFAULT 0,
        refunds INTEGER NOT NULL DEFAULT 0,
        unsure INTEGER NOT NULL DEFAULT 0,
        spares INTEGER NOT NULL DEFAULT 0,
        ready_at INTEGER NOT NULL DEFAULT 0,
        wait_at INTEGER NOT NULL DEFAULT 0
      )`,
      `CREATE INDEX "${p}jobs_status" ON ${t.jobs} (status, ordinal)`,
      `CREATE INDEX "${p}jobs_eligible" ON ${t.jobs} (last_claim, ordinal) WHERE ${ACTIVE} AND ready_at = 0`,
      `CREATE INDEX "${p}jobs_parked" ON ${t.jobs} (ready_at) WHERE ${ACTIVE} AND ready_at > 0`,
      `CREATE INDEX "${p}jobs_waiting" ON ${t.jobs} (wait_at) WHERE ${ACTIVE} AND wait_at > 0`,
      // seq (the rowid) is discovery order. state: pending, leased, done, failed or spare.
      `CREATE TABLE ${t.frontier} (
        seq INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL,
        url_key TEXT NOT NULL,
        url TEXT NOT NULL,
        depth INTEGER NOT NULL,
        host TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        token TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_until INTEGER NOT NULL DEFAULT 0,
        not_before INTEGER NOT NULL DEFAULT 0,
        prio INTEGER NOT NULL DEFAULT 0,
        unsure INTEGER NOT NULL DEFAULT 0,
        UNIQUE (job_id, url_key)
      )`,
      `CREATE INDEX "${p}frontier_ready" ON ${t.frontier} (job_id, host, prio, seq) WHERE state = 'pending' AND not_before = 0`,
      `CREATE INDEX "${p}frontier_leased" ON ${t.frontier} (job_id, lease_until) WHERE state = 'leased'`,
      `CREATE INDEX "${p}frontier_waiting" ON ${t.frontier} (job_id, not_before) WHERE state = 'pending' AND not_before > 0`,
      `CREATE INDEX "${p}frontier_spare" ON ${t.frontier} (job_id, seq) WHERE state = 'spare'`,
      `CREATE TABLE ${t.hosts} (
        job_id TEXT NOT NULL,
        host TEXT NOT NULL,
        in_flight INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER NOT NULL DEFAULT 0,
        crawl_delay_ms INTEGER NOT NULL DEFAULT 0,
        last_pick INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (job_id, host)
      ) WITHOUT ROWID`,
      `CREATE INDEX "${p}hosts_rotation" ON ${t.hosts} (job_id, last_pick, host)`,
      `CREATE TABLE ${t.results} (seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL, result TEXT NOT NULL)`,
      `CREATE INDEX "${p}results_job" ON ${t.results} (job_id, seq)`,
      `CREATE TABLE ${t.events} (job_id TEXT NOT NULL, id INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (job_id, id)) WITHOUT ROWID`,
      `CREATE TABLE ${t.robots} (job_id TEXT NOT NULL, origin TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (job_id, origin)) WITHOUT ROWID`,
    ],
  },
  {
    version: 2,
    name: 'finished jobs by finish time, for the retention sweep',
    // finished_at is an ISO time: text order (BINARY) is time order. Every table a job owns is
    // reached by job_id through an index already (frontier's UNIQUE, results_job, primary keys),
    // so deleting a job needs no other.
    statements: (t, p) => [`CREATE INDEX "${p}jobs_finished" ON ${t.jobs} (finished_at, ordinal) WHERE ${FINISHED}`],
  },
  {
    version: 3,
    name: 'admission: claims with a bound start queued jobs by priority, then creation, and visit running jobs only',
    statements: (t, p) => [
      // priority: options.priority (0 when absent), higher admitted first. admitted: 1 while a job
      // started by admission runs, counted against the claims' maxActiveJobs (jobs started by a
      // claim of their own, or before version 3, are not); 0 again once a claim parks it on the clock.
      `ALTER TABLE ${t.jobs} ADD COLUMN priority INTEGER NOT NULL DEFAULT 0`,
      `ALTER TABLE ${t.jobs} ADD COLUMN admitted INTEGER NOT NULL DEFAULT 0`,
      `UPDATE ${t.jobs} SET priority = coalesce(json_extract(options, '$.priority'), 0)`,
      `CREATE INDEX "${p}jobs_line" ON ${t.jobs} (priority DESC, ordinal) WHERE status = 'queued'`,
      `CREATE INDEX "${p}jobs_admitted" ON ${t.jobs} (ordinal) WHERE status = 'running' AND admitted = 1`,
      `CREATE INDEX "${p}jobs_running_eligible" ON ${t.jobs} (last_claim, ordinal) WHERE status = 'running' AND ready_at = 0`,
      `CREATE INDEX "${p}jobs_running_parked" ON ${t.jobs} (ready_at) WHERE status = 'running' AND ready_at > 0`,
    ],
  },
  {
    version: 4,
    name: "frontier lastmod: a link's sitemap <lastmod> is stored with its frontier row and handed back on its leases",
    // NULL when the link had none (every row written before version 4).
    statements: (t) => [`ALTER TABLE ${t.frontier} ADD COLUMN lastmod TEXT`],
  },
  {
    version: 5,
    name: 'webhook outbox: registered jobs with their pump state, deliveries claimed with leases',
    statements: (t, p) => [
      // One row per registered job (registered before its job row exists: no reference to jobs).
      // seq: the pump state's seq, compared by enqueues (NULL until the first); a done state
      // deletes the row. ordinal breaks ties of registered_at in registration order.
      // ordinal: registration order, never reused (AUTOINCREMENT), the listing's cursor.
      `CREATE TABLE ${t.webhookJobs} (
        ordinal INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL UNIQUE,
        registered_at INTEGER NOT NULL,
        seq INTEGER,
        state TEXT
      )`,
      // seq (the rowid) is enqueue order. state: pending, delivered or failed; a pending row is
      // leased while token is set and lease_until is ahead of the claim's clock. payload is the
      // signed body, stored as given.
      `CREATE TABLE ${t.webhookDeliveries} (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        job_id TEXT NOT NULL,
        event TEXT NOT NULL,
        url TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        delivered_at INTEGER,
        last_error TEXT,
        token TEXT,
        lease_until INTEGER NOT NULL DEFAULT 0
      )`,
      `CREATE INDEX "${p}webhook_deliveries_due" ON ${t.webhookDeliveries} (next_attempt_at, seq) WHERE state = 'pending'`,
      `CREATE INDEX "${p}webhook_deliveries_job" ON ${t.webhookDeliveries} (job_id, seq)`,
    ],
  },
  {
    version: 6,
    name: 'recrawls: results indexed by URL within their job, for getResults',
    // getResults queries the same expression, so it goes through this index, never a scan of the job.
    statements: (t, p) => [`CREATE INDEX "${p}results_url" ON ${t.results} (job_id, json_extract(result, '$.url'))`],
  },
];

export const LATEST = Math.max(...MIGRATIONS.map((m) => m.version));

/** Applies the missing migrations; must run inside a write transaction. */
export function migrate(c: Connection, t: Tables, prefix: string): number[] {
  c.db.exec(`CREATE TABLE IF NOT EXISTS ${t.migrations} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const done = new Set(c.all<{ version: number }>(`SELECT version FROM ${t.migrations}`).map((r) => Number(r.version)));
  const newest = Math.max(0, ...done);
  if (newest > LATEST) {
    throw new CrawlEngineError(
      'storage_error',
      `[crawl-engine] [sqlite] the tables ${prefix}* are at schema version ${newest}, newer than this crawl-engine knows (${LATEST}): upgrade crawl-engine`,
    );
  }
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue;
    for (const sql of m.statements(t, prefix)) c.db.exec(sql);
    c.run(`INSERT INTO ${t.migrations} (version, name, applied_at) VALUES (?, ?, ?)`, m.version, m.name, new Date().toISOString());
    applied.push(m.version);
  }
  return applied;
}
