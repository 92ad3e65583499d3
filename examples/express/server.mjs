// crawl-engine with Express: the crawl API under /api/crawl, a worker loop in this process, and a
// page to start, watch and cancel crawls. `npm run example:express` at the repository root (or
// `npm start` here), then open http://127.0.0.1:3000/.
import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { createCrawlEngine, verifyWebhook, WebhookVerificationError } from 'crawl-engine';
import { memoryStorage } from 'crawl-engine/adapters/memory';
import { createExpressRouter } from 'crawl-engine/express';

// The browser client is a dependency-free ES module: serve the package's own build of it.
const clientFile = fileURLToPath(import.meta.resolve('crawl-engine/client'));
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';

/** Postgres when DATABASE_URL is set (migrated on start), Redis when REDIS_URL is, else memory. */
async function chooseStorage() {
  if (process.env.DATABASE_URL) {
    const { default: pg } = await import('pg');
    const { postgresStorage } = await import('crawl-engine/adapters/postgres');
    const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
    pool.on('error', (error) => console.warn('postgres:', error.message));
    const storage = postgresStorage({ client: pool });
    await storage.migrate();
    console.log('storage: postgres');
    return storage;
  }
  if (process.env.REDIS_URL) {
    const { Redis } = await import('ioredis');
    const { kvStorage } = await import('crawl-engine/adapters/kv');
    const redis = new Redis(process.env.REDIS_URL);
    redis.on('error', (error) => console.warn('redis:', error.message));
    console.log('storage: redis');
    return kvStorage({ client: redis });
  }
  console.log('storage: memory');
  return memoryStorage();
}

// Webhooks: with WEBHOOK_SECRET (whsec_…; `node -e "import('crawl-engine').then(m => console.log(m.createWebhookSecret()))"`)
// every engine signs deliveries with it, and with WEBHOOK_URL too every job posts its events there.
// This app receives them itself at POST /hooks (WEBHOOK_URL=http://127.0.0.1:3000/hooks, with
// ALLOW_PRIVATE_NETWORK=1 for a loopback address) and lists the last ones at GET /hooks.
const webhookSecret = process.env.WEBHOOK_SECRET || undefined;
const webhookUrl = process.env.WEBHOOK_URL || undefined;

/**
 * Rendering pages that need JavaScript (the form's Render field): a remote browser when
 * BROWSER_WS_ENDPOINT is set (a CDP WebSocket), a local Chromium when CHROMIUM_PATH is; without
 * either, jobs that ask to render are refused with a 400 naming `render`.
 */
const render = process.env.BROWSER_WS_ENDPOINT
  ? { connect: { wsEndpoint: process.env.BROWSER_WS_ENDPOINT } }
  : process.env.CHROMIUM_PATH
    ? { executablePath: process.env.CHROMIUM_PATH }
    : undefined;

const engine = createCrawlEngine({
  storage: await chooseStorage(),
  // Crawling your own machine (a local test site) needs this; keep it off on a public server.
  fetch: { allowPrivateNetwork: process.env.ALLOW_PRIVATE_NETWORK === '1' },
  ...(render ? { render } : {}),
  ...(webhookSecret ? { webhooks: { secret: webhookSecret, ...(webhookUrl ? { url: webhookUrl } : {}) } } : {}),
});
const worker = engine.processor.start({ concurrency: 10, idleMs: 200 });

const app = express();
// Who may use the API. This demo is open to anyone who can reach it (`public: true`), which is what
// you want on your machine; behind a login pass `authorize: (req, { action, jobId }) => …` instead.
// In production (NODE_ENV=production) one of the two is required.
app.use('/api/crawl', createExpressRouter(engine, { public: true }));

/** @type {Array<{ id: string, type: string, jobId: string, pages: number, at: string }>} The last deliveries received, newest first. */
const received = [];
// The receiver: the raw body as text (a re-serialized JSON body would not match the signature).
app.post('/hooks', express.text({ type: 'application/json', limit: '1mb' }), async (req, res) => {
  if (!webhookSecret) return void res.status(404).end();
  try {
    const event = await verifyWebhook(req.body, req.headers, webhookSecret);
    const id = String(req.headers['webhook-id']);
    // At least once: a delivery may come twice, with the same webhook-id.
    if (!received.some((r) => r.id === id)) {
      const jobId = event.type === 'page' ? event.data.jobId : event.data.job.id;
      received.unshift({ id, type: event.type, jobId, pages: event.type === 'page' ? event.data.pages.length : 0, at: event.timestamp });
      received.length = Math.min(received.length, 200);
    }
    res.status(204).end();
  } catch (error) {
    if (!(error instanceof WebhookVerificationError)) throw error;
    res.status(400).type('text/plain').send(error.message);
  }
});
app.get('/hooks', (_req, res) => res.json(received));
app.get('/client.js', (_req, res) => {
  res.type('text/javascript');
  createReadStream(clientFile).pipe(res);
});
app.use(express.static(fileURLToPath(new URL('./public/', import.meta.url))));

const server = app.listen(port, host, (/** @type {NodeJS.ErrnoException | undefined} */ error) => {
  if (error) {
    const hint = error.code === 'EADDRINUSE' ? ` (in use: set another port, e.g. PORT=${port + 1})` : '';
    console.error(`cannot listen on ${host}:${port}: ${error.message}${hint}`);
    process.exit(1);
  }
  const { port: actual } = /** @type {import('node:net').AddressInfo} */ (server.address());
  console.log(`crawl-engine example listening on http://${host}:${actual}/`);
});

async function shutdown() {
  await worker.stop();
  await engine.close();
  server.closeAllConnections();
  server.close(() => process.exit(0));
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
