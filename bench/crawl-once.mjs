// One measured crawl in a fresh process:
// `node bench/crawl-once.mjs <bare|memory|postgres|kv|rest> <url> <pages> <concurrency> [processors]`;
// BENCH_FORMATS=markdown sets the job's formats (the engine kinds only).
// Prints {"pages": n, "ms": t, "roundTrips": {…}, …}. A 300-page warm-up crawl of the same site runs
// first. `roundTrips` are the storage round trips of the measured crawl (roundtrips.mjs), in this
// process and in its processor processes.
import { performance } from 'node:perf_hooks';
import { load } from 'cheerio/slim';
import { Agent, request } from 'undici';
import { createCrawlEngine } from '../dist/index.js';
import { startProcessors } from './processes.mjs';
import { addRoundTrips, resetRoundTrips, roundTrips } from './roundtrips.mjs';
import { openStorage } from './storages.mjs';

const [kind, url, pagesArg, concurrencyArg, processorsArg = '1'] = process.argv.slice(2);
const processors = Number(processorsArg);
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

/**
 * The engine at the same total concurrency per processor. One processor: `crawl()` in this process.
 * Several: on memory, that many `processor.run()` loops in this process (memory cannot be shared
 * between processes); on shared storage, that many processes (bench/processor.mjs).
 */
/** @type {Awaited<ReturnType<typeof startProcessors>> | null} */
let processes = null;
/** @type {Awaited<ReturnType<typeof openStorage>> | null} */
let opened = null;
/** The round trips of the processor processes in the last crawl. */
let processorTrips = [];
async function engine(startUrl, maxPages) {
  if (opened === null || kind === 'memory') opened = await openStorage(kind);
  const crawler = createCrawlEngine({ storage: opened.storage, fetch: { allowPrivateNetwork: true } });
  // The per-host cap (which counts leases still being parsed and stored too) is lifted so that it
  // does not bind before the fetch concurrency does.
  // BENCH_FORMATS (comma-separated, e.g. markdown): the job's formats (the markdown section).
  const formats = process.env.BENCH_FORMATS ? { formats: /** @type {import('../dist/index.js').ResultFormat[]} */ (process.env.BENCH_FORMATS.split(',')) } : {};
  const options = { url: startUrl, maxPages, maxDepth: 1000, perHostConcurrency: 100, ...formats };
  let job;
  if (processors === 1) {
    job = await crawler.crawl(options, { concurrency });
  } else if (kind === 'memory') {
    const created = await crawler.jobs.create(options);
    await Promise.all(
      Array.from({ length: processors }, async () => {
        for (;;) {
          await crawler.processor.run({ jobId: created.id, concurrency, budgetMs: 600_000 });
          const now = await crawler.jobs.get(created.id);
          if (['completed', 'failed', 'cancelled'].includes(now.status)) return;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }),
    );
    job = await crawler.jobs.get(created.id);
  } else {
    processes ??= await startProcessors(kind, opened.namespace, processors, concurrency);
    const created = await crawler.jobs.create(options);
    processorTrips = (await processes.work(created.id)).map((done) => done.roundTrips);
    job = await crawler.jobs.get(created.id);
  }
  await crawler.close();
  return job.counts.succeeded + job.counts.failed;
}

const crawl = kind === 'bare' ? bare : engine;
await crawl(url, Math.min(300, pages));
resetRoundTrips();
const cpu0 = process.cpuUsage();
const started = performance.now();
const fetched = await crawl(url, pages);
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpu0);
const trips = addRoundTrips(roundTrips, ...processorTrips);
const cpuMs = (cpu.user + cpu.system) / 1000;
process.stdout.write(
  `${JSON.stringify({ pages: fetched, ms, cpuMs, roundTrips: trips, rssMb: process.memoryUsage().rss / 1048576, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
);
await processes?.stop();
await opened?.close({ drop: true });
process.exit(0); // the REST server's own Redis connection would keep the process alive
