import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { postgresStorage, type PostgresStorage } from '../adapters/postgres/index.js';
import { startSite, type Site } from '../bench/site.mjs';
import { createCrawlEngine } from '../src/core/engine.js';
import { allResults } from './helpers/engine.js';
import { startWorker } from './helpers/workers.js';
import { DATABASE_URL, freshSchema } from './helpers/postgres.js';
import { fourProcessesWithRobots } from './helpers/max-pages-processes.js';

const pagePaths = (site: Site) => site.requests.filter((p) => p !== '/robots.txt');

// Real processes sharing one real server: PGlite cannot be shared between processes.
(DATABASE_URL ? describe : describe.skip)('Postgres with several processes (real server)', () => {
  let admin: pg.Pool;
  const schemas: string[] = [];
  beforeAll(() => {
    admin = new pg.Pool({ connectionString: DATABASE_URL!, max: 2 });
  });
  afterAll(async () => {
    if (!process.env.KEEP_SCHEMAS) for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });

  async function setup(): Promise<{ storage: PostgresStorage; schema: string }> {
    const schema = freshSchema();
    schemas.push(schema);
    const storage = postgresStorage({ client: admin, schema });
    await storage.migrate();
    return { storage, schema };
  }

  test('four processes on one job of a 2,000-page site with maxPages 1500 fetch exactly 1,500 URLs, none twice, and complete once', async () => {
    const site = await startSite({ pages: 2000, fanout: 4, latencyMs: 2 });
    const { storage, schema } = await setup();
    const engine = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
    const job = await engine.jobs.create({ url: site.url, maxPages: 1500, maxDepth: 100, perHostConcurrency: 32 });
    const workers = Array.from({ length: 4 }, () => startWorker(DATABASE_URL!, schema, job.id, 60_000));
    const summaries = await Promise.all(workers.map((w) => w.done));
    await site.close();
    const pages = pagePaths(site);
    expect(pages).toHaveLength(1500);
    expect(new Set(pages).size).toBe(1500);
    const done = await engine.jobs.get(job.id);
    expect(done?.status).toBe('completed');
    expect(done?.counts).toMatchObject({ discovered: 1500, succeeded: 1500, queued: 0, inProgress: 0 });
    const results = await allResults(engine, job.id);
    expect(results).toHaveLength(1500);
    expect(new Set(results.map((r) => r.url)).size).toBe(1500);
    const events = await storage.readEvents(job.id, null, 100_000);
    expect(events.filter((e) => e.type === 'job:completed')).toHaveLength(1);
    expect(events.map((e) => Number(e.id))).toEqual(events.map((_, i) => i + 1));
    // Every process did part of the work.
    expect(summaries.every((s) => (s.succeeded ?? 0) > 0)).toBe(true);
    expect(summaries.reduce((sum, s) => sum + (s.succeeded ?? 0), 0)).toBe(1500);
  }, 120_000);

  test('four processes on one job whose pages also link robots.txt-disallowed URLs (on the same origin, and on another whose rules they learn only after admitting its URLs) with maxPages 1500 fetch exactly 1,500 pages, none twice, and never a disallowed one', async () => {
    const { storage, schema } = await setup();
    await fourProcessesWithRobots('pg', storage, DATABASE_URL!, schema);
  }, 120_000);

  test('a processor killed with SIGKILL mid-run loses nothing: after its leases expire another finishes, nothing doubled', async () => {
    const site = await startSite({ pages: 600, fanout: 4, latencyMs: 10 });
    const { storage, schema } = await setup();
    const engine = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
    const job = await engine.jobs.create({ url: site.url, maxPages: 400, maxDepth: 100, perHostConcurrency: 8 });
    const doomed = startWorker(DATABASE_URL!, schema, job.id, 1500);
    const until = Date.now() + 30_000;
    while (doomed.progress() < 60 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    doomed.child.kill('SIGKILL');
    await doomed.done;
    const before = (await engine.jobs.get(job.id))!;
    expect(before.status).toBe('running');
    const heir = startWorker(DATABASE_URL!, schema, job.id, 1500);
    await heir.done;
    await site.close();
    const results = await allResults(engine, job.id);
    expect((await engine.jobs.get(job.id))?.status).toBe('completed');
    expect(results).toHaveLength(400);
    expect(new Set(results.map((r) => r.url)).size).toBe(400);
    const hits = [...site.hits.entries()].filter(([p]) => p !== '/robots.txt');
    expect(hits).toHaveLength(400);
    // Only what the killed process had in flight may have been fetched twice.
    const twice = hits.filter(([, n]) => n > 1).length;
    expect(hits.every(([, n]) => n <= 2)).toBe(true);
    expect(twice).toBeLessThanOrEqual(8);
    expect(results.filter((r) => r.attempts > 1).length).toBeGreaterThanOrEqual(twice);
  }, 120_000);

  test('cut connections (pg_terminate_backend) mid-run: the run reports the error, nothing is lost, the next run goes on', async () => {
    const site = await startSite({ pages: 300, fanout: 4, latencyMs: 20 });
    const { schema } = await setup();
    const pool = new pg.Pool({ connectionString: DATABASE_URL!, max: 4, application_name: `crawl-cut-${schema}` });
    const poolErrors: Error[] = [];
    pool.on('error', (error) => poolErrors.push(error));
    const storage = postgresStorage({ client: pool, schema });
    const engine = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true, timeoutMs: 1000 }, leaseMs: 1500 });
    const job = await engine.jobs.create({ url: site.url, maxPages: 300, maxDepth: 100, perHostConcurrency: 8 });
    let done = 0;
    let cut = false;
    let cutting: Promise<void> = Promise.resolve();
    engine.events.on('page:done', () => {
      if (++done === 60 && !cut) {
        cut = true;
        // Keep cutting for a while, so that queries in flight (not only idle connections) die.
        const until = Date.now() + 400;
        cutting = (async () => {
          while (Date.now() < until) {
            await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [`crawl-cut-${schema}`]);
          }
        })();
      }
    });
    const first = await engine.processor.run({ jobId: job.id, concurrency: 8, budgetMs: 20_000 });
    await cutting;
    expect(cut).toBe(true);
    expect(first.errors.length).toBeGreaterThan(0);
    expect(first.errors.join('\n')).toMatch(/terminating connection/);
    for (let i = 0; i < 40 && (await engine.jobs.get(job.id))?.status === 'running'; i++) {
      const report = await engine.processor.run({ jobId: job.id, concurrency: 8, budgetMs: 5000 });
      if (report.claimed === 0) await new Promise((r) => setTimeout(r, 200));
    }
    await engine.close();
    await site.close();
    expect((await engine.jobs.get(job.id))?.status).toBe('completed');
    const results = await allResults(engine, job.id);
    expect(results).toHaveLength(300);
    expect(new Set(results.map((r) => r.url)).size).toBe(300);
    await pool.end();
  }, 120_000);

  test('a LISTEN connection cut by the server is given back to the pool and replaced: push resumes, pool.end() returns', async () => {
    const { schema } = await setup();
    const app = `crawl-listen-${schema}`;
    const pool = new pg.Pool({ connectionString: DATABASE_URL!, max: 3, application_name: app });
    pool.on('error', () => undefined);
    const storage = postgresStorage({ client: pool, schema });
    const engine = createCrawlEngine({ storage });
    const job = await engine.jobs.create({ url: 'https://example.com/' });
    const listeners = async () =>
      (await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`, [app])).rows.map(
        (r) => r.pid,
      );
    const seen: string[] = [];
    // pollMs is long: only a NOTIFY wakes this subscriber within the test's time.
    const following = (async () => {
      for await (const event of engine.progress.subscribe(job.id, { pollMs: 60_000 })) seen.push(event.type);
    })();
    const waitFor = async (check: () => Promise<boolean> | boolean, what: string) => {
      const until = Date.now() + 10_000;
      while (!(await check())) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await waitFor(async () => (await listeners()).length === 1, 'the first LISTEN');
    const [first] = await listeners();
    await admin.query('SELECT pg_terminate_backend($1)', [first]);
    await waitFor(async () => {
      const now = await listeners();
      return now.length === 1 && now[0] !== first;
    }, 'a new LISTEN connection');
    await engine.jobs.cancel(job.id);
    await waitFor(() => seen.includes('job:cancelled'), 'the NOTIFY after the cut');
    await following;
    await storage.close?.();
    await Promise.race([pool.end(), new Promise((_, reject) => setTimeout(() => reject(new Error('pool.end() hung')), 5000))]);
  }, 60_000);
});
