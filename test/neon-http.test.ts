import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { neon, neonConfig } from '@neondatabase/serverless';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { postgresStorage } from '../adapters/postgres/index.js';
import { startSite } from './fixtures/site.mjs';
import { createCrawlEngine } from '../src/core/engine.js';
import { runStorageConformance } from '../src/testing/index.js';
import { allResults } from './helpers/engine.js';
import { DATABASE_URL, freshSchema } from './helpers/postgres.js';

/**
 * A loopback stand-in for Neon's HTTP SQL endpoint (POST {query, params} → {fields, rows} with raw
 * text values, 400 {message, code} on errors), executing on the local server, so that the real
 * `neon()` client code path runs: one statement per HTTP request, no LISTEN.
 */
async function startNeonHttp(pool: pg.Pool) {
  const raw = { getTypeParser: () => (value: string) => value };
  const server: Server = createServer((req, res) => {
    // Decoded whole: a multi-byte character may straddle two chunks of a large body.
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const { query, params } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { query: string; params: unknown[] };
      pool.query({ text: query, values: params, rowMode: 'array', types: raw as never }).then(
        (result) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              fields: result.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
              rows: result.rows,
              command: result.command,
              rowCount: result.rowCount,
            }),
          );
        },
        (error: { message: string; code?: string }) => {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ message: error.message, code: error.code }));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(r)) };
}

(DATABASE_URL ? describe : describe.skip)("Neon's neon() HTTP driver (loopback endpoint)", () => {
  let pool: pg.Pool;
  let endpoint: Awaited<ReturnType<typeof startNeonHttp>>;
  let sql: ReturnType<typeof neon>;
  const schemas: string[] = [];

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: DATABASE_URL!, max: 6 });
    endpoint = await startNeonHttp(pool);
    neonConfig.fetchEndpoint = () => `http://127.0.0.1:${endpoint.port}/sql`;
    sql = neon('postgres://user:password@db.neon.test/test', { disableWarningInBrowsers: true } as never);
  });
  afterAll(async () => {
    for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await endpoint.close();
    await pool.end();
  });

  runStorageConformance({
    name: 'postgres through neon() over HTTP',
    storage: async () => {
      const schema = freshSchema();
      schemas.push(schema);
      const storage = postgresStorage({ client: sql as never, schema, maxEventsPerJob: 20 });
      await storage.migrate();
      return storage;
    },
    test,
    describe,
    eventLimit: 20,
    timeoutMs: 60_000,
  });

  test('a crawl over neon() completes; without LISTEN the subscriber polls', async () => {
    const site = await startSite({ pages: 15, fanout: 3 });
    const schema = freshSchema();
    schemas.push(schema);
    const storage = postgresStorage({ client: sql as never, schema });
    expect(storage.capabilities.push).toBe(false);
    await storage.migrate();
    const engine = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
    const job = await engine.crawl({ url: site.url, maxDepth: 5, maxPages: 15 });
    await engine.close();
    expect(job.status).toBe('completed');
    expect(await allResults(engine, job.id)).toHaveLength(15);
    const types: string[] = [];
    for await (const e of engine.progress.subscribe(job.id, { pollMs: 20 })) types.push(e.type);
    expect(types.at(-1)).toBe('job:completed');
    await site.close();
  }, 60_000);
});
