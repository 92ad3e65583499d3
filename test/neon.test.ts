import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { neonConfig, Pool as NeonPool } from '@neondatabase/serverless';
import ws, { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { postgresStorage } from '../adapters/postgres/index.js';
import { startSite } from './fixtures/site.mjs';
import { createCrawlEngine } from '../src/core/engine.js';
import { runStorageConformance } from '../src/testing/index.js';
import { allResults } from './helpers/engine.js';
import { DATABASE_URL, freshSchema } from './helpers/postgres.js';

/**
 * A WebSocket-to-TCP proxy like Neon's wsproxy, on loopback: each WebSocket carries one Postgres
 * connection to the address in `?address=`, which must be the local server.
 */
async function startWsProxy(allowed: string) {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', (socket, req) => {
    const address = new URL(req.url ?? '/', 'http://proxy').searchParams.get('address');
    if (address !== allowed) return socket.close(1008, 'address not allowed');
    const [host, port] = address.split(':');
    const tcp = connect(Number(port), host);
    socket.on('message', (data: Buffer) => tcp.write(data));
    tcp.on('data', (data) => socket.send(data));
    const end = () => {
      tcp.destroy();
      socket.close();
    };
    socket.on('close', end);
    tcp.on('close', end);
    tcp.on('error', end);
  });
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(r)) };
}

(DATABASE_URL ? describe : describe.skip)('Neon serverless driver (WebSocket Pool) against the local server', () => {
  let proxy: Awaited<ReturnType<typeof startWsProxy>>;
  let pool: NeonPool;
  const schemas: string[] = [];

  beforeAll(async () => {
    const target = new URL(DATABASE_URL!);
    proxy = await startWsProxy(`${target.hostname}:${target.port || 5432}`);
    neonConfig.webSocketConstructor = ws;
    neonConfig.wsProxy = (host, port) => `127.0.0.1:${proxy.port}/v2?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineConnect = false;
    neonConfig.pipelineTLS = false;
    pool = new NeonPool({ connectionString: DATABASE_URL!, max: 4 });
    pool.on('error', () => undefined);
  });

  afterAll(async () => {
    for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
    await proxy.close();
  });

  runStorageConformance({
    name: 'postgres through the Neon WebSocket Pool',
    storage: async () => {
      const schema = freshSchema();
      schemas.push(schema);
      const storage = postgresStorage({ client: pool, schema, maxEventsPerJob: 20 });
      await storage.migrate();
      return storage;
    },
    teardown: (storage) => storage.close?.(),
    test,
    describe,
    eventLimit: 20,
    timeoutMs: 60_000,
  });

  test('a crawl through the Neon Pool completes with every page stored once, and NOTIFY wakes a subscriber', async () => {
    const site = await startSite({ pages: 40, fanout: 3 });
    const schema = freshSchema();
    schemas.push(schema);
    const storage = postgresStorage({ client: pool, schema });
    await storage.migrate();
    expect(storage.capabilities.push).toBe(true);
    const engine = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
    const job = await engine.jobs.create({ url: site.url, maxDepth: 6, maxPages: 40, perHostConcurrency: 6 });
    const seen: string[] = [];
    const following = (async () => {
      for await (const e of engine.progress.subscribe(job.id, { pollMs: 60_000 })) seen.push(e.type);
    })();
    await engine.processor.run({ jobId: job.id, concurrency: 6 });
    expect(await Promise.race([following.then(() => 'ended'), new Promise((r) => setTimeout(() => r('stuck'), 5000))])).toBe('ended');
    await engine.close();
    await storage.close?.();
    const results = await allResults(engine, job.id);
    expect(results).toHaveLength(40);
    expect(new Set(results.map((r) => r.url)).size).toBe(40);
    expect(seen.at(-1)).toBe('job:completed');
    await site.close();
  }, 60_000);
});
