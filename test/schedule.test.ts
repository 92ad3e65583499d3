/**
 * Schedules (issue 17): a job with `schedule` is recrawled when the time it names comes after the
 * job ended, by whichever processor run comes then (the process route, a worker), exactly once per
 * job, from an outbox entry claimed with a lease; the recrawl carries the schedule on.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { postgresStorage } from '../adapters/postgres/index.js';
import { sqliteStorage } from '../adapters/sqlite/index.js';
import type { CrawlEngine } from '../src/core/engine.js';
import { createJobsApi } from '../src/core/jobs.js';
import { nextScheduledAt, scheduledJobId } from '../src/core/schedule.js';
import type { CrawlStorage } from '../src/core/storage.js';
import type { Job } from '../src/core/types.js';
import { createCrawlHandler } from '../src/http/index.js';
import { allResults, testEngine } from './helpers/engine.js';
import { closeAll, DATABASE_URL, dropSchema, freshSchema } from './helpers/postgres.js';
import { crawlToEnd, recrawlSite } from './helpers/recrawl-site.js';
import { closeRedis, everyStorage } from './helpers/storages.js';

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const hasNodeSqlite = major > 23 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13);
const dir = mkdtempSync(join(tmpdir(), 'crawl-schedule-'));
let files = 0;

afterAll(async () => {
  await closeRedis();
  await closeAll();
  rmSync(dir, { recursive: true, force: true });
});

const storages: Array<[string, () => Promise<CrawlStorage>]> = [
  ...everyStorage,
  ...(hasNodeSqlite ? [['sqlite', async () => sqliteStorage({ database: join(dir, `s${files++}.db`) })] as [string, () => Promise<CrawlStorage>]] : []),
];

/** Every job of the storage, oldest first. */
async function allJobs(engine: CrawlEngine): Promise<Job[]> {
  const jobs: Job[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: Job[]; nextCursor: string | null } = await engine.jobs.list({ limit: 100, cursor });
    jobs.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return jobs.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/** Runs `engines`' processors at once, round after round, until `done()` or `ms` passed. */
async function runUntil(engines: CrawlEngine[], done: () => Promise<boolean>, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > until) throw new Error('not done in time');
    await Promise.all(engines.map((engine) => engine.processor.run({ budgetMs: 600 })));
  }
}

describe('schedule validation', () => {
  test('a cron expression or time zone croner cannot read, or one that never comes again, is refused naming the field (400 over HTTP)', async () => {
    const engine = testEngine({}, memoryStorage());
    const refused = async (input: Record<string, unknown>, path: string, message: RegExp) => {
      await expect(engine.jobs.create({ url: 'https://example.com/', ...input })).rejects.toMatchObject({
        code: 'invalid_input',
        errors: [{ path, message: expect.stringMatching(message) }],
      });
    };
    await refused({ schedule: 'every day' }, 'schedule', /^expected a cron expression of 5 fields .*: .*exactly five, six, or seven/);
    await refused({ schedule: '61 * * * *' }, 'schedule', /minute: 61/);
    await refused({ schedule: '0 0 31 2 *' }, 'schedule', /never comes again/);
    // Years (a 7th field) are not taken: 6 fields are seconds to weekday.
    await refused({ schedule: '0 0 1 1 * 2020' }, 'schedule', /dayOfWeek: 2020/);
    await refused({ schedule: 'x'.repeat(201) }, 'schedule', /at most 200 characters/);
    await refused({ schedule: 3 }, 'schedule', /expected a cron expression string/);
    await refused({ schedule: '0 3 * * *', scheduleTimezone: 'Mars/Olympus' }, 'scheduleTimezone', /^expected an IANA time zone name/);
    await refused({ scheduleTimezone: 'Europe/Paris' }, 'scheduleTimezone', /only with a schedule/);
    // A storage without the outbox cannot hold a schedule.
    const { claimWebhookDeliveries: _c, enqueueWebhookDeliveries: _e, addWebhookJob: _a, ...plain } = memoryStorage();
    await expect(testEngine({}, plain as CrawlStorage).jobs.create({ url: 'https://example.com/', schedule: '0 3 * * *' })).rejects.toMatchObject({
      errors: [{ path: 'schedule', message: expect.stringContaining('a webhook outbox') }],
    });
    const handler = createCrawlHandler(engine);
    const res = await handler(
      new Request('http://app.test/api/crawl/jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: 'https://example.com/', schedule: '*/0 * * * *' }),
      }),
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ path: string }> }).errors.map((e) => e.path)).toEqual(['schedule']);
    // Nothing was stored by any refusal.
    expect((await engine.jobs.list()).items).toEqual([]);
    const ok = await engine.jobs.create({ url: 'https://example.com/', schedule: '0 3 * * *', scheduleTimezone: 'Europe/Paris' });
    expect(ok.options).toMatchObject({ schedule: '0 3 * * *', scheduleTimezone: 'Europe/Paris' });
    await engine.close();
  });

  test('the next time is read in the job’s time zone (UTC by default)', async () => {
    const at = Date.parse('2026-12-02T01:00:00Z');
    expect(new Date((await nextScheduledAt('0 3 * * *', undefined, at))!).toISOString()).toBe('2026-12-02T03:00:00.000Z');
    expect(new Date((await nextScheduledAt('0 3 * * *', 'Europe/Paris', at))!).toISOString()).toBe('2026-12-02T02:00:00.000Z');
    expect(new Date((await nextScheduledAt('0 3 * * *', 'Europe/Paris', Date.parse('2026-07-01T12:00:00Z')))!).toISOString()).toBe('2026-07-02T01:00:00.000Z');
    expect(new Date((await nextScheduledAt('*/10 * * * * *', undefined, at + 1))!).toISOString()).toBe('2026-12-02T01:00:10.000Z');
  });
});

describe.each(storages)('schedules on %s', (_name, makeStorage) => {
  test('two processors at once start the due recrawl exactly once; it carries the schedule on and says what changed', { timeout: 90_000 }, async () => {
    const storage = await makeStorage();
    const site = await recrawlSite(12);
    try {
      // Engines made without the webhooks option start schedules too.
      const a = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] } }, storage);
      const b = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] } }, storage);
      const first = await a.jobs.create({ url: site.url, maxPages: 50, schedule: '* * * * * *' });
      await crawlToEnd(a, first.id);
      site.change(2);
      site.resetCounts();
      const recrawls = async () => (await allJobs(a)).filter((job) => job.options.recrawlOf === first.id);
      await runUntil([a, b], async () => (await recrawls()).length > 0, 40_000);
      const [second] = await recrawls();
      expect(await recrawls()).toHaveLength(1);
      expect(second!.options).toMatchObject({ schedule: '* * * * * *', recrawlOf: first.id, maxPages: 50 });
      // Its id comes from the entry's: a second try of the entry finds it.
      expect(second!.id).toMatch(/^job_[A-Za-z0-9_-]{22}$/);
      await runUntil([a, b], async () => (await a.jobs.get(second!.id))!.status === 'completed', 30_000);
      const changed = (await allResults(a, second!.id)).filter((r) => r.change !== 'unchanged').map((r) => `${new URL(r.url).pathname} ${r.change}`);
      expect(changed).toEqual(['/p/2 changed']);
      expect(site.notModified).toBe(22);
      // The schedule goes on: the recrawl is recrawled in its turn, once.
      await runUntil([a, b], async () => (await allJobs(a)).some((job) => job.options.recrawlOf === second!.id), 40_000);
      expect((await allJobs(a)).filter((job) => job.options.recrawlOf === second!.id)).toHaveLength(1);
      expect(await recrawls()).toHaveLength(1);
      // The schedule's entries are not webhooks: no engine lists them as deliveries.
      expect((await a.jobs.deliveries(first.id)).items).toEqual([]);
      await a.close();
      await b.close();
    } finally {
      await site.close();
      await storage.close?.();
    }
  });
});

describe('schedules (memory)', () => {
  test('a cancelled job’s schedule stops; a recrawl by hand does not take the schedule unless given one', { timeout: 60_000 }, async () => {
    const site = await recrawlSite(3);
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: {} }, memoryStorage());
      const cancelled = await engine.jobs.create({ url: site.url, schedule: '* * * * * *' });
      await engine.jobs.cancel(cancelled.id);
      const done = await engine.jobs.create({ url: site.url, schedule: '0 3 * * *' });
      await crawlToEnd(engine, done.id);
      const manual = await engine.jobs.recrawl(done.id);
      expect(manual.options.schedule).toBeUndefined();
      const scheduled = await engine.jobs.recrawl(done.id, { schedule: '0 4 * * *', scheduleTimezone: 'Europe/Paris' });
      expect(scheduled.options).toMatchObject({ schedule: '0 4 * * *', scheduleTimezone: 'Europe/Paris' });
      await expect(engine.jobs.recrawl(done.id, { scheduleTimezone: 'Europe/Paris' })).rejects.toMatchObject({ errors: [{ path: 'scheduleTimezone' }] });
      await expect(engine.jobs.recrawl(done.id, { schedule: 'nope' })).rejects.toMatchObject({ errors: [{ path: 'schedule' }] });
      for (let i = 0; i < 4; i++) await engine.processor.run({ budgetMs: 500 });
      const jobs = await allJobs(engine);
      expect(jobs.filter((job) => job.options.recrawlOf === cancelled.id)).toEqual([]);
      // 03:00 is hours away at the soonest: only the two recrawls made by hand.
      expect(
        jobs
          .filter((job) => job.options.recrawlOf === done.id)
          .map((job) => job.id)
          .sort(),
      ).toEqual([manual.id, scheduled.id].sort());
      await engine.close();
    } finally {
      await site.close();
    }
  });

  test('a processor killed after claiming the entry (lease never settled), or after starting the recrawl: the recrawl starts once', {
    timeout: 60_000,
  }, async () => {
    const site = await recrawlSite(3);
    try {
      const storage = memoryStorage();
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: {} }, storage);
      const job = await engine.jobs.create({ url: site.url, schedule: '* * * * * *' });
      await crawlToEnd(engine, job.id);
      // The entry, claimed by a processor that dies with it (a 1 s lease, never settled).
      let claimed: Awaited<ReturnType<NonNullable<CrawlStorage['claimWebhookDeliveries']>>> = [];
      for (let i = 0; i < 40 && claimed.length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        claimed = await storage.claimWebhookDeliveries!({ limit: 10, leaseMs: 1000, now: Date.now() });
      }
      expect(claimed.map((lease) => lease.delivery.event)).toEqual(['schedule']);
      const entry = claimed[0]!.delivery;
      // It had started the recrawl before it died: the same id is found, not made again.
      const jobs = createJobsApi(storage, () => undefined, Date.now);
      expect(await jobs.recrawlScheduled(entry)).toBe('started');
      expect(await jobs.recrawlScheduled(entry)).toBe('started');
      const recrawls = async () => (await allJobs(engine)).filter((j) => j.options.recrawlOf === job.id);
      expect((await recrawls()).map((j) => j.id)).toEqual([scheduledJobId(entry.id)]);
      // The live engine takes the entry once the lease ran out, and settles it without a second job.
      await runUntil([engine], async () => (await storage.listWebhookDeliveries!(job.id, { limit: 10 })).items.every((d) => d.state === 'delivered'), 20_000);
      expect(await recrawls()).toHaveLength(1);
      await engine.close();
    } finally {
      await site.close();
    }
  });

  test('the HTTP process route starts a due recrawl (what a cron hitting it does)', { timeout: 60_000 }, async () => {
    const site = await recrawlSite(3);
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] } }, memoryStorage());
      const handler = createCrawlHandler(engine, { cronSecret: 'a-cron-secret-0123456789' });
      const job = await engine.jobs.create({ url: site.url, schedule: '* * * * * *' });
      const processRoute = async () => {
        const res = await handler(new Request('http://app.test/api/crawl/process', { headers: { authorization: 'Bearer a-cron-secret-0123456789' } }));
        expect(res.status).toBe(200);
        return (await res.json()) as { webhooks?: { recrawls: number } };
      };
      let recrawls = 0;
      for (let i = 0; i < 60 && recrawls === 0; i++) {
        recrawls += (await processRoute()).webhooks?.recrawls ?? 0;
        if (recrawls === 0) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(recrawls).toBe(1);
      expect((await allJobs(engine)).filter((j) => j.options.recrawlOf === job.id)).toHaveLength(1);
      await engine.close();
    } finally {
      await site.close();
    }
  });
});

describe('crawl-engine crawl --schedule', () => {
  const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  test('stores the schedule with the job in a durable storage, where an app’s processor starts the recrawl; bad flags name themselves', {
    timeout: 90_000,
  }, async () => {
    const site = await recrawlSite(3);
    const schema = freshSchema();
    const folder = join(dir, 'cli-pg');
    const storageArgs = DATABASE_URL ? ['--storage', DATABASE_URL, '--schema', schema] : ['--storage', `pglite:${folder}`];
    try {
      const usage = async (args: string[], message: string) => {
        const out = await run(['crawl', site.url, '--allow-private-network', ...args]);
        expect([out.code, out.stderr]).toEqual([2, expect.stringContaining(message)]);
      };
      await usage(['--schedule', '0 3 * * *'], '--schedule: expected a durable --storage');
      await usage([...storageArgs, '--schedule', 'daily'], '--schedule: expected a cron expression of 5 fields');
      await usage([...storageArgs, '--schedule', '0 3 * * *', '--schedule-timezone', 'Nowhere/Else'], '--schedule-timezone: expected an IANA time zone name');
      await usage([...storageArgs, '--schedule-timezone', 'Europe/Paris'], '--schedule-timezone: expected only with --schedule');

      const crawled = await run(['crawl', site.url, '--allow-private-network', ...storageArgs, '--schedule', '* * * * * *']);
      expect(crawled.code).toBe(0);
      expect(crawled.stderr).toMatch(/Schedule "\* \* \* \* \* \*" \(UTC\): the next recrawl is due at \d{4}-\d\d-\d\dT[\d:.]+Z; a processor on this storage/);
      // The app: an engine on the same storage, its processor run as its process route would.
      const client = DATABASE_URL ? new pg.Pool({ connectionString: DATABASE_URL, max: 2 }) : new PGlite(folder);
      const storage = postgresStorage({ client: client as never, ...(DATABASE_URL ? { schema } : {}) });
      try {
        const app = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] } }, storage);
        const [first] = await allJobs(app);
        expect(first!.options.schedule).toBe('* * * * * *');
        await runUntil([app], async () => (await allJobs(app)).some((job) => job.options.recrawlOf === first!.id), 30_000);
        await app.close();
      } finally {
        if (DATABASE_URL) await dropSchema(client as pg.Pool, schema);
        await (client as { end?: () => Promise<void>; close?: () => Promise<void> }).end?.();
        await (client as { close?: () => Promise<void> }).close?.();
      }
    } finally {
      await site.close();
    }
  });
});
