// A progress subscriber in its own process: `node bench/subscriber.mjs <postgres|kv|rest> <namespace> <jobId>`.
// Follows the job with `engine.progress.subscribe()` (LISTEN/NOTIFY on Postgres, pub/sub on KV with
// ioredis, polling every 250 ms over REST) and prints `ready` once it has read the job's first event, then, after the
// terminal event, {"latenciesMs": [...]}: for each page event, its arrival time here minus `event.at`
// (the processor's timestamp taken just before it stored the page).
import { createCrawlEngine } from '../dist/index.js';
import { openStorage } from './storages.mjs';

const [kind, namespace, jobId] = process.argv.slice(2);
const opened = await openStorage(kind, { namespace, poolMax: 2 });
const engine = createCrawlEngine({ storage: opened.storage });
const latenciesMs = [];
let ready = false;
for await (const event of engine.progress.subscribe(jobId)) {
  const arrived = Date.now();
  if (!ready) {
    ready = true;
    process.stdout.write('ready\n');
  }
  if (event.type.startsWith('page:')) latenciesMs.push(arrived - Date.parse(event.at));
}
process.stdout.write(`${JSON.stringify({ latenciesMs })}\n`);
await opened.close();
process.exit(0);
