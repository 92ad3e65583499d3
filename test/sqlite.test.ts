import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { sqliteStorage, type SqliteDatabase, type SqliteStorage } from '../adapters/sqlite/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import { CrawlEngineError } from '../src/core/errors.js';
import type { CrawlStorage, FrontierLink } from '../src/core/storage.js';
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
const link = (path: string): FrontierLink => ({ url: `http://example.test${path}`, key: `http://example.test${path}`, depth: 1, host: 'example.test' });
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
    expect(await first.migrate()).toEqual({ applied: [1], version: 1 });
    expect(await open(file).migrate()).toEqual({ applied: [], version: 1 });
    const { DatabaseSync } = (await import('node:sqlite' as string)) as { DatabaseSync: new (path: string) => SqliteDatabase & { close(): void } };
    const raw = new DatabaseSync(file);
    raw.exec(`INSERT INTO crawl_migrations (version, name, applied_at) VALUES (99, 'future', 'x')`);
    raw.close();
    await expect(open(file).getJob('job_x')).rejects.toThrow(
      /tables crawl_\* are at schema version 99, newer than this crawl-engine knows \(1\): upgrade crawl-engine/,
    );
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
