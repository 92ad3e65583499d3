import { afterEach, describe, expect, test, vi } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { startSite, type Site } from './fixtures/site.mjs';
import { createCrawlEngine } from '../src/core/engine.js';
import { createCrawlHandler } from '../src/http/index.js';
import type { Job, ProgressEvent, RunReport } from '../src/core/types.js';
import { readSse } from './helpers/sse.js';

const BASE = 'http://app.test/api/crawl';
let site: Site | null = null;
afterEach(async () => {
  await site?.close();
  site = null;
});

function setup(options: Parameters<typeof createCrawlHandler>[1] = {}) {
  const engine = createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: true }, retry: { baseDelayMs: 10, maxDelayMs: 50 } });
  const handler = createCrawlHandler(engine, options);
  const call = (method: string, path: string, init: { body?: string; headers?: Record<string, string>; signal?: AbortSignal } = {}) =>
    handler(new Request(`${BASE}${path}`, { method, body: init.body ?? null, headers: init.headers ?? {}, ...(init.signal ? { signal: init.signal } : {}) }));
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    call('POST', path, { body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  return { engine, handler, call, post };
}

async function problemOf(res: Response) {
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  return (await res.json()) as { type: string; title: string; status: number; code: string; detail: string; errors?: Array<{ path: string; message: string }> };
}

describe('job routes', () => {
  test('POST /jobs creates a job (201 with Location), GET /jobs/:id reads it, GET /jobs lists it', async () => {
    const { post, call } = setup();
    const res = await post('/jobs', { url: 'https://example.com/', maxPages: 5 });
    expect(res.status).toBe(201);
    const job = (await res.json()) as Job;
    expect(job).toMatchObject({ status: 'queued', url: 'https://example.com/', options: { maxPages: 5 } });
    expect(res.headers.get('location')).toBe(`/api/crawl/jobs/${job.id}`);
    expect(await (await call('GET', `/jobs/${job.id}`)).json()).toEqual(job);
    const list = (await (await call('GET', '/jobs?limit=10&status=queued')).json()) as { items: Job[]; nextCursor: string | null };
    expect(list.items.map((j) => j.id)).toEqual([job.id]);
  });

  test('bad input is a 400 problem naming every field', async () => {
    const { post, engine } = setup();
    const res = await post('/jobs', { url: 'file:///etc/passwd', maxDepth: -1, extra: true });
    expect(res.status).toBe(400);
    const body = await problemOf(res);
    expect(body).toMatchObject({ status: 400, code: 'invalid_input', type: 'urn:crawl-engine:problem:invalid_input', title: 'Invalid input' });
    expect(body.errors!.map((e) => e.path).sort()).toEqual(['(root)', 'maxDepth', 'url']);
    expect((await engine.jobs.list()).items).toEqual([]);
    const badPriority = await problemOf(await post('/jobs', { url: 'https://example.com/', priority: 'high' }));
    expect(badPriority).toMatchObject({ status: 400, code: 'invalid_input', errors: [{ path: 'priority' }] });
  });

  test('malformed JSON is 400, a non-JSON body 415, an oversized body 413', async () => {
    const { post, call } = setup({ maxBodyBytes: 100 });
    expect(await problemOf(await post('/jobs', '{"url": '))).toMatchObject({ status: 400, code: 'invalid_json' });
    expect(await problemOf(await post('/jobs', ''))).toMatchObject({ status: 400, code: 'invalid_json' });
    expect(await problemOf(await call('POST', '/jobs', { body: 'url=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }))).toMatchObject({
      status: 415,
      code: 'unsupported_media_type',
    });
    expect(await problemOf(await post('/jobs', { url: `https://example.com/${'a'.repeat(200)}` }))).toMatchObject({ status: 413, code: 'payload_too_large' });
  });

  test('unknown paths are 404, wrong methods 405 with Allow', async () => {
    const { call } = setup();
    expect((await problemOf(await call('GET', '/nope'))).code).toBe('not_found');
    const res = await call('PUT', '/jobs');
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, POST');
    expect((await call('POST', '/jobs/job_x')).headers.get('allow')).toBe('GET, DELETE');
    const outside = await createCrawlHandler(setup().engine)(new Request('http://app.test/elsewhere'));
    expect(outside.status).toBe(404);
  });

  test('every route answers an unknown method with 405 and its own Allow; HEAD is served as GET', async () => {
    const { call, post } = setup({ cronSecret: 'a-secret-of-16-chars!' });
    const cases: Array<[string, string, string]> = [
      ['PATCH', '/jobs/', 'GET, POST'],
      ['PUT', '/jobs/job_x', 'GET, DELETE'],
      ['DELETE', '/jobs/job_x/results', 'GET'],
      ['POST', '/jobs/job_x/events/', 'GET'],
      ['DELETE', '/process', 'GET, POST'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await call(method, path);
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow);
      expect((await problemOf(res)).detail).toBe(`${method} is not allowed on /api/crawl${path}; use ${allow.split(', ').join(' or ')}`);
    }
    // Known methods on unknown or over-long paths stay 404, and a malformed id's escape a 400 naming `id`.
    expect((await call('GET', '/jobs/job_x/results/extra')).status).toBe(404);
    expect((await call('PUT', '/jobs//')).status).toBe(404);
    expect(await problemOf(await call('GET', '/jobs/%ZZ/events'))).toMatchObject({ status: 400, errors: [{ path: 'id' }] });
    const job = (await (await post('/jobs', { url: 'https://example.com/' })).json()) as Job;
    const head = await call('HEAD', `/jobs/${job.id}`);
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toMatch(/application\/json/);
  });

  test('unknown or malformed job ids are 404 on every job route', async () => {
    const { call } = setup();
    for (const path of ['/jobs/job_missing', '/jobs/..%2F..%2Fetc/results', '/jobs/job_missing/events', '/jobs/%00']) {
      expect((await call('GET', path)).status, path).toBe(404);
    }
    expect((await call('DELETE', '/jobs/job_missing')).status).toBe(404);
  });

  test('DELETE cancels (idempotent) and is 409 for a finished job', async () => {
    site = await startSite({ pages: 3, fanout: 1 });
    const { post, call, engine } = setup();
    const job = (await (await post('/jobs', { url: 'https://example.com/' })).json()) as Job;
    expect(((await (await call('DELETE', `/jobs/${job.id}`)).json()) as Job).status).toBe('cancelled');
    expect((await call('DELETE', `/jobs/${job.id}`)).status).toBe(200);
    const done = await engine.crawl({ url: site.url });
    const conflict = await call('DELETE', `/jobs/${done.id}`);
    expect(conflict.status).toBe(409);
    expect((await problemOf(conflict)).detail).toMatch(/already completed/);
    await engine.close();
  });

  test('DELETE ?purge=true deletes a job and its data (200 { id, deleted }), a running one too; 404 for unknown; a bad purge is 400 naming it', async () => {
    site = await startSite({ pages: 3, fanout: 1 });
    const { post, call, engine } = setup();
    const done = await engine.crawl({ url: site.url });
    const running = (await (await post('/jobs', { url: 'https://example.com/' })).json()) as Job;
    await engine.storage.claim({ limit: 1, leaseMs: 60_000, now: Date.now(), jobId: running.id });
    const cancelled: string[] = [];
    engine.events.on('job:cancelled', (e) => cancelled.push(e.jobId));
    for (const job of [done, running]) {
      const res = await call('DELETE', `/jobs/${job.id}?purge=true`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      expect(await res.json()).toEqual({ id: job.id, deleted: true });
      expect((await call('GET', `/jobs/${job.id}`)).status).toBe(404);
      expect((await call('GET', `/jobs/${job.id}/results`)).status).toBe(404);
    }
    expect(cancelled).toEqual([running.id]);
    expect((await call('DELETE', `/jobs/${done.id}?purge=true`)).status).toBe(404);
    expect((await call('DELETE', '/jobs/..%2Fx?purge=true')).status).toBe(404);
    for (const bad of ['yes', '1', '']) {
      const res = await call('DELETE', `/jobs/job_x?purge=${bad}`);
      expect(res.status, bad).toBe(400);
      expect(await problemOf(res)).toMatchObject({ code: 'invalid_input', errors: [{ path: 'purge', message: 'expected true or false' }] });
    }
    // purge=false is the plain cancel.
    const other = (await (await post('/jobs', { url: 'https://example.com/' })).json()) as Job;
    expect(((await (await call('DELETE', `/jobs/${other.id}?purge=false`)).json()) as Job).status).toBe('cancelled');
    await engine.close();
  });

  test('DELETE ?purge=true on a storage that cannot delete is 501 not_implemented, not a server error', async () => {
    const storage = memoryStorage();
    const limited = new Proxy(storage, {
      get: (target, prop) => (prop === 'deleteJob' ? undefined : (Reflect.get(target, prop, target) as unknown)),
    });
    const errors: unknown[] = [];
    const engine = createCrawlEngine({ storage: limited });
    const handler = createCrawlHandler(engine, { onError: (error) => errors.push(error) });
    const job = await engine.jobs.create({ url: 'https://example.com/' });
    const res = await handler(new Request(`${BASE}/jobs/${job.id}?purge=true`, { method: 'DELETE' }));
    expect(res.status).toBe(501);
    expect(await problemOf(res)).toMatchObject({ code: 'not_implemented' });
    expect(errors).toEqual([]);
    expect((await engine.jobs.get(job.id))?.status).toBe('queued');
  });

  test('an onError that throws, or rejects, does not replace the 500 the client gets (it is logged with the error)', async () => {
    const storage = memoryStorage();
    const broken = new Proxy(storage, {
      get: (target, prop) => (prop === 'getJob' ? () => Promise.reject(new Error('database down')) : (Reflect.get(target, prop, target) as unknown)),
    });
    const engine = createCrawlEngine({ storage: broken });
    const logged: unknown[][] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void logged.push(args));
    try {
      for (const onError of [
        () => {
          throw new Error('onError broke');
        },
        () => Promise.reject(new Error('onError broke')),
      ]) {
        const handler = createCrawlHandler(engine, { onError });
        const res = await handler(new Request(`${BASE}/jobs/job_x`));
        expect(res.status).toBe(500);
        expect(await problemOf(res)).toMatchObject({ code: 'internal' });
      }
      await vi.waitFor(() => expect(logged).toHaveLength(2));
      for (const args of logged) expect(args.map(String).join(' ')).toMatch(/onError failed \(http handler\).*database down.*onError broke/);
    } finally {
      spy.mockRestore();
    }
  });

  test('DELETE ?purge=true asks authorize() for the action delete, and a refusal deletes nothing', async () => {
    const seen: string[] = [];
    const { post, call, engine } = setup({
      authorize: (req, { action, jobId }) => {
        seen.push(`${action}:${jobId ?? '-'}`);
        return action !== 'delete' || req.headers.get('x-user') === 'admin';
      },
    });
    const job = (await (await post('/jobs', { url: 'https://example.com/' })).json()) as Job;
    expect((await call('DELETE', `/jobs/${job.id}?purge=true`)).status).toBe(401);
    expect(await engine.jobs.get(job.id)).not.toBeNull();
    expect((await call('DELETE', `/jobs/${job.id}?purge=true`, { headers: { 'x-user': 'admin' } })).status).toBe(200);
    expect((await call('DELETE', `/jobs/${job.id}`)).status).toBe(404);
    expect(seen).toEqual(['create:-', `delete:${job.id}`, `delete:${job.id}`, `cancel:${job.id}`]);
  });

  test('GET /jobs/:id/results pages through results and validates the query', async () => {
    site = await startSite({ pages: 12, fanout: 3 });
    const { call, engine } = setup();
    const job = await engine.crawl({ url: site.url, maxDepth: 5 });
    await engine.close();
    const first = (await (await call('GET', `/jobs/${job.id}/results?limit=5`)).json()) as { items: unknown[]; nextCursor: string };
    expect(first.items).toHaveLength(5);
    const rest = (await (await call('GET', `/jobs/${job.id}/results?limit=100&cursor=${first.nextCursor}`)).json()) as { items: unknown[]; nextCursor: null };
    expect(first.items.length + rest.items.length).toBe(12);
    expect(rest.nextCursor).toBeNull();
    expect(await problemOf(await call('GET', `/jobs/${job.id}/results?limit=0`))).toMatchObject({ status: 400, errors: [{ path: 'limit' }] });
    expect(await problemOf(await call('GET', `/jobs/${job.id}/results?limit=abc`))).toMatchObject({ status: 400 });
    expect((await call('GET', `/jobs/${job.id}/results?cursor=bogus`)).status).toBe(400);
  });

  test('authorize() guards the job routes: false is 401, a Response is returned as it is', async () => {
    const seen: string[] = [];
    const { post, call } = setup({
      authorize: (req, { action, jobId }) => {
        seen.push(`${action}:${jobId ?? '-'}`);
        if (req.headers.get('x-user') === 'ann') return true;
        if (req.headers.get('x-user') === 'bob') return new Response('no bob', { status: 403 });
        return false;
      },
    });
    expect((await post('/jobs', { url: 'https://example.com/' })).status).toBe(401);
    const ok = await post('/jobs', { url: 'https://example.com/' }, { 'x-user': 'ann' });
    expect(ok.status).toBe(201);
    const job = (await ok.json()) as Job;
    expect((await call('GET', `/jobs/${job.id}`, { headers: { 'x-user': 'bob' } })).status).toBe(403);
    expect(seen).toEqual(['create:-', 'create:-', `read:${job.id}`]);
  });
});

describe('the process route', () => {
  test('needs the cron secret as a bearer token (GET for Vercel Cron, and POST) and returns the run report', async () => {
    site = await startSite({ pages: 5, fanout: 2 });
    const { call, post, engine } = setup({ cronSecret: 's3cret-0123456789abcdef', processBudgetMs: 5000 });
    const job = (await (await post('/jobs', { url: site.url, maxDepth: 3 })).json()) as Job;
    expect((await call('GET', '/process')).status).toBe(401);
    const wrong = await call('GET', '/process', { headers: { authorization: 'Bearer s3cre' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer');
    expect((await call('POST', '/process', { headers: { authorization: 'Bearer s3cret-0123456789abcdef!' } })).status).toBe(401);
    const ran = await call('GET', `/process?jobId=${job.id}`, { headers: { authorization: 'Bearer s3cret-0123456789abcdef' } });
    expect(ran.status).toBe(200);
    const report = (await ran.json()) as RunReport;
    expect(report).toMatchObject({ claimed: 5, succeeded: 5, failed: 0 });
    expect((await engine.jobs.get(job.id))?.status).toBe('completed');
    expect((await call('POST', '/process', { headers: { authorization: 'bearer s3cret-0123456789abcdef' } })).status).toBe(200);
    expect((await call('GET', '/process?jobId=../x', { headers: { authorization: 'Bearer s3cret-0123456789abcdef' } })).status).toBe(400);
    await engine.close();
  });
});

describe('GET /jobs/:id/events (SSE)', () => {
  test('streams every event with id and event name, then ends after the terminal event', async () => {
    site = await startSite({ pages: 10, fanout: 3, latencyMs: 5 });
    const { post, call, engine } = setup({ heartbeatMs: 20 });
    const job = (await (await post('/jobs', { url: site.url, maxDepth: 5 })).json()) as Job;
    const res = await call('GET', `/jobs/${job.id}/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    const reading = readSse(res.body!);
    await engine.processor.run({ jobId: job.id });
    const messages = await reading;
    await engine.close();
    expect(messages[0]!.retry).toBe(2000);
    const events = messages.filter((m) => m.event !== undefined);
    expect(events.map((m) => m.event)).toEqual(['job:created', 'job:started', ...Array(10).fill('page:done'), 'job:completed']);
    for (const m of events) expect((JSON.parse(m.data!) as ProgressEvent).id).toBe(m.id);
    expect(events.map((m) => Number(m.id))).toEqual(events.map((_, i) => i + 1));
  });

  test('Last-Event-ID (or ?after=) resumes with no event lost or repeated; a finished job past its end is 204', async () => {
    site = await startSite({ pages: 8, fanout: 2 });
    const { call, engine } = setup();
    const job = await engine.crawl({ url: site.url, maxDepth: 5 });
    await engine.close();
    const all = (await readSse((await call('GET', `/jobs/${job.id}/events`)).body!)).filter((m) => m.id);
    const firstPart = all.slice(0, 4);
    const resumed = (await readSse((await call('GET', `/jobs/${job.id}/events`, { headers: { 'last-event-id': firstPart.at(-1)!.id! } })).body!)).filter(
      (m) => m.id,
    );
    expect([...firstPart, ...resumed].map((m) => m.id)).toEqual(all.map((m) => m.id));
    const viaQuery = (await readSse((await call('GET', `/jobs/${job.id}/events?after=${all[5]!.id}`)).body!)).filter((m) => m.id);
    expect(viaQuery.map((m) => m.id)).toEqual(all.slice(6).map((m) => m.id));
    expect((await call('GET', `/jobs/${job.id}/events`, { headers: { 'last-event-id': all.at(-1)!.id! } })).status).toBe(204);
    expect((await call('GET', `/jobs/${job.id}/events?after=abc`)).status).toBe(400);
  });

  test('engine.progress.hasEventsAfter(), which decides that 204, says whether a reader has events left', async () => {
    const { engine, post } = setup();
    const job = (await (await post('/jobs', { url: 'https://example.com/' })).json()) as Job;
    await engine.jobs.cancel(job.id);
    const ids: string[] = [];
    for await (const event of engine.progress.subscribe(job.id)) ids.push(event.id);
    expect(ids).toHaveLength(2);
    expect(await engine.progress.hasEventsAfter(job.id, null)).toBe(true);
    expect(await engine.progress.hasEventsAfter(job.id, ids[0]!)).toBe(true);
    expect(await engine.progress.hasEventsAfter(job.id, ids[1]!)).toBe(false);
    expect(await engine.progress.hasEventsAfter('job_missing', null)).toBe(false);
    await expect(engine.progress.hasEventsAfter(job.id, 7 as never)).rejects.toMatchObject({ code: 'invalid_input', errors: [{ path: 'after' }] });
  });

  test('sends heartbeats while idle, ends at maxStreamMs, and releases the subscription when the client goes away', async () => {
    const { post, call, engine } = setup({ heartbeatMs: 30, maxStreamMs: 200 });
    const job = (await (await post('/jobs', { url: 'https://example.com/' })).json()) as Job;
    const started = Date.now();
    const messages = await readSse((await call('GET', `/jobs/${job.id}/events`)).body!);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(messages.filter((m) => m.comment === 'heartbeat').length).toBeGreaterThanOrEqual(3);
    expect(messages.filter((m) => m.event).map((m) => m.event)).toEqual(['job:created']);

    // A storage that counts live watchers, to see the subscription released on disconnect.
    const storage = memoryStorage();
    let watchers = 0;
    const counted = {
      ...storage,
      watch: (id: string, listener: () => void) => {
        watchers++;
        const off = storage.watch!(id, listener);
        return () => {
          watchers--;
          off();
        };
      },
    };
    const watched = createCrawlEngine({ storage: counted });
    const watchedHandler = createCrawlHandler(watched, { heartbeatMs: 30 });
    const other = await watched.jobs.create({ url: 'https://example.com/' });
    const controller = new AbortController();
    const res = await watchedHandler(new Request(`${BASE}/jobs/${other.id}/events`, { signal: controller.signal }));
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    const drain = async () => {
      for (;;) {
        const chunk = await reader.read().catch(() => ({ done: true }));
        if (chunk.done) return 'closed';
      }
    };
    expect(watchers).toBe(1);
    expect(await Promise.race([drain(), new Promise((r) => setTimeout(() => r('still open'), 1000))])).toBe('closed');
    await new Promise((r) => setTimeout(r, 20));
    expect(watchers).toBe(0);
    void engine;
  });

  test('a job whose old events were trimmed starts with a progress snapshot', async () => {
    site = await startSite({ pages: 40, fanout: 3 });
    const engine = createCrawlEngine({ storage: memoryStorage({ maxEventsPerJob: 8 }), fetch: { allowPrivateNetwork: true } });
    const handler = createCrawlHandler(engine);
    const job = await engine.crawl({ url: site.url, maxDepth: 6, maxPages: 40 });
    await engine.close();
    const messages = (await readSse((await handler(new Request(`${BASE}/jobs/${job.id}/events`, { headers: { 'last-event-id': '1' } }))).body!)).filter(
      (m) => m.event,
    );
    expect(messages[0]!.event).toBe('progress');
    expect(messages.at(-1)!.event).toBe('job:completed');
    const ids = messages.map((m) => Number(m.id));
    expect(ids).toEqual(ids.map((_, i) => ids[0]! + i));
  });
});
