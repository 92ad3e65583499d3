// A backlog of small jobs: `node bench/backlog.mjs <memory|postgres|kv> <jobs> [maxActiveJobs|default] [site latency ms]`, or
// `node bench/backlog.mjs all` (`npm run bench:backlog`): each available kind at 2,000 and 20,000
// jobs with the default bound, at 2,000 with no bound to speak of (100,000: every job admitted at
// once, as before admission), and at 5,000 on a site answering in 20 ms, each in a fresh process,
// printed as a table (`npm run bench` has the same rows in its backlog section).
// Creates <jobs> 5-page jobs of one loopback site (site.mjs in its own process) at once, all of
// priority 0, then one processor (`processor.start()`, concurrency 20, in this process) works them
// off. Measured: jobs/s from the processor's start to the last completion; the first job's time
// from the start to its completion, against the same job on an idle storage (measured first, the
// median of 3); and the order of completion against the order of creation, as the fraction of
// inverted pairs (0: exactly in creation order, 0.5: no relation, 1: reversed). Prints one JSON line.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createCrawlEngine } from '../dist/index.js';
import { openStorage } from './storages.mjs';

const [kind = 'memory', jobsArg = '2000', boundArg = 'default', latencyArg = '0'] = process.argv.slice(2);
/** [jobs, maxActiveJobs, site latency ms] of each run, per kind. */
const BACKLOG_RUNS = [
  ['2000', '100000', '0'],
  ['2000', 'default', '0'],
  ['20000', 'default', '0'],
  ['5000', 'default', '20'],
];

if (kind === 'all') await all();
const JOBS = Number(jobsArg);
const MAX_ACTIVE = boundArg === 'default' ? undefined : Number(boundArg);
const LATENCY_MS = Number(latencyArg);
const PAGES = 5;
const CONCURRENCY = 20;
const round = (x, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

async function all() {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { availableKinds } = await import('./storages.mjs');
  const script = fileURLToPath(import.meta.url);
  const kinds = availableKinds().filter((k) => k !== 'rest');
  const runs = kinds.flatMap((k) => BACKLOG_RUNS.map((run) => [k, ...run]));
  console.log('| storage | queued jobs | maxActiveJobs | site latency | jobs/s | first job | idle job | first / idle | inverted pairs |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const args of runs) {
    const { stdout } = await promisify(execFile)(process.execPath, [script, ...args], { maxBuffer: 1 << 24 });
    const r = JSON.parse(stdout.trim().split('\n').at(-1));
    const cells = [
      r.kind,
      r.jobs.toLocaleString('en-US'),
      r.maxActiveJobs,
      `${r.latencyMs} ms`,
      r.jobsPerSecond,
      `${r.firstJobMs} ms`,
      `${r.idleJobMs} ms`,
      `${r.firstVsIdle}×`,
      r.inversions,
    ];
    console.log(`| ${cells.join(' | ')} |`);
  }
  process.exit(0);
}

async function startSite() {
  const script = fileURLToPath(new URL('../test/fixtures/site.mjs', import.meta.url));
  const child = spawn(process.execPath, [script, `pages=${PAGES}`, 'fanout=4', `latencyMs=${LATENCY_MS}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = await once(child.stdout, 'data');
  return { url: String(chunk).trim(), stop: () => child.kill('SIGTERM') };
}

/** Inverted pairs of `xs` (merge sort), over all pairs: 0 when sorted ascending. */
function inversionFraction(xs) {
  let inversions = 0;
  const sort = (a) => {
    if (a.length < 2) return a;
    const mid = a.length >> 1;
    const left = sort(a.slice(0, mid));
    const right = sort(a.slice(mid));
    const out = [];
    let i = 0;
    let j = 0;
    while (i < left.length && j < right.length) {
      if (left[i] <= right[j]) out.push(left[i++]);
      else {
        inversions += left.length - i;
        out.push(right[j++]);
      }
    }
    return out.concat(left.slice(i), right.slice(j));
  };
  sort(xs);
  const pairs = (xs.length * (xs.length - 1)) / 2;
  return pairs === 0 ? 0 : inversions / pairs;
}

/** Creates `n` jobs (in order), starts one processor, and resolves with each job's completion time. */
async function work(storage, url, n) {
  const engine = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true }, ...(MAX_ACTIVE === undefined ? {} : { maxActiveJobs: MAX_ACTIVE }) });
  const input = { url, maxPages: PAGES, maxDepth: 3, respectRobots: false };
  const created = performance.now();
  const ids = [];
  // One after the other, so creation order is unambiguous.
  for (let i = 0; i < n; i += 1) ids.push((await engine.jobs.create(input)).id);
  const createMs = performance.now() - created;
  const index = new Map(ids.map((id, i) => [id, i]));
  const done = new Array(n).fill(null);
  let left = n;
  let finish;
  const all = new Promise((resolve) => {
    finish = resolve;
  });
  engine.events.on('*', (_type, event) => {
    if (event.type !== 'job:completed' && event.type !== 'job:failed') return;
    const i = index.get(event.jobId);
    if (i === undefined || done[i] !== null) return;
    done[i] = performance.now();
    if (--left === 0) finish();
  });
  const started = performance.now();
  const worker = engine.processor.start({ concurrency: CONCURRENCY, idleMs: 5, budgetMs: 30_000 });
  await all;
  const ms = performance.now() - started;
  await worker.stop();
  await engine.close();
  return { createMs, ms, doneAt: done.map((t) => t - started) };
}

const site = await startSite();
const out = { kind, jobs: JOBS, maxActiveJobs: MAX_ACTIVE ?? 'default', latencyMs: LATENCY_MS, pagesPerJob: PAGES, concurrency: CONCURRENCY };
try {
  // Idle: the same job alone on an empty storage, the median of three (after a warm-up).
  const idle = [];
  for (let i = 0; i < 4; i++) {
    const opened = await openStorage(kind);
    try {
      const { doneAt } = await work(opened.storage, site.url, 1);
      if (i > 0) idle.push(doneAt[0]);
    } finally {
      await opened.close({ drop: true });
    }
  }
  idle.sort((a, b) => a - b);
  const idleMs = idle[1];
  const opened = await openStorage(kind);
  try {
    const { createMs, ms, doneAt } = await work(opened.storage, site.url, JOBS);
    // Completion order: the creation index of each job, sorted by completion time.
    const order = doneAt.map((t, i) => [t, i]).sort((a, b) => a[0] - b[0]);
    const firstMs = doneAt[0];
    Object.assign(out, {
      createSeconds: round(createMs / 1000),
      seconds: round(ms / 1000),
      jobsPerSecond: round((JOBS / ms) * 1000),
      firstJobMs: round(firstMs),
      idleJobMs: round(idleMs),
      firstVsIdle: round(firstMs / idleMs, 2),
      medianJobMs: round([...doneAt].sort((a, b) => a - b)[JOBS >> 1]),
      inversions: round(inversionFraction(order.map(([, i]) => i)), 4),
    });
  } finally {
    await opened.close({ drop: true });
  }
} finally {
  site.stop();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
