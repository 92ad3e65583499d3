// Several OS processes sharing one storage, the same assertions for every backend that can be
// shared between processes. Adding one is one entry in BACKENDS (plus its URL scheme in
// test/fixtures/worker.mjs, which opens the storage in each worker process).
// Over 300 lines in one file: every test runs once per entry of BACKENDS, so the backends and the tests looping over them stay together.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { kvStorage } from '../adapters/kv/index.js';
import { postgresStorage } from '../adapters/postgres/index.js';
import { type SqliteStorage, sqliteStorage } from '../adapters/sqlite/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import type { CrawlStorage } from '../src/core/storage.js';
import { startSite } from './fixtures/site.mjs';
import { allResults } from './helpers/engine.js';
import { fourProcessesWithRobots } from './helpers/max-pages-processes.js';
import { DATABASE_URL, freshSchema } from './helpers/postgres.js';
import { startWorker } from './helpers/workers.js';

/** A storage opened on its own client, whose connections the test can find on the server. */
interface TaggedStorage {
  storage: CrawlStorage;
  /** The connections this storage holds for push (LISTEN, SUBSCRIBE), beyond its client's own; `listening` once subscribed. */
  pushConnections(): Promise<Array<{ id: string; listening: boolean }>>;
  /** Every connection of this storage's client, as the server knows them. */
  connections(): Promise<string[]>;
  /** Has the server cut one connection. */
  cut(id: string): Promise<void>;
  /** Closes the client; must return once the storage is closed. */
  end(): Promise<void>;
}

interface Backend {
  name: string;
  /** Where worker processes open the shared storage; null skips the backend (an in-process stand-in cannot be shared between processes). */
  url: string | null;
  /** A fresh namespace (schema, key prefix, …) on the shared storage, ready to use; the workers get `namespace`. */
  fresh(): Promise<{ storage: CrawlStorage; namespace: string }>;
  /** Drops every namespace fresh() made and closes the shared client. */
  cleanup(): Promise<void>;
  /** A backend behind a server whose connections can be listed and cut; without it the connection tests are skipped. */
  server?: {
    /** The same namespace opened on a new client of its own, named `tag` on the server. */
    tagged(namespace: string, tag: string): Promise<TaggedStorage>;
    /** What a run reports when the server cuts its connections mid-query; null: the client reconnects and sends them again, the run reports nothing. */
    cutError: RegExp | null;
  };
}

function postgresBackend(url: string | null): Backend {
  let admin: pg.Pool | null = null;
  const pool = () => (admin ??= new pg.Pool({ connectionString: url!, max: 4 }));
  const schemas: string[] = [];
  const activity = async (tag: string, where = 'true') =>
    (await pool().query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND ${where}`, [tag])).rows;
  return {
    name: 'Postgres (real server)',
    url,
    async fresh() {
      const schema = freshSchema();
      schemas.push(schema);
      const storage = postgresStorage({ client: pool(), schema });
      await storage.migrate();
      return { storage, namespace: schema };
    },
    async cleanup() {
      if (admin === null) return;
      if (!process.env.KEEP_SCHEMAS) for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    },
    server: {
      async tagged(schema, tag) {
        const client = new pg.Pool({ connectionString: url!, max: 4, application_name: tag });
        client.on('error', () => undefined); // idle connections the test cuts
        const storage = postgresStorage({ client, schema });
        return {
          storage,
          // A pooled connection in LISTEN; released to the pool (not the storage's any more) after UNLISTEN.
          pushConnections: async () => (await activity(tag, `query LIKE 'LISTEN%'`)).map((r) => ({ id: String(r.pid), listening: true })),
          connections: async () => (await activity(tag)).map((r) => String(r.pid)),
          cut: async (pid) => void (await pool().query('SELECT pg_terminate_backend($1)', [Number(pid)])),
          end: async () => {
            await storage.close?.();
            await client.end();
          },
        };
      },
      cutError: /terminating connection/,
    },
  };
}

function redisBackend(url: string | null): Backend {
  let shared: Redis | null = null;
  const redis = () => (shared ??= new Redis(url!));
  const prefixes: string[] = [];
  const clients = async (tag: string) =>
    String(await redis().client('LIST'))
      .split('\n')
      .filter((line) => line.includes(` name=${tag} `))
      .map((line) => Object.fromEntries(line.split(' ').map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)])));
  return {
    name: 'KV (real Redis)',
    url,
    async fresh() {
      const prefix = `tp${process.pid}_${prefixes.length}:`;
      prefixes.push(prefix);
      return { storage: kvStorage({ client: redis() as never, prefix }), namespace: prefix };
    },
    async cleanup() {
      if (shared === null) return;
      for (const prefix of prefixes) {
        const keys = await shared.keys(`${prefix}*`);
        if (keys.length > 0) await shared.del(...keys);
      }
      shared.disconnect();
    },
    server: {
      async tagged(prefix, tag) {
        const client = new Redis(url!, { connectionName: tag });
        client.on('error', () => undefined); // connections the test cuts: ioredis reconnects
        const storage = kvStorage({ client, prefix });
        return {
          storage,
          // The duplicate() connection for SUBSCRIBE: closed (not only unsubscribed) when nobody watches.
          pushConnections: async () => {
            const own = String(await client.client('ID')); // changes when a cut makes ioredis reconnect
            return (await clients(tag)).filter((c) => c.id !== own).map((c) => ({ id: c.id!, listening: Number(c.sub) > 0 }));
          },
          connections: async () => (await clients(tag)).map((c) => c.id!),
          cut: async (id) => void (await redis().client('KILL', 'ID', id)),
          end: async () => {
            await storage.close?.();
            client.disconnect();
          },
        };
      },
      cutError: null,
    },
  };
}

/** One SQLite file shared by the processes (node:sqlite: Node.js >= 22.13 or 23.4, else skipped); a namespace is a table prefix. */
function sqliteBackend(): Backend {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const available = major > 23 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13);
  const dir = available ? mkdtempSync(join(tmpdir(), 'crawl-processes-')) : null;
  const file = dir === null ? '' : join(dir, 'shared.db');
  const opened: SqliteStorage[] = [];
  return {
    name: 'SQLite (one file)',
    url: dir === null ? null : `sqlite:${file}`,
    async fresh() {
      const namespace = `p${opened.length}_`;
      const storage = sqliteStorage({ database: file, tablePrefix: namespace });
      opened.push(storage);
      return { storage, namespace };
    },
    async cleanup() {
      for (const storage of opened) await storage.close?.();
      if (dir !== null) rmSync(dir, { recursive: true, force: true });
    },
  };
}

const BACKENDS: Backend[] = [postgresBackend(DATABASE_URL), redisBackend(process.env.REDIS_URL || null), sqliteBackend()];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(check: () => Promise<boolean> | boolean, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

for (const backend of BACKENDS) {
  describe.skipIf(backend.url === null)(`${backend.name} with several processes`, () => {
    const url = backend.url!;
    afterAll(() => backend.cleanup());

    test('four processes on one job of a 2,000-page site with maxPages 1500 fetch exactly 1,500 URLs, none twice, and complete once', async () => {
      const site = await startSite({ pages: 2000, fanout: 4, latencyMs: 2 });
      const { storage, namespace } = await backend.fresh();
      const engine = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
      const job = await engine.jobs.create({ url: site.url, maxPages: 1500, maxDepth: 100, perHostConcurrency: 32 });
      const workers = Array.from({ length: 4 }, () => startWorker(url, namespace, job.id, 60_000));
      const summaries = await Promise.all(workers.map((w) => w.done));
      await site.close();
      const pages = site.requests.filter((p) => p !== '/robots.txt');
      expect(pages).toHaveLength(1500);
      expect(new Set(pages).size).toBe(1500);
      const done = await engine.jobs.get(job.id);
      expect(done?.status).toBe('completed');
      expect(done?.counts).toEqual({ discovered: 1500, queued: 0, inProgress: 0, succeeded: 1500, failed: 0, skipped: 0 });
      const results = await allResults(engine, job.id);
      expect(results).toHaveLength(1500);
      expect(new Set(results.map((r) => r.url)).size).toBe(1500);
      const events = await storage.readEvents(job.id, null, 100_000);
      expect(events.filter((e) => e.type === 'job:completed')).toHaveLength(1);
      expect(events.map((e) => Number(e.id))).toEqual(events.map((_, i) => i + 1));
      // Every process did part of the work, together all of it, and no run ended on a storage error.
      expect(summaries.every((s) => (s.succeeded ?? 0) > 0)).toBe(true);
      expect(summaries.reduce((sum, s) => sum + (s.succeeded ?? 0), 0)).toBe(1500);
      expect(summaries.map((s) => s.errors)).toEqual([0, 0, 0, 0]);
    }, 120_000);

    test('four processes on one job whose pages also link robots.txt-disallowed URLs (on the same origin, and on another whose rules they learn only after admitting its URLs) with maxPages 1500 fetch exactly 1,500 pages, none twice, and never a disallowed one', async () => {
      const { storage, namespace } = await backend.fresh();
      await fourProcessesWithRobots(backend.name, storage, url, namespace);
    }, 120_000);

    test('a processor killed with SIGKILL mid-run loses nothing: after its leases expire another finishes, nothing doubled', async () => {
      const site = await startSite({ pages: 600, fanout: 4, latencyMs: 10 });
      const { storage, namespace } = await backend.fresh();
      const engine = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
      const job = await engine.jobs.create({ url: site.url, maxPages: 400, maxDepth: 100, perHostConcurrency: 8 });
      const doomed = startWorker(url, namespace, job.id, 1500);
      const until = Date.now() + 30_000;
      while (doomed.progress() < 60 && Date.now() < until) await sleep(20);
      doomed.child.kill('SIGKILL');
      await doomed.done;
      expect((await engine.jobs.get(job.id))?.status).toBe('running');
      const heir = await startWorker(url, namespace, job.id, 1500).done;
      await site.close();
      expect(heir.errors).toBe(0);
      expect((await engine.jobs.get(job.id))?.status).toBe('completed');
      const results = await allResults(engine, job.id);
      expect(results).toHaveLength(400);
      expect(new Set(results.map((r) => r.url)).size).toBe(400);
      const hits = [...site.hits.entries()].filter(([p]) => p !== '/robots.txt');
      expect(hits).toHaveLength(400);
      // Only what the killed process had in flight may have been fetched twice, each a counted attempt.
      const twice = hits.filter(([, n]) => n > 1).length;
      expect(hits.every(([, n]) => n <= 2)).toBe(true);
      expect(twice).toBeLessThanOrEqual(8);
      expect(results.filter((r) => r.attempts > 1).length).toBeGreaterThanOrEqual(twice);
    }, 120_000);

    test.skipIf(backend.server === undefined)(
      'connections cut by the server mid-run: nothing is lost or doubled, the next runs finish the job',
      async () => {
        const site = await startSite({ pages: 300, fanout: 4, latencyMs: 20 });
        const { namespace } = await backend.fresh();
        const tag = `crawl-cut-${process.pid}-${namespace.replace(/\W/g, '')}`;
        const tagged = await backend.server!.tagged(namespace, tag);
        const engine = createCrawlEngine({ storage: tagged.storage, fetch: { allowPrivateNetwork: true, timeoutMs: 1000 }, leaseMs: 1500 });
        const job = await engine.jobs.create({ url: site.url, maxPages: 300, maxDepth: 100, perHostConcurrency: 8 });
        let stored = 0;
        let cuts = 0;
        let cutting: Promise<void> | null = null;
        engine.events.on('page:done', () => {
          if (++stored === 60 && cutting === null) {
            // Keep cutting for a while, so that queries in flight (not only idle connections) die.
            const until = Date.now() + 400;
            cutting = (async () => {
              while (Date.now() < until) {
                for (const id of await tagged.connections()) {
                  if (
                    await tagged.cut(id).then(
                      () => true,
                      () => false,
                    )
                  )
                    cuts++; // else gone already
                }
              }
            })();
          }
        });
        const first = await engine.processor.run({ jobId: job.id, concurrency: 8, budgetMs: 20_000 });
        await cutting;
        expect(cuts).toBeGreaterThan(0);
        const { cutError } = backend.server!;
        if (cutError === null) expect(first.errors).toEqual([]);
        else {
          expect(first.errors.length).toBeGreaterThan(0);
          expect(first.errors.join('\n')).toMatch(cutError);
        }
        for (let i = 0; i < 40 && (await engine.jobs.get(job.id))?.status === 'running'; i++) {
          const report = await engine.processor.run({ jobId: job.id, concurrency: 8, budgetMs: 5000 });
          if (report.claimed === 0) await sleep(200);
        }
        await engine.close();
        await site.close();
        const done = await engine.jobs.get(job.id);
        expect(done?.status).toBe('completed');
        expect(done?.counts).toEqual({ discovered: 300, queued: 0, inProgress: 0, succeeded: 300, failed: 0, skipped: 0 });
        const results = await allResults(engine, job.id);
        expect(results).toHaveLength(300);
        expect(new Set(results.map((r) => r.url)).size).toBe(300);
        await tagged.end();
      },
      120_000,
    );

    test.skipIf(backend.server === undefined)(
      'push: a subscriber holds one extra connection; cut by the server, it is replaced and wakes the subscriber within milliseconds of an event stored through another client; it goes when the subscription ends',
      async () => {
        const { storage, namespace } = await backend.fresh();
        const tag = `crawl-push-${process.pid}-${namespace.replace(/\W/g, '')}`;
        const tagged = await backend.server!.tagged(namespace, tag);
        const follower = createCrawlEngine({ storage: tagged.storage });
        const other = createCrawlEngine({ storage });
        const job = await other.jobs.create({ url: 'https://example.com/' });
        const seen: Array<[string, number]> = [];
        // pollMs is long: only a push wakes this subscriber within the test's time.
        const following = (async () => {
          for await (const event of follower.progress.subscribe(job.id, { pollMs: 60_000 })) seen.push([event.type, Date.now()]);
        })();
        const pushing = async () => {
          const held = await tagged.pushConnections();
          return held.length === 1 && held[0]!.listening ? held[0]!.id : null;
        };
        await waitFor(async () => (await pushing()) !== null, 'the first push connection');
        const first = (await pushing())!;
        await tagged.cut(first);
        await waitFor(async () => ![null, first].includes(await pushing()), 'a new push connection');
        const cancelledAt = Date.now();
        await other.jobs.cancel(job.id);
        await following;
        expect(seen.map(([type]) => type)).toEqual(['job:created', 'job:cancelled']);
        expect(seen[1]![1] - cancelledAt).toBeLessThan(500);
        await waitFor(async () => (await tagged.pushConnections()).length === 0, 'the push connection to go', 2000);
        await Promise.race([tagged.end(), sleep(5000).then(() => Promise.reject(new Error(`${backend.name}: closing the client hung`)))]);
      },
      60_000,
    );
  });
}
