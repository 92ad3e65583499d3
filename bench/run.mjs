// `npm run bench`: the engine (memory adapter) against a bare undici + cheerio BFS loop on the same
// loopback site, served by a separate process, at 0 ms and 20 ms server latency. Each crawl runs
// in a fresh process; the figure is the median of `RUNS` crawls.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

const PAGES = Number(process.env.BENCH_PAGES ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const LATENCIES = (process.env.BENCH_LATENCIES ?? '0,20').split(',').map(Number);
const here = (p) => fileURLToPath(new URL(p, import.meta.url));

async function startSiteProcess(latencyMs) {
  const child = spawn(process.execPath, [here('./site.mjs'), `pages=${PAGES}`, 'fanout=8', `latencyMs=${latencyMs}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = await once(child.stdout, 'data');
  return { url: String(chunk).trim(), stop: () => child.kill('SIGTERM') };
}

function crawlOnce(kind, url) {
  const out = execFileSync(process.execPath, [here('./crawl-once.mjs'), kind, url, String(PAGES), String(CONCURRENCY)], { encoding: 'utf8' });
  return JSON.parse(out);
}

function opsOnce(kind) {
  return JSON.parse(execFileSync(process.execPath, [here('./ops.mjs'), kind, '4'], { encoding: 'utf8' }));
}

const KINDS = ['bare', 'engine', ...(process.env.DATABASE_URL ? ['engine-pg'] : []), ...(process.env.REDIS_URL ? ['engine-kv', 'engine-rest'] : [])];
const LABEL = { bare: 'bare undici+cheerio', engine: 'engine (memory)', 'engine-pg': 'engine (postgres)', 'engine-kv': 'engine (KV, ioredis)', 'engine-rest': 'engine (KV, REST)' };

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

console.log(`crawl-engine bench: ${PAGES}-page loopback site, concurrency ${CONCURRENCY}, median of ${RUNS} runs`);
console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}\n`);
const header = ['latency', ...KINDS.map((k) => LABEL[k]), ...KINDS.slice(1).map((k) => `${LABEL[k]} / bare`)];
console.log(`| ${header.join(' | ')} |`);
console.log(`|${header.map(() => '---').join('|')}|`);
for (const latency of LATENCIES) {
  const site = await startSiteProcess(latency);
  const rates = Object.fromEntries(KINDS.map((k) => [k, []]));
  try {
    for (let run = 0; run < RUNS; run++) {
      // Rotate the order so no side always runs on a warmer machine.
      const order = KINDS.map((_, i) => KINDS[(i + run) % KINDS.length]);
      for (const kind of order) {
        const { pages, ms } = crawlOnce(kind, site.url);
        if (pages !== PAGES) throw new Error(`${kind} fetched ${pages} pages, expected ${PAGES}`);
        rates[kind].push((pages / ms) * 1000);
      }
    }
  } finally {
    site.stop();
  }
  const med = Object.fromEntries(KINDS.map((k) => [k, median(rates[k])]));
  const cells = [`${latency} ms`, ...KINDS.map((k) => `${med[k].toFixed(0)} pages/s`), ...KINDS.slice(1).map((k) => `${((med[k] / med.bare) * 100).toFixed(1)} %`)];
  console.log(`| ${cells.join(' | ')} |`);
}

console.log('\nstorage operations with no network (one job, 5,000 URLs, 4 concurrent claim(10) + complete loops):');
for (const kind of ['memory', ...(process.env.DATABASE_URL ? ['postgres'] : []), ...(process.env.REDIS_URL ? ['kv', 'rest'] : [])]) {
  const r = opsOnce(kind);
  console.log(`  ${kind.padEnd(9)} ${r.opsPerSecond.toFixed(0).padStart(7)} completes/s (plus one claim per 10)`);
}
console.log('\nbare = undici request + cheerio/slim load + $("a[href]") BFS with a Set; engine = createCrawlEngine(storage).crawl() at the same concurrency');
if (!process.env.DATABASE_URL || !process.env.REDIS_URL) console.log('(set DATABASE_URL and REDIS_URL to add the Postgres and KV adapters)');
