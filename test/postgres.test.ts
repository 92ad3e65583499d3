import { afterAll, describe, expect, test } from 'vitest';
import { postgresStorage } from '../adapters/postgres/index.js';
import { MIGRATIONS } from '../adapters/postgres/schema.js';
import { startSite } from './fixtures/site.mjs';
import { createCrawlEngine } from '../src/core/engine.js';
import type { CrawlStorage, Lease } from '../src/core/storage.js';
import type { Job, PageResult } from '../src/core/types.js';
import { jobRecord, runStorageConformance } from '../src/testing/index.js';
import { allResults } from './helpers/engine.js';
import { closeAll, DATABASE_URL, freshSchema, migratedStorage, pglite, realPool } from './helpers/postgres.js';

afterAll(closeAll);

const schemaOf = new WeakMap<CrawlStorage, string>();
const targets: Array<{ name: string; client: () => { query(text: string, params?: unknown[]): Promise<unknown> } }> = [
  { name: 'postgres on PGlite', client: pglite },
];
if (DATABASE_URL) targets.push({ name: 'postgres on the real server (pg Pool)', client: realPool });

for (const target of targets) {
  runStorageConformance({
    name: target.name,
    storage: async () => {
      const schema = freshSchema();
      const storage = postgresStorage({ client: target.client() as never, schema, maxEventsPerJob: 20 });
      await storage.migrate();
      schemaOf.set(storage, schema);
      return storage;
    },
    teardown: async (storage) => {
      await storage.close?.();
      await target.client().query(`DROP SCHEMA IF EXISTS "${schemaOf.get(storage)}" CASCADE`);
    },
    test,
    describe,
    eventLimit: 20,
    timeoutMs: 60_000,
  });

  describe(`${target.name}: migrations and errors`, () => {
    test('migrate() is idempotent and reports what it applied', async () => {
      const schema = freshSchema();
      const storage = postgresStorage({ client: target.client() as never, schema });
      expect(await storage.migrate()).toEqual({ applied: [1, 2, 3], version: 3 });
      expect(await storage.migrate()).toEqual({ applied: [], version: 3 });
      await Promise.all([storage.migrate(), storage.migrate()]);
      await target.client().query(`DROP SCHEMA "${schema}" CASCADE`);
    });

    test('a database at version 2 with a job in flight upgrades to version 3; the job goes on, and the version 2 complete() still works', async () => {
      const schema = freshSchema();
      const client = target.client();
      const names = { schema: `"${schema}"`, prefix: 'crawl_' };
      // Version 2 as the previous release left it.
      await client.query(`CREATE SCHEMA "${schema}"`);
      await client.query(
        `CREATE TABLE "${schema}".crawl_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      for (const migration of MIGRATIONS.filter((m) => m.version <= 2)) {
        for (const sql of migration.statements(names)) await client.query(sql);
        await client.query(`INSERT INTO "${schema}".crawl_migrations (version, name) VALUES ($1, $2)`, [migration.version, migration.name]);
      }
      const storage = postgresStorage({ client: client as never, schema, listen: false });
      const T = Date.UTC(2030, 0, 1);
      const url = (path: string) => `http://upgrade.test${path}`;
      const link = (path: string) => ({ url: url(path), key: url(path), depth: 1, host: 'upgrade.test' });
      const page = (lease: Lease, code: string | null = null): PageResult => ({
        url: lease.url,
        finalUrl: lease.url,
        depth: lease.depth,
        status: code === null ? 200 : null,
        ok: code === null,
        contentType: null,
        title: null,
        description: null,
        canonical: null,
        links: 0,
        wordCount: 0,
        error: code === null ? null : { code, message: code },
        attempts: lease.attempts,
        durationMs: 1,
        fetchedAt: new Date(T).toISOString(),
        data: null,
      });
      // What a processor of the previous version calls.
      const completeV2 = async (lease: Lease, result: PageResult, links: unknown[]) => {
        const sql = `SELECT "${schema}".crawl_complete($1::jsonb, $2::jsonb, $3::jsonb, $4::bigint, $5::text, $6::int) AS r`;
        const params = [JSON.stringify(lease), JSON.stringify(result), JSON.stringify(links), T, new Date(T).toISOString(), 100];
        return ((await client.query(sql, params)) as { rows: Array<{ r: { ok: boolean; admitted: number } }> }).rows[0]!.r;
      };
      const job: Job = jobRecord({ id: 'job_upgrade', url: url('/'), createdAt: new Date(T).toISOString(), options: { maxPages: 3, perHostConcurrency: 10 } });
      try {
        await storage.createJob(job, { url: job.url, key: job.url, depth: 0, host: 'upgrade.test' });
        const [seed] = (await storage.claim({ limit: 1, leaseMs: 60_000, now: T, jobId: job.id })).leases;
        expect(await completeV2(seed!, page(seed!), [link('/a'), link('/b'), link('/c')])).toMatchObject({ ok: true, admitted: 2 });
        expect(await storage.migrate()).toEqual({ applied: [3], version: 3 });
        const leases = (await storage.claim({ limit: 10, leaseMs: 60_000, now: T + 1, jobId: job.id })).leases;
        expect(leases.map((l) => l.key).sort()).toEqual([url('/a'), url('/b')]);
        const [a, b] = leases as [Lease, Lease];
        // Admitted under version 2 and skipped for robots.txt under version 3: its charge comes back.
        expect((await storage.complete(a, { result: page(a, 'robots'), links: [], now: T + 2 })).ok).toBe(true);
        const x = { link: link('/x'), result: { ...page(b, 'robots'), url: url('/x'), finalUrl: url('/x'), attempts: 0 } };
        expect((await storage.complete(b, { result: page(b), links: [link('/c'), link('/d')], skipped: [x], now: T + 3 })).admitted).toBe(1);
        const [c] = (await storage.claim({ limit: 10, leaseMs: 60_000, now: T + 4, jobId: job.id })).leases;
        expect(c?.key).toBe(url('/c'));
        // A processor of the previous version, still running during the upgrade.
        expect(await completeV2(c!, page(c!), [link('/e')])).toMatchObject({ ok: true, admitted: 0 });
        const after = await storage.getJob(job.id);
        expect(after?.status).toBe('completed');
        expect(after?.counts).toEqual({ discovered: 5, queued: 0, inProgress: 0, succeeded: 3, failed: 0, skipped: 2 });
      } finally {
        await client.query(`DROP SCHEMA "${schema}" CASCADE`);
      }
    });

    test('an operation on an unmigrated schema says to run migrate()', async () => {
      const storage = postgresStorage({ client: target.client() as never, schema: freshSchema() });
      await expect(storage.getJob('job_x')).rejects.toThrow(/crawl_jobs or its functions are missing in schema t_[0-9a-f]+: run storage\.migrate\(\) first/);
    });

    test('bad options name the field', () => {
      expect(() => postgresStorage({ client: target.client() as never, schema: 'Bad-Name' })).toThrow(/schema: expected lower-case letters/);
      expect(() => postgresStorage({ client: {} as never })).toThrow(/client: expected a pg Pool/);
    });

    test('an engine crawl on Postgres stores every page once and completes; a subscriber in another engine is woken by NOTIFY', async () => {
      const site = await startSite({ pages: 60, fanout: 4 });
      const storage = await migratedStorage(target.client() as never);
      const worker = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
      const watcher = createCrawlEngine({ storage });
      const job = await worker.jobs.create({ url: site.url, maxDepth: 6, maxPages: 60, perHostConcurrency: 8 });
      const seen: string[] = [];
      const following = (async () => {
        for await (const e of watcher.progress.subscribe(job.id, { pollMs: 60_000 })) seen.push(e.type);
      })();
      await worker.processor.run({ jobId: job.id, concurrency: 8 });
      const finished = await Promise.race([following.then(() => 'ended'), new Promise((r) => setTimeout(() => r('stuck'), 5000))]);
      expect(finished).toBe('ended'); // with a 60 s poll, only a NOTIFY could have woken it in time
      await worker.close();
      const done = await worker.jobs.get(job.id);
      expect(done?.status).toBe('completed');
      const results = await allResults(worker, job.id);
      expect(results).toHaveLength(60);
      expect(new Set(results.map((r) => r.url)).size).toBe(60);
      expect(seen.at(-1)).toBe('job:completed');
      expect(seen.filter((t) => t === 'page:done')).toHaveLength(60);
      await storage.close?.();
      await site.close();
    }, 60_000);
  });
}

(DATABASE_URL ? describe : describe.skip)('postgres on a single pg Client (not a Pool)', () => {
  test('a crawl completes and NOTIFY on the same connection wakes a subscriber', async () => {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: DATABASE_URL! });
    await client.connect();
    const site = await startSite({ pages: 20, fanout: 3 });
    const schema = freshSchema();
    const storage = postgresStorage({ client, schema });
    await storage.migrate();
    const engine = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
    const job = await engine.jobs.create({ url: site.url, maxDepth: 5, maxPages: 20, perHostConcurrency: 4 });
    const seen: string[] = [];
    const following = (async () => {
      for await (const e of engine.progress.subscribe(job.id, { pollMs: 60_000 })) seen.push(e.type);
    })();
    await engine.processor.run({ jobId: job.id, concurrency: 4 });
    expect(await Promise.race([following.then(() => 'ended'), new Promise((r) => setTimeout(() => r('stuck'), 5000))])).toBe('ended');
    expect(seen.filter((t) => t === 'page:done')).toHaveLength(20);
    expect((await allResults(engine, job.id)).length).toBe(20);
    await engine.close();
    await storage.close?.();
    await client.query(`DROP SCHEMA "${schema}" CASCADE`);
    await client.end();
    await site.close();
  }, 60_000);
});

// Plans of the statements inside the SQL functions, through auto_explain (nested statements, at
// NOTICE level, so the client receives them). Needs a superuser to LOAD the module.
(DATABASE_URL ? describe : describe.skip)('postgres plans (real server)', () => {
  test('with a 20,000-URL frontier no statement inside claim, complete, retry, release, readEvents or getJob scans the frontier sequentially', async () => {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: DATABASE_URL! });
    await client.connect();
    const schema = freshSchema();
    try {
      const storage = postgresStorage({ client, schema, listen: false });
      await storage.migrate();
      const host = 'plans.test';
      const url = (i: number) => `http://${host}/p/${i}`;
      const job = jobRecord({ id: 'job_plans', url: url(0), options: { maxPages: 20_001, respectRobots: false, perHostConcurrency: 1000 } });
      await storage.createJob(job, { url: url(0), key: url(0), depth: 0, host });
      const result = (lease: { url: string; depth: number; attempts: number }) => ({
        url: lease.url,
        finalUrl: lease.url,
        depth: lease.depth,
        status: 200,
        ok: true,
        contentType: 'text/html',
        title: null,
        description: null,
        canonical: null,
        links: 0,
        wordCount: 0,
        error: null,
        attempts: lease.attempts,
        durationMs: 1,
        fetchedAt: new Date().toISOString(),
        data: null,
      });
      for (let next = 1; next <= 20_000; next += 2000) {
        const [lease] = (await storage.claim({ limit: 1, leaseMs: 60_000, now: Date.now(), jobId: job.id })).leases;
        const links = Array.from({ length: 2000 }, (_, i) => ({ url: url(next + i), key: url(next + i), depth: 1, host }));
        await storage.complete(lease!, { result: result(lease!), links, now: Date.now() });
      }
      await client.query(`ANALYZE "${schema}".crawl_frontier`);
      try {
        await client.query(`LOAD 'auto_explain'`);
      } catch (error) {
        console.warn(`postgres plans: auto_explain cannot be loaded here (${(error as Error).message}); not checked`);
        return;
      }
      await client.query(`SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = 'notice'`);
      const plans: string[] = [];
      client.on('notice', (notice) => plans.push(notice.message ?? ''));
      const { leases } = await storage.claim({ limit: 10, leaseMs: 60_000, now: Date.now(), jobId: job.id });
      // The job is at maxPages: the new link is kept as a spare, the skipped one recorded; then a
      // page skipped for robots.txt gives its charge to the spare.
      const robots = { ok: false, error: { code: 'robots', message: 'r' } };
      const skipped = {
        link: { url: url(99_998), key: url(99_998), depth: 2, host },
        result: { ...result({ url: url(99_998), depth: 2, attempts: 0 }), ...robots },
      };
      const spare = { url: url(99_999), key: url(99_999), depth: 2, host };
      await storage.complete(leases[0]!, { result: result(leases[0]!), links: [spare], skipped: [skipped], now: Date.now() });
      await storage.complete(leases[2]!, { result: { ...result(leases[2]!), ...robots }, links: [], now: Date.now() });
      await storage.retry(leases[1]!, { notBefore: Date.now() + 1, error: { code: 'timeout', message: 't' }, now: Date.now() });
      await storage.release(leases.slice(3));
      await storage.claim({ limit: 10, leaseMs: 60_000, now: Date.now() + 10, jobId: job.id });
      await storage.readEvents(job.id, '1', 50);
      await storage.getJob(job.id);
      await client.query(`SET auto_explain.log_min_duration = -1`);
      const text = plans.join('\n');
      expect(text).toMatch(/Index Scan using crawl_frontier_ready/);
      expect(text).toMatch(/Index Scan using crawl_frontier_spare/);
      expect(text).not.toMatch(/Seq Scan on (\S+\.)?crawl_frontier\b/);
      const after = await storage.getJob(job.id);
      expect(after?.counts).toMatchObject({ discovered: 20_003, skipped: 2 });
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    }
  }, 60_000);
});
