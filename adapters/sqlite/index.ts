/**
 * `sqliteStorage({ database })`: the storage contract in one SQLite file, for the CLI, scripts and
 * single-machine apps; several processes may share the file. Takes a file path (opened with
 * node:sqlite, Node.js >= 22.13) or an open connection: node:sqlite's `DatabaseSync` or a
 * better-sqlite3 `Database`. Each operation is one short transaction (`BEGIN IMMEDIATE` for
 * writes), so each is atomic, also across processes; the tables are created on first use.
 * `completeMany()` stores up to 64 pages (and 4,096 links) per transaction.
 *
 * @module crawl-engine/adapters/sqlite
 */
import { type CompleteResult, CrawlEngineError, type CrawlStorage, type FieldError, parseDigitsCursor, sweepEach } from '../../src/storage/index.js';
import { claim } from './claim.js';
import { batches, checkItems, complete, completeMany, release, retry } from './complete.js';
import { Connection, openFile, type SqliteDatabase } from './driver.js';
import { appendEvents, cancelJob, createJob, deleteJob, dueJobs, getResults, getRobots, listJobs, listResults, putRobots, readEvents } from './jobs.js';
import { type Ctx, jobJson, jobRow } from './rows.js';
import { LATEST, migrate, tables } from './schema.js';
import * as webhooks from './webhooks.js';

export type { SqliteDatabase, SqliteStatement, SqlValue } from './driver.js';

export interface SqliteStorageOptions {
  /**
   * A file path (created if missing; opened with node:sqlite in WAL mode), or an open connection:
   * node:sqlite `DatabaseSync`, better-sqlite3 `Database`, or anything with the same
   * `exec(sql)` and `prepare(sql).run/get/all`. A connection you pass stays yours: set its
   * journal mode yourself (WAL lets readers run while another process writes) and close it.
   */
  database: string | SqliteDatabase;
  /**
   * Prefix of every table name.
   * @default 'crawl_'
   */
  tablePrefix?: string;
  /**
   * Events kept per job; older ones are trimmed and a late reader gets a `progress` snapshot.
   * @default 10000
   */
  maxEventsPerJob?: number;
  /**
   * How long an operation waits for another process's write lock before failing with `storage_error`.
   * The wait is mostly asynchronous: SQLite itself blocks the thread for at most 50 ms at a time.
   * @default 10000
   */
  busyTimeoutMs?: number;
  /**
   * How often `watch()` looks for events stored by other connections to the file (other
   * processes); events stored through this storage wake watchers at once.
   * @default 100
   */
  watchIntervalMs?: number;
}

export interface SqliteStorage extends CrawlStorage {
  /** Creates or upgrades the tables (every operation does it first anyway); safe from many processes at once. */
  migrate(): Promise<{ applied: number[]; version: number }>;
}

const IDENT = /^[a-z_][a-z0-9_]{0,40}$/;
const SYNC_BUSY_MS = 50;

function validate(options: SqliteStorageOptions): FieldError[] {
  const bad: FieldError[] = [];
  const db = options?.database as unknown;
  const isConnection =
    typeof db === 'object' && db !== null && typeof (db as SqliteDatabase).prepare === 'function' && typeof (db as SqliteDatabase).exec === 'function';
  if (!(typeof db === 'string' && db.trim() !== '') && !isConnection) {
    bad.push({ path: 'database', message: 'expected a file path, or an open node:sqlite DatabaseSync or better-sqlite3 Database' });
  }
  if (options?.tablePrefix !== undefined && options.tablePrefix !== '' && !IDENT.test(options.tablePrefix)) {
    bad.push({ path: 'tablePrefix', message: 'expected lower-case letters, digits and _' });
  }
  const ints: Array<[keyof SqliteStorageOptions, number]> = [
    ['maxEventsPerJob', 1],
    ['busyTimeoutMs', 0],
    ['watchIntervalMs', 1],
  ];
  for (const [key, min] of ints) {
    const value = options?.[key];
    if (value !== undefined && !(Number.isInteger(value) && (value as number) >= min)) bad.push({ path: key, message: `expected an integer >= ${min}` });
  }
  return bad;
}

export function sqliteStorage(options: SqliteStorageOptions): SqliteStorage {
  const bad = validate(options);
  if (bad.length > 0) {
    throw new CrawlEngineError('invalid_options', `invalid sqliteStorage options: ${bad.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { errors: bad });
  }
  const prefix = options.tablePrefix ?? 'crawl_';
  const t = tables(prefix);
  const maxEvents = options.maxEventsPerJob ?? 10_000;
  const busyTimeoutMs = options.busyTimeoutMs ?? 10_000;
  const ownsDatabase = typeof options.database === 'string';
  let closed = false;

  // Opened by the first operation (loading node:sqlite is asynchronous), which also creates or
  // upgrades the tables; migrate() reports what it applied itself. Both are shared by the
  // operations waiting for them, and forgotten when they fail (say, another process held the
  // write lock longer than busyTimeoutMs), so that the next operation tries again.
  let opening: Promise<Ctx> | null = null;
  let current: Ctx | null = null;
  let migrating: Promise<number[]> | null = null;
  const openConnection = async (): Promise<Ctx> => {
    const db = typeof options.database === 'string' ? await openFile(options.database) : options.database;
    const c = new Connection(db, busyTimeoutMs);
    if (ownsDatabase) {
      try {
        db.exec(`PRAGMA busy_timeout = ${SYNC_BUSY_MS}`);
        // WAL: readers never wait for the writer; NORMAL is durable against a crash of the process.
        await c.retrying(() => db.exec('PRAGMA journal_mode = WAL'));
        db.exec('PRAGMA synchronous = NORMAL');
      } catch (error) {
        db.close?.();
        throw error;
      }
    }
    current = { c, t, maxEvents };
    return current;
  };
  const connect = (): Promise<Ctx> => {
    if (opening === null) {
      const attempt: Promise<Ctx> = openConnection().catch((error: unknown) => {
        if (opening === attempt) opening = null;
        throw error;
      });
      opening = attempt;
    }
    return opening;
  };
  const schema = (x: Ctx) => x.c.transaction('write', () => migrate(x.c, t, prefix));
  /** The migration every operation waits for: `run` (or a new one) unless one is under way or done. */
  const migrated = (x: Ctx, run?: Promise<number[]>): Promise<number[]> => {
    if (migrating === null) {
      const attempt: Promise<number[]> = (run ?? schema(x)).catch((error: unknown) => {
        if (migrating === attempt) migrating = null;
        throw error;
      });
      migrating = attempt;
    }
    return migrating;
  };
  const ctx = async () => {
    if (closed) throw new CrawlEngineError('storage_error', '[crawl-engine] [sqlite] the storage was closed');
    const x = await connect();
    await migrated(x);
    return x;
  };
  const write = async <T>(body: (x: Ctx) => T): Promise<T> => {
    const x = await ctx();
    return x.c.transaction('write', () => body(x));
  };
  const read = async <T>(body: (x: Ctx) => T): Promise<T> => {
    const x = await ctx();
    return x.c.transaction('read', () => body(x));
  };

  // watch(): listeners of this process, woken after each commit that appended events to their job;
  // events other connections (processes) store are noticed by polling PRAGMA data_version.
  const listeners = new Map<string, Set<() => void>>();
  const notify = (jobId: string) => {
    const set = listeners.get(jobId);
    if (set === undefined || set.size === 0) return;
    queueMicrotask(() => {
      for (const listener of [...set]) listener();
    });
  };
  /** Wakes the watchers of the jobs these events (stored through this storage) belong to. */
  const notifyEvents = <T extends { events: Array<{ jobId: string; id: string }> }>(out: T): T => {
    for (const event of out.events) {
      // Not a change of another process's for watchOthers() to report.
      const seen = seqs.get(event.jobId);
      if (seen !== undefined) seqs.set(event.jobId, Math.max(seen, Number(event.id)));
    }
    for (const jobId of new Set(out.events.map((e) => e.jobId))) notify(jobId);
    return out;
  };
  let poll: ReturnType<typeof setInterval> | null = null;
  let dataVersion: number | null = null;
  /** The last event id seen of each watched job: a change made by another connection wakes its watchers. */
  const seqs = new Map<string, number>();
  const readVersion = (x: Ctx) => Number(x.c.get<{ data_version: number }>('PRAGMA data_version')!.data_version);
  const eventSeq = (x: Ctx, jobId: string) => x.c.get<{ event_seq: number }>(`SELECT event_seq FROM ${t.jobs} WHERE id = ?`, jobId)?.event_seq ?? 0;
  const watchOthers = async () => {
    const x = await ctx().catch(() => null);
    if (x === null || listeners.size === 0) return;
    try {
      const version = readVersion(x);
      // Another connection committed since the last look (the first look only takes the baselines).
      const changed = dataVersion !== null && version !== dataVersion;
      dataVersion = version;
      for (const jobId of listeners.keys()) {
        if (!changed && seqs.has(jobId)) continue;
        const seq = eventSeq(x, jobId);
        if (changed && seqs.has(jobId) && seqs.get(jobId) !== seq) notify(jobId);
        seqs.set(jobId, seq);
      }
    } catch {
      // Locked for a moment (WAL recovery): the next tick looks again.
    }
  };

  const storage: SqliteStorage = {
    name: 'sqlite',
    capabilities: { push: true, shared: true },

    async migrate() {
      if (closed) await ctx(); // throws
      const x = await connect();
      const run = schema(x);
      void migrated(x, run).catch(() => {}); // its failure is reported below
      return { applied: await run, version: LATEST };
    },

    createJob: (job, seed) => write((x) => createJob(x, job, seed)).then(notifyEvents),
    getJob: (id) => read((x) => jobRow(x, id)).then((row) => (row === undefined ? null : jobJson(row))),

    async listJobs(query) {
      const before = parseDigitsCursor(query.cursor, 18);
      return read((x) => listJobs(x, query.status ?? null, before === null ? null : BigInt(before), query.limit));
    },

    async getResults(jobId, urls) {
      if (urls.length === 0) return [];
      return read((x) => getResults(x, jobId, urls));
    },

    async listResults(jobId, query) {
      const after = BigInt(parseDigitsCursor(query.cursor, 18) ?? '0');
      return read((x) => listResults(x, jobId, after, query.limit));
    },

    claim: (query) => write((x) => claim(x, query)).then(notifyEvents),
    complete: (lease, input) => write((x) => complete(x, lease, input)).then(notifyEvents),

    // One transaction per run of `batches()` (64 items, 4,096 links), so a huge call never holds the
    // lock long: past that bound one job's items are stored run after run, as several calls would.
    // Each run wakes its watchers once committed, even if a later run fails (the file stayed locked).
    async completeMany(items) {
      checkItems(items);
      if (items.length === 0) return [];
      const out: CompleteResult[] = [];
      for (const run of batches(items)) {
        const results = await write((x) => completeMany(x, run));
        notifyEvents({ events: results.flatMap((r) => r.events) });
        out.push(...results);
      }
      return out;
    },

    retry: (lease, input) => write((x) => retry(x, lease, input.notBefore, input.now)),
    release: async (leases) => (leases.length === 0 ? 0 : write((x) => release(x, leases))),
    cancelJob: (id, now) => write((x) => cancelJob(x, id, now)).then(notifyEvents),

    // One transaction: the job's rows go through indexes on job_id, some 100 ms for 100,000 rows.
    async deleteJob(id, now) {
      const out = notifyEvents(await write((x) => deleteJob(x, id, now)));
      // Watchers of the job wake, read nothing and find it gone.
      if (out.deleted) notify(id);
      return out;
    },

    // The due jobs from the jobs_finished index, then one transaction per job (checked again in it),
    // so that the write lock is never held for more than one job.
    async deleteFinishedJobs(query) {
      if (!(query.limit >= 1)) return { deleted: 0 };
      const before = new Date(query.finishedBefore).toISOString();
      const due = await read((x) => dueJobs(x, prefix, before, Math.floor(query.limit)));
      return sweepEach(due, query, async (id) => {
        const { deleted } = await write((x) => deleteJob(x, id, query.finishedBefore, before));
        if (deleted) notify(id);
        return deleted;
      });
    },

    // The webhook outbox (schema version 5, webhooks.ts): each call one transaction.
    addWebhookJob: (jobId, now) => write((x) => webhooks.addWebhookJob(x, jobId, now)),
    listWebhookJobs: async (limit, after = 0) =>
      limit >= 1 ? read((x) => webhooks.listWebhookJobs(x, Math.floor(limit), Number.isSafeInteger(after) ? after : 0)) : [],
    removeWebhookJob: (jobId) => write((x) => webhooks.removeWebhookJob(x, jobId)),
    enqueueWebhookDeliveries: (jobId, expected, next, deliveries) => write((x) => webhooks.enqueueWebhookDeliveries(x, jobId, expected, next, deliveries)),
    claimWebhookDeliveries: async (query) =>
      query.limit >= 1 ? write((x) => webhooks.claimWebhookDeliveries(x, { ...query, limit: Math.floor(query.limit) })) : [],
    settleWebhookDelivery: (lease, outcome) => write((x) => webhooks.settleWebhookDelivery(x, lease, outcome)),
    async listWebhookDeliveries(jobId, query) {
      const after = BigInt(parseDigitsCursor(query.cursor, 18) ?? '0');
      if (!(query.limit >= 1)) return { items: [], nextCursor: null };
      return read((x) => webhooks.listWebhookDeliveries(x, jobId, after, Math.floor(query.limit)));
    },

    getRobots: (jobId, origin) => read((x) => getRobots(x, jobId, origin)),
    putRobots: (jobId, record) => write((x) => putRobots(x, jobId, record)),

    async appendEvents(jobId, events) {
      const stored = await write((x) => appendEvents(x, jobId, events));
      notifyEvents({ events: stored });
      return stored;
    },

    async readEvents(jobId, afterId, limit) {
      if (limit <= 0) return [];
      const after = afterId !== null && /^\d{1,18}$/.test(afterId) ? Number(afterId) : 0;
      return read((x) => readEvents(x, jobId, after, limit));
    },

    watch(jobId, listener) {
      let set = listeners.get(jobId);
      if (set === undefined) {
        set = new Set();
        listeners.set(jobId, set);
      }
      set.add(listener);
      // The baseline now, when the file is open: an event another process stores from here on wakes the listener.
      if (current !== null && !seqs.has(jobId)) {
        try {
          dataVersion ??= readVersion(current);
          seqs.set(jobId, eventSeq(current, jobId));
        } catch {
          // Locked for a moment: the first tick takes the baseline.
        }
      }
      if (poll === null && !closed) {
        poll = setInterval(() => void watchOthers(), options.watchIntervalMs ?? 100);
        poll.unref?.();
      }
      return () => {
        set.delete(listener);
        if (set.size === 0) {
          listeners.delete(jobId);
          seqs.delete(jobId);
        }
        if (listeners.size === 0 && poll !== null) {
          clearInterval(poll);
          poll = null;
        }
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      current = null;
      if (poll !== null) clearInterval(poll);
      poll = null;
      listeners.clear();
      if (!ownsDatabase || opening === null) return;
      const x = await opening.catch(() => null);
      x?.c.db.close?.();
    },
  };
  return storage;
}
