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

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

console.log(`crawl-engine bench: ${PAGES}-page loopback site, concurrency ${CONCURRENCY}, median of ${RUNS} runs`);
console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}\n`);
console.log('latency | bare undici+cheerio | engine (memory)  | engine / bare');
console.log('--------|---------------------|------------------|--------------');
const rows = [];
for (const latency of LATENCIES) {
  const site = await startSiteProcess(latency);
  const rates = { bare: [], engine: [] };
  try {
    for (let run = 0; run < RUNS; run++) {
      // Alternate the order so neither side always runs on a warmer machine.
      for (const kind of run % 2 === 0 ? ['bare', 'engine'] : ['engine', 'bare']) {
        const { pages, ms } = crawlOnce(kind, site.url);
        if (pages !== PAGES) throw new Error(`${kind} fetched ${pages} pages, expected ${PAGES}`);
        rates[kind].push((pages / ms) * 1000);
      }
    }
  } finally {
    site.stop();
  }
  const bare = median(rates.bare);
  const engine = median(rates.engine);
  rows.push({ latency, bare, engine, ratio: engine / bare });
  console.log(`${String(latency).padStart(4)} ms | ${bare.toFixed(0).padStart(12)} pages/s | ${engine.toFixed(0).padStart(9)} pages/s | ${((engine / bare) * 100).toFixed(1).padStart(10)} %`);
}
console.log('\nbare = undici request + cheerio/slim load + $("a[href]") BFS with a Set; engine = createCrawlEngine(memoryStorage()).crawl()');
