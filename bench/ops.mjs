// Storage operations per second with no network: `node bench/ops.mjs <memory|postgres|kv|rest> [workers]`.
// One job with a large ready frontier; `workers` loops claim 10 URLs and complete each.
import { performance } from 'node:perf_hooks';
import { openStorage } from './storages.mjs';

const [kind = 'memory', workersArg = '4'] = process.argv.slice(2);
const WORKERS = Number(workersArg);
const URLS = 5000;

const opened = await openStorage(kind, { poolMax: WORKERS + 2 });
const { storage } = opened;
const cleanup = () => opened.close({ drop: true });

const now = () => Date.now();
const url = (i) => `http://bench.test/p/${i}`;
const id = `job_ops_${process.pid}`;
await storage.createJob(
  {
    id,
    status: 'queued',
    url: url(0),
    options: { maxPages: URLS + 1, maxDepth: 5, scope: 'same-hostname', include: [], exclude: [], respectRobots: false, maxRetries: 0, perHostConcurrency: 1000, perHostDelayMs: 0 },
    counts: { discovered: 1, queued: 1, inProgress: 0, succeeded: 0, failed: 0, skipped: 0 },
    createdAt: new Date().toISOString(),
    startedAt: null,
    finishedAt: null,
    error: null,
    metadata: {},
  },
  { url: url(0), key: url(0), depth: 0, host: 'bench.test' },
);
const result = (lease) => ({ url: lease.url, finalUrl: lease.url, depth: lease.depth, status: 200, ok: true, contentType: 'text/html', title: 't', description: null, canonical: null, links: 0, wordCount: 1, error: null, attempts: 1, durationMs: 1, fetchedAt: new Date().toISOString(), data: null });
const [seed] = (await storage.claim({ limit: 1, leaseMs: 60_000, now: now(), jobId: id })).leases;
const links = Array.from({ length: URLS }, (_, i) => ({ url: url(i + 1), key: url(i + 1), depth: 1, host: 'bench.test' }));
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
