// crawl-engine with Express: the crawl API under /api/crawl, a worker loop in this process, and a
// page to start, watch and cancel crawls. `npm start`, then open http://127.0.0.1:3000/.
import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { createCrawlEngine } from 'crawl-engine';
import { memoryStorage } from 'crawl-engine/adapters/memory';
import { createExpressRouter } from 'crawl-engine/express';

// The browser client is a dependency-free ES module: serve the package's own build of it.
const clientFile = fileURLToPath(import.meta.resolve('crawl-engine/client'));
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';

async function chooseStorage() {
  // Postgres and Redis adapters are on the roadmap; until they ship, both fall back to memory.
  for (const [variable, adapter] of [['DATABASE_URL', 'postgres'], ['REDIS_URL', 'kv']]) {
    if (process.env[variable]) {
      try {
        await import(`crawl-engine/adapters/${adapter}`);
        console.warn(`${variable} is set, but this example does not wire the ${adapter} adapter yet; using memory`);
      } catch {
        console.warn(`${variable} is set, but crawl-engine/adapters/${adapter} is not in this version; using memory`);
      }
    }
  }
  return memoryStorage();
}

const engine = createCrawlEngine({
  storage: await chooseStorage(),
  // Crawling your own machine (a local test site) needs this; keep it off on a public server.
  fetch: { allowPrivateNetwork: process.env.ALLOW_PRIVATE_NETWORK === '1' },
});
const worker = engine.processor.start({ concurrency: 10, idleMs: 200 });

const app = express();
app.use('/api/crawl', createExpressRouter(engine));
app.get('/client.js', (_req, res) => {
  res.type('text/javascript');
  createReadStream(clientFile).pipe(res);
});
app.use(express.static(fileURLToPath(new URL('./public/', import.meta.url))));

const server = app.listen(port, host, () => {
  const { port: actual } = server.address();
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
