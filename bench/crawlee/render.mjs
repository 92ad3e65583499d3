// Crawlee's PlaywrightCrawler on the rendering bench's loopback app (bench/spa-site.mjs), for the
// side-by-side rendering figures: `node bench/crawlee/render.mjs <url> <pages> <concurrency> [warmupPages]`
// (CHROMIUM: the browser, default /usr/bin/chromium). Like bench/render.mjs's engine side, a small
// warm-up crawl (its own crawler and browser) runs first, then one measured crawl with a fresh crawler,
// timed from `run()` to its end: the browser's launch and close are inside. Prints one JSON line
// {"pages", "failed", "rendered", "maxTasks", "ms", "seconds", "pagesPerSecond", "maxRssMb"}; with an IPC channel (bench/render.mjs), also sends
// {phase: 'measure'} and {phase: 'done'} around the measured crawl, for the parent's memory sampler.
// Crawlee is this folder's own dev dependency (package.json + package-lock.json, pinned), with
// playwright-core (the root's version) as its launcher: the first run installs them with `npm ci`.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const [url, pagesArg, concurrencyArg, warmupArg = '5'] = process.argv.slice(2);
const pages = Number(pagesArg);
const concurrency = Number(concurrencyArg);
const warmup = Number(warmupArg);
if (!url || !Number.isInteger(pages) || pages < 1 || !Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(warmup) || warmup < 0) {
  throw new Error(
    `usage: node bench/crawlee/render.mjs <url> <pages> <concurrency> [warmupPages] (got url=${url}, pages=${pagesArg}, concurrency=${concurrencyArg}, warmup=${warmupArg})`,
  );
}
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

const dir = fileURLToPath(new URL('.', import.meta.url));
const readJson = (path) => JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8'));
const wanted = readJson('./package.json').devDependencies;
const versionOf = (name) =>
  existsSync(new URL(`./node_modules/${name}/package.json`, import.meta.url)) ? readJson(`./node_modules/${name}/package.json`).version : null;
const complete = existsSync(new URL('./node_modules/.package-lock.json', import.meta.url));
if (!complete || versionOf('@crawlee/playwright') !== wanted['@crawlee/playwright'] || versionOf('playwright-core') !== wanted['playwright-core']) {
  // Missing, interrupted (npm writes node_modules/.package-lock.json last), another version, or an
  // install made before @crawlee/playwright was added. stdout is kept for the result line.
  execFileSync('npm', ['ci', '--prefix', dir, '--include=dev', '--no-audit', '--no-fund'], { stdio: ['ignore', 2, 2] });
}
// Variable specifiers: the type check (tsconfig.js.json) must not depend on the optional install.
const crawleeModule = '@crawlee/playwright';
const playwrightModule = 'playwright-core';
const { PlaywrightCrawler, Configuration, log } = await import(crawleeModule);
// playwright-core resolved from this folder (bench/crawlee/node_modules), not the root's.
const { chromium } = await import(playwrightModule);
log.setLevel(log.LEVELS.WARNING); // warnings and errors go to stderr; INFO statistics would go to stdout

/** Refused without a request, as the engine's `render.block` default does. */
const BLOCK = new Set(['image', 'font', 'media']);
/** Chromium flags of the engine's that bear on speed or memory (the engine's own list is in src/crawl/playwright.ts). */
const ARGS = [
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-dev-shm-usage',
  '--mute-audio',
  '--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,InterestFeedContentSuggestions,NetworkPrediction,Prerender2',
];

/** Pages whose title shows the app ran. */
let rendered = 0;
/** The most tasks the autoscaled pool ran at once: that the pinned pool does reach its concurrency. */
let maxTasks = 0;

/** One crawl with a crawler (and browser) of its own and fresh in-memory storage; returns the requests handled and failed. */
async function crawl(startUrl, maxPages) {
  const crawler = new PlaywrightCrawler(
    {
      // Pinned at the concurrency of the engine's renderer, as bench/crawlee/crawl.mjs pins it: left
      // to itself the autoscaled pool holds tasks back whenever its CPU/memory snapshots report
      // overload, which two cores busy with Chromium do most of the time.
      minConcurrency: concurrency,
      maxConcurrency: concurrency,
      autoscaledPoolOptions: { desiredConcurrency: concurrency },
      maxRequestsPerCrawl: maxPages,
      respectRobotsTxtFile: true,
      headless: true,
      launchContext: {
        launcher: chromium,
        launchOptions: { executablePath, headless: true, args: ARGS },
      },
      // No generated fingerprints (an init script and headers per page): the engine sends its user agent only.
      browserPoolOptions: { useFingerprints: false },
      preNavigationHooks: [
        async ({ page }, gotoOptions) => {
          // The engine's default wait (renderWait 'load'), and its default block list by resource type.
          gotoOptions.waitUntil = 'load';
          await page.route('**/*', (route) => (BLOCK.has(route.request().resourceType()) ? route.abort('blockedbyclient') : route.continue()));
        },
      ],
      async requestHandler({ page, enqueueLinks }) {
        // The engine reads each rendered page's metadata (its title among them) and its links. The
        // title is the app's (`Page n`) once the script has run, `Loading…` before.
        if (/^Page \d+$/.test(await page.title())) rendered++;
        await enqueueLinks({ strategy: 'same-hostname' });
      },
    },
    new Configuration({ persistStorage: false }),
  );
  // The pool's own count of tasks running (page creation, navigation, handler), polled.
  const poll = setInterval(() => {
    maxTasks = Math.max(maxTasks, crawler.autoscaledPool?.currentConcurrency ?? 0);
  }, 20);
  const stats = await crawler.run([startUrl]);
  clearInterval(poll);
  return { handled: stats.requestsFinished + stats.requestsFailed, failed: stats.requestsFailed };
}

if (warmup > 0) await crawl(url, warmup);
rendered = 0;
maxTasks = 0;
process.send?.({ phase: 'measure' });
const started = performance.now();
const { handled, failed } = await crawl(url, pages);
const ms = performance.now() - started;
process.send?.({ phase: 'done' });
process.stdout.write(
  `${JSON.stringify({
    pages: handled,
    failed,
    rendered,
    maxTasks,
    ms,
    seconds: ms / 1000,
    pagesPerSecond: (handled / ms) * 1000,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
  })}\n`,
);
process.exit(0); // Crawlee's event manager and snapshotter timers would keep the process alive
