// `npm run bench`: every figure of BENCHMARKS.md in one run, on loopback sites served by other
// processes than the crawlers. Sections (all by default; `BENCH_ONLY=throughput,ops` picks some):
// - throughput: pages/s of the bare undici + cheerio loop and of the engine on each storage, at
//   0 ms and 20 ms of server latency, with 1 and 4 processors (median of BENCH_RUNS fresh-process crawls);
//   with storage round trips per page; and, for each positive BENCH_RTT (default 0,2,10 ms; 0 = the
//   rows above), the shared storages behind a delay proxy adding that RTT, the site at 20 ms;
// - markdown: pages/s and peak RSS with `formats: ['markdown']` against metadata only, the engine
//   and Crawlee doing the same conversion in its handler, on a site dressed as real pages are;
// - ops: storage operations per second with no network;
// - latency: job creation p50/p99 and progress latency p50/p99 (page stored → event received by a
//   subscriber in another process);
// - backlog: thousands of 5-page jobs queued at once: jobs/s at 2,000 and 20,000, the first job
//   against the same job alone, completion order (bench/backlog.mjs);
// - watchers: a 300-page crawl followed over SSE by 500 clients against none (one reader per job);
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
import { proxiedUrl } from './proxy.mjs';
import { availableKinds, SHARED_KINDS } from './storages.mjs';

const PAGES = Number(process.env.BENCH_PAGES ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const LATENCIES = (process.env.BENCH_LATENCIES ?? '0,20').split(',').map(Number);
const PROCESSORS = [1, 4];
const RTTS = (process.env.BENCH_RTT ?? '0,2,10').split(',').map((v) => {
  const rtt = Number(v);
  if (v.trim() === '' || !Number.isFinite(rtt) || rtt < 0) throw new TypeError(`BENCH_RTT must list milliseconds ≥ 0 (as 0,2,10), got ${v}`);
  return rtt;
});
/** The site latency of the storage-RTT rows: a site as slow as a real one, so that storage is not all that binds. */
const RTT_SITE_LATENCY = 20;
const ALL = ['throughput', 'markdown', 'ops', 'latency', 'backlog', 'watchers', 'memory', 'scale'];
const ONLY = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : ALL;
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
/** A full run (BENCH_RTT without 0 leaves out the direct rows) rewrites BENCHMARKS.md and its charts; BENCH_WRITE=0 or 1 decides. */
const WRITE =
  process.env.BENCH_WRITE !== '0' && ((ONLY.length === ALL.length && availableKinds().length === 4 && RTTS.includes(0)) || process.env.BENCH_WRITE === '1');
const exec = promisify(execFile);
const KINDS = availableKinds();
const SCALE_KINDS = KINDS.filter((k) => k === 'postgres' || k === 'kv');
const LABEL = { bare: 'bare undici + cheerio', memory: 'memory', postgres: 'Postgres', kv: 'KV (ioredis)', rest: 'KV (REST)' };
/** The round-trip columns of the throughput table (roundtrips.mjs counts them). */
const TRIPS = { postgres: 'Postgres round trips / page', kv: 'KV (ioredis) round trips / page', rest: 'KV (REST) requests / page' };
const TRIP_KINDS = KINDS.filter((k) => k in TRIPS);
const perPage = (r, kind) => (r.roundTrips?.[kind] ?? Number.NaN) / r.pages;

const lines = [];
const print = (line = '') => {
  lines.push(line);
  console.log(line);
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const json = async (script, args, env = {}) =>
  JSON.parse(
    (await exec(process.execPath, [here(script), ...args], { encoding: 'utf8', maxBuffer: 1 << 24, env: { ...process.env, ...env } })).stdout
      .trim()
      .split('\n')
      .at(-1),
  );
const table = (header, rows) => {
  print(`| ${header.join(' | ')} |`);
  print(`|${header.map(() => '---').join('|')}|`);
  // A row is an array of cells, or an object of cells by column ('—' where it has none).
  for (const row of rows) print(`| ${(Array.isArray(row) ? row : header.map((column) => row[column] ?? '—')).join(' | ')} |`);
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

async function startSiteProcess(latencyMs, extra = []) {
  const child = spawn(process.execPath, [here('../test/fixtures/site.mjs'), `pages=${PAGES}`, 'fanout=8', `latencyMs=${latencyMs}`, ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [chunk] = await once(child.stdout, 'data');
  return { url: String(chunk).trim(), stop: () => child.kill('SIGTERM') };
}

async function throughput() {
  const configs = [['bare', 1], ['crawlee', 1], ...PROCESSORS.flatMap((p) => KINDS.map((k) => [k, p]))];
  const vsCrawlee = KINDS.filter((k) => k === 'memory' || k === 'postgres');
  print(`### Throughput: pages/s, median of ${RUNS}`);
  print();
  print(
    `${fmt(PAGES)}-page loopback site (site.mjs in its own process), concurrency ${CONCURRENCY} per processor. One processor: \`crawl()\` in one process. Four: four processes on shared storage (four \`processor.run()\` loops in one process for memory, which cannot be shared). The bare loop is one process at concurrency ${CONCURRENCY}; the \`/ bare\` ratios are against it. Crawlee 3.x is a \`CheerioCrawler\` in one process at the same concurrency, robots.txt respected (bench/crawlee).`,
  );
  print();
  const rows = [];
  for (const latency of RTTS.includes(0) ? LATENCIES : []) {
    const site = await startSiteProcess(latency);
    const rates = new Map(configs.map((c) => [c.join('/'), []]));
    const trips = new Map(configs.map((c) => [c.join('/'), []]));
    try {
      for (let run = 0; run < RUNS; run++) {
        // Rotate the order so that no configuration always runs on a warmer machine.
        const order = configs.map((_, i) => configs[(i + run) % configs.length]);
        for (const [kind, processors] of order) {
          const r =
            kind === 'crawlee'
              ? await crawlee(site.url)
              : await json('./crawl-once.mjs', [kind, site.url, String(PAGES), String(CONCURRENCY), String(processors)]);
          if (r.pages !== PAGES) throw new Error(`${kind} × ${processors} fetched ${r.pages} pages, expected ${PAGES}`);
          rates.get(`${kind}/${processors}`).push((r.pages / r.ms) * 1000);
          trips.get(`${kind}/${processors}`).push(r);
        }
      }
    } finally {
      site.stop();
    }
    const bare = median(rates.get('bare/1'));
    const crawleeRate = median(rates.get('crawlee/1'));
    for (const processors of PROCESSORS) {
      const med = (k) => median(rates.get(`${k}/${processors}`));
      rows.push([
        `${latency} ms`,
        '0 ms',
        String(processors),
        processors === 1 ? fmt(bare) : '—',
        processors === 1 ? fmt(crawleeRate) : '—',
        ...KINDS.map((k) => fmt(med(k))),
        ...KINDS.map((k) => `${((med(k) / bare) * 100).toFixed(0)} %`),
        ...vsCrawlee.map((k) => `${((med(k) / crawleeRate) * 100).toFixed(0)} %`),
        ...TRIP_KINDS.map((k) => median(trips.get(`${k}/${processors}`).map((r) => perPage(r, k))).toFixed(2)),
      ]);
    }
  }
  table(
    [
      'server latency',
      'storage RTT',
      'processors',
      LABEL.bare,
      'Crawlee 3.x',
      ...KINDS.map((k) => LABEL[k]),
      ...KINDS.map((k) => `${LABEL[k]} / bare`),
      ...vsCrawlee.map((k) => `${LABEL[k]} / Crawlee`),
      ...TRIP_KINDS.map((k) => TRIPS[k]),
    ],
    [...rows, ...(await storageRtt())],
  );
  print();
  throughputNotes();
  // The table above as charts (vega-lite → SVG in docs/bench; vega installed into bench/charts on
  // first use), only by a run that rewrites BENCHMARKS.md, so that a partial run keeps them whole.
  if (WRITE) {
    const { chartsFromBench } = await import('./charts/render.mjs');
    for (const line of await chartsFromBench(lines, here('../docs/bench'), here('..'))) print(line);
  }
}

/**
 * Metadata only against `formats: ['markdown']`, on a site whose pages are dressed as real ones are
 * (menu, cookie banner, sidebar, footer, an article with a list, code and a table): the engine on
 * memory (and Postgres), and Crawlee's CheerioCrawler without and with the same conversion in its
 * handler (bench/markdown-lib.mjs, the libraries the engine uses). Peak RSS is the crawling
 * process's (the site runs in its own).
 */
async function markdown() {
  const kinds = KINDS.filter((k) => k === 'memory' || k === 'postgres');
  const configs = [
    { name: 'crawlee', formats: 'metadata' },
    { name: 'crawlee', formats: 'markdown' },
    ...kinds.flatMap((k) => [
      { name: k, formats: 'metadata' },
      { name: k, formats: 'markdown' },
    ]),
  ];
  const key = (c) => `${c.name}/${c.formats}`;
  print(`### Markdown: pages/s and peak RSS, median of ${RUNS}`);
  print();
  print(
    `${fmt(PAGES)}-page loopback site dressed as real pages are (site.mjs \`chrome=1\`: menu, cookie banner, sidebar, footer; ~4.8 kB a page), 0 ms latency, concurrency ${CONCURRENCY}, one process each. \`markdown\`: the engine with \`formats: ['markdown']\` (main content only, the default); Crawlee with the same libraries called in its \`requestHandler\` (bench/markdown-lib.mjs).`,
  );
  print();
  const site = await startSiteProcess(0, ['chrome=1']);
  const runs = new Map(configs.map((c) => [key(c), []]));
  try {
    for (let run = 0; run < RUNS; run++) {
      const order = configs.map((_, i) => configs[(i + run) % configs.length]);
      for (const c of order) {
        const r =
          c.name === 'crawlee'
            ? await json('./crawlee/crawl.mjs', [site.url, String(PAGES), String(CONCURRENCY)], { BENCH_MARKDOWN: c.formats === 'markdown' ? '1' : '0' })
            : await json('./crawl-once.mjs', [c.name, site.url, String(PAGES), String(CONCURRENCY), '1'], { BENCH_FORMATS: c.formats });
        if (r.pages !== PAGES) throw new Error(`${key(c)} fetched ${r.pages} pages, expected ${PAGES}`);
        runs.get(key(c)).push(r);
      }
    }
  } finally {
    site.stop();
  }
  const rate = (c) => median(runs.get(key(c)).map((r) => (r.pages / r.ms) * 1000));
  const rss = (c) => median(runs.get(key(c)).map((r) => r.maxRssMb));
  const label = (c) => (c.name === 'crawlee' ? 'Crawlee 3.x' : LABEL[c.name]);
  table(
    ['crawler', 'formats', 'pages/s', 'peak RSS', 'markdown / metadata only', 'engine / Crawlee (same formats)'],
    configs.map((c) => [
      label(c),
      c.formats,
      fmt(rate(c)),
      `${fmt(rss(c))} MB`,
      c.formats === 'markdown' ? `**${(rate(c) / rate({ ...c, formats: 'metadata' })).toFixed(2)}×**` : '—',
      c.name === 'crawlee' ? '—' : `${(rate(c) / rate({ name: 'crawlee', formats: c.formats })).toFixed(2)}×`,
    ]),
  );
  print();
}

/** One measured Crawlee crawl in a fresh process (bench/crawlee/crawl.mjs, which installs Crawlee on its first run). */
async function crawlee(url) {
  return json('./crawlee/crawl.mjs', [url, String(PAGES), String(CONCURRENCY)]);
}

/** Storage RTT → the round trip the proxies in front of Postgres and Redis really added (storageRtt). */
const measuredRtt = new Map();

/** Printed under the throughput table: what the storage-RTT rows and the round-trip columns are. */
function throughputNotes() {
  if (TRIP_KINDS.length === 0) return;
  if (measuredRtt.size > 0) {
    const measured = [...measuredRtt].map(([rtt, ms]) => `${ms.toFixed(1)} ms for ${rtt} ms`).join(', ');
    print(
      `Storage RTT above 0 ms: a delay proxy (bench/proxy.mjs) adds at least that round trip to every exchange with the storage (half each way; in front of Postgres and Redis, and for KV over REST between \`@upstash/redis\` and the REST server), the site at ${RTT_SITE_LATENCY} ms; the bare loop, which stores nothing, runs again in the same rotation. Timers tick in whole milliseconds and fire up to about 1 ms late, so the proxy errs long: the round trip the proxies in front of Postgres and Redis really added (twice the mean time they held a chunk, in brackets in the column) was ${measured}.`,
    );
  }
  print(
    'Round trips / page: over the measured crawl, in every crawling process, the Postgres queries sent, the ioredis commands sent (a pipeline counts once) and the HTTP requests the REST server received, divided by the pages stored; median of the runs.',
  );
  print();
}

/**
 * The storage-RTT rows of the throughput table (objects of cells by column): the shared storages
 * with each positive BENCH_RTT added to every storage round trip, the site at RTT_SITE_LATENCY ms,
 * and the bare loop again in the same rotation. DATABASE_URL and REDIS_URL of the crawling
 * processes point at delay proxies in this process, idle while they crawl; over REST, each crawling
 * process puts one in front of its own REST server (BENCH_REST_RTT_MS, storages.mjs).
 */
async function storageRtt() {
  const rtts = RTTS.filter((rtt) => rtt > 0);
  const kinds = KINDS.filter((k) => SHARED_KINDS.includes(k));
  if (rtts.length === 0 || kinds.length === 0) return [];
  const configs = [['bare', 1, 0], ...rtts.flatMap((rtt) => PROCESSORS.flatMap((p) => kinds.map((k) => [k, p, rtt])))];
  const results = new Map(configs.map((c) => [c.join('/'), []]));
  const proxies = [];
  const site = await startSiteProcess(RTT_SITE_LATENCY);
  try {
    const env = new Map();
    for (const rtt of rtts) {
      const through = async (url) => {
        const proxied = await proxiedUrl(url, rtt);
        proxies.push(proxied.proxy);
        return proxied.url;
      };
      env.set(`postgres/${rtt}`, kinds.includes('postgres') ? { DATABASE_URL: await through(process.env.DATABASE_URL) } : {});
      env.set(`kv/${rtt}`, kinds.includes('kv') ? { REDIS_URL: await through(process.env.REDIS_URL) } : {});
      env.set(`rest/${rtt}`, { BENCH_REST_RTT_MS: String(rtt) });
    }
    for (let run = 0; run < RUNS; run++) {
      const order = configs.map((_, i) => configs[(i + run) % configs.length]);
      for (const [kind, processors, rtt] of order) {
        const args = [kind, site.url, String(PAGES), String(CONCURRENCY), String(processors)];
        const r = await json('./crawl-once.mjs', args, env.get(`${kind}/${rtt}`) ?? {});
        if (r.pages !== PAGES) throw new Error(`${kind} × ${processors} at ${rtt} ms storage RTT fetched ${r.pages} pages, expected ${PAGES}`);
        results.get(`${kind}/${processors}/${rtt}`).push(r);
      }
    }
  } finally {
    site.stop();
    await Promise.all(proxies.map((proxy) => proxy.close()));
  }
  for (const rtt of rtts) {
    const stats = proxies.filter((proxy) => proxy.rttMs === rtt).map((proxy) => proxy.stats);
    const chunks = stats.reduce((sum, s) => sum + s.chunks, 0);
    if (chunks > 0) measuredRtt.set(rtt, (2 * stats.reduce((sum, s) => sum + s.meanHoldMs * s.chunks, 0)) / chunks);
  }
  const rate = (key) => median(results.get(key).map((r) => (r.pages / r.ms) * 1000));
  const bare = rate('bare/1/0');
  const rows = [];
  for (const rtt of rtts) {
    for (const processors of PROCESSORS) {
      const measured = measuredRtt.has(rtt) ? ` (${measuredRtt.get(rtt).toFixed(1)} measured)` : '';
      const row = { 'server latency': `${RTT_SITE_LATENCY} ms`, 'storage RTT': `${rtt} ms${measured}`, processors: String(processors) };
      if (processors === 1) row[LABEL.bare] = fmt(bare);
      for (const k of kinds) {
        const key = `${k}/${processors}/${rtt}`;
        row[LABEL[k]] = fmt(rate(key));
        row[`${LABEL[k]} / bare`] = `${((rate(key) / bare) * 100).toFixed(0)} %`;
        row[TRIPS[k]] = median(results.get(key).map((r) => perPage(r, k))).toFixed(2);
      }
      rows.push(row);
    }
  }
  return rows;
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
    'Job creation: 300 sequential `jobs.create()`. Progress: a 600-page crawl while a subscriber (`progress.subscribe()`, as behind SSE) follows the job; per page, arrival at the subscriber minus `event.at` (taken just before the page is stored). Postgres pushes with LISTEN/NOTIFY, KV on ioredis with pub/sub. KV over REST runs against a REST server without the `subscribe` endpoint of Upstash, so it polls (`pollMs` 250 ms, backing off while the job is idle); with `subscribe` (Upstash, and the stand-in of test/rest-push.test.ts) it is pushed.',
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

/** [jobs, maxActiveJobs, site latency ms] of the backlog rows (as `npm run bench:backlog`). */
const BACKLOG_RUNS = [
  ['2000', '100000', '0'],
  ['2000', 'default', '0'],
  ['20000', 'default', '0'],
  ['5000', 'default', '20'],
];

async function backlog() {
  print('### Backlog: thousands of small jobs queued at once');
  print();
  print(
    "Jobs of 5 pages (one loopback site, site.mjs in its own process) created one after the other, all of priority 0, then one processor (`processor.start()`, concurrency 20) works them off (bench/backlog.mjs). jobs/s: from the processor's start to the last completion. First job: the first job created, from the start to its completion, against the same job alone on an empty storage (median of 3). Inverted pairs: the completion order against the creation order (0: exactly in creation order, 0.5: no relation). maxActiveJobs 100,000 admits every job at once, as before admission existed; `default` is 10.",
  );
  print();
  const rows = [];
  for (const kind of KINDS.filter((k) => k !== 'rest')) {
    for (const [jobs, bound, latency] of BACKLOG_RUNS) {
      const r = await json('./backlog.mjs', [kind, jobs, bound, latency]);
      rows.push([
        LABEL[kind],
        fmt(r.jobs),
        bound === 'default' ? '10 (default)' : fmt(Number(bound)),
        `${latency} ms`,
        String(r.jobsPerSecond),
        `${r.firstJobMs} ms`,
        `${r.idleJobMs} ms`,
        `${r.firstVsIdle}×`,
        String(r.inversions),
      ]);
    }
  }
  table(['storage', 'queued jobs', 'maxActiveJobs', 'site latency', 'jobs/s', 'first job', 'same job alone', 'first / alone', 'inverted pairs'], rows);
  print();
}

const WATCHED_PAGES = 300;
const WATCHERS = Number(process.env.BENCH_WATCHERS ?? 500);

async function watchers() {
  print(`### Watchers: a job followed by ${fmt(WATCHERS)} SSE clients, median of ${RUNS}`);
  print();
  print(
    `A ${WATCHED_PAGES}-page loopback crawl (concurrency 8) in a process that also serves the HTTP API, as the Express example does, while ${fmt(WATCHERS)} SSE clients in another process follow the job from its first event (bench/watchers.mjs, bench/sse-clients.mjs); every client must receive every event. Within a process the subscribers of a job share one reader of its log (src/core/feed.ts): storage reads count the \`readEvents\` calls during the crawl.`,
  );
  print();
  const site = await startSiteProcess(0);
  const rows = [];
  try {
    for (const kind of KINDS) {
      const times = { 0: [], [WATCHERS]: [] };
      const reads = [];
      let events = 0;
      for (let run = 0; run < RUNS; run++) {
        for (const n of run % 2 === 0 ? [0, WATCHERS] : [WATCHERS, 0]) {
          const r = await json('./watchers.mjs', [kind, site.url, String(WATCHED_PAGES), String(n)]);
          times[n].push(r.ms);
          if (n > 0) reads.push(r.reads);
          events = r.events;
        }
      }
      const none = median(times[0]);
      const many = median(times[WATCHERS]);
      rows.push([LABEL[kind], fmt(Math.round(none)), fmt(Math.round(many)), `${(many / none).toFixed(2)}×`, `${median(reads)} for ${events} events`]);
    }
  } finally {
    site.stop();
  }
  table(['storage', 'crawl ms, no client', `crawl ms, ${fmt(WATCHERS)} clients`, 'ratio', 'storage reads'], rows);
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
const sections = { throughput, markdown, ops, latency, backlog, watchers, memory, scale };
for (const name of ALL) if (ONLY.includes(name)) await sections[name]();
if (KINDS.length < 4) print('(Set DATABASE_URL and REDIS_URL to add the Postgres and KV adapters.)');
console.log(`\nbench took ${Math.round((Date.now() - started) / 1000)} s`);

if (WRITE) {
  const file = here('../BENCHMARKS.md');
  const text = readFileSync(file, 'utf8');
  const [head, rest] = text.split('<!-- bench:start -->');
  const tail = rest?.split('<!-- bench:end -->')[1];
  if (tail === undefined) throw new Error('BENCHMARKS.md has no <!-- bench:start --> … <!-- bench:end --> markers');
  writeFileSync(file, `${head}<!-- bench:start -->\n${lines.join('\n')}\n<!-- bench:end -->${tail}`);
  console.log('figures written to BENCHMARKS.md');
}
process.exit(0);
