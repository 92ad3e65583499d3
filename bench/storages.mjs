// Storage for the benchmarks: `memory`, `postgres` (DATABASE_URL, a schema per run), `kv` (REDIS_URL
// through ioredis, a key prefix per run) and `rest` (@upstash/redis through a loopback
// Upstash-protocol REST server in front of REDIS_URL, as a serverless function talks to Upstash).
// Each client's round trips are counted (roundtrips.mjs). BENCH_REST_RTT_MS > 0 puts a delay
// proxy (proxy.mjs, in a process of its own) between @upstash/redis and the REST server, as
// DATABASE_URL / REDIS_URL can point at one for the other kinds.
import { memoryStorage } from '../dist/adapters/memory.js';
import { jobRecord } from '../dist/testing.js';
import { startDelayProxyProcess } from './proxy.mjs';
import { countIoredis, countPostgres, countRest } from './roundtrips.mjs';

export const SHARED_KINDS = ['postgres', 'kv', 'rest'];

/** The kinds this machine can bench: memory always, the others when their URL is set. */
export function availableKinds() {
  return ['memory', ...(process.env.DATABASE_URL ? ['postgres'] : []), ...(process.env.REDIS_URL ? ['kv', 'rest'] : [])];
}

export const newNamespace = (kind) =>
  kind === 'postgres' ? `bench_${process.pid}_${Date.now().toString(36)}` : `bench${process.pid}_${Date.now().toString(36)}:`;

/**
 * Opens `kind`. With `namespace` it joins storage another process made (no migration); without, it
 * makes a fresh namespace. `close({ drop: true })` also deletes the namespace.
 */
export async function openStorage(kind, { namespace = null, poolMax = 10, adapter = {} } = {}) {
  if (kind === 'memory') return { kind, namespace: null, storage: memoryStorage(), close: async () => undefined };
  if (kind === 'postgres') {
    const pg = (await import('pg')).default;
    countPostgres(pg);
    const { postgresStorage } = await import('../dist/adapters/postgres.js');
    const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: poolMax });
    pool.on('error', () => undefined);
    const schema = namespace ?? newNamespace(kind);
    const storage = postgresStorage({ client: pool, schema, ...adapter });
    if (namespace === null) await storage.migrate();
    return {
      kind,
      namespace: schema,
      storage,
      pool,
      async close({ drop = false } = {}) {
        await storage.close(); // gives back the LISTEN connection
        if (drop) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await pool.end();
      },
    };
  }
  if (kind === 'kv' || kind === 'rest') {
    const { kvStorage } = await import('../dist/adapters/kv.js');
    const { default: Redis } = await import('ioredis');
    countIoredis(Redis);
    const redis = new Redis(process.env.REDIS_URL);
    const prefix = namespace ?? newNamespace(kind);
    let client = redis;
    let server = null;
    let proxy = null;
    if (kind === 'rest') {
      const { createServer } = await import('node:http');
      const { createRequestListener } = await import('@remix-run/node-fetch-server');
      const { createApp } = await import('@humanwhocodes/upstash-redis-server');
      const { Redis: Upstash } = await import('@upstash/redis');
      const app = createApp({ token: 'bench', redisUrl: process.env.REDIS_URL });
      server = createServer(createRequestListener(countRest((req) => app.fetch(req))));
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      let { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      const rttMs = restRttMs();
      if (rttMs > 0) {
        proxy = await startDelayProxyProcess({ target: { host: '127.0.0.1', port }, rttMs });
        port = proxy.port;
      }
      // Upstash's REST client, where the adapter takes either client.
      client = /** @type {any} */ (new Upstash({ url: `http://127.0.0.1:${port}`, token: 'bench', enableTelemetry: false }));
    }
    return {
      kind,
      namespace: prefix,
      storage: kvStorage({ client, prefix, ...adapter }),
      redis,
      async close({ drop = false } = {}) {
        await this.storage.close?.(); // the pub/sub connection, if a subscription is still open
        if (drop) {
          let cursor = '0';
          do {
            const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
            cursor = next;
            if (keys.length > 0) await redis.del(...keys);
          } while (cursor !== '0');
        }
        redis.disconnect();
        await proxy?.close();
        server?.closeAllConnections();
        server?.close();
      },
    };
  }
  throw new Error(`unknown storage kind ${kind}: expected memory, postgres, kv or rest`);
}

/** BENCH_REST_RTT_MS: the round trip added between @upstash/redis and the REST server (0: none). */
function restRttMs() {
  const value = Number(process.env.BENCH_REST_RTT_MS ?? 0);
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`BENCH_REST_RTT_MS must be a number of milliseconds ≥ 0, got ${process.env.BENCH_REST_RTT_MS}`);
  return value;
}

/** Percentile of a sorted copy of `xs` (nearest rank). */
export function percentile(xs, p) {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/**
 * For the storage-only benchmarks: creates job `id` straight through the storage contract (no
 * network), with start URL `http://<host>/p/0`, room for `maxPages` URLs and no per-host limit.
 * Returns `url(i)` for the job's URLs and `result(lease)` for a successful page of it.
 */
export async function createStorageJob(storage, id, maxPages, host = 'bench.test') {
  const url = (i) => `http://${host}/p/${i}`;
  await storage.createJob(jobRecord({ id, url: url(0), options: { maxPages, respectRobots: false, maxRetries: 0, perHostConcurrency: 1000 } }), {
    url: url(0),
    key: url(0),
    depth: 0,
    host,
  });
  const result = (lease) => ({
    url: lease.url,
    finalUrl: lease.url,
    depth: lease.depth,
    status: 200,
    ok: true,
    contentType: 'text/html',
    title: 't',
    description: null,
    canonical: null,
    links: 0,
    wordCount: 1,
    error: null,
    attempts: lease.attempts,
    durationMs: 1,
    fetchedAt: new Date().toISOString(),
    data: null,
  });
  return { url, result, link: (i) => ({ url: url(i), key: url(i), depth: 1, host }) };
}
