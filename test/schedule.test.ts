import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';
import { kvStorage } from '../adapters/kv/index.js';
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
import { runCli } from './helpers/cli.js';

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
  const run = (args: string[]) => runCli(args);

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

// From an adversarial review: each of these failed before its fix.
describe('schedules and what deletes jobs, engines that differ, listings', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

  /** Runs the engine's processor until the job's schedule entry is in the outbox. */
  async function scheduleEnqueued(engine: CrawlEngine, storage: CrawlStorage, jobId: string): Promise<void> {
    for (let i = 0; i < 40; i++) {
      if ((await storage.listWebhookDeliveries!(jobId, { limit: 100 })).items.some((d) => (d.event as string) === 'schedule')) return;
      await engine.processor.run({ budgetMs: 300 });
    }
    throw new Error('schedule entry never enqueued');
  }

  test('a schedule whose recrawls come further apart than the engine’s retention, or a KV storage’s finishedTtlSeconds, is refused (the job would be deleted first)', async () => {
    const engine = testEngine({ retention: { finishedJobsMaxAgeMs: 3_600_000 } }, memoryStorage());
    await expect(engine.jobs.create({ url: 'https://example.com/', schedule: '0 3 * * *' })).rejects.toMatchObject({
      errors: [{ path: 'schedule', message: expect.stringMatching(/less than 3600 s apart: this engine's retention deletes finished jobs/) }],
    });
    expect((await engine.jobs.create({ url: 'https://example.com/', schedule: '*/10 * * * *' })).options.schedule).toBe('*/10 * * * *');
    const kv = testEngine({}, kvStorage({ client: new RedisMock() as never, prefix: 'ttl:', finishedTtlSeconds: 86_400 }));
    await expect(kv.jobs.create({ url: 'https://example.com/', schedule: '0 3 * * 1' })).rejects.toMatchObject({
      errors: [{ path: 'schedule', message: expect.stringContaining('expires finished jobs (finishedTtlSeconds)') }],
    });
    expect((await kv.jobs.create({ url: 'https://example.com/', schedule: '0 * * * *' })).options.schedule).toBe('0 * * * *');
    await engine.close();
    await kv.close();
  });

  test('an engine with webhooks: {} (no secret) hands the schedule of a job signed with another engine’s secret back, not fails it', {
    timeout: 30_000,
  }, async () => {
    const site = await recrawlSite(2);
    const storage = memoryStorage();
    try {
      const app = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret } }, storage);
      const worker = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: {} }, storage);
      const job = await app.jobs.create({ url: site.url, webhook: { url: `${site.url}hook`, events: ['job.completed'] }, schedule: '* * * * * *' });
      await crawlToEnd(app, job.id);
      await scheduleEnqueued(app, storage, job.id);
      for (let i = 0; i < 6; i++) {
        await worker.processor.run({ budgetMs: 400 });
        await sleep(200);
      }
      const entry = (await storage.listWebhookDeliveries!(job.id, { limit: 100 })).items.find((d) => (d.event as string) === 'schedule')!;
      expect(entry).toMatchObject({ state: 'pending', attempts: 0 });
      await runUntil([app], async () => (await allJobs(app)).some((j) => j.options.recrawlOf === job.id), 20_000);
      expect((await allJobs(app)).filter((j) => j.options.recrawlOf === job.id)).toHaveLength(1);
      await app.close();
      await worker.close();
    } finally {
      await site.close();
    }
  });

  test('memoryStorage maxFinishedJobs holds under a schedule with content formats (scheduled recrawls keep copies, pin nothing, and can be deleted)', {
    timeout: 60_000,
  }, async () => {
    const site = await recrawlSite(2);
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] } }, memoryStorage({ maxFinishedJobs: 2 }));
      await engine.jobs.create({ url: site.url, formats: ['metadata', 'markdown'], schedule: '* * * * * *' });
      const seen = new Set<string>();
      const until = Date.now() + 40_000;
      while (seen.size < 7 && Date.now() < until) {
        await engine.processor.run({ budgetMs: 500 });
        for (const job of await allJobs(engine)) seen.add(job.id);
      }
      expect(seen.size).toBeGreaterThanOrEqual(7);
      const jobs = await allJobs(engine);
      // Two finished ones, and the newest (running, or finished with its schedule pending).
      expect(jobs.length).toBeLessThanOrEqual(3);
      // Unchanged pages of a scheduled recrawl carry their markdown, not a pointer.
      const finished = jobs.filter((j) => j.status === 'completed' && j.options.recrawlOf !== undefined);
      expect(finished.length).toBeGreaterThan(0);
      for (const job of finished) {
        const results = await allResults(engine, job.id);
        expect(results.every((r) => r.contentFrom === undefined && typeof r.markdown === 'string')).toBe(true);
      }
      // The oldest kept can be deleted at once: nothing points to it.
      const oldest = jobs.filter((j) => j.status === 'completed').sort((a, b) => a.createdAt.localeCompare(b.createdAt))[0]!;
      expect(await engine.jobs.delete(oldest.id)).toBe(true);
      await engine.close();
    } finally {
      await site.close();
    }
  });

  test('jobs.deliveries never pages out empty past a schedule entry (it is not listed)', { timeout: 30_000 }, async () => {
    const site = await recrawlSite(2);
    const storage = memoryStorage();
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret } }, storage);
      const job = await engine.jobs.create({
        url: site.url,
        webhook: { url: `${site.url}hook`, events: ['job.started', 'job.completed'] },
        schedule: '0 * * * *',
      });
      await crawlToEnd(engine, job.id);
      await scheduleEnqueued(engine, storage, job.id);
      const sizes: number[] = [];
      const events: string[] = [];
      let cursor: string | null = null;
      do {
        const page: Awaited<ReturnType<CrawlEngine['jobs']['deliveries']>> = await engine.jobs.deliveries(job.id, { limit: 1, cursor });
        sizes.push(page.items.length);
        events.push(...page.items.map((d) => d.event));
        cursor = page.nextCursor;
      } while (cursor !== null);
      expect(sizes).not.toContain(0);
      expect(events).toEqual(['job.started', 'job.completed']);
      await engine.close();
    } finally {
      await site.close();
    }
  });

  test.skipIf(!process.env.REDIS_URL)(
    'KV: a scheduled recrawl whose create stopped between the job’s data and its index entry is finished by the next try, and crawled',
    { timeout: 40_000 },
    async () => {
      const site = await recrawlSite(2);
      const real = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 2 });
      const prefix = `sched${process.pid}_${Date.now().toString(36)}:`;
      let failed = 0;
      // The index-add script (4 keys, the job id first in its arguments) fails once for a derived id.
      const client = new Proxy(real, {
        get(target, name) {
          const value = Reflect.get(target, name, target) as unknown;
          if (name === 'evalsha') {
            return async (sha: string, numKeys: number, ...rest: Array<string | number>) => {
              const first = rest[numKeys];
              if (failed === 0 && numKeys === 4 && typeof first === 'string' && /^job_[A-Za-z0-9_-]{22}$/.test(first) && String(rest[3]).includes(first)) {
                failed++;
                throw new Error('ECONNRESET (injected)');
              }
              return (value as (...a: unknown[]) => Promise<unknown>).call(target, sha, numKeys, ...rest);
            };
          }
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      const storage = kvStorage({ client: client as never, prefix });
      try {
        const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: {} }, storage);
        const job = await engine.jobs.create({ url: site.url, schedule: '* * * * * *' });
        await crawlToEnd(engine, job.id);
        let status: string | undefined;
        const until = Date.now() + 25_000;
        while (Date.now() < until && status !== 'completed') {
          await engine.processor.run({ budgetMs: 500 });
          const entry = (await storage.listWebhookDeliveries!(job.id, { limit: 10 })).items.find((d) => (d.event as string) === 'schedule');
          if (entry !== undefined) status = (await engine.jobs.get(scheduledJobId(entry.id)))?.status;
        }
        expect(failed).toBe(1);
        expect(status).toBe('completed');
        await engine.close();
      } finally {
        const keys = await real.keys(`${prefix}*`);
        if (keys.length > 0) await real.del(...keys);
        real.disconnect();
        await site.close();
      }
    },
  );
});
