// Latencies of one storage kind: `node bench/latency.mjs <memory|postgres|kv|rest>`. Prints
// {"create": {p50, p99}, "progress": {p50, p99, samples, subscriber}} in milliseconds.
// - create: 300 sequential `jobs.create()` calls (after 20 warm-up ones).
// - progress: a 600-page loopback crawl worked in this process while a subscriber in another
//   process (in this one for memory, which cannot be shared) follows the job; the latency of an
//   event is its arrival at the subscriber minus `event.at`, taken just before the page is stored.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createCrawlEngine } from '../dist/index.js';
import { startSite } from '../test/fixtures/site.mjs';
import { openStorage, percentile } from './storages.mjs';

const [kind] = process.argv.slice(2);
const opened = await openStorage(kind);
const engine = createCrawlEngine({ storage: opened.storage, fetch: { allowPrivateNetwork: true } });
const site = await startSite({ pages: 600, fanout: 4, latencyMs: 5 });
const terminal = new Set(['completed', 'failed', 'cancelled']);

const creates = [];
const ids = [];
for (let i = 0; i < 320; i++) {
  const started = performance.now();
  ids.push((await engine.jobs.create({ url: site.url, maxPages: 10, metadata: { i } })).id);
  if (i >= 20) creates.push(performance.now() - started);
}
// Those jobs stay queued; cancel them so that the crawl below is the only active job.
for (const id of ids) await engine.jobs.cancel(id);

const job = await engine.jobs.create({ url: site.url, maxPages: 600, maxDepth: 100, perHostConcurrency: 8 });
let latencies;
let subscriber;
if (kind === 'memory') {
  subscriber = 'same process';
  latencies = (async () => {
    const out = [];
    for await (const event of engine.progress.subscribe(job.id)) if (event.type.startsWith('page:')) out.push(Date.now() - Date.parse(event.at));
    return out;
  })();
} else {
  subscriber = 'other process';
  const child = spawn(process.execPath, [fileURLToPath(new URL('./subscriber.mjs', import.meta.url)), kind, opened.namespace, job.id], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  while (!out.includes('ready\n')) await once(child.stdout, 'data');
  latencies = once(child, 'exit').then(() => JSON.parse(out.split('\n').find((l) => l.startsWith('{'))).latenciesMs);
}
for (;;) {
  await engine.processor.run({ jobId: job.id, concurrency: 8 });
  if (terminal.has((await engine.jobs.get(job.id)).status)) break;
}
const samples = await latencies;
await engine.close();
await site.close();
await opened.close({ drop: true });
const round = (x) => Math.round(x * 10) / 10;
process.stdout.write(
  `${JSON.stringify({
    kind,
    create: { p50: round(percentile(creates, 50)), p99: round(percentile(creates, 99)) },
    progress: { p50: percentile(samples, 50), p99: percentile(samples, 99), samples: samples.length, subscriber },
  })}\n`,
);
process.exit(0);
