/**
 * Regression tests for the hostile-input review (issue 11): each test is named after the item it
 * proves and failed before the fix.
 * Over 300 lines in one file: it is that review's regression list, kept together item by item.
 */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import { createExpressRouter } from '../src/http/express.js';
import { createCrawlHandler } from '../src/http/index.js';
import { createNextHandlers } from '../src/http/next.js';
import { repairJson } from '../src/crawl/text.js';
import type { Job } from '../src/core/types.js';
import { allResults, testEngine } from './helpers/engine.js';
import { closeAll } from './helpers/postgres.js';
import { html, serve } from './helpers/server.js';
import { closeRedis, everyStorage } from './helpers/storages.js';

afterAll(async () => {
  await closeRedis();
  await closeAll();
});

const BASE = 'http://app.test/api/crawl';
const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function api(handler: (req: Request) => Promise<Response>) {
  return {
    post: (body: string) => handler(new Request(`${BASE}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })),
    call: (method: string, path: string) => handler(new Request(`${BASE}${path}`, { method })),
  };
}

describe.each(everyStorage)('hostile input (%s)', (_name, makeStorage) => {
  test('a page lost on Postgres: a title cut inside a surrogate pair, NUL characters and lone surrogates are stored well-formed', async () => {
    const title = `${'a'.repeat(999)}😀`;
    const site = await serve((req, res) => {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      if (req.url === '/') {
        res.end(html('<p>home</p><a href="/nul">nul</a>', `<title>${title}</title><meta name="description" content="d\u0000e">`));
      } else res.end(html('<p>x</p>', '<title>nul\u0000here</title>'));
    });
    try {
      const engine = testEngine({ extract: () => ({ lone: 'x\ud800y', 'k\udc00': ['\u0000', { deep: '\udbff' }] }) }, await makeStorage());
      const job = await engine.crawl({ url: site.url, respectRobots: false });
      expect(job.status).toBe('completed');
      const results = await allResults(engine, job.id);
      expect(results).toHaveLength(2);
      for (const result of results) {
        expect(result.ok).toBe(true);
        expect(LONE.test(JSON.stringify(result))).toBe(false);
        expect(JSON.stringify(result)).not.toContain('\\u0000');
      }
      const home = results.find((r) => r.url === site.url)!;
      // Cut at a code-point boundary: the emoji does not fit in 1,000 UTF-16 units, so it goes whole.
      expect(home.title).toBe('a'.repeat(999));
      expect(home.description).toBe('d\uFFFDe');
      expect(home.data).toEqual({ lone: 'x\uFFFDy', 'k\uFFFD': ['\uFFFD', { deep: '\uFFFD' }] });
      expect(results.find((r) => r.url !== site.url)!.title).toBe('nul\uFFFDhere');
      await engine.close();
    } finally {
      await site.close();
    }
  });

  test('a NUL in a robots.txt rule is stored on every adapter (the host is crawled, the rule still applies)', async () => {
    const site = await serve((req, res) => {
      if (req.url === '/robots.txt') {
        res.setHeader('content-type', 'text/plain');
        return res.end('User-agent: *\nDisallow: /x\u0000y\nDisallow: /private\n');
      }
      res.setHeader('content-type', 'text/html');
      res.end(req.url === '/' ? html('<a href="/a">a</a><a href="/private">p</a><a href="/x%00y">nul</a>') : html('<p>leaf</p>'));
    });
    try {
      const engine = testEngine({}, await makeStorage());
      const job = await engine.crawl({ url: site.url });
      expect(job.status).toBe('completed');
      const results = await allResults(engine, job.id);
      const skipped = results
        .filter((r) => r.error?.code === 'robots')
        .map((r) => new URL(r.url).pathname)
        .sort();
      expect(skipped).toEqual(['/private', '/x%00y']);
      expect(results.filter((r) => r.ok)).toHaveLength(2);
      await engine.close();
    } finally {
      await site.close();
    }
  });

  test('deep metadata: a 3,000-deep body is a 400 naming the field path, and GET /jobs stays 200', async () => {
    const storage = await makeStorage();
    const { post, call } = api(createCrawlHandler(createCrawlEngine({ storage })));
    const deep = `{"url":"https://example.com/","metadata":{"a":${'['.repeat(3000)}${']'.repeat(3000)}}}`;
    const response = await post(deep);
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: Array<{ path: string; message: string }> };
    expect(body.errors[0]!.path).toMatch(/^metadata\.a(\.0)+$/);
    expect(body.errors[0]!.message).toMatch(/at most 20 levels of nesting/);
    const wide = JSON.stringify({ url: 'https://example.com/', metadata: Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`k${i}`, 1])) });
    const tooWide = await post(wide);
    expect(tooWide.status).toBe(400);
    expect(JSON.stringify(await tooWide.json())).toMatch(/at most 1000 keys/);
    // Nothing was stored, and listing still works for everyone.
    const list = await call('GET', '/jobs');
    expect(list.status).toBe(200);
    expect(((await list.json()) as { items: Job[] }).items).toEqual([]);
    const fine = await post(JSON.stringify({ url: 'https://example.com/', metadata: { a: [[[{ b: 'c' }]]] } }));
    expect(fine.status).toBe(201);
    expect((await call('GET', '/jobs')).status).toBe(200);
  });

  test('lone surrogate in input: metadata values and keys, the URL and globs are a 400 on every adapter', async () => {
    const storage = await makeStorage();
    const { post, call } = api(createCrawlHandler(createCrawlEngine({ storage })));
    const cases: Array<[string, string]> = [
      ['{"url":"https://example.com/","metadata":{"a":"\\ud800"}}', 'metadata.a'],
      ['{"url":"https://example.com/","metadata":{"a":["ok","\\udc00x"]}}', 'metadata.a.1'],
      ['{"url":"https://example.com/","metadata":{"\\ud800":1}}', 'metadata.\uFFFD'],
      ['{"url":"https://example.com/\\ud800"}', 'url'],
      ['{"url":"https://example.com/","include":["/a/\\udbff/**"]}', 'include.0'],
      ['{"url":"https://example.com/","exclude":["/ok","\\ud800"]}', 'exclude.1'],
    ];
    for (const [body, path] of cases) {
      const response = await post(body);
      expect(response.status, body).toBe(400);
      const problem = (await response.json()) as { errors: Array<{ path: string; message: string }> };
      expect(
        problem.errors.map((e) => e.path),
        body,
      ).toContain(path);
      expect(problem.errors.find((e) => e.path === path)!.message).toMatch(/well-formed Unicode/);
    }
    expect(((await (await call('GET', '/jobs')).json()) as { items: Job[] }).items).toEqual([]);
  });

  test('bad escapes in a path: malformed percent-encoding is a 400 or 404 on every job route, never a 500', async () => {
    const storage = await makeStorage();
    const { call } = api(createCrawlHandler(createCrawlEngine({ storage })));
    for (const id of ['%ZZ', '%E0%A4%A', '%', '%%', '%C0%AF', '%ED%A0%80', 'a%2Fb', '%00']) {
      for (const [method, path] of [
        ['GET', `/jobs/${id}`],
        ['DELETE', `/jobs/${id}`],
        ['GET', `/jobs/${id}/results`],
        ['GET', `/jobs/${id}/events`],
      ] as const) {
        const response = await call(method, path);
        expect([400, 404], `${method} ${path}`).toContain(response.status);
        expect(response.headers.get('content-type')).toBe('application/problem+json');
      }
    }
  });
});

describe('handler configuration', () => {
  const engine = createCrawlEngine({ storage: memoryStorage() });

  test("cronSecret: '' no longer leaves /process open: an empty or short secret is a configuration error", () => {
    for (const secret of ['', 'short', '123456789012345', ' '.repeat(16), 'a-long-enough-secret-0123\n', ' a-long-enough-secret-0123']) {
      expect(() => createCrawlHandler(engine, { cronSecret: secret })).toThrow(
        /cronSecret: expected (a string of at least 16 characters|no leading or trailing whitespace)/,
      );
      expect(() => createNextHandlers(engine, { cronSecret: secret })).toThrow(/cronSecret/);
      expect(() => createExpressRouter(engine, { cronSecret: secret })).toThrow(/cronSecret/);
    }
    expect(() => createCrawlHandler(engine, { cronSecret: 'a'.repeat(16) })).not.toThrow();
  });

  test('the process route needs cronSecret or an authorize decision, also in development', async () => {
    const open = api(createCrawlHandler(engine));
    const closed = await open.call('POST', '/process');
    expect(closed.status).toBe(401);
    expect(((await closed.json()) as { detail: string }).detail).toMatch(/set cronSecret .* or an authorize function/);
    const actions: string[] = [];
    const allowed = api(
      createCrawlHandler(engine, {
        authorize: (_req, { action }) => {
          actions.push(action);
          return action === 'process';
        },
      }),
    );
    expect((await allowed.call('POST', '/process')).status).toBe(200);
    expect((await allowed.call('GET', '/jobs')).status).toBe(401);
    expect(actions).toEqual(['process', 'list']);
  });

  test('secure by default: in production a handler needs authorize or public: true', async () => {
    vi.stubEnv('NODE_ENV', 'production');
    try {
      for (const make of [() => createCrawlHandler(engine), () => createNextHandlers(engine), () => createExpressRouter(engine)]) {
        expect(make).toThrow(/authorize: expected an authorize\(req, \{ action, jobId \}\) function when NODE_ENV is "production".*public: true/);
      }
      expect(() => createCrawlHandler(engine, { public: true })).not.toThrow();
      expect(() => createCrawlHandler(engine, { authorize: () => true })).not.toThrow();
      const { call } = api(createCrawlHandler(engine, { public: true }));
      expect((await call('GET', '/jobs')).status).toBe(200);
      // public opens the job routes only.
      expect((await call('POST', '/process')).status).toBe(401);
    } finally {
      vi.unstubAllEnvs();
    }
    // Development stays frictionless.
    expect((await api(createCrawlHandler(engine)).call('GET', '/jobs')).status).toBe(200);
  });
});

test('a client that aborts mid-body gets a 400 and nothing is reported as a server error', async () => {
  const errors: unknown[] = [];
  const handler = createCrawlHandler(createCrawlEngine({ storage: memoryStorage() }), { onError: (error) => errors.push(error) });
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"url":"https://exa'));
    },
    pull(controller) {
      controller.error(new Error('socket hang up'));
    },
  });
  const response = await handler(
    new Request(`${BASE}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit),
  );
  expect(response.status).toBe(400);
  expect(errors).toEqual([]);
});

test('repairJson refuses an enormous sparse array before allocating it', () => {
  const sparse: unknown[] = [];
  sparse.length = 1e8;
  expect(() => repairJson({ items: sparse })).toThrow(/more than 1000000 values/);
});

describe('Express bridge errors', () => {
  test('TRACE or a malformed Host header get a problem+json 405 / 400 from the router, never a stack trace', async () => {
    const engine = createCrawlEngine({ storage: memoryStorage() });
    const app = express();
    app.use('/api/crawl', createExpressRouter(engine) as never);
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;
    const send = (method: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method, path: '/api/crawl/jobs', headers }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      const cases: Array<[string, Record<string, string>, number]> = [
        ['TRACE', {}, 405],
        ['GET', { host: '[::1' }, 400],
        ['GET', { host: 'a b' }, 400],
        ['POST', { host: '[::1', 'content-type': 'application/json' }, 400],
      ];
      for (const [method, headers, status] of cases) {
        const response = await send(method, headers);
        expect(response.status, `${method} ${JSON.stringify(headers)}`).toBe(status);
        expect(response.type).toMatch(/application\/problem\+json/);
        expect(response.body).not.toMatch(/\n\s+at |&nbsp;at |<pre>|node_modules|\.ts:\d|\.js:\d/);
      }
      expect((await send('GET')).status).toBe(200);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('listeners', () => {
  test('a throwing listener breaks a run no more: its error is reported and the run, leases and counts are untouched', async () => {
    const site = await serve((req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(req.url === '/' ? html('<a href="/a">a</a><a href="/b">b</a>') : html('<p>leaf</p>'));
    });
    try {
      const reported: Array<[string, string]> = [];
      const engine = testEngine({ onListenerError: (error, event) => reported.push([(error as Error).message, event.type]) });
      engine.events.on('job:started', () => {
        throw new Error('listener bug');
      });
      engine.events.on('*', (type) => {
        if (type === 'page:done') throw new Error('wildcard bug');
      });
      const done: string[] = [];
      engine.events.on('page:done', (event) => done.push(event.url!));
      const job = await engine.jobs.create({ url: site.url, respectRobots: false });
      const report = await engine.processor.run({ jobId: job.id, budgetMs: 10_000 });
      expect(report.errors).toEqual([]);
      expect(report.claimed).toBe(3);
      expect(report.succeeded).toBe(3);
      expect((await engine.jobs.get(job.id))!.status).toBe('completed');
      expect(done).toHaveLength(3);
      expect(reported).toContainEqual(['listener bug', 'job:started']);
      expect(reported.filter(([message]) => message === 'wildcard bug')).toHaveLength(3);
      await engine.close();
    } finally {
      await site.close();
    }
  });

  test("an async listener that rejects is reported too, and crawl()'s onEvent is isolated from the first event on", async () => {
    const site = await serve((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(html('<p>x</p>'));
    });
    try {
      const reported: string[] = [];
      const engine = testEngine({ onListenerError: (error, event) => reported.push(`${event.type}: ${(error as Error).message}`) });
      engine.events.on('page:done', async () => {
        await Promise.resolve();
        throw new Error('async bug');
      });
      const job = await engine.crawl(
        { url: site.url, respectRobots: false },
        {
          onEvent: (event) => {
            if (event.type === 'job:created') throw new Error('onEvent bug');
          },
        },
      );
      expect(job.status).toBe('completed');
      await expect.poll(() => reported).toEqual(expect.arrayContaining(['job:created: onEvent bug', 'page:done: async bug']));
      await engine.close();
    } finally {
      await site.close();
    }
  });

  test('by default a throwing listener is logged with console.error', async () => {
    const engine = createCrawlEngine({ storage: memoryStorage() });
    const spy = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    engine.events.on('job:created', () => {
      throw new Error('boom');
    });
    try {
      await expect(engine.jobs.create({ url: 'https://example.com/' })).resolves.toMatchObject({ status: 'queued' });
      expect(spy).toHaveBeenCalledWith(expect.stringMatching(/an engine.events listener threw on job:created/), expect.any(Error));
    } finally {
      spy.mockRestore();
    }
  });
});
