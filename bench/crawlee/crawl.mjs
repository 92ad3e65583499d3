// Crawlee's CheerioCrawler on the bench's loopback site, for the side-by-side throughput column:
// `node bench/crawlee/crawl.mjs <url> <pages> <concurrency>` (BENCH_MARKDOWN=1: with markdown). Like bench/crawl-once.mjs, a 300-page
// warm-up crawl runs first, then one measured crawl; prints one JSON line
// {"pages", "ms", "seconds", "pagesPerSecond", "requests", "cpuMs", "rssMb", "maxRssMb"}.
// Crawlee is this folder's own dev dependency (package.json + package-lock.json, pinned): the first
// run installs it with `npm ci`, so the library's own install never pulls it.
import { execFileSync } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { existsSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const [url, pagesArg, concurrencyArg] = process.argv.slice(2);
const pages = Number(pagesArg);
const concurrency = Number(concurrencyArg);
if (!url || !Number.isInteger(pages) || pages < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  throw new Error(`usage: node bench/crawlee/crawl.mjs <url> <pages> <concurrency> (got url=${url}, pages=${pagesArg}, concurrency=${concurrencyArg})`);
}

const dir = fileURLToPath(new URL('.', import.meta.url));
const readJson = (path) => JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8'));
const pinned = readJson('./package.json').devDependencies['@crawlee/cheerio'];
const installed = existsSync(new URL('./node_modules/.package-lock.json', import.meta.url))
  ? readJson('./node_modules/@crawlee/cheerio/package.json').version
  : null;
if (installed !== pinned) {
  // Missing, interrupted (npm writes node_modules/.package-lock.json last) or another version.
  // stdout is kept for the result line.
  execFileSync('npm', ['ci', '--prefix', dir, '--include=dev', '--no-audit', '--no-fund'], { stdio: ['ignore', 2, 2] });
}
// A variable specifier: the type check (tsconfig.js.json) must not depend on the optional install.
const crawleeModule = '@crawlee/cheerio';
const { CheerioCrawler, Configuration, log } = await import(crawleeModule);
log.setLevel(log.LEVELS.WARNING); // warnings and errors go to stderr; INFO statistics would go to stdout

// Every HTTP request this process sends (pages, retries, robots.txt), counted by Node's HTTP client
// (its diagnostics channel) rather than by Crawlee's own statistics.
let requests = 0;
subscribe('http.client.request.start', () => {
  requests++;
});

// BENCH_MARKDOWN=1: the handler also turns each page's main content into markdown, with the same
// libraries the engine uses for `formats: ['markdown']` (bench/markdown-lib.mjs), as a Crawlee user
// would in their handler.
const toMarkdown = process.env.BENCH_MARKDOWN === '1' ? (await import('../markdown-lib.mjs')).toMarkdown : null;
let markdownChars = 0;

/** One crawl with a crawler of its own and fresh in-memory storage; returns the pages handled. */
async function crawl(startUrl, maxPages) {
  const crawler = new CheerioCrawler(
    {
      // Pinned at the concurrency every other crawler of the bench runs at. Left to itself, the
      // autoscaled pool starts no task while its snapshots (CPU, memory, event loop, which a crawler
      // using a whole core of a loaded 2-core box blocks) report overload, and scales down. That
      // check only applies at or above minConcurrency: with the minimum at the maximum it never
      // holds a task back, and no systemStatusOptions are needed.
      minConcurrency: concurrency,
      maxConcurrency: concurrency,
      autoscaledPoolOptions: { desiredConcurrency: concurrency },
      maxRequestsPerCrawl: maxPages,
      respectRobotsTxtFile: true,
      async requestHandler({ enqueueLinks, body, request, $ }) {
        if (toMarkdown !== null) markdownChars += toMarkdown(String(body), request.loadedUrl ?? request.url, $).length;
        await enqueueLinks({ strategy: 'same-hostname' });
      },
    },
    new Configuration({ persistStorage: false }),
  );
  const stats = await crawler.run([startUrl]);
  return stats.requestsFinished + stats.requestsFailed;
}

await crawl(url, Math.min(300, pages));
requests = 0;
const cpu0 = process.cpuUsage();
const started = performance.now();
const fetched = await crawl(url, pages);
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(
  `${JSON.stringify({
    pages: fetched,
    ms,
    seconds: ms / 1000,
    pagesPerSecond: (fetched / ms) * 1000,
    requests,
    cpuMs: (cpu.user + cpu.system) / 1000,
    rssMb: process.memoryUsage().rss / 1048576,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    markdownChars,
  })}\n`,
);
process.exit(0); // Crawlee's event manager and snapshotter timers would keep the process alive
