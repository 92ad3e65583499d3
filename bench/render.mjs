// `npm run bench:render`: rendered pages/s and peak memory of the engine with `render: 'always'`
// (its Playwright renderer on Debian's Chromium) and of Crawlee's PlaywrightCrawler, on the same
// loopback single-page app (bench/spa-site.mjs, in its own process), at render concurrency 1, 4
// and 8; and the engine with `render: 'never'` once, for what the shell gives without a browser.
// Each crawl runs in a child process of its own (this script with `engine …`, or
// bench/crawlee/render.mjs): a small warm-up crawl, then the measured crawl with a fresh crawler,
// timed from its start to its end, the browser's launch and close included, for both. While it
// runs, this process samples the memory of the child's whole process tree (Node and every Chromium
// process, found through /proc/*/stat; every BENCH_SAMPLE_MS, 100 ms, or ten times the CPU time of
// the last sample, whichever is longer): the sum of Pss (proportional set size: pages shared between
// Chromium's processes counted once in all) and of Rss from /proc/PID/smaps_rollup. The peak of
// each over the measured crawl is reported.
// Settings: BENCH_RENDER_CONCURRENCY (1,4,8), BENCH_RENDER_PAGES (pages per measured crawl at each
// concurrency: 30,60,60), BENCH_RENDER_WARMUP (5 pages), BENCH_RUNS (1; 3 for the median of three,
// about three times as long: one run takes about 8 minutes on a busy 2-core machine), CHROMIUM
// (/usr/bin/chromium), BENCH_WRITE=0 (leave BENCHMARKS.md alone; otherwise its "## Rendering"
// section, between the bench:render markers, is rewritten).
// Child mode: `node bench/render.mjs engine <url> <pages> <concurrency> <always|never> [warmupPages]`
// prints one JSON line {"pages", "failed", "rendered", "ms", …}.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const list = (value, fallback) => (value ?? fallback).split(',').map(Number);

if (process.argv[2] === 'engine') await engineChild(process.argv.slice(3));
else await main();

/**
 * One warm-up and one measured crawl of the engine in this (child) process, each with an engine,
 * memory storage and browser of its own. The fetch concurrency equals the render concurrency: the
 * fetch slot is freed before the render, so fetches run ahead and the renderer's slots bind.
 */
/** @param {string[]} args */
async function engineChild(args) {
  const [url, pagesArg, concurrencyArg, mode, warmupArg = '5'] = args;
  const pages = Number(pagesArg);
  const concurrency = Number(concurrencyArg);
  const warmup = Number(warmupArg);
  if (!url || !(pages >= 1) || !(concurrency >= 1) || (mode !== 'always' && mode !== 'never') || !(warmup >= 0)) {
    throw new Error(`usage: node bench/render.mjs engine <url> <pages> <concurrency> <always|never> [warmupPages]`);
  }
  const { createCrawlEngine } = await import('../dist/index.js');
  const { memoryStorage } = await import('../dist/adapters/memory.js');
  /** One crawl; `ms` runs from the crawl's start to the engine's close (the browser's), the results' reading left out. */
  const crawl = async (maxPages) => {
    const started = performance.now();
    const engine = createCrawlEngine({
      storage: memoryStorage(),
      fetch: { allowPrivateNetwork: ['127.0.0.1'] },
      render: { executablePath: CHROMIUM, concurrency },
    });
    // The per-host cap (2 by default, counting leases still parsed and stored) is lifted so that it does not bind first.
    const job = await engine.crawl({ url, maxPages, maxDepth: 1000, perHostConcurrency: 100, render: mode }, { concurrency });
    const crawled = performance.now();
    let rendered = 0;
    let cursor = null;
    do {
      const page = await engine.jobs.results(job.id, { limit: 1000, cursor });
      rendered += page.items.filter((r) => r.rendered === true && /^Page \d+$/.test(r.title ?? '')).length;
      cursor = page.nextCursor;
    } while (cursor !== null);
    const closing = performance.now();
    await engine.close();
    const ms = crawled - started + (performance.now() - closing);
    return { pages: job.counts.succeeded + job.counts.failed, failed: job.counts.failed, rendered, ms };
  };
  if (warmup > 0) await crawl(warmup);
  process.send?.({ phase: 'measure' });
  const r = await crawl(pages);
  process.send?.({ phase: 'done' });
  process.stdout.write(
    `${JSON.stringify({ ...r, seconds: r.ms / 1000, pagesPerSecond: (r.pages / r.ms) * 1000, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
  );
  process.exit(0);
}

/** The pids of `root` and all its descendants, from the parent pid field of /proc/PID/stat. */
function processTree(root) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) > 57) continue; // not a pid
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

/** Pss and Rss of a process tree, in kB, summed over /proc/PID/smaps_rollup. */
function treeMemory(root) {
  let pss = 0;
  let rss = 0;
  const pids = processTree(root);
  for (const pid of pids) {
    let text;
    try {
      text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    } catch {
      continue;
    }
    pss += Number(/^Pss:\s+(\d+)/m.exec(text)?.[1] ?? 0);
    rss += Number(/^Rss:\s+(\d+)/m.exec(text)?.[1] ?? 0);
  }
  return { pss, rss, processes: pids.length };
}

/**
 * Runs one child crawl (`args` to node) and samples its process tree's memory from its
 * {phase: 'measure'} message to its {phase: 'done'}; resolves with its JSON line and the peaks.
 * Reading smaps_rollup costs the kernel a walk of the process's page tables (1–2 ms of CPU for a
 * Chromium process): the next sample comes `sampleMs` after the last one, or ten times the CPU
 * time the last one took, whichever is later, so that the sampler takes at most a tenth of a core
 * from the crawl it measures.
 */
async function measured(args, sampleMs) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let stdout = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  let measuring = false;
  let timer = null;
  const peak = { pss: 0, rss: 0, processes: 0, samples: 0, samplerMs: 0, startedAt: 0, endedAt: 0 };
  const sample = () => {
    timer = null;
    if (!measuring) return;
    const cpu = process.cpuUsage();
    const m = treeMemory(child.pid);
    peak.pss = Math.max(peak.pss, m.pss);
    peak.rss = Math.max(peak.rss, m.rss);
    peak.processes = Math.max(peak.processes, m.processes);
    peak.samples++;
    const used = process.cpuUsage(cpu);
    const took = (used.user + used.system) / 1000;
    peak.samplerMs += took;
    timer = setTimeout(sample, Math.max(sampleMs, 10 * took));
  };
  child.on('message', (message) => {
    const phase = /** @type {{ phase?: string }} */ (message).phase;
    if (phase === 'measure') {
      measuring = true;
      peak.startedAt = performance.now();
      sample();
    }
    if (phase === 'done') {
      measuring = false;
      peak.endedAt = performance.now();
      if (timer !== null) clearTimeout(timer);
    }
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000);
  const [code] = await once(child, 'exit');
  measuring = false;
  if (timer !== null) clearTimeout(timer);
  clearTimeout(killer);
  if (code !== 0) throw new Error(`${args.slice(0, 2).join(' ')} exited with ${code}`);
  const result = JSON.parse(stdout.trim().split('\n').at(-1));
  const span = peak.endedAt - peak.startedAt;
  return {
    ...result,
    peakPssMb: peak.pss / 1024,
    peakRssMb: peak.rss / 1024,
    peakProcesses: peak.processes,
    samples: peak.samples,
    sampleEveryMs: span / Math.max(1, peak.samples),
    samplerShare: peak.samplerMs / Math.max(1, span),
  };
}

async function main() {
  const concurrencies = list(process.env.BENCH_RENDER_CONCURRENCY, '1,4,8');
  const pagesAt = list(process.env.BENCH_RENDER_PAGES, '30,60,60');
  if (pagesAt.length !== concurrencies.length) throw new Error('BENCH_RENDER_PAGES must give one page count per BENCH_RENDER_CONCURRENCY');
  const warmup = Number(process.env.BENCH_RENDER_WARMUP ?? 5);
  const runs = Number(process.env.BENCH_RUNS ?? 1);
  const sampleMs = Number(process.env.BENCH_SAMPLE_MS ?? 100);
  const write = process.env.BENCH_WRITE !== '0';
  const sitePages = Math.max(320, ...pagesAt);
  const exec = promisify(execFile);
  const benchStarted = Date.now();
  const loadBefore = loadavg();

  const site = spawn(process.execPath, [here('./spa-site.mjs'), `pages=${sitePages}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = await once(site.stdout, 'data');
  const url = String(chunk).trim();

  const crawlers = [
    {
      key: 'engine',
      label: "crawl-engine, render 'always'",
      args: (pages, c) => [here('./render.mjs'), 'engine', url, String(pages), String(c), 'always', String(warmup)],
    },
    { key: 'crawlee', label: 'Crawlee PlaywrightCrawler', args: (pages, c) => [here('./crawlee/render.mjs'), url, String(pages), String(c), String(warmup)] },
  ];
  /** `${key}/${concurrency}` → the runs' results. */
  const results = new Map();
  const problems = [];
  let reference = null;
  try {
    // Crawlee's first run installs it (npm ci): done here, outside any measurement.
    const installCheck = await exec(process.execPath, [here('./crawlee/render.mjs'), url, '1', '1', '0'], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (JSON.parse(installCheck.stdout.trim().split('\n').at(-1)).pages !== 1) problems.push('Crawlee: the install check crawl did not handle its page');
    for (let run = 0; run < runs; run++) {
      for (const [i, c] of concurrencies.entries()) {
        // Alternate which crawler goes first, so that neither always runs on a warmer (or busier) machine.
        const order = (run + i) % 2 === 0 ? crawlers : [...crawlers].reverse();
        for (const crawler of order) {
          const pages = pagesAt[i];
          const r = await measured(crawler.args(pages, c), sampleMs);
          r.load = loadavg()[0];
          console.error(
            `run ${run + 1}/${runs} ${crawler.key} c=${c}: ${r.pages} pages (${r.rendered} rendered, ${r.failed} failed${r.maxTasks === undefined ? '' : `, at most ${r.maxTasks} tasks at once`}) in ${r.seconds.toFixed(1)} s, ${r.pagesPerSecond.toFixed(2)} pages/s, peak PSS ${r.peakPssMb.toFixed(0)} MiB, RSS ${r.peakRssMb.toFixed(0)} MiB, ${r.peakProcesses} processes; a sample every ${r.sampleEveryMs.toFixed(0)} ms, sampler ${(r.samplerShare * 100).toFixed(1)} % of a core; load ${r.load.toFixed(2)}`,
          );
          if (r.maxTasks !== undefined && r.maxTasks !== c) problems.push(`Crawlee c=${c} run ${run + 1}: at most ${r.maxTasks} tasks at once`);
          if (r.pages !== pages || r.rendered !== pages || r.failed !== 0) {
            problems.push(`${crawler.key} c=${c} run ${run + 1}: ${r.pages} of ${pages} pages handled, ${r.rendered} rendered, ${r.failed} failed`);
          }
          if (!results.has(`${crawler.key}/${c}`)) results.set(`${crawler.key}/${c}`, []);
          results.get(`${crawler.key}/${c}`).push(r);
        }
      }
    }
    const c = concurrencies.at(-1);
    reference = await measured([here('./render.mjs'), 'engine', url, String(pagesAt.at(-1)), String(c), 'never', String(warmup)], sampleMs);
    reference.concurrency = c;
  } finally {
    site.kill('SIGTERM');
  }

  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const med = (key, field) => median(results.get(key).map((r) => r[field]));
  const fmt = (n, digits = 1) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const chromium = (await exec(CHROMIUM, ['--version'], { encoding: 'utf8' }).catch(() => ({ stdout: 'Chromium (version unknown)' }))).stdout.trim();
  const versionOf = (path) => (existsSync(here(path)) ? JSON.parse(readFileSync(here(path), 'utf8')).version : '?');
  const crawleeVersion = versionOf('./crawlee/node_modules/@crawlee/playwright/package.json');
  const playwrightVersion = versionOf('../node_modules/playwright-core/package.json');
  const loadAfter = loadavg();
  const minutes = (Date.now() - benchStarted) / 60_000;

  const all = [...results.values()].flat();
  const meanInterval = all.reduce((sum, r) => sum + r.sampleEveryMs, 0) / all.length;
  const lines = [];
  const print = (line = '') => {
    lines.push(line);
    console.log(line);
  };
  print(
    `Run of ${new Date().toISOString().slice(0, 10)} on Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model?.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Linux ${release()}; ${chromium}; playwright-core ${playwrightVersion}, @crawlee/playwright ${crawleeVersion}. Load average (1 min) ${fmt(loadBefore[0], 2)} at the start, ${fmt(loadAfter[0], 2)} at the end; ${fmt(minutes, 1)} minutes in all.`,
  );
  print();
  print(`### Rendering: pages/s and peak memory, ${runs === 1 ? 'one run' : `median of ${runs} runs`}`);
  print();
  print(
    `${fmt(sitePages, 0)}-page single-page app on loopback (bench/spa-site.mjs, its own process): every page is an empty \`#root\` and \`/app.js\`, which renders its heading, text and 3–5 links, so every page must be rendered to find the next. Measured crawls of ${concurrencies.map((c, i) => `${pagesAt[i]} pages at concurrency ${c}`).join(', ')}, each in a fresh process after a ${warmup}-page warm-up crawl; the time runs from the crawler's start to its end, **the browser's launch and close included** for both. Peak PSS: the largest sum, sampled over the measured crawl (every ${sampleMs} ms, or ten times the CPU time the last sample took if longer, so that the sampler takes at most a tenth of a core: every ${fmt(meanInterval, 0)} ms on average in this run), of the proportional set size of every process of the crawl's tree (Node and every Chromium process; memory shared between them counted once in all); peak RSS: the same sum of resident sizes (shared pages counted in each process).`,
  );
  print();
  const header = [
    'concurrency',
    'pages',
    'crawl-engine pages/s',
    'Crawlee pages/s',
    'engine / Crawlee',
    'crawl-engine peak PSS',
    'Crawlee peak PSS',
    'engine / Crawlee PSS',
    'crawl-engine peak RSS',
    'Crawlee peak RSS',
    'load (engine / Crawlee)',
  ];
  print(`| ${header.join(' | ')} |`);
  print(`|${header.map(() => '---').join('|')}|`);
  for (const [i, c] of concurrencies.entries()) {
    const rate = (key) => med(`${key}/${c}`, 'pagesPerSecond');
    const pss = (key) => med(`${key}/${c}`, 'peakPssMb');
    const rss = (key) => med(`${key}/${c}`, 'peakRssMb');
    print(
      `| ${c} | ${pagesAt[i]} | ${fmt(rate('engine'), 2)} | ${fmt(rate('crawlee'), 2)} | **${fmt(rate('engine') / rate('crawlee'), 2)}×** | ${fmt(pss('engine'), 0)} MiB | ${fmt(pss('crawlee'), 0)} MiB | ${fmt(pss('engine') / pss('crawlee'), 2)}× | ${fmt(rss('engine'), 0)} MiB | ${fmt(rss('crawlee'), 0)} MiB | ${fmt(med(`engine/${c}`, 'load'), 1)} / ${fmt(med(`crawlee/${c}`, 'load'), 1)} |`,
    );
  }
  print();
  print(
    `Without a browser (\`render: 'never'\`, concurrency ${reference.concurrency}, maxPages ${pagesAt.at(-1)}) the engine finds ${reference.pages} page${reference.pages === 1 ? '' : 's'} of the app (the shell has no links) in ${fmt(reference.seconds, 2)} s, peak PSS ${fmt(reference.peakPssMb, 0)} MiB.`,
  );
  if (problems.length > 0) {
    print();
    print(`Problems: ${problems.join('; ')}.`);
  }
  print();

  if (write) {
    const file = here('../BENCHMARKS.md');
    const text = readFileSync(file, 'utf8');
    const [head, rest] = text.split('<!-- bench:render:start -->');
    const tail = rest?.split('<!-- bench:render:end -->')[1];
    if (tail === undefined) throw new Error('BENCHMARKS.md has no <!-- bench:render:start --> … <!-- bench:render:end --> markers');
    writeFileSync(file, `${head}<!-- bench:render:start -->\n${lines.join('\n')}\n<!-- bench:render:end -->${tail}`);
    console.log('figures written to BENCHMARKS.md');
  }
  process.exit(0);
}
