import { createNextHandlers } from 'crawl-engine/next';
import { engine, renders } from '@/lib/engine';
import { startLocalWorker } from '@/lib/local-worker';

// Node.js runtime (the engine uses node:crypto and undici), never cached, and long enough for a
// processing run (afterBudgetMs or processBudgetMs), its pages in flight (they end within a fetch
// timeout, 15 s by default, of the budget; with a browser configured, a render within 15 s of it
// and 5 s to close its page, see lib/engine.ts) and the 2 s a run waits to hand the crawl on.
export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';
export const maxDuration = 60;

// Time budgets of the runs. The tests shorten them (CRAWL_AFTER_BUDGET_MS, CRAWL_PROCESS_BUDGET_MS)
// to make crawls outlast a run; keep the defaults otherwise. With a browser, the process route's run
// is 10 s shorter: 30 s + 15 s + 5 s + 2 s leaves 8 s of 60 for parsing and storing.
const afterBudgetMs = Number(process.env.CRAWL_AFTER_BUDGET_MS) || 25_000;
const processBudgetMs = Number(process.env.CRAWL_PROCESS_BUDGET_MS) || (renders ? 30_000 : 40_000);

const handlers = createNextHandlers(engine, {
  basePath: '/api/crawl',
  // The process route (cron, and chaining long crawls) needs it: `openssl rand -hex 32`.
  cronSecret: process.env.CRON_SECRET || undefined,
  // Who may create, read and cancel jobs. This demo is open to anyone who can reach it; behind a
  // login pass `authorize: (req, { action, jobId }) => …` instead. Production needs one of the two.
  public: true,
  afterBudgetMs,
  // The run of /api/crawl/process (cron, and the chain): under maxDuration with a fetch timeout and
  // the chain's 2 s to spare, like afterBudgetMs (the plain HTTP handler's 50 s would not be).
  processBudgetMs,
});

// On your own machine (next dev, next start), a worker loop continues crawls that outlast the
// after() budget; not on Vercel, where the chain and the cron do. See lib/local-worker.ts. It is
// started by the first request rather than when this module is loaded, because Next.js also loads
// route modules in short-lived helper processes (next build, and next dev's workers).
export const GET: typeof handlers.GET = (req, context) => {
  startLocalWorker();
  return handlers.GET(req, context);
};
export const POST: typeof handlers.POST = (req, context) => {
  startLocalWorker();
  return handlers.POST(req, context);
};
export const DELETE: typeof handlers.DELETE = (req, context) => {
  startLocalWorker();
  return handlers.DELETE(req, context);
};
