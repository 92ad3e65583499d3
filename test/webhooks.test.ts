import type { IncomingMessage } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { afterAll, describe, expect, test } from 'vitest';
import { createWebhookSecret, verifyWebhook, WebhookVerificationError } from '../src/index.js';
import type { CrawlStorage } from '../src/core/storage.js';
import type { Job, WebhookPayload } from '../src/core/types.js';
import { deliveryBackoffMs } from '../src/core/webhooks/deliver.js';
import { createCrawlHandler } from '../src/http/index.js';
import { allResults, testEngine } from './helpers/engine.js';
import { closeAll } from './helpers/postgres.js';
import { html, serve, type TestServer } from './helpers/server.js';
import { closeRedis, everyStorage } from './helpers/storages.js';
import { runCli } from './helpers/cli.js';

afterAll(async () => {
  await closeRedis();
  await closeAll();
});

const SECRET = createWebhookSecret();

interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  payload: WebhookPayload;
}

/** A receiver on loopback that records every delivery; `answer` picks the status (default 204). */
async function receiver(answer: (req: IncomingMessage, count: number) => number = () => 204) {
  const received: Received[] = [];
  let count = 0;
  const server = await serve((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const status = answer(req, ++count);
      if (status >= 200 && status < 300) {
        received.push({
          id: String(req.headers['webhook-id']),
          timestamp: String(req.headers['webhook-timestamp']),
          signature: String(req.headers['webhook-signature']),
          body,
          payload: JSON.parse(body) as WebhookPayload,
        });
      }
      res.writeHead(status, status >= 300 && status < 400 ? { location: `${server.origin}/elsewhere` } : {});
      res.end();
    });
  });
  return { server, received, count: () => count };
}

async function site(pages = 5): Promise<TestServer> {
  return serve((req, res) => {
    const n = Number((req.url ?? '/').replace(/\D/g, '') || 0);
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(html(`<h1>page ${n}</h1>${n + 1 < pages ? `<a href="/p${n + 1}">next</a>` : ''}`, `<title>page ${n}</title>`));
  });
}

/** Runs the processor until the job ended and every delivery of it is settled (or `rounds` runs). */
async function settle(engine: ReturnType<typeof testEngine>, jobId: string, rounds = 40): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await engine.processor.run({ budgetMs: 2000 });
    const job = await engine.jobs.get(jobId);
    const deliveries = await engine.jobs.deliveries(jobId, { limit: 1000 });
    if (
      job !== null &&
      ['completed', 'failed', 'cancelled'].includes(job.status) &&
      deliveries.items.length > 0 &&
      deliveries.items.every((d) => d.state !== 'pending')
    ) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(everyStorage)('webhooks (%s)', (_name, makeStorage) => {
  test('a crawl posts job.started, its pages once each and job.completed, signed so that a Standard Webhooks library verifies them', {
    timeout: 60_000,
  }, async () => {
    const storage: CrawlStorage = await makeStorage();
    if (storage.claimWebhookDeliveries === undefined) return;
    const hook = await receiver();
    const pages = await site(7);
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret: SECRET } }, storage);
      const job = await engine.jobs.create({ url: pages.url, maxDepth: 10, webhook: { url: `${hook.server.origin}/hook` } });
      await settle(engine, job.id);
      const types = hook.received.map((r) => r.payload.type);
      // Deliveries of one batch go out in parallel: no order between them is promised.
      expect(types.filter((t) => t === 'job.started')).toHaveLength(1);
      expect(types.filter((t) => t === 'job.completed')).toHaveLength(1);
      // Every result is in exactly one page delivery.
      const posted = hook.received.flatMap((r) => (r.payload.type === 'page' ? r.payload.data.pages.map((p) => p.url) : []));
      const stored = (await allResults(engine, job.id)).map((r) => r.url);
      expect(posted.sort()).toEqual(stored.sort());
      expect(stored).toHaveLength(7);
      // Ids are unique; each verifies with the receiver's library and with verifyWebhook.
      expect(new Set(hook.received.map((r) => r.id)).size).toBe(hook.received.length);
      for (const r of hook.received) {
        const headers = { 'webhook-id': r.id, 'webhook-timestamp': r.timestamp, 'webhook-signature': r.signature };
        expect(new Webhook(SECRET).verify(r.body, headers)).toEqual(r.payload);
        expect(await verifyWebhook(r.body, headers, SECRET)).toEqual(r.payload);
        expect(r.payload.timestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
      }
      const completed = hook.received.find((r) => r.payload.type === 'job.completed')!.payload;
      expect(completed.type === 'job.completed' && completed.data.job.counts.succeeded).toBe(7);
      const deliveries = await engine.jobs.deliveries(job.id);
      expect(deliveries.items.map((d) => d.state)).toEqual(hook.received.map(() => 'delivered'));
      expect(deliveries.items.map((d) => d.id).sort()).toEqual(hook.received.map((r) => r.id).sort());
      await engine.close();
    } finally {
      await hook.server.close();
      await pages.close();
    }
  });

  test('two processors pumping and posting at once: every page in exactly one delivery, each webhook-id one body', { timeout: 60_000 }, async () => {
    const storage: CrawlStorage = await makeStorage();
    if (storage.claimWebhookDeliveries === undefined) return;
    const hook = await receiver();
    const pages = await site(60);
    try {
      const options = { fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret: SECRET } };
      const engines = [testEngine(options, storage), testEngine(options, storage)];
      const job = await engines[0]!.jobs.create({ url: pages.url, maxDepth: 100, maxPages: 60, perHostConcurrency: 4 });
      expect(job.options.webhook).toBeUndefined();
      const hooked = await engines[0]!.jobs.create({
        url: pages.url,
        maxDepth: 100,
        maxPages: 60,
        perHostConcurrency: 4,
        webhook: { url: `${hook.server.origin}/hook` },
      });
      for (let round = 0; round < 60; round++) {
        await Promise.all(engines.map((engine) => engine.processor.run({ budgetMs: 300, concurrency: 3 })));
        const [current, deliveries] = await Promise.all([engines[1]!.jobs.get(hooked.id), engines[1]!.jobs.deliveries(hooked.id, { limit: 1000 })]);
        if (current!.status === 'completed' && deliveries.items.at(-1)?.event === 'job.completed' && deliveries.items.every((d) => d.state === 'delivered'))
          break;
      }
      const byId = new Map<string, string>();
      for (const r of hook.received) {
        expect(byId.get(r.id) ?? r.body).toBe(r.body);
        byId.set(r.id, r.body);
      }
      const unique = [...byId.values()].map((body) => JSON.parse(body) as WebhookPayload);
      const posted = unique.flatMap((p) => (p.type === 'page' ? p.data.pages.map((page) => page.url) : []));
      expect(posted).toHaveLength(60);
      expect(new Set(posted).size).toBe(60);
      expect(unique.filter((p) => p.type === 'job.started')).toHaveLength(1);
      expect(unique.filter((p) => p.type === 'job.completed')).toHaveLength(1);
      await Promise.all(engines.map((engine) => engine.close()));
    } finally {
      await hook.server.close();
      await pages.close();
    }
  });

  test('a failing receiver gets the same webhook-id again after a backoff until it answers 2xx; past maxAttempts the delivery is failed and listed so', {
    timeout: 60_000,
  }, async () => {
    const storage: CrawlStorage = await makeStorage();
    if (storage.claimWebhookDeliveries === undefined) return;
    const ids: string[] = [];
    const flaky = await receiver((req, count) => {
      ids.push(String(req.headers['webhook-id']));
      return count <= 2 ? 503 : 200;
    });
    const down = await receiver(() => 500);
    const pages = await site(1);
    try {
      const engine = testEngine(
        { fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret: SECRET, retryBaseMs: 100, retryMaxMs: 200, maxAttempts: 3 } },
        storage,
      );
      const job = await engine.jobs.create({ url: pages.url, webhook: { url: `${flaky.server.origin}/hook`, events: ['job.completed'] } });
      await settle(engine, job.id);
      expect(ids).toHaveLength(3);
      expect(new Set(ids).size).toBe(1);
      const [delivery] = (await engine.jobs.deliveries(job.id)).items;
      expect(delivery).toMatchObject({ state: 'delivered', attempts: 3, event: 'job.completed', lastError: { code: 'http_error', status: 503 } });

      const failing = await engine.jobs.create({ url: pages.url, webhook: { url: `${down.server.origin}/hook`, events: ['job.completed'] } });
      await settle(engine, failing.id);
      expect(down.count()).toBe(3);
      const [given] = (await engine.jobs.deliveries(failing.id)).items;
      expect(given).toMatchObject({ state: 'failed', attempts: 3, deliveredAt: null, lastError: { code: 'http_error', status: 500, message: 'HTTP 500' } });
      await engine.close();
    } finally {
      await flaky.server.close();
      await down.server.close();
      await pages.close();
    }
  });
});

describe('webhook options and guard', () => {
  test('the secret is never returned; events default to all; a job needs a secret, a storage with an outbox and an engine that delivers', async () => {
    // webhooks: {} (no secret of the engine's own): the processors deliver jobs that bring theirs.
    const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: {} });
    const own = createWebhookSecret();
    const job = await engine.jobs.create({ url: 'http://127.0.0.1:9/', webhook: { url: 'http://127.0.0.1:9/hook', secret: own } });
    const shown: Job[] = [job, (await engine.jobs.get(job.id))!, (await engine.jobs.list()).items[0]!, await engine.jobs.cancel(job.id)];
    for (const one of shown) {
      expect(one.options.webhook).toEqual({ url: 'http://127.0.0.1:9/hook', events: ['job.started', 'page', 'job.completed', 'job.failed', 'job.cancelled'] });
      expect(JSON.stringify(one)).not.toContain(own);
    }
    // Stored, for the processors.
    expect((await engine.storage.getJob(job.id))!.options.webhook!.secret).toBe(own);

    await expect(engine.jobs.create({ url: 'http://127.0.0.1:9/', webhook: { url: 'http://127.0.0.1:9/hook' } })).rejects.toMatchObject({
      code: 'invalid_input',
      errors: [{ path: 'webhook.secret', message: expect.stringContaining('secret') }],
    });
    for (const [webhook, path] of [
      [{ url: 'ftp://127.0.0.1/hook', secret: own }, 'webhook.url'],
      [{ url: 'http://user:pw@127.0.0.1/hook', secret: own }, 'webhook.url'],
      [{ url: 'http://127.0.0.1/hook', secret: 'not-a-secret' }, 'webhook.secret'],
      [{ url: 'http://127.0.0.1/hook', secret: own, events: ['page', 'page'] }, 'webhook.events'],
      [{ url: 'http://127.0.0.1/hook', secret: own, events: ['job.done'] }, 'webhook.events.0'],
      [{ url: 'http://127.0.0.1/hook', secret: own, extra: 1 }, 'webhook'],
    ] as const) {
      const error = await engine.jobs.create({ url: 'http://127.0.0.1:9/', webhook: webhook as never }).catch((e: unknown) => e);
      expect(error, JSON.stringify(webhook)).toMatchObject({ code: 'invalid_input' });
      expect((error as { errors: Array<{ path: string }> }).errors[0]!.path, JSON.stringify(webhook)).toBe(path);
    }
    // The guard: an address the processors may not reach is refused before anything is stored.
    const before = (await engine.jobs.list()).items.length;
    await expect(engine.jobs.create({ url: 'http://127.0.0.1:9/', webhook: { url: 'http://127.0.0.2/hook', secret: own } })).rejects.toMatchObject({
      errors: [{ path: 'webhook.url' }],
    });
    await expect(engine.jobs.create({ url: 'http://127.0.0.1:9/', webhook: { url: 'http://169.254.169.254/latest', secret: own } })).rejects.toMatchObject({
      errors: [{ path: 'webhook.url' }],
    });
    expect((await engine.jobs.list()).items).toHaveLength(before);
    // The engine's default endpoint is checked when the engine is made.
    expect(() => testEngine({ fetch: { allowPrivateNetwork: false }, webhooks: { url: 'http://10.0.0.1/hook', secret: own } })).toThrow(/webhooks\.url/);
    // A storage without an outbox: an engine with webhooks is refused when it is made, and a job's webhook by name.
    expect(() => testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret: own } }, withoutOutbox(engine.storage))).toThrow(
      /webhooks: expected a storage with a webhook outbox/,
    );
    const bare = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] } }, withoutOutbox(engine.storage));
    await expect(bare.jobs.create({ url: 'http://127.0.0.1:9/', webhook: { url: 'http://127.0.0.1:9/hook', secret: own } })).rejects.toMatchObject({
      errors: [{ path: 'webhook', message: expect.stringContaining('outbox') }],
    });
    // An engine made without the webhooks option delivers none, so it takes no job with a webhook.
    const off = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] } }, engine.storage);
    await expect(off.jobs.create({ url: 'http://127.0.0.1:9/', webhook: { url: 'http://127.0.0.1:9/hook', secret: own } })).rejects.toMatchObject({
      errors: [{ path: 'webhook', message: expect.stringContaining('webhooks option') }],
    });
    // Bounds of the options, by name.
    for (const [webhooks, path] of [
      [{ retryBaseMs: 0 }, 'webhooks.retryBaseMs'],
      [{ retryBaseMs: 5000, retryMaxMs: 1000 }, 'webhooks.retryMaxMs'],
      [{ url: 'http://127.0.0.1:0/hook' }, 'webhooks.url'],
      [{ url: 'http:user:pw@127.0.0.1/hook' }, 'webhooks.url'],
      [{ secret: `whsec_${Buffer.alloc(66, 7).toString('base64')}` }, 'webhooks.secret'],
    ] as const) {
      expect(() => testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: webhooks as never }), JSON.stringify(webhooks)).toThrow(
        new RegExp(path.replace('.', '\\.')),
      );
    }
  });

  test('the engine default endpoint applies to every job but those with webhook: null', async () => {
    const engine = testEngine({
      fetch: { allowPrivateNetwork: ['127.0.0.1'] },
      webhooks: { secret: SECRET, url: 'http://127.0.0.1:9/all', events: ['job.completed'] },
    });
    const job = await engine.jobs.create({ url: 'http://127.0.0.1:9/' });
    expect(job.options.webhook).toEqual({ url: 'http://127.0.0.1:9/all', events: ['job.completed'] });
    const none = await engine.jobs.create({ url: 'http://127.0.0.1:9/', webhook: null });
    expect(none.options.webhook).toBeUndefined();
  });

  test('a redirect is not followed: the delivery fails and the redirect target is never reached', { timeout: 30_000 }, async () => {
    const target = await receiver();
    const moved = await receiver(() => 307);
    const pages = await site(1);
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret: SECRET, maxAttempts: 1 } });
      const job = await engine.jobs.create({ url: pages.url, webhook: { url: `${moved.server.origin}/hook`, events: ['job.completed'] } });
      await settle(engine, job.id);
      expect(moved.count()).toBe(1);
      expect(target.count()).toBe(0);
      expect(moved.server.requests).toEqual(['/hook']);
      expect((await engine.jobs.deliveries(job.id)).items[0]).toMatchObject({ state: 'failed', lastError: { status: 307 } });
    } finally {
      await target.server.close();
      await moved.server.close();
      await pages.close();
    }
  });

  test('a receiver that never answers times out; one that answers with a huge body is read no further than the cap', { timeout: 30_000 }, async () => {
    let sent = 0;
    const hang = await serve(() => undefined);
    const huge = await serve((_req, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = () => {
        while (sent < 200 * 1024 * 1024 && res.write(chunk)) sent += chunk.length;
        if (sent < 200 * 1024 * 1024) res.once('drain', pump);
        else res.end();
      };
      pump();
    });
    const pages = await site(1);
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret: SECRET, timeoutMs: 300, maxAttempts: 1 } });
      const slow = await engine.jobs.create({ url: pages.url, webhook: { url: `${hang.origin}/hook`, events: ['job.completed'] } });
      const big = await engine.jobs.create({ url: pages.url, webhook: { url: `${huge.origin}/hook`, events: ['job.completed'] } });
      await settle(engine, slow.id);
      await settle(engine, big.id);
      expect((await engine.jobs.deliveries(slow.id)).items[0]).toMatchObject({ state: 'failed', lastError: { code: 'timeout' } });
      expect((await engine.jobs.deliveries(big.id)).items[0]).toMatchObject({ state: 'delivered' });
      expect(sent).toBeLessThan(50 * 1024 * 1024);
    } finally {
      await hang.close();
      await huge.close();
      await pages.close();
    }
  });

  test('several secrets sign each delivery once each, so receivers verify with either while secrets rotate', { timeout: 30_000 }, async () => {
    const older = createWebhookSecret();
    const newer = createWebhookSecret();
    const hook = await receiver();
    const pages = await site(1);
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: { secret: [older, newer] } });
      const job = await engine.jobs.create({ url: pages.url, webhook: { url: `${hook.server.origin}/hook`, events: ['job.completed'] } });
      await settle(engine, job.id);
      const [r] = hook.received;
      expect(r!.signature.split(' ')).toHaveLength(2);
      const headers = { 'webhook-id': r!.id, 'webhook-timestamp': r!.timestamp, 'webhook-signature': r!.signature };
      for (const secret of [older, newer, [createWebhookSecret(), newer]]) expect((await verifyWebhook(r!.body, headers, secret)).type).toBe('job.completed');
      await expect(verifyWebhook(r!.body, headers, createWebhookSecret())).rejects.toBeInstanceOf(WebhookVerificationError);
      await expect(verifyWebhook(r!.body.replace('completed', 'failed'), headers, newer)).rejects.toBeInstanceOf(WebhookVerificationError);
      const stale = { ...headers, 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 3600) };
      await expect(verifyWebhook(r!.body, stale, newer)).rejects.toThrow(/too old/);
      // Fetch API headers too (a Next.js route).
      expect((await verifyWebhook(r!.body, new Headers(headers), newer)).type).toBe('job.completed');
    } finally {
      await hook.server.close();
      await pages.close();
    }
  });

  test('backoff doubles from retryBaseMs, is capped at retryMaxMs, and is jittered within its upper half', () => {
    const settings = { retryBaseMs: 1000, retryMaxMs: 5000 };
    expect(deliveryBackoffMs(1, settings, () => 0)).toBe(500);
    expect(deliveryBackoffMs(1, settings, () => 1)).toBe(1000);
    expect(deliveryBackoffMs(3, settings, () => 1)).toBe(4000);
    expect(deliveryBackoffMs(10, settings, () => 1)).toBe(5000);
    expect(deliveryBackoffMs(1000, settings, () => 0.5)).toBe(3750);
  });
});

describe('webhooks through the HTTP API', () => {
  test('POST /jobs takes a webhook (its secret never echoed, a bad one a 400 naming the field); GET /jobs/:id/webhooks lists the deliveries', {
    timeout: 30_000,
  }, async () => {
    const hook = await receiver();
    const pages = await site(2);
    try {
      const engine = testEngine({ fetch: { allowPrivateNetwork: ['127.0.0.1'] }, webhooks: {} });
      const handler = createCrawlHandler(engine, { public: true });
      const own = createWebhookSecret();
      const post = (body: unknown) =>
        handler(new Request('http://app.test/api/crawl/jobs', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }));
      const bad = await post({ url: pages.url, webhook: { url: `${hook.server.origin}/hook`, secret: 'whsec_short' } });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { errors: Array<{ path: string }> }).errors[0]!.path).toBe('webhook.secret');
      const created = await post({ url: pages.url, webhook: { url: `${hook.server.origin}/hook`, secret: own, events: ['page', 'job.completed'] } });
      expect(created.status).toBe(201);
      const text = await created.text();
      expect(text).not.toContain(own);
      const job = JSON.parse(text) as Job;
      await settle(engine, job.id);
      const listed = await handler(new Request(`http://app.test/api/crawl/jobs/${job.id}/webhooks?limit=1`));
      expect(listed.status).toBe(200);
      const page = (await listed.json()) as { items: Array<{ id: string; state: string; event: string }>; nextCursor: string | null };
      expect(page.items).toHaveLength(1);
      expect(page.items[0]).toMatchObject({ state: 'delivered', event: 'page' });
      expect(page.nextCursor).not.toBeNull();
      const bothTypes = hook.received.map((r) => r.payload.type);
      expect(bothTypes).toContain('job.completed');
      expect(
        await verifyWebhook(
          hook.received[0]!.body,
          { 'webhook-id': hook.received[0]!.id, 'webhook-timestamp': hook.received[0]!.timestamp, 'webhook-signature': hook.received[0]!.signature },
          own,
        ),
      ).toEqual(hook.received[0]!.payload);
      const missing = await handler(new Request('http://app.test/api/crawl/jobs/job_nope/webhooks'));
      expect(missing.status).toBe(404);
      const badCursor = await handler(new Request(`http://app.test/api/crawl/jobs/${job.id}/webhooks?cursor=zz`));
      expect(badCursor.status).toBe(400);
    } finally {
      await hook.server.close();
      await pages.close();
    }
  });
});

describe('webhooks from the CLI', () => {
  const run = (args: string[], env: Record<string, string>) => runCli(args, { env });

  test("crawl --webhook URL posts the job's events signed with CRAWL_ENGINE_WEBHOOK_SECRET; without the variable it is a usage error", {
    timeout: 60_000,
  }, async () => {
    const hook = await receiver();
    const pages = await site(3);
    try {
      const secret = createWebhookSecret();
      const args = ['crawl', pages.url, '--allow-private-network', '--quiet', '--webhook', `${hook.server.origin}/hook`];
      const missing = await run(args, { CRAWL_ENGINE_WEBHOOK_SECRET: '' });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('CRAWL_ENGINE_WEBHOOK_SECRET');
      const done = await run(args, { CRAWL_ENGINE_WEBHOOK_SECRET: secret });
      expect(done.code, done.stderr).toBe(0);
      const types = hook.received.map((r) => r.payload.type);
      // Deliveries of one batch go out in parallel: no order between them is promised.
      expect(types.filter((t) => t === 'job.started')).toHaveLength(1);
      expect(types.filter((t) => t === 'job.completed')).toHaveLength(1);
      for (const r of hook.received) {
        const headers = { 'webhook-id': r.id, 'webhook-timestamp': r.timestamp, 'webhook-signature': r.signature };
        expect(await verifyWebhook(r.body, headers, secret)).toEqual(r.payload);
      }
    } finally {
      await hook.server.close();
      await pages.close();
    }
  });
});

function withoutOutbox(storage: CrawlStorage): CrawlStorage {
  const {
    addWebhookJob: _a,
    listWebhookJobs: _b,
    removeWebhookJob: _c,
    enqueueWebhookDeliveries: _d,
    claimWebhookDeliveries: _e,
    settleWebhookDelivery: _f,
    listWebhookDeliveries: _g,
    ...rest
  } = storage;
  return rest as CrawlStorage;
}
