import { afterAll, describe, expect, test } from 'vitest';
import { postgresStorage } from '../adapters/postgres/index.js';
import { startSite } from '../bench/site.mjs';
import { createCrawlEngine } from '../src/engine.js';
import type { CrawlStorage } from '../src/storage.js';
import { runStorageConformance } from '../src/testing/index.js';
import { allResults } from './helpers/engine.js';
import { closeAll, DATABASE_URL, freshSchema, migratedStorage, pglite, realPool } from './helpers/postgres.js';

afterAll(closeAll);

const schemaOf = new WeakMap<CrawlStorage, string>();
const targets: Array<{ name: string; client: () => { query(text: string, params?: unknown[]): Promise<unknown> } }> = [{ name: 'postgres on PGlite', client: pglite }];
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
      expect(await storage.migrate()).toEqual({ applied: [1], version: 1 });
      expect(await storage.migrate()).toEqual({ applied: [], version: 1 });
      await Promise.all([storage.migrate(), storage.migrate()]);
      await target.client().query(`DROP SCHEMA "${schema}" CASCADE`);
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
