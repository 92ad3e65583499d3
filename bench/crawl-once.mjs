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

async function engine(startUrl, maxPages) {
  const opened = kind === 'engine-pg' ? await pgStorage() : { storage: memoryStorage(), drop: async () => undefined };
  const crawler = createCrawlEngine({ storage: opened.storage, fetch: { allowPrivateNetwork: true } });
  // The same concurrency as the bare loop: politeness set to let all of it reach the one host.
  const job = await crawler.crawl({ url: startUrl, maxPages, maxDepth: 1000, perHostConcurrency: concurrency }, { concurrency });
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
