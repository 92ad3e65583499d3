// Over 300 lines in one file: the Express, Next.js and browser-client tests share the loopback site fixture, the server cleanup and newEngine() below.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventSource } from 'eventsource';
import express from 'express';
import express4 from 'express4';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { startSite, type Site } from './fixtures/site.mjs';
import { createCrawlClient, CrawlClientError, watchJob } from '../src/browser/client.js';
import { createCrawlEngine, type CrawlEngine } from '../src/core/engine.js';
import { createExpressRouter } from '../src/http/express.js';
import { createNextHandlers } from '../src/http/next.js';
import type { Job, ProgressEvent, RunReport } from '../src/core/types.js';
import { readSse } from './helpers/sse.js';

let site: Site | null = null;
const servers: Server[] = [];
afterEach(async () => {
  await site?.close();
  site = null;
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise((r) => {
          s.closeAllConnections();
          s.close(r);
        }),
    ),
  );
});

const newEngine = () => createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: true }, retry: { baseDelayMs: 10, maxDelayMs: 50 } });

async function listen(app: { listen: (port: number, host: string, cb: () => void) => Server }): Promise<string> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function expressApp(engine: CrawlEngine, flavour: 'express5' | 'express4' | 'parsed-body'): Promise<string> {
  const app = flavour === 'express4' ? express4() : express();
  if (flavour === 'parsed-body') app.use(express.json());
  app.use('/api/crawl', createExpressRouter(engine, { heartbeatMs: 50 }) as never);
  app.get('/health', (_req: unknown, res: { send: (s: string) => void }) => res.send('ok'));
  return listen(app as never);
}

describe.each(['express5', 'express4', 'parsed-body'] as const)('createExpressRouter (%s)', (flavour) => {
  test('serves the API under its mount path, with streaming SSE and a resume across a forced disconnect', async () => {
    site = await startSite({ pages: 30, fanout: 3, latencyMs: 10 });
    const engine = newEngine();
    const origin = await expressApp(engine, flavour);
    const created = await fetch(`${origin}/api/crawl/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: site.url, maxDepth: 5, maxPages: 30 }),
    });
    expect(created.status).toBe(201);
    const job = (await created.json()) as Job;
    expect(created.headers.get('location')).toBe(`/api/crawl/jobs/${job.id}`);
    expect(((await (await fetch(`${origin}/api/crawl/jobs/${job.id}`)).json()) as Job).id).toBe(job.id);
    expect((await fetch(`${origin}/api/crawl/jobs/nope`)).status).toBe(404);
    expect(await (await fetch(`${origin}/health`)).text()).toBe('ok');

    const running = engine.processor.run({ jobId: job.id, concurrency: 2 });
    // First connection: read a few events, then drop it.
    const first = new AbortController();
    const res = await fetch(`${origin}/api/crawl/jobs/${job.id}/events`, { signal: first.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const part1 = (await readSse(res.body!, (_m, all) => all.filter((x) => x.id).length >= 5)).filter((m) => m.id);
    first.abort();
    // Reconnect with Last-Event-ID, as EventSource does.
    const res2 = await fetch(`${origin}/api/crawl/jobs/${job.id}/events`, { headers: { 'last-event-id': part1.at(-1)!.id! } });
    const part2 = (await readSse(res2.body!)).filter((m) => m.id);
    await running;
    await engine.close();
    const ids = [...part1, ...part2].map((m) => Number(m.id));
    expect(ids).toEqual(ids.map((_, i) => i + 1));
    expect(part2.at(-1)!.event).toBe('job:completed');
    expect(ids.length).toBe(2 + 30 + 1);
  });
});

describe('the client', () => {
  test('watchJob() over EventSource delivers every event once and resolves with the terminal one; createCrawlClient wraps the routes', async () => {
    site = await startSite({ pages: 15, fanout: 3, latencyMs: 5 });
    const engine = newEngine();
    const origin = await expressApp(engine, 'express5');
    const client = createCrawlClient({ baseUrl: `${origin}/api/crawl`, EventSource: EventSource as never });
    const job = await client.createJob({ url: site.url, maxDepth: 5 });
    const seen: ProgressEvent[] = [];
    const watching = client.watch(job.id, { onEvent: (e) => seen.push(e) });
    await engine.processor.run({ jobId: job.id });
    const terminal = await watching;
    expect(terminal?.type).toBe('job:completed');
    expect(seen.map((e) => Number(e.id))).toEqual(seen.map((_, i) => i + 1));
    expect((await client.getJob(job.id)).status).toBe('completed');
    expect((await client.results(job.id, { limit: 100 })).items).toHaveLength(15);
    // A watcher that arrives after the end gets the history, then the stream stops.
    const late: string[] = [];
    expect((await watchJob(client.eventsUrl(job.id), { onEvent: (e) => late.push(e.type), EventSource: EventSource as never }))?.type).toBe('job:completed');
    expect(late.at(-1)).toBe('job:completed');
    const error = await client.createJob({ url: 'nope' } as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrawlClientError);
    expect(error).toMatchObject({ status: 400, code: 'invalid_input', errors: [{ path: 'url' }] });
    const other = await client.createJob({ url: 'https://example.com/' });
    expect((await client.cancelJob(other.id)).status).toBe('cancelled');
    const aborted = new AbortController();
    const pending = client.watch(other.id, { onEvent: () => undefined, signal: aborted.signal });
    aborted.abort();
    expect(await pending).toBeNull();
    expect(await client.deleteJob(other.id)).toEqual({ id: other.id, deleted: true });
    expect(await client.getJob(other.id).catch((e: unknown) => e)).toMatchObject({ status: 404 });
    expect(await client.deleteJob(other.id).catch((e: unknown) => e)).toMatchObject({ status: 404 });
    await engine.close();
  });
});

describe('createNextHandlers', () => {
  test('a created job starts processing with after() and finishes without cron; a run with work left chains the next through the process route', async () => {
    site = await startSite({ pages: 40, fanout: 3, latencyMs: 20 });
    const engine = newEngine();
    const tasks: Array<() => Promise<void>> = [];
    const processCalls: string[] = [];
    let afterCalls = 0;
    const handlers: ReturnType<typeof createNextHandlers> = createNextHandlers(engine, {
      // Next.js skips the after() tasks of a request whose client has gone, as the previous link of
      // a chain has after 2 s: only the job's creation may count on after().
      after: (task) => {
        if (++afterCalls === 1) tasks.push(task);
      },
      afterBudgetMs: 60,
      cronSecret: 'cron-secret-0123456789',
      origin: 'http://app.test/',
      fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
        processCalls.push(String(input));
        return handlers.POST(new Request(input, init));
      }) as typeof fetch,
    });
    const params = Promise.resolve({ path: ['jobs'] });
    const res = await handlers.POST(
      new Request('http://app.test/api/crawl/jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: site.url, maxDepth: 6, maxPages: 40 }),
      }),
      { params },
    );
    expect(res.status).toBe(201);
    const job = (await res.json()) as Job;
    expect(tasks).toHaveLength(1);
    await tasks.shift()!();
    // Links of the chain longer than the 2 s a link waits go on without their caller.
    await vi.waitFor(async () => expect((await engine.jobs.get(job.id))?.status).toBe('completed'), { timeout: 20_000, interval: 50 });
    expect(afterCalls).toBe(1);
    expect(processCalls.length).toBeGreaterThan(0);
    expect(processCalls[0]).toBe(`http://app.test/api/crawl/process?jobId=${job.id}`);
    const got = await handlers.GET(new Request(`http://app.test/api/crawl/jobs/${job.id}`), { params: Promise.resolve({ path: ['jobs', job.id] }) });
    expect(((await got.json()) as Job).counts.succeeded).toBe(40);
    const del = await handlers.DELETE(new Request(`http://app.test/api/crawl/jobs/${job.id}`, { method: 'DELETE' }));
    expect(del.status).toBe(409);
    await engine.close();
  });

  test('chaining sends the cron secret only to the configured origin, to this machine, or on Vercel: never to a Host the client chose', async () => {
    site = await startSite({ pages: 30, fanout: 3, latencyMs: 20 });
    const calls: Array<{ url: string; authorization: string | null }> = [];
    const errors: string[] = [];
    const make = (extra: Partial<Parameters<typeof createNextHandlers>[1]> = {}) => {
      const engine = newEngine();
      const tasks: Array<() => Promise<void>> = [];
      const handlers = createNextHandlers(engine, {
        after: (task) => tasks.push(task),
        afterBudgetMs: 30,
        cronSecret: 'cron-secret-0123456789',
        onError: (error) => errors.push(String(error)),
        fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
          calls.push({ url: String(input), authorization: new Headers(init?.headers).get('authorization') });
          return new Response('{}', { status: 200 });
        }) as typeof fetch,
        ...extra,
      });
      return {
        engine,
        handlers,
        /** Creates a job through a request to `origin`, runs its after() task, and says which URLs were called back. */
        async create(origin: string): Promise<string[]> {
          calls.length = 0;
          const res = await handlers.POST(
            new Request(`${origin}/api/crawl/jobs`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ url: site!.url, maxDepth: 6 }),
            }),
          );
          expect(res.status).toBe(201);
          while (tasks.length > 0) await tasks.shift()!();
          return calls.map((call) => call.url);
        },
      };
    };
    const plain = make();
    // A forged Host: nothing is sent there, and the operator is told once how to chain.
    expect(await plain.create('http://attacker.example')).toEqual([]);
    expect(await plain.create('http://attacker.example')).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/not chaining .*attacker\.example.*set the origin option/);
    // This machine (next dev, next start): its own origin.
    const local = await plain.create('http://127.0.0.1:3000');
    expect(local).toHaveLength(1);
    expect(local[0]).toMatch(/^http:\/\/127\.0\.0\.1:3000\/api\/crawl\/process\?jobId=/);
    expect(calls[0]!.authorization).toBe('Bearer cron-secret-0123456789');
    expect((await plain.create('http://localhost:3000'))[0]).toMatch(/^http:\/\/localhost:3000\//);
    // Behind a TLS proxy req.url says https (X-Forwarded-Proto), and a Host may name another port:
    // the call goes to this server, in plain http, at the port it listens on.
    vi.stubEnv('PORT', '3000');
    try {
      expect((await plain.create('https://localhost:6379'))[0]).toMatch(/^http:\/\/localhost:3000\/api\/crawl\/process\?jobId=/);
    } finally {
      vi.unstubAllEnvs();
    }
    // A chain call refused or answered with an error is reported (a timeout is the normal case).
    errors.length = 0;
    const refused = make({ fetch: (async () => new Response('no', { status: 401 })) as unknown as typeof fetch });
    await refused.create('http://127.0.0.1:3000');
    expect(errors).toEqual([expect.stringMatching(/chaining job .* got HTTP 401; check cronSecret/)]);
    errors.length = 0;
    const timedOut = make({
      fetch: (async () => {
        throw new DOMException('timed out', 'TimeoutError');
      }) as unknown as typeof fetch,
    });
    await timedOut.create('http://127.0.0.1:3000');
    expect(errors).toEqual([]);
    const down = make({
      fetch: (async () => {
        throw new TypeError('fetch failed');
      }) as unknown as typeof fetch,
    });
    await down.create('http://127.0.0.1:3000');
    expect(errors).toEqual([expect.stringMatching(/chaining job .* failed: fetch failed/)]);
    // A fetch of the operator's that ignores the signal is not waited for past the chain's wait.
    errors.length = 0;
    const deaf = make({ fetch: (() => new Promise<Response>(() => undefined)) as unknown as typeof fetch });
    const waited = Date.now();
    await deaf.create('http://127.0.0.1:3000');
    expect(Date.now() - waited).toBeLessThan(5000);
    expect(errors).toEqual([]);
    // An onError that throws loses neither the chain nor the process route's answer.
    let answered = 0;
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const throwing = make({
        processBudgetMs: 30,
        onError: () => {
          throw new Error('the onError of the operator broke');
        },
        fetch: (async () => {
          answered++;
          return new Response('no', { status: 500 });
        }) as unknown as typeof fetch,
      });
      await throwing.create('http://127.0.0.1:3000');
      expect(answered).toBe(1);
      // Nor does it lose the answer of a process run whose chain call failed.
      const jobId = (await throwing.engine.jobs.list({ limit: 1 })).items[0]!.id;
      const processed = await throwing.handlers.POST(
        new Request(`http://127.0.0.1:3000/api/crawl/process?jobId=${jobId}`, { method: 'POST', headers: { authorization: 'Bearer cron-secret-0123456789' } }),
      );
      expect(processed.status).toBe(200);
      expect(((await processed.json()) as RunReport).claimed).toBeGreaterThan(0);
      expect(answered).toBe(2);
      // What onError threw is logged with the report it was given.
      expect(logged.mock.calls.map((args) => args.map(String).join(' '))).toEqual([
        expect.stringMatching(/onError failed \(next handler\).*got HTTP 500.*the onError of the operator broke/),
        expect.stringMatching(/onError failed \(next handler\).*got HTTP 500.*the onError of the operator broke/),
      ]);
    } finally {
      logged.mockRestore();
    }
    // The configured origin wins over whatever Host the request names.
    const configured = make({ origin: 'https://app.example.com' });
    expect((await configured.create('http://attacker.example'))[0]).toMatch(/^https:\/\/app\.example\.com\/api\/crawl\/process\?jobId=/);
    // On Vercel the platform routes only the project's own domains to it.
    vi.stubEnv('VERCEL', '1');
    try {
      expect((await make().create('https://my-app.vercel.app'))[0]).toMatch(/^https:\/\/my-app\.vercel\.app\//);
    } finally {
      vi.unstubAllEnvs();
    }
    await plain.engine.close();
    await configured.engine.close();
  });

  test('a bad origin is refused at creation, naming the field', () => {
    for (const origin of [
      'app.example.com',
      'ftp://app.example.com',
      '',
      42,
      'https://app.example.com/app',
      'https://app.example.com/?x=1',
      'https://u:p@app.example.com',
    ]) {
      expect(() => createNextHandlers(newEngine(), { origin: origin as string })).toThrow(
        expect.objectContaining({ code: 'invalid_options', errors: [expect.objectContaining({ path: 'origin' })] }),
      );
    }
  });

  test('without a cron secret a job with work left is not chained, and onError says so once', async () => {
    site = await startSite({ pages: 30, fanout: 3, latencyMs: 20 });
    const engine = newEngine();
    const tasks: Array<() => Promise<void>> = [];
    const errors: string[] = [];
    let calls = 0;
    const { POST } = createNextHandlers(engine, {
      after: (task) => tasks.push(task),
      afterBudgetMs: 30,
      onError: (error) => errors.push(String(error)),
      fetch: (async () => {
        calls++;
        return new Response('{}');
      }) as unknown as typeof fetch,
    });
    for (let i = 0; i < 2; i++) {
      const res = await POST(
        new Request('http://127.0.0.1:3000/api/crawl/jobs', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ url: site.url, maxDepth: 6 }),
        }),
      );
      expect(res.status).toBe(201);
      while (tasks.length > 0) await tasks.shift()!();
    }
    expect(calls).toBe(0);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/has work left after its run and no cronSecret is set/);
    await engine.close();
  });

  test('without a cron secret nothing chains, and processOnCreate: false leaves the job to cron', async () => {
    const engine = newEngine();
    const tasks: Array<() => Promise<void>> = [];
    const { POST } = createNextHandlers(engine, { after: (task) => tasks.push(task), processOnCreate: false });
    const res = await POST(
      new Request('http://app.test/api/crawl/jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: 'https://example.com/' }),
      }),
    );
    expect(res.status).toBe(201);
    expect(tasks).toHaveLength(0);
  });
});
