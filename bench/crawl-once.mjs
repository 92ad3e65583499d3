// One measured crawl in a fresh process: `node bench/crawl-once.mjs <engine|bare> <url> <pages> <concurrency>`.
// Prints {"pages": n, "ms": t}. A 300-page warm-up crawl of the same site runs first.
import { performance } from 'node:perf_hooks';
import { load } from 'cheerio/slim';
import { Agent, request } from 'undici';
import { createCrawlEngine } from '../dist/index.js';
import { memoryStorage } from '../dist/adapters/memory.js';

const [kind, url, pagesArg, concurrencyArg] = process.argv.slice(2);
const pages = Number(pagesArg);
const concurrency = Number(concurrencyArg);

/** What a developer writes by hand: BFS over same-host links with undici and cheerio. */
async function bare(startUrl, maxPages) {
  const dispatcher = new Agent({ keepAliveTimeout: 10_000 });
  const host = new URL(startUrl).host;
  const seen = new Set([startUrl]);
  const queue = [startUrl];
  let fetched = 0;
  let active = 0;
  await new Promise((resolve) => {
    const pump = () => {
      while (active < concurrency && queue.length > 0) {
        const next = queue.shift();
        active++;
        void visit(next).finally(() => {
          active--;
          fetched++;
          if (queue.length === 0 && active === 0) resolve();
          else pump();
        });
      }
    };
    async function visit(pageUrl) {
      try {
        const res = await request(pageUrl, { dispatcher });
        const html = await res.body.text();
        const $ = load(html);
        $('a[href]').each((_, el) => {
          let link;
          try {
            link = new URL($(el).attr('href'), pageUrl);
          } catch {
            return;
          }
          link.hash = '';
          if (link.host !== host || !link.protocol.startsWith('http')) return;
          const href = link.href;
          if (seen.size < maxPages && !seen.has(href)) {
            seen.add(href);
            queue.push(href);
          }
        });
      } catch {
        // a failed page counts as fetched, like the engine's failed results
      }
    }
    pump();
  });
  await dispatcher.close();
  return fetched;
}

let pgPool = null;
/** Postgres storage in a fresh schema of DATABASE_URL (dropped by the caller's finally). */
async function pgStorage() {
  const pg = (await import('pg')).default;
  const { postgresStorage } = await import('../dist/adapters/postgres.js');
  pgPool ??= new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
  const schema = `bench_${process.pid}_${Date.now().toString(36)}`;
  const storage = postgresStorage({ client: pgPool, schema });
  await storage.migrate();
  return { storage, drop: () => pgPool.query(`DROP SCHEMA "${schema}" CASCADE`) };
}

let redisClient = null;
let restServer = null;
/** KV storage on REDIS_URL through ioredis, or through @upstash/redis and a loopback REST server. */
async function kvStorageFor(rest) {
  const { kvStorage } = await import('../dist/adapters/kv.js');
  const prefix = `bench${process.pid}_${Date.now().toString(36)}:`;
  const { default: Redis } = await import('ioredis');
  redisClient ??= new Redis(process.env.REDIS_URL);
  let client = redisClient;
  if (rest) {
    const { createServer } = await import('node:http');
    const { createRequestListener } = await import('@remix-run/node-fetch-server');
    const { createApp } = await import('@humanwhocodes/upstash-redis-server');
    const { Redis: Upstash } = await import('@upstash/redis');
    if (restServer === null) {
      const app = createApp({ token: 'bench', redisUrl: process.env.REDIS_URL });
      restServer = createServer(createRequestListener((req) => app.fetch(req)));
      await new Promise((resolve) => restServer.listen(0, '127.0.0.1', resolve));
    }
    client = new Upstash({ url: `http://127.0.0.1:${restServer.address().port}`, token: 'bench', enableTelemetry: false });
  }
  return {
    storage: kvStorage({ client, prefix }),
    drop: async () => {
      const keys = await redisClient.keys(`${prefix}*`);
      if (keys.length > 0) await redisClient.del(...keys);
    },
  };
}

async function engine(startUrl, maxPages) {
  const opened =
    kind === 'engine-pg' ? await pgStorage()
    : kind === 'engine-kv' ? await kvStorageFor(false)
    : kind === 'engine-rest' ? await kvStorageFor(true)
    : { storage: memoryStorage(), drop: async () => undefined };
  const crawler = createCrawlEngine({ storage: opened.storage, fetch: { allowPrivateNetwork: true } });
  // The same fetch concurrency as the bare loop; the per-host cap (which counts leases still being
  // parsed and stored too) is lifted so that it does not bind before the fetch concurrency does.
  const job = await crawler.crawl({ url: startUrl, maxPages, maxDepth: 1000, perHostConcurrency: 100 }, { concurrency });
  await crawler.close();
  await opened.drop();
  return job.counts.succeeded + job.counts.failed;
}

const crawl = kind === 'bare' ? bare : engine;
await crawl(url, Math.min(300, pages));
const cpu0 = process.cpuUsage();
const started = performance.now();
const fetched = await crawl(url, pages);
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpu0);
const cpuMs = (cpu.user + cpu.system) / 1000;
process.stdout.write(`${JSON.stringify({ pages: fetched, ms, cpuMs, rssMb: process.memoryUsage().rss / 1048576 })}\n`);
await pgPool?.end();
redisClient?.disconnect();
restServer?.closeAllConnections();
restServer?.close();
process.exit(0); // the REST server's own Redis connection would keep the process alive
