// A processor in its own process, for the multi-process and memory benchmarks:
// `node bench/processor.mjs <postgres|kv|rest> <namespace> <concurrency>`.
// Prints `ready` once connected; then each line on stdin is a job id to work until the job is
// finished, answered by `done {"maxRssMb": …, "rssMb": …, "roundTrips": {…}}` (roundTrips: the
// storage round trips this process made for that job). Stdin closing ends the process.
import { createInterface } from 'node:readline';
import { createCrawlEngine } from '../dist/index.js';
import { resetRoundTrips, roundTrips } from './roundtrips.mjs';
import { openStorage } from './storages.mjs';

const [kind, namespace, concurrencyArg] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const opened = await openStorage(kind, { namespace, poolMax: 4 });
const engine = createCrawlEngine({ storage: opened.storage, fetch: { allowPrivateNetwork: true } });
const terminal = new Set(['completed', 'failed', 'cancelled']);

process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  const jobId = line.trim();
  if (jobId === '') continue;
  resetRoundTrips();
  for (;;) {
    const report = await engine.processor.run({ jobId, concurrency, budgetMs: 600_000 });
    if (report.errors.length > 0) process.stderr.write(`processor: ${report.errors[0]}\n`);
    const job = await engine.jobs.get(jobId);
    if (job === null || terminal.has(job.status)) break;
    // Other processors still hold pages that may add links.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`done ${JSON.stringify({ maxRssMb, rssMb: process.memoryUsage().rss / 1048576, roundTrips })}\n`);
}
await engine.close();
await opened.close();
process.exit(0);
