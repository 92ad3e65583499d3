// A job watched over SSE by many clients, as a dashboard open in many browsers:
// `node bench/watchers.mjs <memory|postgres|kv> <siteUrl> <pages> <subscribers>`.
// This process serves the HTTP API (createCrawlHandler behind node:http) and runs the processor,
// as the Express example does; the SSE clients run in another process (sse-clients.mjs), all
// connected before the crawl starts. Prints {"ms": crawl time, "reads": storage readEvents calls
// during the crawl, "events": events in the job's log, "received": events each client got (min)}.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createRequestListener } from '@remix-run/node-fetch-server';
import { createCrawlEngine } from '../dist/index.js';
import { createCrawlHandler } from '../dist/http.js';
import { openStorage } from './storages.mjs';

const [kind, siteUrl, pagesArg, subscribersArg] = process.argv.slice(2);
const pages = Number(pagesArg);
const subscribers = Number(subscribersArg);

const opened = await openStorage(kind, { poolMax: 10 });
let reads = 0;
const storage = new Proxy(opened.storage, {
  get(target, prop) {
    if (prop === 'readEvents') {
      /** @type {typeof target.readEvents} */
      const counted = (jobId, after, limit) => {
        reads++;
        return target.readEvents(jobId, after, limit);
      };
      return counted;
    }
    const value = Reflect.get(target, prop, target);
    return typeof value === 'function' ? value.bind(target) : value;
  },
});
const engine = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
const handler = createCrawlHandler(engine, { basePath: '/api/crawl' });
const server = createServer(createRequestListener((req) => handler(req)));
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const address = /** @type {import('node:net').AddressInfo} */ (server.address());
const base = `http://127.0.0.1:${address.port}/api/crawl`;

const job = await engine.jobs.create({ url: siteUrl, maxPages: pages, maxDepth: 10 });
/** @type {number[]} */
let received = [];
/** @type {Promise<string> | null} */
let result = null;
if (subscribers > 0) {
  const clients = spawn(process.execPath, [new URL('./sse-clients.mjs', import.meta.url).pathname, `${base}/jobs/${job.id}/events`, String(subscribers)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = clients.stdout.setEncoding('utf8');
  let buffered = '';
  const next = async () => {
    while (!buffered.includes('\n')) {
      const [chunk] = await once(lines, 'data');
      buffered += chunk;
    }
    const at = buffered.indexOf('\n');
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
  if ((await next()) !== 'ready') throw new Error('the SSE clients did not connect');
  result = next();
}
reads = 0;
const started = performance.now();
await engine.processor.run({ concurrency: 8 });
const ms = performance.now() - started;
const crawlReads = reads;
if (result !== null) received = JSON.parse(await result).received;
const events = (await opened.storage.readEvents(job.id, null, 100_000)).length;
const done = await engine.jobs.get(job.id);
if (done.counts.succeeded !== pages) throw new Error(`fetched ${done.counts.succeeded} pages, expected ${pages}`);
if (received.some((n) => n !== events)) throw new Error(`a client got ${Math.min(...received)} of ${events} events`);
process.stdout.write(`${JSON.stringify({ ms, reads: crawlReads, events, received: received.length })}\n`);
server.closeAllConnections();
server.close();
await engine.close();
await opened.close({ drop: true });
process.exit(0);
