// Over 300 lines in one file: every test opens SQLite files through open() and freshFile() below, skipped together before Node 22.13.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { sqliteStorage, type SqliteDatabase, type SqliteStorage } from '../adapters/sqlite/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import { CrawlEngineError } from '../src/core/errors.js';
import type { CompleteInput, CompleteItem, CompleteResult, CrawlStorage, FrontierLink, Lease } from '../src/core/storage.js';
import type { ProgressEvent } from '../src/core/types.js';
import { allowed, disallowed, result, robotsResult } from '../src/testing/fixtures.js';
import { jobRecord, runStorageConformance } from '../src/testing/index.js';
import { allResults } from './helpers/engine.js';
import { startSite } from './fixtures/site.mjs';

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
/** node:sqlite works without a flag from Node 22.13 and 23.4. */
const hasNodeSqlite = major > 23 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13);

const dir = mkdtempSync(join(tmpdir(), 'crawl-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshFile = () => join(dir, `t${files++}.db`);

const T0 = Date.UTC(2030, 0, 1);
const link = (path: string, depth = 1): FrontierLink => ({ url: `http://example.test${path}`, key: `http://example.test${path}`, depth, host: 'example.test' });
const seedOf = (url: string): FrontierLink => ({ url, key: url, depth: 0, host: new URL(url).hostname });
const page = (url: string, depth = 0) => ({
  url,
  finalUrl: url,
  depth,
  status: 200,
  ok: true,
  contentType: 'text/html',
  title: 't',
  description: null,
  canonical: null,
  links: 0,
  wordCount: 1,
  error: null,
  attempts: 1,
  durationMs: 1,
  fetchedAt: new Date(T0).toISOString(),
  data: null,
});

test.runIf(!hasNodeSqlite)('on Node.js without node:sqlite, the first operation says which Node.js it needs', async () => {
  const storage = sqliteStorage({ database: freshFile() });
  const error = await storage.getJob('job_x').catch((e: unknown) => e);
  expect(error).toBeInstanceOf(CrawlEngineError);
  expect((error as CrawlEngineError).code).toBe('unsupported');
  expect((error as Error).message).toMatch(/node:sqlite needs Node\.js >= 22\.13 \(or 23\.4\), this is 2\d\./);
});

describe('sqliteStorage() options', () => {
  test('bad options name the field', () => {
    expect(() => sqliteStorage({} as never)).toThrow(/database: expected a file path, or an open node:sqlite DatabaseSync/);
    expect(() => sqliteStorage({ database: '  ' })).toThrow(/database: expected a file path/);
    expect(() => sqliteStorage({ database: 'x.db', tablePrefix: 'Has Space' })).toThrow(/tablePrefix: expected lower-case letters, digits and _/);
    expect(() => sqliteStorage({ database: 'x.db', maxEventsPerJob: 0 })).toThrow(/maxEventsPerJob: expected an integer >= 1/);
    expect(() => sqliteStorage({ database: 'x.db', busyTimeoutMs: -1 })).toThrow(/busyTimeoutMs: expected an integer >= 0/);
    const storage = sqliteStorage({ database: 'x.db' });
    expect(storage.name).toBe('sqlite');
    expect(storage.capabilities).toEqual({ push: true, shared: true });
    expect(typeof storage.deleteJob).toBe('function');
    expect(typeof storage.deleteFinishedJobs).toBe('function');
  });
});

describe.skipIf(!hasNodeSqlite)('SQLite (node:sqlite needs Node.js >= 22.13)', () => {
  const opened: CrawlStorage[] = [];
  afterAll(async () => {
    for (const storage of opened) await storage.close?.();
  });
  const open = (database: string | SqliteDatabase = freshFile(), extra: { tablePrefix?: string; maxEventsPerJob?: number } = {}): SqliteStorage => {
    const storage = sqliteStorage({ database, ...extra });
    opened.push(storage);
    return storage;
  };

  runStorageConformance({
    name: 'sqlite',
    storage: () => sqliteStorage({ database: freshFile(), maxEventsPerJob: 20 }),
    teardown: (storage) => storage.close?.(),
    test,
    describe,
    eventLimit: 20,
  });

  runStorageConformance({
    name: 'sqlite, two prefixes in one file',
    storage: () => sqliteStorage({ database: join(dir, 'shared.db'), tablePrefix: `p${files++}_` }),
    teardown: (storage) => storage.close?.(),
    test,
    describe,
  });

  test('migrate() creates the tables once; a file from a newer version is refused with a clear error', async () => {
    const file = freshFile();
    const first = open(file);
    expect(await first.migrate()).toEqual({ applied: [1, 2, 3, 4, 5, 6], version: 6 });
    expect(await open(file).migrate()).toEqual({ applied: [], version: 6 });
    const { DatabaseSync } = (await import('node:sqlite' as string)) as { DatabaseSync: new (path: string) => SqliteDatabase & { close(): void } };
    const raw = new DatabaseSync(file);
    raw.exec(`INSERT INTO crawl_migrations (version, name, applied_at) VALUES (99, 'future', 'x')`);
    raw.close();
    await expect(open(file).getJob('job_x')).rejects.toThrow(
      /tables crawl_\* are at schema version 99, newer than this crawl-engine knows \(6\): upgrade crawl-engine/,
    );
  });

  test('a version 3 file with a job in flight gets frontier.lastmod (version 4): rows written before have none, new links keep theirs', async () => {
    const file = freshFile();
    const v3 = open(file);
    const job = jobRecord({ createdAt: new Date(T0).toISOString() });
    await v3.createJob(job, seedOf(job.url));
    await v3.close?.();
    const { DatabaseSync } = (await import('node:sqlite' as string)) as { DatabaseSync: new (path: string) => SqliteDatabase & { close(): void } };
    const raw = new DatabaseSync(file);
    // Back to version 3 as the previous release left it.
    raw.exec(`ALTER TABLE crawl_frontier DROP COLUMN lastmod; DELETE FROM crawl_migrations WHERE version = 4`);
    raw.close();
    const storage = open(file);
    expect(await storage.migrate()).toEqual({ applied: [4], version: 6 });
    const [seed] = (await storage.claim({ limit: 1, leaseMs: 30_000, now: T0, jobId: job.id })).leases;
    expect(seed?.url).toBe(job.url);
    expect(seed).not.toHaveProperty('lastmod');
    const a = { url: 'http://example.test/a', key: 'http://example.test/a', depth: 1, host: 'example.test', lastmod: '2030-01-02' };
    expect((await storage.complete(seed!, { result: result(seed!), links: [a], now: T0 + 1 })).admitted).toBe(1);
    const [leased] = (await storage.claim({ limit: 1, leaseMs: 30_000, now: T0 + 2, jobId: job.id })).leases;
    expect(leased).toMatchObject({ key: a.key, lastmod: '2030-01-02' });
  });

  test('a version 4 file with results gets the results_url index (version 6): getResults finds results stored before, through it', async () => {
    const file = freshFile();
    const v4 = open(file);
    const job = jobRecord({ createdAt: new Date(T0).toISOString() });
    await v4.createJob(job, seedOf(job.url));
    const [seed] = (await v4.claim({ limit: 1, leaseMs: 30_000, now: T0, jobId: job.id })).leases;
    expect((await v4.complete(seed!, { result: result(seed!), links: [], now: T0 + 1 })).ok).toBe(true);
    await v4.close?.();
    const { DatabaseSync } = (await import('node:sqlite' as string)) as { DatabaseSync: new (path: string) => SqliteDatabase & { close(): void } };
    const raw = new DatabaseSync(file);
    // Back to version 4 as the previous release left it.
    raw.exec(`DROP INDEX crawl_results_url; DELETE FROM crawl_migrations WHERE version = 6`);
    raw.close();
    const storage = open(file);
    expect(await storage.migrate()).toEqual({ applied: [6], version: 6 });
    expect((await storage.getResults!(job.id, [job.url, 'http://example.test/none'])).map((r) => r?.url ?? null)).toEqual([job.url, null]);
    await storage.close?.();
    const check = new DatabaseSync(file);
    const plan = check
      .prepare(
        `EXPLAIN QUERY PLAN SELECT result FROM crawl_results INDEXED BY crawl_results_url WHERE job_id = ? AND json_extract(result, '$.url') IN (?, ?) ORDER BY seq`,
      )
      .all('j', 'a', 'b') as Array<{ detail: string }>;
    check.close();
    expect(plan.map((row) => row.detail).join('\n')).toMatch(/USING INDEX crawl_results_url/);
  });

  test('a version 1 file gets the jobs_finished index (version 2), and its finished jobs are swept through it', async () => {
    const file = freshFile();
    const v1 = open(file);
    const job = jobRecord({ createdAt: new Date(T0).toISOString() });
    await v1.createJob(job, seedOf(job.url));
    await v1.cancelJob(job.id, T0 + 1);
    await v1.close?.();
    const { DatabaseSync } = (await import('node:sqlite' as string)) as { DatabaseSync: new (path: string) => SqliteDatabase & { close(): void } };
    const raw = new DatabaseSync(file);
    // Back to version 1 as the previous release left it.
    raw.exec(`DROP INDEX crawl_jobs_finished; DELETE FROM crawl_migrations WHERE version = 2`);
    raw.close();
    const storage = open(file);
    expect(await storage.migrate()).toEqual({ applied: [2], version: 6 });
    expect(await storage.deleteFinishedJobs!({ finishedBefore: T0 + 2, limit: 10 })).toEqual({ deleted: 1 });
    expect(await storage.getJob(job.id)).toBeNull();
    const check = new DatabaseSync(file);
    // The sweep's query (adapters/sqlite/jobs.ts dueJobs): the index, in order, nothing sorted.
    const plan = check
      .prepare(
        `EXPLAIN QUERY PLAN SELECT id FROM crawl_jobs INDEXED BY crawl_jobs_finished WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at < ? ORDER BY finished_at, ordinal LIMIT ?`,
      )
      .all('2030-01-01T00:00:00.000Z', 10) as Array<{ detail: string }>;
    check.close();
    expect(plan.map((r) => r.detail).join('\n')).toMatch(/^SEARCH crawl_jobs USING INDEX crawl_jobs_finished \(finished_at<\?\)$/);
  });

  test.each([
    ['delete', 'getJob'],
    ['wal', 'getJob'],
    ['wal', 'migrate'],
  ] as const)(
    'a first operation that fails while another process holds the write lock (%s journal, %s) does not fail the next ones',
    async (journal, first) => {
      const file = freshFile();
      const { DatabaseSync } = (await import('node:sqlite' as string)) as { DatabaseSync: new (path: string) => SqliteDatabase & { close(): void } };
      const holder = new DatabaseSync(file);
      // delete: switching the file to WAL waits for the lock (opening fails); wal: creating the tables does (migrating fails).
      holder.exec(`PRAGMA journal_mode = ${journal}`);
      holder.exec('CREATE TABLE other (x INTEGER)');
      holder.exec('BEGIN IMMEDIATE');
      holder.exec('INSERT INTO other VALUES (1)');
      const storage = sqliteStorage({ database: file, busyTimeoutMs: 300 });
      opened.push(storage);
      const error = await (first === 'migrate' ? storage.migrate() : storage.getJob('job_x')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CrawlEngineError);
      expect((error as CrawlEngineError).code).toBe('storage_error');
      expect((error as Error).message).toMatch(/stayed locked by another connection for 300 ms/);
      holder.exec('COMMIT');
      holder.close();
      expect(await storage.getJob('job_x')).toBeNull();
      const job = jobRecord();
      await storage.createJob(job, seedOf(job.url));
      expect((await storage.getJob(job.id))?.id).toBe(job.id);
    },
  );

  test('an open DatabaseSync is used as it is and stays open after close()', async () => {
    const { DatabaseSync } = (await import('node:sqlite' as string)) as { DatabaseSync: new (path: string) => SqliteDatabase & { close(): void } };
    const db = new DatabaseSync(':memory:');
    const storage = sqliteStorage({ database: db });
    const job = jobRecord();
    await storage.createJob(job, seedOf(job.url));
    await storage.close?.();
    expect(db.prepare('SELECT count(*) AS n FROM crawl_jobs').get()).toEqual({ n: 1 });
    await expect(storage.getJob(job.id)).rejects.toThrow(/the storage was closed/);
    db.close();
  });

  test('two storages on one file (two processes) share jobs, never hand one URL out twice, and wake each other’s watchers', async () => {
    const file = freshFile();
    const a = open(file);
    const b = open(file);
    const job = jobRecord({ options: { maxPages: 100 } });
    await a.createJob(job, seedOf(job.url));
    const [seed] = (await b.claim({ limit: 1, leaseMs: 30_000, now: T0, jobId: job.id })).leases;
    expect(seed?.url).toBe(job.url);
    const links = Array.from({ length: 30 }, (_, i) => link(`/p${i}`));
    expect((await a.complete(seed!, { result: page(seed!.url), links, now: T0 + 1 })).admitted).toBe(30);
    const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).claim({ limit: 5, leaseMs: 30_000, now: T0 + 2, jobId: job.id })));
    const keys = claims.flatMap((c) => c.leases.map((l) => l.key));
    expect(keys).toHaveLength(30);
    expect(new Set(keys).size).toBe(30);
    // A lease claimed through one is completed through the other; the fencing token is in the file.
    const first = claims.find((c) => c.leases.length > 0)!.leases[0]!;
    expect((await b.complete(first, { result: page(first.url, 1), links: [], now: T0 + 3 })).ok).toBe(true);
    expect((await a.complete(first, { result: page(first.url, 1), links: [], now: T0 + 3 })).ok).toBe(false);
    expect((await a.getJob(job.id))?.counts).toEqual({ discovered: 31, queued: 0, inProgress: 29, succeeded: 2, failed: 0, skipped: 0 });
    // A watcher on one storage is woken by events the other stores (PRAGMA data_version).
    let woken = 0;
    const stop = a.watch!(job.id, () => woken++);
    await new Promise((resolve) => setTimeout(resolve, 250));
    const second = claims.flatMap((c) => c.leases)[1]!;
    expect((await b.complete(second, { result: page(second.url, 1), links: [], now: T0 + 4 })).ok).toBe(true);
    await expect.poll(() => woken, { timeout: 2000 }).toBeGreaterThan(0);
    stop();
  });

  test('two storages on one file (two processes) share the webhook outbox: one enqueue of two from one state, each delivery claimed once, settled through either', async () => {
    const file = freshFile();
    const a = open(file);
    const b = open(file);
    const jobId = 'job_outbox';
    await a.addWebhookJob!(jobId, T0);
    const state = (seq: number) => ({ seq, resultsCursor: null, resultsSkip: 0, sent: [], done: false });
    const delivery = (n: number) => ({
      id: `${jobId}_${n}`,
      jobId,
      event: 'page' as const,
      url: 'http://hook.test/',
      payload: `{"n":${n}}`,
      createdAt: T0 + n,
    });
    const raced = await Promise.all([
      a.enqueueWebhookDeliveries!(jobId, null, state(1), [delivery(0)]),
      b.enqueueWebhookDeliveries!(jobId, null, state(1), [delivery(1)]),
    ]);
    expect(raced.filter(Boolean)).toHaveLength(1);
    expect(
      await b.enqueueWebhookDeliveries!(
        jobId,
        state(1),
        state(2),
        Array.from({ length: 20 }, (_, i) => delivery(i + 2)),
      ),
    ).toBe(true);
    const claims = await Promise.all(
      Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).claimWebhookDeliveries!({ limit: 4, leaseMs: 30_000, now: T0 + 100 })),
    );
    const more = await a.claimWebhookDeliveries!({ limit: 100, leaseMs: 30_000, now: T0 + 101 });
    const ids = [...claims.flat(), ...more].map((l) => l.delivery.id);
    expect(ids).toHaveLength(21);
    expect(new Set(ids).size).toBe(21);
    // Claimed through b (claims[0]), settled through a; the token is in the file.
    const lease = claims[0]![0]!;
    expect(await a.settleWebhookDelivery!(lease, { state: 'delivered', now: T0 + 102 })).toBe(true);
    expect(await b.settleWebhookDelivery!(lease, { state: 'delivered', now: T0 + 103 })).toBe(false);
    expect((await b.listWebhookDeliveries!(jobId, { limit: 100 })).items.filter((d) => d.state === 'delivered').map((d) => d.id)).toEqual([lease.delivery.id]);
  });

  test('closed and opened again, the file keeps jobs, frontier, leases, results, robots.txt records and events', async () => {
    const file = freshFile();
    const before = open(file);
    const job = jobRecord({ options: { maxPages: 10 } });
    await before.createJob(job, seedOf(job.url));
    const [seed] = (await before.claim({ limit: 1, leaseMs: 30_000, now: T0, jobId: job.id })).leases;
    await before.complete(seed!, { result: page(seed!.url), links: [link('/a'), link('/b'), link('/c')], now: T0 + 1 });
    const [held] = (await before.claim({ limit: 1, leaseMs: 30_000, now: T0 + 2, jobId: job.id })).leases;
    const record = { origin: 'http://example.test', status: 'ok' as const, rules: [], crawlDelayMs: null, httpStatus: 200, fetchedAt: 'x', expiresAt: T0 + 1 };
    await before.putRobots(job.id, record);
    const events = await before.readEvents(job.id, null, 100);
    const stored = await before.getJob(job.id);
    await before.close?.();

    const after = open(file);
    expect(await after.getJob(job.id)).toEqual(stored);
    expect(stored?.counts).toEqual({ discovered: 4, queued: 2, inProgress: 1, succeeded: 1, failed: 0, skipped: 0 });
    expect((await after.listResults(job.id, { limit: 10 })).items).toEqual([page(seed!.url)]);
    expect(await after.readEvents(job.id, null, 100)).toEqual(events);
    expect(await after.getRobots(job.id, record.origin)).toEqual(record);
    // The frontier: the two pending URLs are handed out; the lease held before closing is still current.
    const rest = (await after.claim({ limit: 10, leaseMs: 30_000, now: T0 + 3, jobId: job.id })).leases;
    expect(rest.map((l) => l.key).sort()).toEqual([link('/a'), link('/b'), link('/c')].map((l) => l.key).filter((k) => k !== held!.key));
    for (const lease of [held!, ...rest]) expect((await after.complete(lease, { result: page(lease.url, 1), links: [], now: T0 + 4 })).ok).toBe(true);
    expect((await after.getJob(job.id))?.status).toBe('completed');
  });

  describe('completeMany() (group commit)', () => {
    const claimAll = async (s: CrawlStorage, jobId: string, now: number, leaseMs = 30_000) =>
      (await s.claim({ limit: 500, leaseMs, now, jobId })).leases.sort((a, b) => a.key.localeCompare(b.key));
    /** Events without their job id, so that those of twin jobs compare equal. */
    const bare = (events: ProgressEvent[]) => events.map(({ jobId: _, ...rest }) => rest);
    const bareResults = (results: CompleteResult[]) => results.map((r) => ({ ...r, events: bare(r.events) }));
    const jobCompleted = (events: ProgressEvent[]) => events.filter((e) => e.type === 'job:completed' || e.type === 'job:failed').length;

    test('an empty call returns [] without touching the database; bad items are refused naming the field', async () => {
      const untouchable: SqliteDatabase = {
        exec: () => {
          throw new Error('touched');
        },
        prepare: () => {
          throw new Error('touched');
        },
      };
      expect(await sqliteStorage({ database: untouchable }).completeMany!([])).toEqual([]);
      const storage = open();
      const bad = await storage.completeMany!([{ lease: null, input: { links: 'x' } }] as never).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(CrawlEngineError);
      expect((bad as CrawlEngineError).code).toBe('invalid_input');
      expect((bad as Error).message).toMatch(/items\.0\.lease: expected a lease; items\.0\.input\.links: expected an array/);
      await expect(storage.completeMany!({} as never)).rejects.toThrow(/items: expected an array/);
    });

    test('equals complete() item after item on a twin job: results, events, counts, results stored, the finish', async () => {
      const storage = open();
      const createdAt = new Date(T0).toISOString();
      const seq = jobRecord({ createdAt, options: { maxPages: 6 } });
      const batch = jobRecord({ createdAt, options: { maxPages: 6 } });
      // Links of unknown robots.txt (spares kept), dupes within and across items, skipped links, a
      // robots refund that promotes a spare, a failure, maxPages reached mid-call, the finish.
      const inputs = (lease: Lease, now: number): CompleteInput => {
        const path = new URL(lease.url).pathname;
        const plan: Record<string, Omit<CompleteInput, 'now'>> = {
          '/': { result: result(lease), links: ['/a', '/b', '/c', '/d', '/a'].map((p) => link(p)), skipped: [disallowed(link('/x1'))] },
          '/a': { result: result(lease), links: ['/b', '/e', '/f', '/g'].map((p) => link(p)) },
          '/b': { result: robotsResult(lease.url, lease.depth, lease.attempts), links: [] },
          '/c': { result: result(lease, false), links: [link('/h')] },
          '/d': { result: result(lease), links: [link('/e'), allowed(link('/i'))], skipped: [disallowed(link('/x1')), disallowed(link('/x2'))] },
        };
        return { ...(plan[path] ?? { result: result(lease), links: [link('/j')] }), now };
      };
      for (const job of [seq, batch]) await storage.createJob(job, seedOf(job.url));
      for (let round = 0; round < 4; round++) {
        const now = T0 + round * 1000;
        const a = await claimAll(storage, seq.id, now);
        const b = await claimAll(storage, batch.id, now);
        expect(b.map((l) => l.key)).toEqual(a.map((l) => l.key));
        if (a.length === 0) break;
        const one: CompleteResult[] = [];
        for (const lease of a) one.push(await storage.complete(lease, inputs(lease, now + 1)));
        const many = await storage.completeMany!(b.map((lease) => ({ lease, input: inputs(lease, now + 1) })));
        expect(bareResults(many)).toEqual(bareResults(one));
        expect((await storage.getJob(batch.id))?.counts).toEqual((await storage.getJob(seq.id))?.counts);
      }
      const [jobA, jobB] = [await storage.getJob(seq.id), await storage.getJob(batch.id)];
      expect(jobA?.status).toBe('completed');
      expect({ ...jobB, id: '' }).toEqual({ ...jobA, id: '' });
      // The scenario did reach maxPages: 6 charged (9 discovered, less 2 skipped links and 1 refund), 2 spares left.
      expect(jobA?.counts).toEqual({ discovered: 9, queued: 0, inProgress: 0, succeeded: 5, failed: 1, skipped: 3 });
      expect((await storage.listResults(batch.id, { limit: 100 })).items).toEqual((await storage.listResults(seq.id, { limit: 100 })).items);
      const [eventsA, eventsB] = [await storage.readEvents(seq.id, null, 100), await storage.readEvents(batch.id, null, 100)];
      expect(bare(eventsB)).toEqual(bare(eventsA));
      expect(jobCompleted(eventsB)).toBe(1);
    });

    test('a stale lease among fresh ones is refused and changes nothing; a lease twice in one call counts once', async () => {
      const storage = open();
      const job = jobRecord({ options: { maxPages: 100 } });
      await storage.createJob(job, seedOf(job.url));
      const [seed] = await claimAll(storage, job.id, T0);
      await storage.complete(seed!, { result: page(seed!.url), links: [link('/a'), link('/b'), link('/c')], now: T0 });
      const [short] = (await storage.claim({ limit: 1, leaseMs: 1000, now: T0 + 1, jobId: job.id })).leases;
      const fresh = await claimAll(storage, job.id, T0 + 1, 60_000);
      // The short lease expires and is claimed again with a new token: the old one is stale.
      const [again] = await claimAll(storage, job.id, T0 + 5000);
      expect(again?.key).toBe(short!.key);
      const item = (lease: Lease, links: FrontierLink[] = []): CompleteItem => ({ lease, input: { result: result(lease), links, now: T0 + 6000 } });
      const out = await storage.completeMany!([
        item(fresh[0]!, [link('/n1')]),
        item(short!, [link('/stale')]),
        item(fresh[1]!),
        item(fresh[0]!, [link('/n2')]),
      ]);
      expect(out.map((r) => [r.ok, r.admitted, r.events.map((e) => e.type)])).toEqual([
        [true, 1, ['page:done']],
        [false, 0, []],
        [true, 0, ['page:done']],
        [false, 0, []],
      ]);
      expect((await storage.getJob(job.id))?.counts).toEqual({ discovered: 5, queued: 1, inProgress: 1, succeeded: 3, failed: 0, skipped: 0 });
      expect((await storage.listResults(job.id, { limit: 10 })).items).toHaveLength(3);
      const [n1] = await claimAll(storage, job.id, T0 + 7000);
      expect(n1?.key).toBe(link('/n1').key);
      const last = await storage.completeMany!([item(again!), item(n1!), item(again!)]);
      expect(last.map((r) => r.events.map((e) => e.type))).toEqual([['page:done'], ['page:done', 'job:completed'], []]);
      expect(jobCompleted(await storage.readEvents(job.id, null, 100))).toBe(1);
    });

    test('a call crossing maxPages admits exactly up to it, the later items nothing, and finishes the job once', async () => {
      const storage = open();
      const job = jobRecord({ options: { maxPages: 5 } });
      await storage.createJob(job, seedOf(job.url));
      const [seed] = await claimAll(storage, job.id, T0);
      await storage.complete(seed!, { result: page(seed!.url), links: [link('/a'), link('/b')].map(allowed), now: T0 });
      const [a, b] = await claimAll(storage, job.id, T0 + 1);
      const out = await storage.completeMany!([
        { lease: a!, input: { result: result(a!), links: ['/c', '/d', '/e'].map((p) => allowed(link(p))), now: T0 + 2 } },
        { lease: b!, input: { result: result(b!), links: ['/f', '/g'].map((p) => allowed(link(p))), now: T0 + 2 } },
      ]);
      expect(out.map((r) => r.admitted)).toEqual([2, 0]);
      expect((await storage.getJob(job.id))?.counts).toEqual({ discovered: 5, queued: 2, inProgress: 0, succeeded: 3, failed: 0, skipped: 0 });
      const rest = await claimAll(storage, job.id, T0 + 3);
      expect(rest.map((l) => l.key)).toEqual([link('/c').key, link('/d').key]);
      const done = await storage.completeMany!(rest.map((lease) => ({ lease, input: { result: result(lease), links: [link('/z')], now: T0 + 4 } })));
      expect(done.map((r) => [r.admitted, r.events.map((e) => e.type)])).toEqual([
        [0, ['page:done']],
        [0, ['page:done', 'job:completed']],
      ]);
      const after = await storage.getJob(job.id);
      expect(after?.status).toBe('completed');
      expect(after?.counts).toEqual({ discovered: 5, queued: 0, inProgress: 0, succeeded: 5, failed: 0, skipped: 0 });
      expect(jobCompleted(await storage.readEvents(job.id, null, 100))).toBe(1);
    });

    test('two jobs in one call: each finished once, events in id order per job, both jobs’ watchers woken', async () => {
      const storage = open();
      const jobs = [jobRecord({ options: { maxPages: 10 } }), jobRecord({ options: { maxPages: 10 } })];
      const woken = new Map<string, number>();
      for (const job of jobs) {
        await storage.createJob(job, seedOf(job.url));
        const [seed] = await claimAll(storage, job.id, T0);
        await storage.complete(seed!, { result: page(seed!.url), links: [link('/a'), link('/b')], now: T0 });
        storage.watch!(job.id, () => woken.set(job.id, (woken.get(job.id) ?? 0) + 1));
      }
      const [a, b] = await Promise.all(jobs.map((job) => claimAll(storage, job.id, T0 + 1)));
      const items = [a![0]!, b![0]!, a![1]!, b![1]!].map((lease) => ({ lease, input: { result: result(lease), links: [], now: T0 + 2 } }));
      const out = await storage.completeMany!(items);
      expect(out.map((r) => r.events.map((e) => [e.jobId === jobs[0]!.id ? 'A' : 'B', e.type]))).toEqual([
        [['A', 'page:done']],
        [['B', 'page:done']],
        [
          ['A', 'page:done'],
          ['A', 'job:completed'],
        ],
        [
          ['B', 'page:done'],
          ['B', 'job:completed'],
        ],
      ]);
      for (const job of jobs) {
        expect((await storage.getJob(job.id))?.status).toBe('completed');
        const ids = out.flatMap((r) => r.events.filter((e) => e.jobId === job.id).map((e) => Number(e.id)));
        expect(ids).toEqual(ids.map((_, i) => ids[0]! + i));
        const stored = await storage.readEvents(job.id, String(ids[0]! - 1), 100);
        expect(stored.map((e) => Number(e.id))).toEqual(ids);
        expect(jobCompleted(stored)).toBe(1);
      }
      await expect.poll(() => [woken.get(jobs[0]!.id) ?? 0, woken.get(jobs[1]!.id) ?? 0].every((n) => n > 0)).toBe(true);
    });

    test('two storages on one file (two processes) complete batches concurrently: each lease once, maxPages exact, one finish', async () => {
      const file = freshFile();
      const [a, b] = [open(file), open(file)];
      const job = jobRecord({ options: { maxPages: 150, perHostConcurrency: 500 } });
      await a.createJob(job, seedOf(job.url));
      const [seed] = await claimAll(b, job.id, T0);
      await b.complete(seed!, { result: page(seed!.url), links: Array.from({ length: 60 }, (_, i) => link(`/p${i}`)), now: T0 });
      const leases = await claimAll(a, job.id, T0 + 1);
      expect(leases).toHaveLength(60);
      // Batches of 10, every lease in two of them (one through each storage); each page links 4 new
      // URLs shared with its neighbour's, 120 distinct ones for the 89 places left under maxPages.
      const item = (lease: Lease, i: number): CompleteItem => ({
        lease,
        input: { result: result(lease), links: [0, 1, 2, 3].map((k) => link(`/q${(2 * i + k) % 120}`, 2)), now: T0 + 2 },
      });
      const calls: Array<Promise<CompleteResult[]>> = [];
      for (let start = 0; start < 60; start += 10) {
        const run = leases.slice(start, start + 10).map((lease, k) => item(lease, start + k));
        calls.push(a.completeMany!(run), b.completeMany!([...run].reverse()));
      }
      const outs = (await Promise.all(calls)).flat();
      expect(outs.filter((r) => r.ok)).toHaveLength(60);
      expect(outs.reduce((sum, r) => sum + r.admitted, 0)).toBe(89);
      expect((await b.getJob(job.id))?.counts).toEqual({ discovered: 150, queued: 89, inProgress: 0, succeeded: 61, failed: 0, skipped: 0 });
      const rest = [...(await claimAll(a, job.id, T0 + 3)), ...(await claimAll(b, job.id, T0 + 3))];
      expect(new Set(rest.map((l) => l.key)).size).toBe(89);
      expect(rest).toHaveLength(89);
      const finish = (s: CrawlStorage, part: Lease[]) =>
        s.completeMany!(part.map((lease) => ({ lease, input: { result: result(lease), links: [], now: T0 + 4 } })));
      await Promise.all([finish(a, rest.slice(0, 45)), finish(b, rest.slice(45)), finish(a, rest.slice(80))]);
      const after = await a.getJob(job.id);
      expect(after?.status).toBe('completed');
      expect(after?.counts).toEqual({ discovered: 150, queued: 0, inProgress: 0, succeeded: 150, failed: 0, skipped: 0 });
      expect((await b.listResults(job.id, { limit: 500 })).items).toHaveLength(150);
      expect(jobCompleted(await b.readEvents(job.id, null, 1000))).toBe(1);
    });

    test('a very large call is split into transactions of at most 64 items and 4,096 links, and stays exact', async () => {
      const { DatabaseSync } = (await import('node:sqlite' as string)) as { DatabaseSync: new (path: string) => SqliteDatabase & { close(): void } };
      const db = new DatabaseSync(':memory:');
      let begins = 0;
      const counting: SqliteDatabase = {
        exec: (sql) => {
          if (sql === 'BEGIN IMMEDIATE') begins++;
          return db.exec(sql);
        },
        prepare: (sql) => db.prepare(sql),
      };
      const storage = open(counting);
      const job = jobRecord({ options: { maxPages: 200, perHostConcurrency: 500 } });
      await storage.createJob(job, seedOf(job.url));
      const [seed] = await claimAll(storage, job.id, T0);
      await storage.complete(seed!, { result: page(seed!.url), links: Array.from({ length: 150 }, (_, i) => link(`/p${i}`)), now: T0 });
      const leases = await claimAll(storage, job.id, T0 + 1);
      // 145 items without links: 64 + 64 + 17.
      let before = begins;
      const first = await storage.completeMany!(leases.slice(0, 145).map((lease) => ({ lease, input: { result: result(lease), links: [], now: T0 + 2 } })));
      expect(begins - before).toBe(3);
      expect(first.every((r) => r.ok)).toBe(true);
      // 5 items of 1,500 links each: two, two, one (links are counted as given, admitted or not).
      const many = (i: number) => Array.from({ length: 1500 }, (_, k) => link(`/l${i}-${k}`, 2));
      before = begins;
      const second = await storage.completeMany!(
        leases.slice(145).map((lease, i) => ({ lease, input: { result: result(lease), links: many(i), now: T0 + 3 } })),
      );
      expect(begins - before).toBe(3);
      expect(second.map((r) => r.admitted)).toEqual([49, 0, 0, 0, 0]);
      const after = await storage.getJob(job.id);
      expect(after?.counts).toEqual({ discovered: 200, queued: 49, inProgress: 0, succeeded: 151, failed: 0, skipped: 0 });
      await storage.close?.();
      db.close();
    });

    test('waits for another connection’s write lock without blocking the event loop, then stores the call', async () => {
      const file = freshFile();
      const storage = open(file);
      const job = jobRecord();
      await storage.createJob(job, seedOf(job.url));
      const [seed] = await claimAll(storage, job.id, T0);
      await storage.complete(seed!, { result: page(seed!.url), links: [link('/a'), link('/b')], now: T0 });
      const leases = await claimAll(storage, job.id, T0 + 1);
      const { DatabaseSync } = (await import('node:sqlite' as string)) as { DatabaseSync: new (path: string) => SqliteDatabase & { close(): void } };
      const holder = new DatabaseSync(file);
      holder.exec('BEGIN IMMEDIATE');
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      const started = Date.now();
      const call = storage.completeMany!(leases.map((lease) => ({ lease, input: { result: result(lease), links: [], now: T0 + 2 } })));
      await new Promise((resolve) => setTimeout(resolve, 400));
      holder.exec('COMMIT');
      holder.close();
      const out = await call;
      clearInterval(timer);
      expect(Date.now() - started).toBeGreaterThanOrEqual(390);
      // SQLite blocks for at most 50 ms at a time: the timer kept firing while the call waited.
      expect(ticks).toBeGreaterThan(5);
      expect(out.map((r) => r.events.map((e) => e.type))).toEqual([['page:done'], ['page:done', 'job:completed']]);
    });
  });

  test('an engine crawls a site to the end on a SQLite file', async () => {
    const site = await startSite({ pages: 120, fanout: 4, latencyMs: 1 });
    try {
      const engine = createCrawlEngine({ storage: open(), fetch: { allowPrivateNetwork: true } });
      const job = await engine.crawl({ url: site.url, maxPages: 80, maxDepth: 20, perHostConcurrency: 8 });
      await engine.close();
      expect(job.status).toBe('completed');
      const results = await allResults(engine, job.id);
      expect(results).toHaveLength(80);
      expect(new Set(results.map((r) => r.url)).size).toBe(80);
      expect(new Set(site.requests.filter((p) => p !== '/robots.txt')).size).toBe(80);
    } finally {
      await site.close();
    }
  });
});
