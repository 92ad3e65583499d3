import type { Worker } from 'crawl-engine';
import { engine } from './engine';

// A crawl starts with after() in the request that created it, for `afterBudgetMs`. On Vercel, a run
// that ends with work left calls /api/crawl/process (with CRON_SECRET) for a fresh invocation, and
// the cron in vercel.json picks up whatever is left. On your own machine (`next dev`, `next start`)
// there is no cron and usually no CRON_SECRET, so without this loop a crawl longer than one budget
// would stop half way and stay `running`. The loop is the library's worker: it claims work from
// any active job, and when there is none it asks again every `idleMs`.
//
// CRAWL_LOCAL_WORKER=1 forces it on, =0 off. By default it runs unless a serverless host is
// detected, where a process is frozen between requests and a loop is of no use.
//
// The route handlers start it (app/api/crawl/[...path]/route.ts), so it runs from the first API
// request on, with the route's own engine. (Not from instrumentation.ts: Next.js bundles the
// instrumentation hook apart from the routes, and when crawl-engine is bundled rather than loaded
// from node_modules, as with this repository's `file:../..` link, each bundle has its own copy of
// the library; the engine must come from the same copy as the route handlers.)
const SERVERLESS_HOSTS = ['VERCEL', 'NETLIFY', 'AWS_LAMBDA_FUNCTION_NAME'];

export function localWorkerWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.CRAWL_LOCAL_WORKER === '1') return true;
  if (env.CRAWL_LOCAL_WORKER === '0') return false;
  if (env.NEXT_PHASE === 'phase-production-build') return false; // in case a build ever calls a route
  return !SERVERLESS_HOSTS.some((name) => Boolean(env[name]));
}

const holder = globalThis as { crawlLocalWorker?: Worker };

export function startLocalWorker(): void {
  if (holder.crawlLocalWorker !== undefined || !localWorkerWanted()) return;
  holder.crawlLocalWorker = engine.processor.start({ concurrency: 10, idleMs: 1000, budgetMs: 20_000 });
  console.log('crawl-engine: local worker started (continues crawls after their after() budget; CRAWL_LOCAL_WORKER=0 turns it off)');
}
