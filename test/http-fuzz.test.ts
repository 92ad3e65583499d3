/**
 * Fuzzes the whole HTTP surface with fast-check: random methods, paths with random escapes,
 * headers, and bodies of random JSON, job-shaped JSON and random bytes. Never a 5xx, never a stack
 * trace in a body, and the API still answers afterwards. No job is ever processed (the process
 * route stays locked), so nothing leaves this machine.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { createCrawlEngine } from '../src/core/engine.js';
import { createCrawlHandler } from '../src/http/index.js';
import { closeAll } from './helpers/postgres.js';
import { closeRedis, everyStorage } from './helpers/storages.js';

afterAll(async () => {
  await closeRedis();
  await closeAll();
});

const RUNS: Record<string, number> = { memory: 10_000 };
const BASE = 'http://app.test/api/crawl';
const STACK = /\n\s+at |node_modules|\.[cm]?[jt]s:\d+/;

const escapes = fc.oneof(
  fc.constantFrom('%', '%Z', '%ZZ', '%E0%A4%A', '%ED%A0%80', '%C0%AF', '%00', '%2F', '%2e%2e', '%25', '%u0041', '%F0%9F%98%80', '%FF'),
  fc.integer({ min: 0, max: 255 }).map((b) => `%${b.toString(16).padStart(2, '0')}`),
);
const segment = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('jobs', 'results', 'events', 'process', '', '.', '..', 'job_x', 'job_AAAAAAAAAAAAAAAAAAAAAAAA') },
  { weight: 2, arbitrary: fc.array(fc.oneof(fc.string({ maxLength: 6 }), escapes), { maxLength: 4 }).map((parts) => parts.join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }).map(encodeURIComponent) },
);
const routed = fc
  .tuple(
    fc.constantFrom('/jobs', '/jobs/', '/jobs/{id}', '/jobs/{id}/', '/jobs/{id}/results', '/jobs/{id}/events', '/process', '/process/'),
    fc.oneof(fc.constant('SEED'), segment),
  )
  .map(([template, id]) => template.replace('{id}', id));
const path = fc.oneof({ weight: 4, arbitrary: routed }, { weight: 1, arbitrary: fc.array(segment, { maxLength: 4 }).map((parts) => `/${parts.join('/')}`) });
const query = fc.option(
  fc
    .array(
      fc.tuple(fc.constantFrom('limit', 'cursor', 'status', 'after', 'jobId', 'x'), fc.oneof(fc.string({ maxLength: 8 }), escapes, fc.integer().map(String))),
      { maxLength: 3 },
    )
    .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
  { nil: '' },
);
const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'DELETE', 'HEAD') },
  { weight: 1, arbitrary: fc.constantFrom('PUT', 'PATCH', 'OPTIONS', 'PROPFIND', 'X') },
);
const jobShaped = fc
  .record(
    {
      url: fc.oneof(
        fc.constantFrom('https://example.com/', 'http://127.0.0.1/', 'http://[::ffff:0:7f00:1]/', 'ftp://x/', 'https://exa\ud800mple.com/'),
        fc.webUrl(),
        fc.string(),
      ),
      maxPages: fc.oneof(fc.integer(), fc.double(), fc.string()),
      maxDepth: fc.oneof(fc.integer({ min: -2, max: 2000 }), fc.constant(null)),
      scope: fc.oneof(fc.constantFrom('same-origin', 'same-hostname', 'same-domain', 'any'), fc.string()),
      include: fc.array(fc.oneof(fc.string(), fc.constant('/**a**a**a**b'), fc.constant('\ud800')), { maxLength: 3 }),
      metadata: fc.oneof(
        fc.jsonValue({ maxDepth: 4 }),
        fc.dictionary(fc.string({ unit: 'binary', maxLength: 4 }), fc.string({ unit: 'binary', maxLength: 6 })),
      ),
    },
    { requiredKeys: [] },
  )
  .map((value) => JSON.stringify(value));
/** Job inputs that are mostly valid: a good URL, and random globs and metadata to store. */
const nearlyValid = fc
  .record({
    url: fc.webPath().map((p) => `https://example.com${p.startsWith('/') ? p : `/${p}`}`),
    include: fc.array(fc.string({ minLength: 1, maxLength: 40 }), { maxLength: 3 }),
    metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
  })
  .map((value) => JSON.stringify(value));
const body = fc.oneof(
  { weight: 3, arbitrary: jobShaped },
  { weight: 3, arbitrary: nearlyValid },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 6 }).map((value) => JSON.stringify(value) ?? 'null') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 4000 }).map((depth) => `{"url":"https://example.com/","metadata":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`),
  },
);
const headers = fc.record(
  {
    'content-type': fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/x+json',
      '',
      'multipart/form-data; boundary=x',
    ),
    authorization: fc.oneof(
      fc.constantFrom('Bearer ', 'Bearer x', 'Basic Zm9vOmJhcg=='),
      fc.string({ maxLength: 30 }).map((s) => `Bearer ${s.replace(/[^\x20-\x7e]/g, '')}`),
    ),
    'last-event-id': fc.oneof(
      fc.constantFrom('1', '0', '-1', '99999999999999999999999', 'abc'),
      fc.string({ maxLength: 10 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
    ),
    'content-length': fc.constantFrom('0', '1', '999999999', 'x'),
  },
  { requiredKeys: [] },
);

async function drain(response: Response): Promise<string> {
  if ((response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    // A live stream: read what is there, then hang up like a browser that navigated away.
    const reader = response.body!.getReader();
    const first = await Promise.race([reader.read(), new Promise<null>((resolve) => setTimeout(() => resolve(null), 200))]);
    await reader.cancel().catch(() => undefined);
    return first === null || first.done ? '' : new TextDecoder().decode(first.value);
  }
  return response.text();
}

describe.each(everyStorage)('HTTP fuzz (%s)', (name) => {
  const runs = RUNS[name] ?? 1000;
  test(`${runs} random requests: never a 5xx, never a stack, and the API still answers`, { timeout: 600_000 }, async () => {
    const storage = await everyStorage.find(([n]) => n === name)![1]();
    const engine = createCrawlEngine({ storage });
    const errors: unknown[] = [];
    const handler = createCrawlHandler(engine, {
      cronSecret: 'a-secret-nobody-guesses-0123456789',
      maxStreamMs: 300,
      heartbeatMs: 100,
      onError: (error) => errors.push(error),
    });
    // One real job, so that some random paths hit an existing id.
    const seed = await engine.jobs.create({ url: 'https://example.com/', metadata: { seed: true } });
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(method, path, query, headers, body, fc.boolean(), fc.boolean(), async (m, p, q, h, b, useSeed, bodyless) => {
        const target = p.replace('SEED', useSeed ? seed.id : 'job_missing');
        let url: string;
        try {
          url = new URL(`${BASE}${target}${q}`).href;
        } catch {
          return; // not a URL a client could send
        }
        const init: RequestInit = { method: m, headers: h as Record<string, string> };
        if (!bodyless && m !== 'GET' && m !== 'HEAD') init.body = b as BodyInit;
        let request: Request;
        try {
          request = new Request(url, init);
        } catch {
          return; // a request fetch itself refuses to build
        }
        const response = await handler(request);
        const text = await drain(response);
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        expect(response.status, `${m} ${url} ${JSON.stringify(h)} ${String(b).slice(0, 120)}`).toBeLessThan(500);
        expect(text).not.toMatch(STACK);
      }),
      { numRuns: runs },
    );
    // Creation with random stored content (globs, metadata of any JSON), through to the store.
    let created = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(nearlyValid, jobShaped), async (b) => {
        const response = await handler(new Request(`${BASE}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b }));
        const text = await response.text();
        expect(response.status, b.slice(0, 200)).toBeLessThan(500);
        expect(text).not.toMatch(STACK);
        if (response.status === 201) {
          created++;
          const id = (JSON.parse(text) as { id: string }).id;
          const back = await handler(new Request(`${BASE}/jobs/${id}`));
          expect(back.status).toBe(200);
          expect(((await back.json()) as { metadata: unknown }).metadata).toEqual(JSON.parse(b).metadata ?? {});
        }
      }),
      { numRuns: Math.ceil(runs / 5) },
    );
    expect(created).toBeGreaterThan(runs / 20);
    expect(errors).toEqual([]);
    const list = await handler(new Request(`${BASE}/jobs?limit=100`));
    expect(list.status).toBe(200);
    const one = await handler(new Request(`${BASE}/jobs/${seed.id}`));
    expect(one.status).toBe(200);
    console.log(
      `[http fuzz] ${name}: ${runs} cases, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}, then ${Math.ceil(runs / 5)} creations (${created} stored)`,
    );
  });
});
