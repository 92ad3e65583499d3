// Peak memory: `node bench/rss.mjs`. Prints one JSON line with peak RSS (MiB, the process's maxRSS):
// - a 20,000-page crawl in one process with the memory adapter (which holds the whole job), next to
//   the bare undici + cheerio loop on the same site (bench/crawl-once.mjs, fresh processes);
// - with DATABASE_URL: one processor process on Postgres working a 2,000-page and then (a fresh
//   process) a 20,000-page job, to show that a processor's memory does not grow with the job.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createCrawlEngine } from '../dist/index.js';
import { startProcessors } from './processes.mjs';
import { startSite } from '../test/fixtures/site.mjs';
import { openStorage } from './storages.mjs';

const BIG = Number(process.env.BENCH_RSS_PAGES ?? 20_000);
const SMALL = Math.round(BIG / 10);
const round = (x) => Math.round(x);
const site = await startSite({ pages: BIG, fanout: 8 });
const out = { pages: BIG };

// Asynchronously: the site answers from this process.
const crawlOnce = async (kind) =>
  JSON.parse(
    (
      await promisify(execFile)(process.execPath, [fileURLToPath(new URL('./crawl-once.mjs', import.meta.url)), kind, site.url, String(BIG), '20'], {
        encoding: 'utf8',
      })
    ).stdout,
  );
for (const kind of ['bare', 'memory']) {
  const r = await crawlOnce(kind);
  if (r.pages !== BIG) throw new Error(`${kind} fetched ${r.pages} pages, expected ${BIG}`);
  out[kind] = { maxRssMb: round(r.maxRssMb), pagesPerSecond: round((r.pages / r.ms) * 1000) };
}

if (process.env.DATABASE_URL) {
  out.postgresProcessor = {};
  const opened = await openStorage('postgres');
  const engine = createCrawlEngine({ storage: opened.storage, fetch: { allowPrivateNetwork: true } });
  for (const pages of [SMALL, BIG]) {
    const processor = await startProcessors('postgres', opened.namespace, 1, 20);
    const job = await engine.jobs.create({ url: site.url, maxPages: pages, maxDepth: 1000, perHostConcurrency: 100 });
    const [figures] = await processor.work(job.id);
    await processor.stop();
    const done = await engine.jobs.get(job.id);
    if (done.counts.succeeded !== pages) throw new Error(`the Postgres job stored ${done.counts.succeeded} pages, expected ${pages}`);
    out.postgresProcessor[pages] = { maxRssMb: round(figures.maxRssMb) };
  }
  await opened.close({ drop: true });
}
await site.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
