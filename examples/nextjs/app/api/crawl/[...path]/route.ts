import { createNextHandlers } from 'crawl-engine/next';
import { engine } from '@/lib/engine';

// Node.js runtime (the engine uses node:crypto and undici), never cached, and long enough for a
// processing run started with after() (afterBudgetMs) plus one fetch timeout.
export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';
export const maxDuration = 60;

export const { GET, POST, DELETE } = createNextHandlers(engine, {
  basePath: '/api/crawl',
  cronSecret: process.env.CRON_SECRET,
  afterBudgetMs: 25_000,
});
