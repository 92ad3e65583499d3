// The chaos suite (`npm run test:chaos`): a job of 1,200 pages worked by four processor processes
// on the real Postgres and the real Redis while the suite SIGKILLs a random processor every few
// seconds (and starts a new one), restarts the database server (or cuts every connection), and
// makes the site answer 503, hang and reset connections for a while. At the end every page must
// have exactly one result, maxPages must hold, the job must have completed exactly once, no page
// may have been requested more than 1 + maxRetries times and the event log must have no gaps,
// both as stored and as seen live by a subscriber in this process. The job posts webhooks to a
// receiver that refuses one in five: every delivery must end delivered, every page must be in a
// delivered `page` event, and a receiver may see an event twice only with the same webhook-id.
// Over 300 lines in one file: the Postgres and the Redis test run one harness (PLAN, processors, chaosCrawl()); only the storage and its disruption differ.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import pg from 'pg';
import { describe, expect, test } from 'vitest';
import { kvStorage } from '../../adapters/kv/index.js';
import { postgresStorage } from '../../adapters/postgres/index.js';
import { startSite } from '../fixtures/site.mjs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCrawlEngine, type CrawlEngine } from '../../src/core/engine.js';
import { createWebhookSecret, verifyWebhook } from '../../src/core/webhooks/sign.js';
import type { WebhookDelivery } from '../../src/core/storage.js';
import type { WebhookPayload } from '../../src/core/types.js';
import type { CrawlStorage } from '../../src/core/storage.js';
import type { PageResult } from '../../src/core/types.js';
import { allResults } from '../helpers/engine.js';
import { freshSchema } from '../helpers/postgres.js';

const DATABASE_URL = process.env.DATABASE_URL || null;
const REDIS_URL = process.env.REDIS_URL || null;
const workerScript = fileURLToPath(new URL('../fixtures/chaos-worker.mjs', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const run = promisify(execFile);

const PLAN = {
  sitePages: 1500,
  maxPages: 1200,
  maxRetries: 5,
  latencyMs: 150,
  perHostConcurrency: 12,
  processes: 4,
  killEveryMs: 2500,
  /** Since the first page was stored. */
  databaseFaultAtMs: 5000,
  siteFaults: [
    { kind: 'error', fromMs: 9000, toMs: 10_000 },
    { kind: 'hang', fromMs: 10_000, toMs: 11_000 },
    { kind: 'reset', fromMs: 11_000, toMs: 12_000 },
  ] as const,
};

interface Proc {
  child: ChildProcess;
  errors: number;
  firstError: string | null;
  exited: Promise<void>;
}

function startProcessor(storageUrl: string, namespace: string, jobId: string): Proc {
  const child = spawn(process.execPath, [workerScript, storageUrl, namespace, jobId], { stdio: ['ignore', 'pipe', 'inherit'] });
  const proc: Proc = { child, errors: 0, firstError: null, exited: new Promise((resolve) => child.on('exit', () => resolve())) };
  let pending = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += String(chunk);
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('run ')) continue;
      const report = JSON.parse(line.slice(4)) as { errors: number; firstError: string | null };
      proc.errors += report.errors;
      proc.firstError ??= report.firstError;
    }
  });
  return proc;
}

/** Restarts the local PostgreSQL server, or (elsewhere) cuts every connection to the database for 2 s. */
async function disruptPostgres(admin: pg.Pool): Promise<string> {
  const url = new URL(DATABASE_URL!);
  const local = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (local && existsSync('/etc/postgresql') && process.env.CHAOS_DB_RESTART !== '0') {
    const version = readdirSync('/etc/postgresql')[0]!;
    const started = Date.now();
    try {
      await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'restart'], { timeout: 60_000 });
      return `PostgreSQL ${version} restarted with pg_ctlcluster (${Date.now() - started} ms)`;
    } catch (error) {
      process.stdout.write(`chaos: pg_ctlcluster restart failed (${(error as Error).message.split('\n')[0]}); cutting connections instead\n`);
    }
  }
  const until = Date.now() + 2000;
  let cut = 0;
  while (Date.now() < until) {
    const { rows } = await admin.query<{ n: string }>(
      'SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    cut += Number(rows[0]!.n);
    await sleep(100);
  }
  return `every connection to the database cut for 2 s (${cut} backends terminated)`;
}

/** Kills every client connection to Redis for 1.5 s, then pauses the server for 2 s. */
async function disruptRedis(admin: Redis): Promise<string> {
  const until = Date.now() + 1500;
  let killed = 0;
  while (Date.now() < until) {
    killed += Number(await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes'));
    await sleep(100);
  }
  await admin.client('PAUSE', 2000, 'ALL');
  return `Redis client connections killed for 1.5 s (${killed} connections), then the server paused for 2 s (CLIENT PAUSE ALL)`;
}

interface Chaos {
  storageUrl: string;
  namespace: string;
  storage: CrawlStorage;
  disrupt(): Promise<string>;
  cleanup(): Promise<void>;
}

async function chaosCrawl(name: string, setup: () => Promise<Chaos>): Promise<void> {
  const faultCounts = { error: 0, hang: 0, reset: 0 };
  let faultMode: keyof typeof faultCounts | null = null;
  const site = await startSite({
    pages: PLAN.sitePages,
    fanout: 4,
    latencyMs: PLAN.latencyMs,
    fault: (path) => {
      if (faultMode === null || path === '/robots.txt') return null;
      faultCounts[faultMode]++;
      return faultMode;
    },
  });
  const chaos = await setup();
  const engine: CrawlEngine = createCrawlEngine({ storage: chaos.storage, fetch: { allowPrivateNetwork: true }, webhooks: {} });

  // The webhook receiver: records every delivery it accepts (id and body, verified), and answers
  // one in five with a 503, so that deliveries are retried as well as cut short by the kills.
  const secret = createWebhookSecret();
  const hooks: Array<{ id: string; body: string }> = [];
  let hookRequests = 0;
  let hookRefusals = 0;
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      hookRequests++;
      const body = Buffer.concat(chunks).toString('utf8');
      if (Math.random() < 0.2) {
        hookRefusals++;
        res.writeHead(503).end();
        return;
      }
      verifyWebhook(body, req.headers, secret).then(
        () => {
          hooks.push({ id: String(req.headers['webhook-id']), body });
          res.writeHead(204).end();
        },
        () => res.writeHead(400).end(),
      );
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

  const started = Date.now();
  const job = await engine.jobs.create({
    url: site.url,
    maxPages: PLAN.maxPages,
    maxDepth: 100,
    maxRetries: PLAN.maxRetries,
    perHostConcurrency: PLAN.perHostConcurrency,
    webhook: { url: hookUrl, secret },
  });

  // A subscriber in this process follows the job through everything, resuming after the last
  // event id whenever its storage read fails (as an SSE client does with Last-Event-ID).
  const seen: number[] = [];
  let resubscribed = 0;
  const stopFollowing = new AbortController();
  const following = (async () => {
    let after: string | null = null;
    while (!stopFollowing.signal.aborted) {
      try {
        for await (const event of engine.progress.subscribe(job.id, { after, pollMs: 100, signal: stopFollowing.signal })) {
          seen.push(Number(event.id));
          after = event.id;
          if (event.type === 'job:completed' || event.type === 'job:failed' || event.type === 'job:cancelled') return;
        }
        return;
      } catch {
        resubscribed++;
        await sleep(250);
      }
    }
  })();

  const procs = Array.from({ length: PLAN.processes }, () => startProcessor(chaos.storageUrl, chaos.namespace, job.id));
  const all = [...procs];
  let kills = 0;
  let databaseFault: string | null = null;
  let databaseFaultWhileRunning = false;
  let disrupting: Promise<void> = Promise.resolve();
  let terminal = false;
  void following.then(() => (terminal = true));

  // Wait for the crawl to be under way, then run the schedule until the job ends.
  const deadline = Date.now() + 180_000;
  let zero = 0;
  while (!terminal && Date.now() < deadline) {
    const job1 = await engine.jobs.get(job.id).catch(() => null);
    if ((job1?.counts.succeeded ?? 0) > 0) {
      zero = Date.now();
      break;
    }
    await sleep(50);
  }
  let nextKill = zero + PLAN.killEveryMs;
  const faultsWhileRunning = new Set<string>();
  while (!terminal && Date.now() < deadline) {
    const t = Date.now() - zero;
    faultMode = PLAN.siteFaults.find((f) => t >= f.fromMs && t < f.toMs)?.kind ?? null;
    if (faultMode !== null) faultsWhileRunning.add(faultMode);
    if (Date.now() >= nextKill) {
      nextKill += PLAN.killEveryMs;
      const index = Math.floor(Math.random() * procs.length);
      procs[index]!.child.kill('SIGKILL');
      kills++;
      procs[index] = startProcessor(chaos.storageUrl, chaos.namespace, job.id);
      all.push(procs[index]!);
    }
    if (databaseFault === null && t >= PLAN.databaseFaultAtMs) {
      // Not awaited: kills and site faults stay on schedule while the server restarts.
      databaseFault = 'in progress';
      databaseFaultWhileRunning = !terminal;
      disrupting = chaos.disrupt().then((what) => {
        databaseFault = what;
      });
    }
    await sleep(20);
  }
  faultMode = null;
  await disrupting;
  if (!terminal) {
    // Stuck: stop everything so that the figures below show where.
    stopFollowing.abort();
    for (const p of procs) p.child.kill('SIGKILL');
  }
  await following;
  // The processors keep working until the job's deliveries are settled, then exit.
  await Promise.race([Promise.all(procs.map((p) => p.exited)), sleep(Math.max(0, deadline + 60_000 - Date.now()))]);
  for (const p of procs) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  const durationMs = Date.now() - started;
  const deliveries: WebhookDelivery[] = [];
  for (let cursor: string | null = null; ; ) {
    const page: { items: WebhookDelivery[]; nextCursor: string | null } = await engine.jobs.deliveries(job.id, { limit: 1000, cursor });
    deliveries.push(...page.items);
    cursor = page.nextCursor;
    if (cursor === null) break;
  }
  receiver.closeAllConnections();
  receiver.close();
  const bodyById = new Map<string, string>();
  let differingDuplicates = 0;
  for (const hook of hooks) {
    if (bodyById.has(hook.id) && bodyById.get(hook.id) !== hook.body) differingDuplicates++;
    bodyById.set(hook.id, hook.body);
  }
  const payloads = [...bodyById.values()].map((body) => JSON.parse(body) as WebhookPayload);
  const postedPages = payloads.flatMap((p) => (p.type === 'page' ? p.data.pages.map((page) => new URL(page.url).pathname) : []));

  const final = (await engine.jobs.get(job.id))!;
  const results: PageResult[] = await allResults(engine, job.id);
  const events = await chaos.storage.readEvents(job.id, null, 100_000);
  const pageHits = [...site.hits.entries()].filter(([path]) => path !== '/robots.txt');
  const maxHits = Math.max(...pageHits.map(([, n]) => n));
  const resultPaths = new Set(results.map((r) => new URL(r.url).pathname));
  const failedByCode: Record<string, number> = {};
  for (const r of results) if (!r.ok) failedByCode[r.error!.code] = (failedByCode[r.error!.code] ?? 0) + 1;
  const storageErrors = all.reduce((n, p) => n + p.errors, 0);
  const figures = {
    adapter: name,
    durationMs,
    status: final.status,
    counts: final.counts,
    results: results.length,
    distinctResultUrls: resultPaths.size,
    failedByCode,
    requests: site.requests.length,
    distinctPagesRequested: pageHits.length,
    pagesRequestedMoreThanOnce: pageHits.filter(([, n]) => n > 1).length,
    maxRequestsOfOnePage: maxHits,
    allowedRequestsPerPage: 1 + PLAN.maxRetries,
    maxAttempts: Math.max(...results.map((r) => r.attempts)),
    processesKilled: kills,
    processesStarted: all.length,
    databaseFault,
    storageErrorsReportedByRuns: storageErrors,
    firstStorageError: all.find((p) => p.firstError !== null)?.firstError ?? null,
    siteFaultsServed: faultCounts,
    storedEvents: events.length,
    eventsSeenLive: seen.length,
    subscriberResumes: resubscribed,
    jobCompletedEvents: events.filter((e) => e.type === 'job:completed').length,
    webhookDeliveries: deliveries.length,
    webhookDeliveriesByState: Object.fromEntries(
      ['pending', 'delivered', 'failed'].map((state) => [state, deliveries.filter((d) => d.state === state).length]),
    ),
    webhookRequests: hookRequests,
    webhookRefusedByReceiver: hookRefusals,
    webhookReceivedTwice: hooks.length - bodyById.size,
    webhookMaxAttempts: Math.max(0, ...deliveries.map((d) => d.attempts)),
  };
  process.stdout.write(`\nchaos figures (${name}):\n${JSON.stringify(figures, null, 2)}\n`);

  await engine.close();
  await site.close();
  // Closing must not hang after the chaos (a leaked connection would make pool.end() wait forever).
  await Promise.race([chaos.cleanup(), sleep(30_000).then(() => Promise.reject(new Error(`${name}: closing the storage hung`)))]);

  // The chaos did happen while the job ran.
  expect(kills).toBeGreaterThanOrEqual(3);
  expect(databaseFaultWhileRunning).toBe(true);
  expect([...faultsWhileRunning].sort()).toEqual(['error', 'hang', 'reset']);
  expect(faultCounts.error + faultCounts.hang + faultCounts.reset).toBeGreaterThan(0);
  // The job completed, exactly once.
  expect(final.status).toBe('completed');
  expect(figures.jobCompletedEvents).toBe(1);
  expect(events.filter((e) => e.type === 'job:failed' || e.type === 'job:cancelled')).toHaveLength(0);
  // maxPages held, and every admitted page has exactly one result.
  expect(final.counts.discovered).toBe(PLAN.maxPages);
  expect(pageHits.length).toBeLessThanOrEqual(PLAN.maxPages);
  expect(results).toHaveLength(PLAN.maxPages);
  expect(resultPaths.size).toBe(PLAN.maxPages);
  expect(final.counts).toMatchObject({ queued: 0, inProgress: 0 });
  expect(final.counts.succeeded + final.counts.failed + final.counts.skipped).toBe(PLAN.maxPages);
  for (const [path] of pageHits) expect(resultPaths.has(path), `result for ${path}`).toBe(true);
  // No page was requested more than 1 + maxRetries times.
  expect(maxHits).toBeLessThanOrEqual(1 + PLAN.maxRetries);
  // The event log has no gaps, as stored and as followed live; one page event per result.
  expect(events.map((e) => Number(e.id))).toEqual(events.map((_, i) => i + 1));
  expect(seen).toEqual(events.map((e) => Number(e.id)));
  expect(events.filter((e) => e.type.startsWith('page:'))).toHaveLength(PLAN.maxPages);
  // Webhooks: every delivery delivered; every event received at least once; duplicates only with
  // the same webhook-id (and body); every page in exactly one delivery; one start, one end.
  expect(figures.webhookDeliveriesByState).toEqual({ pending: 0, delivered: deliveries.length, failed: 0 });
  expect(new Set(hooks.map((h) => h.id))).toEqual(new Set(deliveries.map((d) => d.id)));
  expect(differingDuplicates).toBe(0);
  expect(postedPages.sort()).toEqual([...resultPaths].sort());
  expect(payloads.filter((p) => p.type === 'job.started')).toHaveLength(1);
  expect(payloads.filter((p) => p.type === 'job.completed')).toHaveLength(1);
  expect(hookRefusals).toBeGreaterThan(0);
}

(DATABASE_URL ? describe : describe.skip)('chaos on Postgres', () => {
  test('1,200 pages, four processes, SIGKILLs, a server restart and a failing site: nothing lost, nothing doubled', async () => {
    await chaosCrawl('postgres', async () => {
      const admin = new pg.Pool({ connectionString: DATABASE_URL!, max: 2 });
      admin.on('error', () => undefined);
      const schema = freshSchema();
      const setupStorage = postgresStorage({ client: admin, schema });
      await setupStorage.migrate();
      // The storage this process reads and follows through (LISTEN included) has its own pool.
      const pool = new pg.Pool({ connectionString: DATABASE_URL!, max: 4 });
      pool.on('error', () => undefined);
      const storage = postgresStorage({ client: pool, schema });
      return {
        storageUrl: DATABASE_URL!,
        namespace: schema,
        storage,
        disrupt: () => disruptPostgres(admin),
        async cleanup() {
          await storage.close?.(); // gives the LISTEN connection back, or pool.end() would wait for it
          for (let i = 0; ; i++) {
            try {
              if (!process.env.KEEP_SCHEMAS) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
              break;
            } catch (error) {
              if (i > 20) throw error;
              await sleep(250);
            }
          }
          await pool.end();
          await admin.end();
        },
      };
    });
  }, 300_000);
});

(REDIS_URL ? describe : describe.skip)('chaos on Redis', () => {
  test('1,200 pages, four processes, SIGKILLs, every connection cut and a paused server, a failing site: nothing lost, nothing doubled', async () => {
    await chaosCrawl('redis', async () => {
      const prefix = `chaos:${freshSchema()}:`;
      const admin = new Redis(REDIS_URL!);
      const client = new Redis(REDIS_URL!);
      client.on('error', () => undefined);
      admin.on('error', () => undefined);
      return {
        storageUrl: REDIS_URL!,
        namespace: prefix,
        storage: kvStorage({ client, prefix }),
        disrupt: () => disruptRedis(admin),
        async cleanup() {
          let cursor = '0';
          do {
            const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
            cursor = next;
            if (keys.length > 0) await admin.del(...keys);
          } while (cursor !== '0');
          client.disconnect();
          admin.disconnect();
        },
      };
    });
  }, 300_000);
});
