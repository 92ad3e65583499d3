import { createNextHandlers } from 'crawl-engine/next';
import { engine } from '@/lib/engine';

// Node.js runtime (the engine uses node:crypto and undici), never cached, and long enough for a
// processing run started with after() (afterBudgetMs) plus one fetch timeout.
export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';
export const maxDuration = 60;

export const { GET, POST, DELETE } = createNextHandlers(engine, {
  basePath: '/api/crawl',
  // The process route (cron, and chaining long crawls) needs it: `openssl rand -hex 32`.
  cronSecret: process.env.CRON_SECRET || undefined,
  // Who may create, read and cancel jobs. This demo is open to anyone who can reach it; behind a
  // login pass `authorize: (req, { action, jobId }) => …` instead. Production needs one of the two.
  public: true,
  afterBudgetMs: 25_000,
});
