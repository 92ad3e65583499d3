import type { IncomingMessage } from 'node:http';
import { describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { createWebhookSecret, verifyWebhook, WebhookVerificationError } from '../src/index.js';
import type { CrawlStorage } from '../src/core/storage.js';
import type { WebhookPayload } from '../src/core/types.js';
import { testEngine } from './helpers/engine.js';
import { html, serve } from './helpers/server.js';
import { runCli } from './helpers/cli.js';

const SECRET = createWebhookSecret();

async function receiver(answer: (req: IncomingMessage) => number | null = () => 204) {
  const received: WebhookPayload[] = [];
  const server = await serve((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const status = answer(req);
      if (status === null) return; // never answers
      if (status >= 200 && status < 300) received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookPayload);
      res.writeHead(status);
      res.end();
    });
  });
  return { server, received };
}

const onePage = () =>
  serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(html('<p>one</p>', '<title>one</title>'));
  });

/** A storage that counts calls of its webhook methods. */
function counting(storage: CrawlStorage): { storage: CrawlStorage; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const wrapped: CrawlStorage = { ...storage };
  for (const name of ['listWebhookJobs', 'claimWebhookDeliveries', 'enqueueWebhookDeliveries', 'listResults'] as const) {
    const original = storage[name] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    if (original === undefined) continue;
    (wrapped as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return original.apply(storage, args);
    };
  }
  return { storage: wrapped, calls };
}

describe('webhooks under pressure', () => {
  test('a run with a webhook receiver that never answers stays within its budget (not budget + timeoutMs)', { timeout: 60_000 }, async () => {
    const hang = await receiver(() => null);
    const pages = await onePage();
    try {
      // The defaults: pages' timeout 15 s, webhooks' 10 s.
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 15_000 }, webhooks: { secret: SECRET } });
      const job = await engine.jobs.create({ url: pages.url, webhook: { url: `${hang.server.origin}/hook`, events: ['job.completed'] } });
      // Let the job finish and its delivery be enqueued, then measure one run while it is due.
      const started = Date.now();
      await engine.processor.run({ budgetMs: 1000 });
      const took = Date.now() - started;
      expect((await engine.jobs.get(job.id))!.status).toBe('completed');
      // Not the receiver's full 10 s timeout: the post is cut at the run's end.
      expect(took).toBeLessThan(3000);
      await engine.close();
    } finally {
      await hang.server.close();
      await pages.close();
    }
  });

  test("webhooks.timeoutMs is the post's timeout: the pages' shorter fetch.timeoutMs does not cut a slower receiver off", { timeout: 30_000 }, async () => {
    const slow = await serve((req, res) => {
      req.resume();
      req.on('end', () => setTimeout(() => res.writeHead(204).end(), 1500));
    });
    const pages = await onePage();
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 1000 }, webhooks: { secret: SECRET, timeoutMs: 10_000 } });
      const job = await engine.jobs.create({ url: pages.url, webhook: { url: `${slow.origin}/hook`, events: ['job.completed'] } });
      await engine.processor.run({ budgetMs: 5000 });
      expect((await engine.jobs.deliveries(job.id)).items[0]).toMatchObject({ state: 'delivered', lastError: null });
      await engine.close();
    } finally {
      await slow.close();
      await pages.close();
    }
  });

  test('an engine without the webhooks option looks at an empty outbox (for schedules) once in QUIET_MS, not on every run', { timeout: 30_000 }, async () => {
    const pages = await onePage();
    try {
      const { storage, calls } = counting(memoryStorage());
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] } }, storage);
      await engine.jobs.create({ url: pages.url });
      const first = await engine.processor.run({ budgetMs: 1500 });
      const outboxCalls = () => Object.fromEntries([...calls].filter(([name]) => name !== 'listResults'));
      const once = outboxCalls();
      expect(Object.keys(once).sort()).toEqual(['claimWebhookDeliveries', 'listWebhookJobs']);
      // Nothing was there: no webhook report.
      expect(first.webhooks).toBeUndefined();
      await engine.processor.run({ budgetMs: 1500 });
      await engine.processor.run({ budgetMs: 1500 });
      expect(outboxCalls()).toEqual(once);
      await engine.close();
    } finally {
      await pages.close();
    }
  });

  test("20 long-running webhook jobs do not starve a 21st job's deliveries", { timeout: 60_000 }, async () => {
    const hook = await receiver();
    // Always 503: a job on it waits for a retry far in the future and stays running.
    const busy = await serve((_req, res) => {
      res.writeHead(503);
      res.end();
    });
    const pages = await onePage();
    try {
      const engine = testEngine({
        fetch: { allowPrivateNetwork: ['127.0.0.1'] },
        retry: { baseDelayMs: 600_000, maxDelayMs: 600_000 },
        webhooks: { secret: SECRET, url: `${hook.server.origin}/hook`, events: ['job.completed'] },
      });
      for (let i = 0; i < 20; i++) await engine.jobs.create({ url: `${busy.origin}/${i}` });
      const quick = await engine.jobs.create({ url: pages.url });
      for (let i = 0; i < 5; i++) await engine.processor.run({ budgetMs: 1000, concurrency: 30 });
      expect((await engine.jobs.get(quick.id))!.status).toBe('completed');
      const busyStatus = (await engine.jobs.list({ limit: 100 })).items.filter((j) => j.id !== quick.id).map((j) => j.status);
      expect(busyStatus.every((s) => s === 'running')).toBe(true);
      // The pump goes on past the first registrations, run after run.
      expect((await engine.jobs.deliveries(quick.id)).items.map((d) => d.event)).toEqual(['job.completed']);
      await engine.close();
    } finally {
      await hook.server.close();
      await busy.close();
      await pages.close();
    }
  });

  test('the pump reads each result (with its content) about once, not again on every pass while the job runs', { timeout: 60_000 }, async () => {
    const hook = await receiver();
    const site = await serve((req, res) => {
      const n = Number((req.url ?? '/').replace(/\D/g, '') || 0);
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(html(`<main><p>${'word '.repeat(20_000)}</p>${n < 19 ? `<a href="/p${n + 1}">next</a>` : ''}</main>`));
      }, 300);
    });
    try {
      const { storage, calls } = counting(memoryStorage());
      let read = 0;
      const list = storage.listResults.bind(storage);
      storage.listResults = async (jobId, query) => {
        const page = await list(jobId, query);
        read += page.items.length;
        return page;
      };
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret: SECRET } }, storage);
      const job = await engine.jobs.create({
        url: site.url,
        maxDepth: 50,
        formats: ['markdown'],
        webhook: { url: `${hook.server.origin}/hook`, events: ['page'] },
      });
      for (let i = 0; i < 20 && (await engine.jobs.get(job.id))!.status !== 'completed'; i++) await engine.processor.run({ budgetMs: 1500, concurrency: 1 });
      await engine.processor.run({ budgetMs: 500 });
      expect((await engine.jobs.get(job.id))!.status).toBe('completed');
      expect(calls.get('listResults')).toBeGreaterThan(0);
      // 20 results of ~100 kB of markdown each, read about once (not the partial page on every pass).
      expect(read).toBeLessThanOrEqual(2 * 20);
      await engine.close();
    } finally {
      await hook.server.close();
      await site.close();
    }
  });

  test('a job cancelled while queued never started: no job.started delivery', { timeout: 30_000 }, async () => {
    const hook = await receiver();
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret: SECRET } });
      const job = await engine.jobs.create({ url: 'http://127.0.0.1:9/', webhook: { url: `${hook.server.origin}/hook` } });
      await engine.jobs.cancel(job.id);
      await engine.processor.run({ budgetMs: 1000 });
      const events = (await engine.jobs.deliveries(job.id)).items.map((d) => d.event);
      expect(events).toEqual(['job.cancelled']);
      await engine.close();
    } finally {
      await hook.server.close();
    }
  });

  test('memoryStorage maxFinishedJobs: a finished job evicted before its pump loses its job.completed delivery', { timeout: 30_000 }, async () => {
    const hook = await receiver();
    const pages = await onePage();
    try {
      const engine = testEngine(
        { fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret: SECRET, url: `${hook.server.origin}/hook`, events: ['job.completed'] } },
        memoryStorage({ maxFinishedJobs: 1 }),
      );
      const first = await engine.jobs.create({ url: `${pages.url}?a` });
      const second = await engine.jobs.create({ url: `${pages.url}?b` });
      for (let i = 0; i < 3; i++) await engine.processor.run({ budgetMs: 800 });
      const completed = hook.received.filter((p) => p.type === 'job.completed').map((p) => (p.type === 'page' ? '' : p.data.job.id));
      expect(completed.sort()).toEqual([first.id, second.id].sort());
      await engine.close();
    } finally {
      await hook.server.close();
      await pages.close();
    }
  });

  test('verifyWebhook given a parsed or missing body (express.json(), no matching content-type) rejects with WebhookVerificationError', async () => {
    const headers = { 'webhook-id': 'msg_x', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,AAAA' };
    for (const body of [undefined, {}, { type: 'page' }]) {
      await expect(verifyWebhook(body as never, headers, SECRET)).rejects.toBeInstanceOf(WebhookVerificationError);
    }
  });

  test('crawl --webhook (memory storage): a delivery that failed once is retried before the command exits, and the summary counts them', {
    timeout: 60_000,
  }, async () => {
    let count = 0;
    const hook = await receiver(() => (++count === 1 ? 503 : 204));
    const pages = await onePage();
    try {
      const args = ['crawl', pages.url, '--allow-private-network', '--webhook', `${hook.server.origin}/hook`];
      const { code, stderr } = await runCli(args, { env: { CRAWL_ENGINE_WEBHOOK_SECRET: SECRET } });
      expect(code, stderr).toBe(0);
      const types = hook.received.map((p) => p.type).sort();
      expect(types, stderr).toEqual(['job.completed', 'job.started', 'page']);
      expect(stderr).toMatch(/Webhooks: 3 delivered\./);
    } finally {
      await hook.server.close();
      await pages.close();
    }
  });

  test("a worker's stop() (or a run's abort signal) is not held up by a receiver that never answers", { timeout: 60_000 }, async () => {
    const hang = await receiver(() => null);
    const pages = await onePage();
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 15_000 }, webhooks: { secret: SECRET } });
      await engine.jobs.create({ url: pages.url, webhook: { url: `${hang.server.origin}/hook` } });
      const worker = engine.processor.start({ idleMs: 100 });
      // Long enough for the job to finish and its first delivery to be posted (and hang).
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const stopping = Date.now();
      await worker.stop();
      expect(Date.now() - stopping).toBeLessThan(2000);
      await engine.close();
    } finally {
      await hang.server.close();
      await pages.close();
    }
  });

  test("an engine without webhooks.secret (a CLI resume, a maintenance script) sharing the storage does not fail other engines' deliveries for good", {
    timeout: 30_000,
  }, async () => {
    const hook = await receiver();
    const pages = await onePage();
    try {
      const storage = memoryStorage();
      const app = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret: SECRET } }, storage);
      const other = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] } }, storage);
      const job = await app.jobs.create({ url: pages.url, webhook: { url: `${hook.server.origin}/hook`, events: ['job.completed'] } });
      // The other engine (no webhooks option) neither pumps a webhook job's events nor posts them;
      // one with webhooks: {} and no secret hands the delivery back untried (see below).
      await other.processor.run({ budgetMs: 1000 });
      expect((await app.jobs.get(job.id))!.status).toBe('completed');
      expect((await app.jobs.deliveries(job.id)).items).toEqual([]);
      expect(hook.received).toEqual([]);
      const unsigned = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: {} }, storage);
      await unsigned.processor.run({ budgetMs: 1000 });
      expect((await app.jobs.deliveries(job.id)).items[0]).toMatchObject({ state: 'pending', attempts: 0, lastError: null });
      expect(hook.received).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await app.processor.run({ budgetMs: 1000 });
      expect((await app.jobs.deliveries(job.id)).items[0]).toMatchObject({ state: 'delivered', attempts: 1 });
      await unsigned.close();
      expect(hook.received.map((p) => p.type)).toEqual(['job.completed']);
      await Promise.all([app.close(), other.close()]);
    } finally {
      await hook.server.close();
      await pages.close();
    }
  });

  test('an engine without the webhooks option (schedules only) claims one batch of due webhook deliveries, hands them back and leaves the outbox alone for a while: it does not stand in the way', async () => {
    const storage = memoryStorage();
    const now = Date.now();
    // 40 due deliveries of a job that posts (made by an engine with the webhooks option).
    const app = testEngine({ webhooks: { secret: SECRET } }, storage);
    const jobId = (await app.jobs.create({ url: 'https://example.com/', webhook: { url: 'https://hooks.example.com/', events: ['page'] } })).id;
    const deliveries = Array.from({ length: 40 }, (_, i) => ({
      id: `msg_${jobId}_${i}`,
      jobId,
      event: 'page' as const,
      url: 'https://hooks.example.com/',
      payload: '{}',
      createdAt: now - 1000,
    }));
    await storage.enqueueWebhookDeliveries!(jobId, null, { seq: 40, resultsCursor: null, resultsSkip: 0, sent: [], done: false }, deliveries);
    const worker = testEngine({}, storage);
    const pushed = async () => (await storage.listWebhookDeliveries!(jobId, { limit: 100 })).items.filter((d) => d.nextAttemptAt > now).length;
    await worker.processor.run({ budgetMs: 300 });
    const first = await pushed();
    // One claim's worth (at most 8) handed back, none tried.
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(8);
    expect((await storage.listWebhookDeliveries!(jobId, { limit: 100 })).items.every((d) => d.attempts === 0 && d.state === 'pending')).toBe(true);
    // Then it leaves the outbox alone: the next runs hand back nothing more.
    await worker.processor.run({ budgetMs: 300 });
    await worker.processor.run({ budgetMs: 300 });
    expect(await pushed()).toBe(first);
    await worker.close();
  });

  test('memoryStorage: a claim does not scan every pending delivery (100,000 pending, none due)', async () => {
    const storage = memoryStorage();
    const now = Date.now();
    for (let j = 0; j < 200; j++) {
      const jobId = `job_${j}`;
      await storage.addWebhookJob!(jobId, now);
      const deliveries = Array.from({ length: 500 }, (_, i) => ({
        id: `msg_${jobId}_${i}`,
        jobId,
        event: 'page' as const,
        url: 'http://x.test/',
        payload: '{}',
        createdAt: now + 3_600_000,
      }));
      await storage.enqueueWebhookDeliveries!(jobId, null, { seq: 500, resultsCursor: null, resultsSkip: 0, sent: [], done: false }, deliveries);
    }
    const started = performance.now();
    await storage.claimWebhookDeliveries!({ limit: 8, leaseMs: 1000, now });
    // A heap of due times: the claim costs what it hands out.
    expect(performance.now() - started).toBeLessThan(10);
  });

  test("one tenant's receiver that never answers does not hold up other jobs' deliveries for its whole timeout", { timeout: 60_000 }, async () => {
    const tarpit = await receiver(() => null);
    let deliveredAt = 0;
    const good = await receiver(() => {
      deliveredAt = Date.now();
      return 204;
    });
    const pages = await onePage();
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 15_000 }, webhooks: { secret: SECRET } });
      for (let i = 0; i < 8; i++)
        await engine.jobs.create({ url: `${pages.url}?${i}`, webhook: { url: `${tarpit.server.origin}/hook`, events: ['job.completed'] } });
      await engine.jobs.create({ url: `${pages.url}?good`, webhook: { url: `${good.server.origin}/hook`, events: ['job.completed'] } });
      const started = Date.now();
      await engine.processor.run({ budgetMs: 2000, concurrency: 10 });
      expect(deliveredAt).toBeGreaterThan(0);
      // At most two posts per receiver: the tarpit holds two slots, the good receiver gets one.
      expect(deliveredAt - started).toBeLessThan(3000);
      await engine.close();
    } finally {
      await tarpit.server.close();
      await good.server.close();
      await pages.close();
    }
  });
  test("a 410 Gone fails a delivery at once; a 503's Retry-After sets the next try (up to retryMaxMs)", { timeout: 30_000 }, async () => {
    const gone = await serve((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(410).end());
    });
    const busy = await serve((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(503, { 'retry-after': '3' }).end());
    });
    const pages = await onePage();
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret: SECRET, retryBaseMs: 100, retryMaxMs: 60_000 } });
      const a = await engine.jobs.create({ url: `${pages.url}?a`, webhook: { url: `${gone.origin}/hook`, events: ['job.completed'] } });
      const b = await engine.jobs.create({ url: `${pages.url}?b`, webhook: { url: `${busy.origin}/hook`, events: ['job.completed'] } });
      const before = Date.now();
      await engine.processor.run({ budgetMs: 1500 });
      expect((await engine.jobs.deliveries(a.id)).items[0]).toMatchObject({ state: 'failed', attempts: 1, lastError: { status: 410 } });
      const [retried] = (await engine.jobs.deliveries(b.id)).items;
      expect(retried).toMatchObject({ state: 'pending', attempts: 1, lastError: { status: 503 } });
      // Not the 50-100 ms of the backoff: the receiver asked for 3 s.
      expect(retried!.nextAttemptAt - before).toBeGreaterThanOrEqual(3000);
      await engine.close();
    } finally {
      await gone.close();
      await busy.close();
      await pages.close();
    }
  });
});
