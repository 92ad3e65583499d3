// `npm run bench`: every figure of BENCHMARKS.md in one run, on loopback sites served by other
// processes than the crawlers. Sections (all by default; `BENCH_ONLY=throughput,ops` picks some):
// - throughput: pages/s of the bare undici + cheerio loop and of the engine on each storage, at
//   0 ms and 20 ms of server latency, with 1 and 4 processors (median of BENCH_RUNS fresh-process crawls);
// - ops: storage operations per second with no network;
// - latency: job creation p50/p99 and progress latency p50/p99 (page stored → event received by a
//   subscriber in another process);
// - memory: peak RSS of a 20,000-page crawl (memory adapter, bare loop) and of a Postgres processor
//   on a 2,000- and a 20,000-page job;
// - scale: claim/complete latency with 1k/10k/100k-URL frontiers on Postgres and Redis, the
//   Postgres plans, the event log bound.
// A full run rewrites the figures part of BENCHMARKS.md (between its bench markers); BENCH_WRITE=0
// leaves the file alone. Postgres and KV need DATABASE_URL and REDIS_URL.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { availableKinds } from './storages.mjs';

const PAGES = Number(process.env.BENCH_PAGES ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const LATENCIES = (process.env.BENCH_LATENCIES ?? '0,20').split(',').map(Number);
const PROCESSORS = [1, 4];
const ALL = ['throughput', 'ops', 'latency', 'memory', 'scale'];
const ONLY = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : ALL;
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const exec = promisify(execFile);
const KINDS = availableKinds();
const SCALE_KINDS = KINDS.filter((k) => k === 'postgres' || k === 'kv');
const LABEL = { bare: 'bare undici + cheerio', memory: 'memory', postgres: 'Postgres', kv: 'KV (ioredis)', rest: 'KV (REST)' };

const lines = [];
const print = (line = '') => {
  lines.push(line);
  console.log(line);
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const json = async (script, args) =>
  JSON.parse((await exec(process.execPath, [here(script), ...args], { encoding: 'utf8', maxBuffer: 1 << 24 })).stdout.trim().split('\n').at(-1));
const table = (header, rows) => {
  print(`| ${header.join(' | ')} |`);
  print(`|${header.map(() => '---').join('|')}|`);
  for (const row of rows) print(`| ${row.join(' | ')} |`);
};
const fmt = (n) => Math.round(n).toLocaleString('en-US');

async function machine() {
  const facts = [
    `Node ${process.version}`,
    `${cpus().length} × ${cpus()[0]?.model?.trim() ?? 'cpu'}`,
    `${Math.round(totalmem() / 2 ** 30)} GiB RAM`,
    `Linux ${release()}`,
  ];
  if (process.env.DATABASE_URL) {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    facts.push((await client.query('SHOW server_version')).rows[0].server_version.replace(/^(\S+).*/, 'PostgreSQL $1'));
    await client.end();
  }
  if (process.env.REDIS_URL) {
    const { default: Redis } = await import('ioredis');
    const redis = new Redis(process.env.REDIS_URL);
    facts.push(`Redis ${/redis_version:(\S+)/.exec(await redis.info('server'))[1]}`);
    redis.disconnect();
  }
  return facts.join(', ');
}

async function startSiteProcess(latencyMs) {
  const child = spawn(process.execPath, [here('../test/fixtures/site.mjs'), `pages=${PAGES}`, 'fanout=8', `latencyMs=${latencyMs}`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [chunk] = await once(child.stdout, 'data');
  return { url: String(chunk).trim(), stop: () => child.kill('SIGTERM') };
}

async function throughput() {
  const configs = [['bare', 1], ...PROCESSORS.flatMap((p) => KINDS.map((k) => [k, p]))];
  print(`### Throughput: pages/s, median of ${RUNS}`);
  print();
  print(
    `${fmt(PAGES)}-page loopback site (site.mjs in its own process), concurrency ${CONCURRENCY} per processor. One processor: \`crawl()\` in one process. Four: four processes on shared storage (four \`processor.run()\` loops in one process for memory, which cannot be shared). The bare loop is one process at concurrency ${CONCURRENCY}; every ratio is against it.`,
  );
  print();
  const rows = [];
  for (const latency of LATENCIES) {
    const site = await startSiteProcess(latency);
    const rates = new Map(configs.map((c) => [c.join('/'), []]));
    try {
      for (let run = 0; run < RUNS; run++) {
        // Rotate the order so that no configuration always runs on a warmer machine.
        const order = configs.map((_, i) => configs[(i + run) % configs.length]);
        for (const [kind, processors] of order) {
          const r = await json('./crawl-once.mjs', [kind, site.url, String(PAGES), String(CONCURRENCY), String(processors)]);
          if (r.pages !== PAGES) throw new Error(`${kind} × ${processors} fetched ${r.pages} pages, expected ${PAGES}`);
          rates.get(`${kind}/${processors}`).push((r.pages / r.ms) * 1000);
        }
      }
    } finally {
      site.stop();
    }
    const bare = median(rates.get('bare/1'));
    for (const processors of PROCESSORS) {
      const med = (k) => median(rates.get(`${k}/${processors}`));
      rows.push([
        `${latency} ms`,
        String(processors),
        processors === 1 ? fmt(bare) : '—',
        ...KINDS.map((k) => fmt(med(k))),
        ...KINDS.map((k) => `${((med(k) / bare) * 100).toFixed(0)} %`),
      ]);
    }
  }
  table(['server latency', 'processors', LABEL.bare, ...KINDS.map((k) => LABEL[k]), ...KINDS.map((k) => `${LABEL[k]} / bare`)], rows);
  print();
}

async function ops() {
  print('### Storage operations, no network');
  print();
  print('One job with 5,000 ready URLs; 4 concurrent loops of claim(10) then complete() for each URL.');
  print();
  const rows = [];
  for (const kind of KINDS) rows.push([LABEL[kind], fmt((await json('./ops.mjs', [kind, '4'])).opsPerSecond)]);
  table(['storage', 'completes/s (+ one claim per 10)'], rows);
  print();
}

async function latency() {
  print('### Latency, milliseconds');
  print();
  print(
    'Job creation: 300 sequential `jobs.create()`. Progress: a 600-page crawl while a subscriber (`progress.subscribe()`, as behind SSE) follows the job; per page, arrival at the subscriber minus `event.at` (taken just before the page is stored). Postgres pushes with LISTEN/NOTIFY, KV on ioredis with pub/sub; KV over REST cannot subscribe and polls every 250 ms (the default `pollMs`).',
  );
  print();
  const rows = [];
  for (const kind of KINDS) {
    const r = await json('./latency.mjs', [kind]);
    rows.push([LABEL[kind], r.create.p50, r.create.p99, r.progress.p50, r.progress.p99, r.progress.subscriber]);
  }
  table(['storage', 'create p50', 'create p99', 'progress p50', 'progress p99', 'subscriber'], rows);
  print();
}

async function memory() {
  const r = await json('./rss.mjs', []);
  print('### Peak memory (maxRSS)');
  print();
  print(
    `A ${fmt(r.pages)}-page loopback crawl at concurrency 20 in one process; and one processor process on Postgres working a ${fmt(r.pages / 10)}-page job, then (a fresh process) a ${fmt(r.pages)}-page job.`,
  );
  print();
  const rows = [
    [`bare undici + cheerio loop, ${fmt(r.pages)} pages`, `${r.bare.maxRssMb} MiB`],
    [`engine, memory adapter (holds the whole job: frontier, results, events), ${fmt(r.pages)} pages`, `${r.memory.maxRssMb} MiB`],
  ];
  for (const [pages, f] of Object.entries(r.postgresProcessor ?? {}))
    rows.push([`one processor process on Postgres, ${fmt(Number(pages))}-page job`, `${f.maxRssMb} MiB`]);
  table(['process', 'peak RSS'], rows);
  print();
}

async function scale() {
  print('### Scale: one job, frontiers of 1,000 to 100,000 URLs');
  print();
  print(
    'Filled through the storage contract (complete() admitting 1,000 links at a time), then 50 × claim(10) + 10 complete(), after 10 warm-up rounds. The event log limit is set to 500 (`maxEventsPerJob`); the log is trimmed in steps, so it holds at most limit + 2 × max(16, limit / 8).',
  );
  print();
  const rows = [];
  let plans = null;
  for (const kind of SCALE_KINDS) {
    const r = await json('./scale.mjs', [kind]);
    for (const [size, f] of Object.entries(r.sizes)) {
      rows.push([
        kind === 'kv' ? 'Redis' : 'Postgres',
        fmt(Number(size)),
        f.claim10.p50,
        f.claim10.p99,
        f.complete.p50,
        f.complete.p99,
        `${fmt(f.events.appended)} / ${fmt(f.events.stored)}`,
      ]);
      if (f.plans) plans = f.plans;
    }
  }
  table(['storage', 'frontier URLs', 'claim(10) p50 ms', 'p99 ms', 'complete p50 ms', 'p99 ms', 'events appended / kept'], rows);
  print();
  if (plans?.available) {
    const scans = Object.entries(plans.scans)
      .map(([k, n]) => `${k} × ${n}`)
      .join('; ');
    print(
      `Postgres plans at 100,000 URLs (auto_explain of the ${plans.statements} statements run inside claim, complete, readEvents and getJob): ${scans}. Sequential scans of the frontier: **${plans.frontierSeqScans}**.`,
    );
  } else if (plans) print(`Postgres plans: not available (${plans.reason}).`);
  print();
}

const started = Date.now();
const facts = await machine();
print(`Run of ${new Date().toISOString().slice(0, 10)} on ${facts}.`);
print();
const sections = { throughput, ops, latency, memory, scale };
for (const name of ALL) if (ONLY.includes(name)) await sections[name]();
if (KINDS.length < 4) print('(Set DATABASE_URL and REDIS_URL to add the Postgres and KV adapters.)');
console.log(`\nbench took ${Math.round((Date.now() - started) / 1000)} s`);

const complete = ONLY.length === ALL.length && KINDS.length === 4;
if (process.env.BENCH_WRITE !== '0' && (complete || process.env.BENCH_WRITE === '1')) {
  const file = here('../BENCHMARKS.md');
  const text = readFileSync(file, 'utf8');
  const [head, rest] = text.split('<!-- bench:start -->');
  const tail = rest?.split('<!-- bench:end -->')[1];
  if (tail === undefined) throw new Error('BENCHMARKS.md has no <!-- bench:start --> … <!-- bench:end --> markers');
  writeFileSync(file, `${head}<!-- bench:start -->\n${lines.join('\n')}\n<!-- bench:end -->${tail}`);
  console.log('figures written to BENCHMARKS.md');
}
process.exit(0);
