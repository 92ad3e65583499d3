// Scale of one shared storage: `node bench/scale.mjs <postgres|kv>`. For frontiers of 1,000, 10,000
// and 100,000 URLs (one job, one host, filled through the storage contract), the latency of
// claim(10) and of complete() while 500 of its URLs are worked; on Postgres also the plan of every
// statement inside claim, complete, readEvents and getJob at 100,000 rows (auto_explain, nested
// statements) with any sequential scan of the frontier named; and the event log's length against
// its limit. Prints one JSON line.
import { performance } from 'node:perf_hooks';
import { createStorageJob, openStorage, percentile } from './storages.mjs';

const [kind] = process.argv.slice(2);
const SIZES = (process.env.BENCH_SCALE_SIZES ?? '1000,10000,100000').split(',').map(Number);
const MAX_EVENTS = 500;
const BATCH = 1000;
const round = (x) => Math.round(x * 100) / 100;

let result;
async function fill(storage, id, size) {
  const made = await createStorageJob(storage, id, size + 1, 'scale.test');
  result = made.result;
  const { link } = made;
  // Each complete() admits the next batch of links; each needs a claimed URL of the frontier.
  for (let next = 1; next <= size; next += BATCH) {
    const [lease] = (await storage.claim({ limit: 1, leaseMs: 600_000, now: Date.now(), jobId: id })).leases;
    const links = Array.from({ length: Math.min(BATCH, size - next + 1) }, (_, i) => link(next + i));
    await storage.complete(lease, { result: result(lease), links, now: Date.now() });
  }
}

async function work(storage, id, rounds) {
  const claims = [];
  const completes = [];
  for (let r = 0; r < rounds; r++) {
    let t = performance.now();
    const { leases } = await storage.claim({ limit: 10, leaseMs: 600_000, now: Date.now(), jobId: id });
    claims.push(performance.now() - t);
    for (const lease of leases) {
      t = performance.now();
      await storage.complete(lease, { result: result(lease), links: [], now: Date.now() });
      completes.push(performance.now() - t);
    }
  }
  return { claims, completes };
}

/** Postgres: runs `fn` on a storage whose single connection reports every nested plan as a NOTICE. */
async function postgresPlans(namespace, fn) {
  const pg = (await import('pg')).default;
  const { postgresStorage } = await import('../dist/adapters/postgres.js');
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  const plans = [];
  try {
    await client.query(`LOAD 'auto_explain'`);
    await client.query(
      `SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = 'notice'; SET client_min_messages = 'notice'`,
    );
  } catch (error) {
    await client.end();
    return { available: false, reason: error.message };
  }
  client.on('notice', (n) => plans.push(n.message));
  await fn(postgresStorage({ client, schema: namespace, maxEventsPerJob: MAX_EVENTS, listen: false }));
  await client.end();
  const text = plans.join('\n');
  const scans = {};
  for (const m of text.matchAll(/(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan|Bitmap Index Scan)(?: using (\S+))? on (\S+)/g)) {
    const key = `${m[1]}${m[2] ? ` using ${m[2]}` : ''} on ${m[3].replace(/^.*\./, '')}`;
    scans[key] = (scans[key] ?? 0) + 1;
  }
  return {
    available: true,
    statements: plans.length,
    scans,
    frontierSeqScans: Object.entries(scans)
      .filter(([k]) => /^Seq Scan on .*frontier$/.test(k))
      .reduce((n, [, c]) => n + c, 0),
  };
}

const out = { kind, sizes: {} };
for (const size of SIZES) {
  const opened = await openStorage(kind, { adapter: { maxEventsPerJob: MAX_EVENTS } });
  const id = `job_scale_${size}_${process.pid}`;
  const t = performance.now();
  await fill(opened.storage, id, size);
  const fillMs = performance.now() - t;
  if (kind === 'postgres') await opened.pool.query(`ANALYZE "${opened.namespace}".crawl_frontier`);
  await work(opened.storage, id, 10); // warm-up
  const { claims, completes } = await work(opened.storage, id, 50);
  const figures = {
    fillSeconds: round(fillMs / 1000),
    claim10: { p50: round(percentile(claims, 50)), p99: round(percentile(claims, 99)) },
    complete: { p50: round(percentile(completes, 50)), p99: round(percentile(completes, 99)) },
  };
  if (kind === 'postgres' && size === Math.max(...SIZES)) {
    figures.plans = await postgresPlans(opened.namespace, async (storage) => {
      await work(storage, id, 3);
      await storage.readEvents(id, '1', 100);
      await storage.getJob(id);
    });
  }
  const events = await opened.storage.readEvents(id, null, 100_000);
  const job = await opened.storage.getJob(id);
  const stored =
    kind === 'postgres'
      ? Number((await opened.pool.query(`SELECT count(*) AS n FROM "${opened.namespace}".crawl_events WHERE job_id = $1`, [id])).rows[0].n)
      : await opened.redis.llen(`${opened.namespace}{job:${id}}:ev`);
  figures.events = { appended: Number(events.at(-1).id), stored, limit: MAX_EVENTS, firstReadIsSnapshot: events[0].type === 'progress' };
  figures.frontierRows = job.counts.discovered;
  out.sizes[size] = figures;
  await opened.close({ drop: true });
}
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
