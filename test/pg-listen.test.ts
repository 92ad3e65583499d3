/**
 * A held Postgres connection (issue 11, item 13): the LISTEN connection is taken by the first
 * watcher and given back when the last one leaves, so that pool.end() returns at once and an idle
 * serverless instance holds no connection.
 */
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { postgresStorage } from '../adapters/postgres/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import { closeAll, DATABASE_URL, dropSchema, freshSchema, pglite } from './helpers/postgres.js';

afterAll(closeAll);

async function follow(engine: ReturnType<typeof createCrawlEngine>, jobId: string, controller: AbortController): Promise<string[]> {
  const seen: string[] = [];
  for await (const event of engine.progress.subscribe(jobId, { signal: controller.signal, pollMs: 60_000 })) seen.push(event.type);
  return seen;
}

describe.skipIf(!DATABASE_URL)('a held Postgres connection (real server, pg Pool)', () => {
  test('the LISTEN connection is released when the last watcher leaves, taken again by the next, and pool.end() returns promptly', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL!, max: 4 });
    const schema = freshSchema();
    const storage = postgresStorage({ client: pool, schema });
    await storage.migrate();
    const engine = createCrawlEngine({ storage });
    const job = await engine.jobs.create({ url: 'https://example.com/' });
    const checkedOut = () => pool.totalCount - pool.idleCount;

    for (let round = 0; round < 2; round++) {
      const controllers = [new AbortController(), new AbortController()];
      const followers = controllers.map((c) => follow(engine, job.id, c));
      // Both subscribers share one LISTEN connection while they watch.
      await expect.poll(checkedOut, { timeout: 5000 }).toBe(1);
      controllers[0]!.abort();
      await followers[0];
      expect(checkedOut()).toBe(1);
      controllers[1]!.abort();
      await followers[1];
      await expect.poll(checkedOut, { timeout: 5000 }).toBe(0);
    }

    // A push still arrives through the connection taken again (the cancellation wakes the follower
    // long before its 60 s poll).
    const controller = new AbortController();
    const following = follow(engine, job.id, controller);
    await expect.poll(checkedOut, { timeout: 5000 }).toBe(1);
    const started = Date.now();
    await engine.jobs.cancel(job.id);
    expect((await following).at(-1)).toBe('job:cancelled');
    expect(Date.now() - started).toBeLessThan(5000);
    await expect.poll(checkedOut, { timeout: 5000 }).toBe(0);

    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    const ending = Date.now();
    await pool.end(); // would hang until storage.close() while the LISTEN connection was held
    expect(Date.now() - ending).toBeLessThan(2000);
  });
});

describe.skipIf(!DATABASE_URL)('LISTEN handlers do not pile up (real server)', () => {
  for (const kind of ['Client', 'Pool'] as const) {
    test(`pg ${kind}: watch/unwatch cycles leave one notification handler, one call per notification, and a same-tick re-watch still hears`, async () => {
      const client = kind === 'Client' ? new pg.Client({ connectionString: DATABASE_URL! }) : new pg.Pool({ connectionString: DATABASE_URL!, max: 2 });
      if (client instanceof pg.Client) await client.connect();
      const schema = freshSchema();
      const storage = postgresStorage({ client, schema });
      await storage.migrate();
      const engine = createCrawlEngine({ storage });
      const job = await engine.jobs.create({ url: 'https://example.com/' });
      for (let i = 0; i < 12; i++) {
        const stop = storage.watch!(job.id, () => undefined);
        await new Promise((resolve) => setTimeout(resolve, 5));
        stop();
      }
      // Unwatch and watch again in the same tick: the new LISTEN must come after the old UNLISTEN.
      const first = storage.watch!(job.id, () => undefined);
      first();
      let calls = 0;
      const stop = storage.watch!(job.id, () => calls++);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await engine.jobs.cancel(job.id);
      await expect.poll(() => calls, { timeout: 3000 }).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(calls).toBe(1);
      if (client instanceof pg.Client) {
        expect(client.listenerCount('notification')).toBe(1);
        expect(client.listenerCount('error')).toBeLessThanOrEqual(1);
      }
      stop();
      await storage.close?.();
      if (client instanceof pg.Client) {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        expect(client.listenerCount('notification')).toBe(0);
        await client.end();
      } else {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.end();
      }
    });
  }
});

describe('LISTEN on a single connection (PGlite)', () => {
  test('the channel is unlistened when the last watcher leaves and listened again by the next', async () => {
    const schema = freshSchema();
    const storage = postgresStorage({ client: pglite() as never, schema });
    await storage.migrate();
    const channels = async () => (await pglite().query<{ c: string }>('SELECT pg_listening_channels() AS c')).rows.map((r) => r.c);
    const a = storage.watch!('job_a', () => undefined);
    const b = storage.watch!('job_b', () => undefined);
    await expect.poll(channels).toContain('crawl_events');
    a();
    expect(await channels()).toContain('crawl_events');
    b();
    await expect.poll(channels).not.toContain('crawl_events');
    const c = storage.watch!('job_c', () => undefined);
    await expect.poll(channels).toContain('crawl_events');
    c();
    await expect.poll(channels).not.toContain('crawl_events');
    await storage.close?.();
    await dropSchema(pglite(), schema);
  });
});
