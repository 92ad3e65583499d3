/**
 * `postgresStorage({ client })`: the storage contract on PostgreSQL, for many processors in many
 * processes. Takes a node-postgres `Pool` or `Client`, a Neon serverless `Pool` / `Client`
 * (WebSocket), Neon's `neon()` HTTP query function, or PGlite. Each operation is one statement —
 * most of them a SQL function installed by `migrate()` — so each is one round trip and atomic;
 * `completeMany()` stores a whole batch of pages in one.
 * `watch()` (LISTEN/NOTIFY) is in listen.ts, the SQL in schema.ts and sql/.
 *
 * @module crawl-engine/adapters/postgres
 */
import {
  type CancelResult,
  type ClaimQuery,
  type ClaimWebhookQuery,
  type ClaimResult,
  type CompleteInput,
  type CompleteItem,
  type CompleteResult,
  CrawlEngineError,
  type CrawlStorage,
  type DeleteFinishedQuery,
  type DeleteFinishedResult,
  type DeleteResult,
  type FrontierLink,
  type Job,
  type Lease,
  type ListJobsQuery,
  type ListResultsQuery,
  type ListWebhookDeliveriesQuery,
  type NewEvent,
  type NewWebhookDelivery,
  type Paginated,
  type PageResult,
  type ProgressEvent,
  parseDigitsCursor,
  type RetryInput,
  type RobotsRecord,
  sweepEach,
  type WebhookDelivery,
  type WebhookDeliveryLease,
  type WebhookDeliveryOutcome,
  type WebhookJob,
  type WebhookPumpState,
} from '../../src/storage/index.js';
import { notifications } from './listen.js';
import { MIGRATIONS, qualified, type Names } from './schema.js';

/** Anything with `query(text, params)`: pg Pool/Client, Neon Pool/Client, PGlite. */
export interface QueryableClient {
  query(text: string, params?: unknown[]): Promise<{ rows: unknown[] } | unknown[]>;
}
/** Neon's `neon()` HTTP function (its `.query(text, params)` is used). */
export type NeonHttpClient = ((strings: TemplateStringsArray, ...values: unknown[]) => unknown) & {
  query(text: string, params?: unknown[]): Promise<unknown>;
};

export interface PostgresStorageOptions {
  client: QueryableClient | NeonHttpClient;
  /**
   * Schema of the tables (created by `migrate()` when missing).
   * @default 'public'
   */
  schema?: string;
  /**
   * Prefix of every table and function name.
   * @default 'crawl_'
   */
  tablePrefix?: string;
  /**
   * Events kept per job; older ones are trimmed and a late reader gets a `progress` snapshot.
   * @default 10000
   */
  maxEventsPerJob?: number;
  /**
   * Use LISTEN/NOTIFY so that progress subscribers wake in milliseconds. On by default when the
   * client can hold a connection (pg / Neon Pool or Client, PGlite); never over `neon()` HTTP.
   */
  listen?: boolean;
}

export interface PostgresStorage extends CrawlStorage {
  /** Creates or upgrades the tables and functions; safe to run from many processes at once. */
  migrate(): Promise<{ applied: number[]; version: number }>;
}

const IDENT = /^[a-z_][a-z0-9_]{0,40}$/;

const parseCursor = (cursor: string | null | undefined) => parseDigitsCursor(cursor, 18);

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A `webhook_deliveries` row as node-postgres, Neon and PGlite return it (bigints may come as text). */
interface DeliveryRow {
  id: string;
  job_id: string;
  event: WebhookDelivery['event'];
  url: string;
  payload: string;
  created_at: string | number;
  state: WebhookDelivery['state'];
  attempts: number;
  next_attempt_at: string | number;
  delivered_at: string | number | null;
  last_error: WebhookDelivery['lastError'];
  token: string | null;
  lease_until: string | number;
  seq: string | number;
}

function deliveryOf(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    jobId: row.job_id,
    event: row.event,
    url: row.url,
    payload: row.payload,
    createdAt: Number(row.created_at),
    state: row.state,
    attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at),
    deliveredAt: row.delivered_at === null ? null : Number(row.delivered_at),
    lastError: row.last_error,
  };
}

/** What is wrong with `completeMany`'s items, by field path (`items.2.input.now`). */
function badItems(items: unknown): Array<{ path: string; message: string }> {
  if (!Array.isArray(items)) return [{ path: 'items', message: 'expected an array of { lease, input }' }];
  return items.flatMap((item: unknown, i) => {
    if (!isObject(item)) return [{ path: `items.${i}`, message: 'expected { lease, input }' }];
    const { lease, input } = item;
    return [
      ...(isObject(lease) && typeof lease.jobId === 'string' ? [] : [{ path: `items.${i}.lease`, message: 'expected a lease from claim()' }]),
      ...(!isObject(input)
        ? [{ path: `items.${i}.input`, message: 'expected { result, links, now }' }]
        : [
            ...(isObject(input.result) ? [] : [{ path: `items.${i}.input.result`, message: 'expected a page result' }]),
            ...(Array.isArray(input.links) ? [] : [{ path: `items.${i}.input.links`, message: 'expected an array' }]),
            ...(input.skipped === undefined || Array.isArray(input.skipped) ? [] : [{ path: `items.${i}.input.skipped`, message: 'expected an array' }]),
            ...(Number.isFinite(input.now) ? [] : [{ path: `items.${i}.input.now`, message: 'expected a time in ms' }]),
          ]),
    ];
  });
}

export function postgresStorage(options: PostgresStorageOptions): PostgresStorage {
  const schema = options.schema ?? 'public';
  const prefix = options.tablePrefix ?? 'crawl_';
  const bad = [
    ...(IDENT.test(schema) ? [] : [{ path: 'schema', message: 'expected lower-case letters, digits and _' }]),
    ...(IDENT.test(prefix) || prefix === '' ? [] : [{ path: 'tablePrefix', message: 'expected lower-case letters, digits and _' }]),
    ...(options.maxEventsPerJob === undefined || (Number.isInteger(options.maxEventsPerJob) && options.maxEventsPerJob >= 1)
      ? []
      : [{ path: 'maxEventsPerJob', message: 'expected an integer >= 1' }]),
    ...(options.client && typeof (options.client as QueryableClient).query === 'function'
      ? []
      : [{ path: 'client', message: 'expected a pg Pool or Client, a Neon Pool, Client or neon() function, or PGlite' }]),
  ];
  if (bad.length > 0) {
    throw new CrawlEngineError('invalid_options', `invalid postgresStorage options: ${bad.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { errors: bad });
  }
  const names: Names = { schema: `"${schema}"`, prefix };
  const t = (name: string) => qualified(names, name);
  const maxEvents = options.maxEventsPerJob ?? 10_000;
  const client = options.client;
  const isNeonHttp = typeof client === 'function';
  const channel = `${prefix}events`;

  async function run<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
    try {
      const result = await (client as QueryableClient).query(text, params);
      return (Array.isArray(result) ? result : result.rows) as T[];
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === '42P01' || code === '42883' || code === '3F000') {
        throw new CrawlEngineError(
          'storage_error',
          `[crawl-engine] [postgres] table ${prefix}jobs or its functions are missing in schema ${schema}: run storage.migrate() first`,
          { cause: error },
        );
      }
      throw new CrawlEngineError('storage_error', `[crawl-engine] [postgres] ${(error as Error).message}`, { cause: error });
    }
  }
  const one = async <T>(text: string, params: unknown[]): Promise<T> => {
    const rows = await run<{ r: T }>(text, params);
    return rows[0]!.r;
  };

  // LISTEN/NOTIFY: one connection held for notifications, set up on the first watch().
  const canListen = options.listen ?? !isNeonHttp;
  const push = notifications(client, channel);

  const storage: PostgresStorage = {
    name: 'postgres',
    capabilities: { push: canListen, shared: true },

    async migrate() {
      const lock = `${schema}.${prefix}`;
      const blocks = MIGRATIONS.map((m) => {
        const statements = m
          .statements(names)
          .map((sql, i) => `EXECUTE $m${m.version}_${i}$${sql}$m${m.version}_${i}$;`)
          .join('\n');
        return `IF NOT EXISTS (SELECT 1 FROM ${t('migrations')} WHERE version = ${m.version}) THEN
          ${statements}
          INSERT INTO ${t('migrations')} (version, name) VALUES (${m.version}, '${m.name.replace(/'/g, "''")}');
        END IF;`;
      });
      const before = await run<{ version: number }>(`SELECT version FROM ${t('migrations')}`).catch(() => [] as Array<{ version: number }>);
      await run(`DO $migrate$
        BEGIN
          PERFORM pg_advisory_xact_lock(hashtext('crawl-engine:${lock}'));
          CREATE SCHEMA IF NOT EXISTS ${names.schema};
          CREATE TABLE IF NOT EXISTS ${t('migrations')} (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
          ${blocks.join('\n')}
        END $migrate$`);
      const done = new Set(before.map((r) => Number(r.version)));
      const applied = MIGRATIONS.map((m) => m.version).filter((v) => !done.has(v));
      return { applied, version: Math.max(...MIGRATIONS.map((m) => m.version)) };
    },

    async createJob(job: Job, seed: FrontierLink) {
      const out = await one<{ job: Job; events: ProgressEvent[] }>(`SELECT ${t('create_job')}($1::jsonb, $2::jsonb, $3::int) AS r`, [
        JSON.stringify(job),
        JSON.stringify(seed),
        maxEvents,
      ]).catch((error: CrawlEngineError) => {
        if ((error.cause as { code?: string } | undefined)?.code === '23505')
          throw new CrawlEngineError('conflict', `job ${job.id} already exists`, { cause: error });
        throw error;
      });
      return out;
    },

    async getJob(id) {
      const rows = await run<{ r: Job }>(`SELECT ${t('job_json')}(j) AS r FROM ${t('jobs')} j WHERE j.id = $1`, [id]);
      return rows[0]?.r ?? null;
    },

    async listJobs(query: ListJobsQuery): Promise<Paginated<Job>> {
      const before = parseCursor(query.cursor);
      const rows = await run<{ r: Job; ordinal: string }>(
        `SELECT ${t('job_json')}(j) AS r, j.ordinal::text AS ordinal FROM ${t('jobs')} j
         WHERE ($1::text IS NULL OR j.status = $1) AND ($2::bigint IS NULL OR j.ordinal < $2::bigint)
         ORDER BY j.ordinal DESC LIMIT $3`,
        [query.status ?? null, before, query.limit + 1],
      );
      const page = rows.slice(0, query.limit);
      return { items: page.map((row) => row.r), nextCursor: rows.length > query.limit ? page[page.length - 1]!.ordinal : null };
    },

    async listResults(jobId: string, query: ListResultsQuery): Promise<Paginated<PageResult>> {
      const after = parseCursor(query.cursor) ?? '0';
      const rows = await run<{ r: PageResult; seq: string }>(
        // ORDER BY the column, not the text alias (which would sort "1000" before "548").
        `SELECT x.result AS r, x.seq::text AS seq FROM ${t('results')} x WHERE x.job_id = $1 AND x.seq > $2::bigint ORDER BY x.seq LIMIT $3`,
        [jobId, after, query.limit + 1],
      );
      const page = rows.slice(0, query.limit);
      return { items: page.map((row) => row.r), nextCursor: rows.length > query.limit ? page[page.length - 1]!.seq : null };
    },

    async getResults(jobId: string, urls: string[]): Promise<Array<PageResult | null>> {
      if (urls.length === 0) return [];
      // Through the results_url index (version 10); the newest result of a URL if it had several.
      const rows = await run<{ u: string; r: PageResult }>(
        `SELECT DISTINCT ON (x.result->>'url') x.result->>'url' AS u, x.result AS r FROM ${t('results')} x
          WHERE x.job_id = $1 AND x.result->>'url' = ANY($2::text[]) ORDER BY x.result->>'url', x.seq DESC`,
        [jobId, urls],
      );
      const found = new Map(rows.map((row) => [row.u, row.r]));
      return urls.map((url) => found.get(url) ?? null);
    },

    async claim(query: ClaimQuery): Promise<ClaimResult> {
      const params = [query.limit, query.leaseMs, query.now, new Date(query.now).toISOString(), query.jobId ?? null, maxEvents];
      // Claims with an admission bound need version 7; the others run on a database not migrated
      // to it yet as well.
      const bounded = query.jobId === undefined && query.maxActiveJobs !== undefined;
      const out = await one<{ leases: Lease[]; events: ProgressEvent[]; nextReadyAt: number | null }>(
        bounded
          ? `SELECT ${t('claim')}($1::int, $2::bigint, $3::bigint, $4::text, $5::text, $6::int, $7::int) AS r`
          : `SELECT ${t('claim')}($1::int, $2::bigint, $3::bigint, $4::text, $5::text, $6::int) AS r`,
        bounded ? [...params, query.maxActiveJobs] : params,
      );
      return { leases: out.leases, events: out.events, nextReadyAt: out.nextReadyAt === null ? null : Number(out.nextReadyAt) };
    },

    async complete(lease: Lease, input: CompleteInput): Promise<CompleteResult> {
      return one<CompleteResult>(`SELECT ${t('complete')}($1::jsonb, $2::jsonb, $3::jsonb, $4::jsonb, $5::bigint, $6::text, $7::int) AS r`, [
        JSON.stringify(lease),
        JSON.stringify(input.result),
        JSON.stringify(input.links),
        JSON.stringify(input.skipped ?? []),
        input.now,
        new Date(input.now).toISOString(),
        maxEvents,
      ]);
    },

    // One statement for the whole batch (see sql/complete-many.ts), so one round trip on every
    // client, neon() HTTP included. A batch of pages with their links is a few hundred KB to ~1 MB
    // of JSON: well within a pg parameter and Neon's HTTP request limit (64 MB).
    async completeMany(items: CompleteItem[]): Promise<CompleteResult[]> {
      const bad = badItems(items);
      if (bad.length > 0) {
        throw new CrawlEngineError('invalid_input', `invalid completeMany items: ${bad.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { errors: bad });
      }
      if (items.length === 0) return [];
      const payload = items.map(({ lease, input }) => ({
        lease,
        result: input.result,
        links: input.links,
        skipped: input.skipped ?? [],
        now: input.now,
        nowIso: new Date(input.now).toISOString(),
      }));
      return one<CompleteResult[]>(`SELECT ${t('complete_many')}($1::jsonb, $2::int) AS r`, [JSON.stringify(payload), maxEvents]);
    },

    async retry(lease: Lease, input: RetryInput) {
      return one<boolean>(`SELECT ${t('retry')}($1::jsonb, $2::bigint, $3::bigint) AS r`, [JSON.stringify(lease), input.notBefore, input.now]);
    },

    async release(leases: Lease[]) {
      if (leases.length === 0) return 0;
      return one<number>(`SELECT ${t('release')}($1::jsonb) AS r`, [JSON.stringify(leases)]);
    },

    async cancelJob(id: string, now: number): Promise<CancelResult> {
      return one<CancelResult>(`SELECT ${t('cancel')}($1::text, $2::text, $3::int) AS r`, [id, new Date(now).toISOString(), maxEvents]);
    },

    async deleteJob(id: string, now: number): Promise<DeleteResult> {
      return one<DeleteResult>(`SELECT ${t('delete_job')}($1::text, $2::text, $3::int, NULL) AS r`, [id, new Date(now).toISOString(), maxEvents]);
    },

    // The due jobs from the jobs_finished index, then one transaction per job (delete_job checks
    // again under the row lock), so a sweep never holds many jobs' rows locked at once.
    async deleteFinishedJobs(query: DeleteFinishedQuery): Promise<DeleteFinishedResult> {
      if (!(query.limit >= 1)) return { deleted: 0 };
      const before = new Date(query.finishedBefore).toISOString();
      const due = await run<{ id: string }>(
        `SELECT id FROM ${t('jobs')} WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at COLLATE "C" < $1::text COLLATE "C"
         ORDER BY finished_at COLLATE "C", ordinal LIMIT $2`,
        [before, Math.floor(query.limit)],
      );
      return sweepEach(
        due.map((row) => row.id),
        query,
        async (id) =>
          (await one<DeleteResult>(`SELECT ${t('delete_job')}($1::text, $2::text, $3::int, $4::text) AS r`, [id, before, maxEvents, before])).deleted,
      );
    },

    // The webhook outbox (migration 9, sql/webhooks.ts). The registration's row lock serialises
    // enqueues of one job; claims take rows FOR UPDATE SKIP LOCKED; a settle is one UPDATE fenced
    // by the token.
    async addWebhookJob(jobId: string, now: number) {
      await run(`INSERT INTO ${t('webhook_jobs')} (job_id, registered_at) VALUES ($1, $2) ON CONFLICT (job_id) DO NOTHING`, [jobId, now]);
    },

    async listWebhookJobs(limit: number, after = 0): Promise<WebhookJob[]> {
      if (!(limit >= 1)) return [];
      const rows = await run<{ job_id: string; ordinal: string | number; registered_at: string | number; state: WebhookPumpState | null }>(
        `SELECT job_id, ordinal, registered_at, state FROM ${t('webhook_jobs')} WHERE ordinal > $2::bigint ORDER BY ordinal LIMIT $1`,
        [Math.floor(limit), Number.isSafeInteger(after) ? after : 0],
      );
      return rows.map((row) => ({ jobId: row.job_id, ordinal: Number(row.ordinal), registeredAt: Number(row.registered_at), state: row.state }));
    },

    async removeWebhookJob(jobId: string) {
      await run(`DELETE FROM ${t('webhook_jobs')} WHERE job_id = $1`, [jobId]);
    },

    async enqueueWebhookDeliveries(jobId: string, expected: WebhookPumpState | null, next: WebhookPumpState, deliveries: NewWebhookDelivery[]) {
      const items = deliveries.map((d) => ({ id: d.id, jobId: d.jobId, event: d.event, url: d.url, payload: d.payload, createdAt: d.createdAt }));
      return one<boolean>(`SELECT ${t('enqueue_webhooks')}($1::text, $2::bigint, $3::jsonb, $4::jsonb) AS r`, [
        jobId,
        expected === null ? null : expected.seq,
        JSON.stringify(next),
        JSON.stringify(items),
      ]);
    },

    async claimWebhookDeliveries(query: ClaimWebhookQuery): Promise<WebhookDeliveryLease[]> {
      if (!(query.limit >= 1)) return [];
      const rows = await run<DeliveryRow>(`SELECT * FROM ${t('claim_webhooks')}($1::int, $2::bigint, $3::bigint)`, [
        Math.floor(query.limit),
        query.leaseMs,
        query.now,
      ]);
      // UPDATE … RETURNING keeps no order: earliest next attempt first, then enqueue order.
      rows.sort((a, b) => Number(a.next_attempt_at) - Number(b.next_attempt_at) || Number(a.seq) - Number(b.seq));
      return rows.map((row) => ({ delivery: deliveryOf(row), token: row.token!, expiresAt: Number(row.lease_until) }));
    },

    async settleWebhookDelivery(lease: WebhookDeliveryLease, outcome: WebhookDeliveryOutcome) {
      const released = outcome.state === 'released';
      const rows = await run(
        `UPDATE ${t('webhook_deliveries')} SET token = NULL, lease_until = 0, state = $3,
           delivered_at = CASE WHEN $3 = 'delivered' THEN $4::bigint ELSE delivered_at END,
           next_attempt_at = coalesce($5::bigint, next_attempt_at),
           last_error = CASE WHEN $3 = 'delivered' OR $7 THEN last_error ELSE $6::jsonb END,
           attempts = CASE WHEN $7 THEN greatest(attempts - 1, 0) ELSE attempts END
         WHERE id = $1 AND token = $2 AND state = 'pending' RETURNING 1`,
        [
          lease.delivery.id,
          lease.token,
          released ? 'pending' : outcome.state,
          outcome.state === 'delivered' ? outcome.now : null,
          outcome.state === 'pending' || outcome.state === 'released' ? outcome.nextAttemptAt : null,
          outcome.state === 'pending' || outcome.state === 'failed' ? JSON.stringify(outcome.error) : null,
          released,
        ],
      );
      return rows.length > 0;
    },

    async listWebhookDeliveries(jobId: string, query: ListWebhookDeliveriesQuery): Promise<Paginated<WebhookDelivery>> {
      const after = parseCursor(query.cursor) ?? '0';
      if (!(query.limit >= 1)) return { items: [], nextCursor: null };
      const rows = await run<DeliveryRow>(`SELECT * FROM ${t('webhook_deliveries')} WHERE job_id = $1 AND seq > $2::bigint ORDER BY seq LIMIT $3`, [
        jobId,
        after,
        Math.floor(query.limit) + 1,
      ]);
      const page = rows.slice(0, query.limit);
      return { items: page.map(deliveryOf), nextCursor: rows.length > query.limit ? String(page[page.length - 1]!.seq) : null };
    },

    async getRobots(jobId: string, origin: string) {
      const rows = await run<{ r: RobotsRecord }>(`SELECT record AS r FROM ${t('robots')} WHERE job_id = $1 AND origin = $2`, [jobId, origin]);
      return rows[0]?.r ?? null;
    },

    async putRobots(jobId: string, record: RobotsRecord) {
      // The job row first, as every function that writes a job's rows takes it: a hosts row taken
      // before it deadlocked with complete() admitting links on the same host.
      await run(
        `WITH job AS (
           SELECT id FROM ${t('jobs')} WHERE id = $1 FOR UPDATE
         ), r AS (
           INSERT INTO ${t('robots')} (job_id, origin, record) SELECT id, $2, $3::jsonb FROM job
           ON CONFLICT (job_id, origin) DO UPDATE SET record = EXCLUDED.record
         )
         INSERT INTO ${t('hosts')} (job_id, host, crawl_delay_ms) SELECT id, $4, $5 FROM job
         ON CONFLICT (job_id, host) DO UPDATE SET crawl_delay_ms = EXCLUDED.crawl_delay_ms`,
        [jobId, record.origin, JSON.stringify(record), new URL(record.origin).hostname, record.crawlDelayMs ?? 0],
      );
    },

    async appendEvents(jobId: string, events: NewEvent[]) {
      const out = await one<ProgressEvent[] | null>(`SELECT ${t('append_events')}($1::text, $2::jsonb, $3::int) AS r`, [
        jobId,
        JSON.stringify(events),
        maxEvents,
      ]);
      if (out === null) throw new CrawlEngineError('not_found', `job ${JSON.stringify(jobId)} does not exist`);
      return out;
    },

    async readEvents(jobId: string, afterId: string | null, limit: number) {
      if (limit <= 0) return [];
      const after = afterId !== null && /^\d{1,18}$/.test(afterId) ? afterId : '0';
      return one<ProgressEvent[]>(`SELECT ${t('read_events')}($1::text, $2::bigint, $3::int) AS r`, [jobId, after, limit]);
    },

    ...(canListen ? { watch: push.watch } : {}),

    close: push.close,
  };
  return storage;
}
