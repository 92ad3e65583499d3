import pg from 'pg';
import { createCrawlEngine, type CrawlEngine, type CrawlStorage, type RenderSettings } from 'crawl-engine';
import { memoryStorage } from 'crawl-engine/adapters/memory';
import { kvStorage } from 'crawl-engine/adapters/kv';
import { postgresStorage } from 'crawl-engine/adapters/postgres';
import { Redis } from '@upstash/redis';

// One engine per server process. With Upstash / Vercel KV credentials jobs live in Redis; with
// DATABASE_URL (Neon, or any Postgres) they live in the
// database, so every invocation sees them: run `npx crawl-engine migrate --storage $DATABASE_URL`
// once per deploy. Without it, memory storage keeps jobs in this process only (fine for
// `next start` on one machine, not for serverless).
const globalForEngine = globalThis as { crawlEngine?: CrawlEngine };

function storage(): CrawlStorage {
  // Vercel KV / Upstash Redis: KV_REST_API_URL + KV_REST_API_TOKEN (or UPSTASH_REDIS_REST_*).
  const restUrl = process.env.KV_REST_API_URL ?? process.env.UPSTASH_REDIS_REST_URL;
  const restToken = process.env.KV_REST_API_TOKEN ?? process.env.UPSTASH_REDIS_REST_TOKEN;
  if (restUrl && restToken) return kvStorage({ client: new Redis({ url: restUrl, token: restToken }), finishedTtlSeconds: 7 * 24 * 3600 });
  if (!process.env.DATABASE_URL) return memoryStorage();
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 5 });
  pool.on('error', (error) => console.warn('postgres:', error.message));
  return postgresStorage({ client: pool });
}

// Kept on globalThis: `next dev` re-evaluates modules on every change, and the engine (with the
// local worker working on it, lib/local-worker.ts) must stay one per server process.
// Webhooks: WEBHOOK_SECRET (whsec_…) signs every delivery; with WEBHOOK_URL as well, every job posts
// its events there (app/api/hooks/route.ts receives them: WEBHOOK_URL=https://your-app/api/hooks).
const webhookSecret = process.env.WEBHOOK_SECRET || undefined;
const webhookUrl = process.env.WEBHOOK_URL || undefined;

// Rendering pages that need JavaScript (the form's Render field). A serverless function cannot
// keep a browser running, so it connects to one: BROWSER_WS_ENDPOINT is a browser service's
// WebSocket (CDP; BROWSER_WS_PROTOCOL=playwright for a Playwright server). On your own machine
// CHROMIUM_PATH launches a local Chromium instead. Without either, a job that asks to render is
// refused with a 400 naming `render`. Either way, every request the browser makes goes through the
// engine's guarded fetcher.
// A render is held to 15 s (30 s by default): a render in flight when a run's budget ends is cut off
// 15 s after it, and its browser page gets up to 5 s more to close; the budgets of
// app/api/crawl/[...path]/route.ts leave room for that inside the function's 60 s. A typo in
// BROWSER_WS_PROTOCOL is not taken for CDP: the engine refuses it, and every /api/crawl request
// answers 500 with the error (naming render.connect.protocol) in the server's log.
function render(): RenderSettings | undefined {
  const wsEndpoint = process.env.BROWSER_WS_ENDPOINT?.trim();
  const protocol = (process.env.BROWSER_WS_PROTOCOL?.trim().toLowerCase() || 'cdp') as 'cdp' | 'playwright';
  const executablePath = process.env.CHROMIUM_PATH?.trim();
  if (wsEndpoint) return { connect: { wsEndpoint, protocol }, timeoutMs: 15_000 };
  if (executablePath) return { executablePath, timeoutMs: 15_000 };
  return undefined;
}
const renderSettings = render();
/** Whether jobs may ask to render (a browser is configured). */
export const renders = renderSettings !== undefined;

globalForEngine.crawlEngine ??= createCrawlEngine({
  storage: storage(),
  // Crawling your own machine needs this; keep it off in production.
  fetch: { allowPrivateNetwork: process.env.ALLOW_PRIVATE_NETWORK === '1' },
  ...(renderSettings ? { render: renderSettings } : {}),
  ...(webhookSecret ? { webhooks: { secret: webhookSecret, ...(webhookUrl ? { url: webhookUrl } : {}) } } : {}),
});
export const engine: CrawlEngine = globalForEngine.crawlEngine;
