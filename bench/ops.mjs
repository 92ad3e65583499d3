// Storage operations per second with no network: `node bench/ops.mjs <memory|postgres|kv|rest> [workers]`.
// One job with a large ready frontier; `workers` loops claim 10 URLs and complete each.
import { performance } from 'node:perf_hooks';
import { createStorageJob, openStorage } from './storages.mjs';

const [kind = 'memory', workersArg = '4'] = process.argv.slice(2);
const WORKERS = Number(workersArg);
const URLS = 5000;

const opened = await openStorage(kind, { poolMax: WORKERS + 2 });
const { storage } = opened;
const cleanup = () => opened.close({ drop: true });

const now = () => Date.now();
const id = `job_ops_${process.pid}`;
const { result, link } = await createStorageJob(storage, id, URLS + 1);
const [seed] = (await storage.claim({ limit: 1, leaseMs: 60_000, now: now(), jobId: id })).leases;
const links = Array.from({ length: URLS }, (_, i) => link(i + 1));
await storage.complete(seed, { result: result(seed), links, now: now() });

let completed = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: WORKERS }, async () => {
    for (;;) {
      const { leases } = await storage.claim({ limit: 10, leaseMs: 60_000, now: now(), jobId: id });
      if (leases.length === 0) return;
      for (const lease of leases) {
        await storage.complete(lease, { result: result(lease), links: [], now: now() });
        completed++;
      }
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
const job = await storage.getJob(id);
await cleanup();
process.stdout.write(`${JSON.stringify({ kind, workers: WORKERS, completed, status: job.status, opsPerSecond: completed / seconds })}\n`);
process.exit(0); // the REST server's own Redis connection would keep the process alive
