import RedisMock from 'ioredis-mock';
import { afterAll, describe, expect, test } from 'vitest';
import { kvStorage } from '../adapters/kv/index.js';
import { memoryStorage } from '../adapters/memory/index.js';
import { postgresStorage } from '../adapters/postgres/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import { createCrawlHandler } from '../src/http/index.js';
import type { CrawlStorage } from '../src/core/storage.js';
import type { Job } from '../src/core/types.js';
import { closeAll, DATABASE_URL, freshSchema, pglite, realPool } from './helpers/postgres.js';

afterAll(closeAll);

const BASE = 'http://app.test/api/crawl';
const META = `'; DROP TABLE crawl_jobs; -- ]] --[[ redis.call('FLUSHALL') " \\ %00 \${x} {{y}} \u2028 é`;

const storages: Array<[string, () => Promise<CrawlStorage>]> = [
  ['memory', async () => memoryStorage()],
  ['kv (ioredis-mock)', async () => kvStorage({ client: new RedisMock() as never, prefix: `bad${Date.now()}:` })],
  [
    DATABASE_URL ? 'postgres (real server)' : 'postgres (PGlite)',
    async () => {
      const storage = postgresStorage({ client: (DATABASE_URL ? realPool() : pglite()) as never, schema: freshSchema() });
      await storage.migrate();
      return storage;
    },
  ],
];

/** Everything a client could read back, to prove that refused input changed nothing. */
async function snapshot(storage: CrawlStorage, jobId: string) {
  return {
    jobs: (await storage.listJobs({ limit: 100 })).items,
    events: await storage.readEvents(jobId, null, 1000),
    results: (await storage.listResults(jobId, { limit: 100 })).items,
  };
}

describe.each(storages)('bad input on the HTTP API (%s)', (_name, makeStorage) => {
  test('every malformed request is a 4xx problem+json and nothing stored changes', async () => {
    const storage = await makeStorage();
    const engine = createCrawlEngine({ storage });
    const handler = createCrawlHandler(engine, { maxBodyBytes: 64 * 1024 });
    const post = (body: string, type = 'application/json') => handler(new Request(`${BASE}/jobs`, { method: 'POST', headers: { 'content-type': type }, body }));
    const baseline = (await (await post(JSON.stringify({ url: 'https://example.com/', metadata: { note: 'baseline' } }))).json()) as Job;
    const before = await snapshot(storage, baseline.id);

    const bodies: string[] = [
      '{',
      '[',
      'null',
      '"a string"',
      '123',
      '{"url":}',
      `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
      JSON.stringify({ url: 'https://example.com/', metadata: { nul: 'a\u0000b' } }),
      JSON.stringify({ url: 'https://example.com/', include: ['/a\u0000/**'] }),
      JSON.stringify([{ url: 'https://example.com/' }]),
      JSON.stringify({}),
      JSON.stringify({ url: 123 }),
      JSON.stringify({ url: 'https://example.com/', maxPages: '10' }),
      JSON.stringify({ url: 'https://example.com/', maxPages: 0 }),
      JSON.stringify({ url: 'https://example.com/', maxPages: 1e12 }),
      JSON.stringify({ url: 'https://example.com/', maxDepth: 1.5 }),
      JSON.stringify({ url: 'https://example.com/', maxDepth: -1 }),
      JSON.stringify({ url: 'https://example.com/', scope: 5 }),
      JSON.stringify({ url: 'https://example.com/', scope: 'galaxy' }),
      JSON.stringify({ url: 'https://example.com/', include: 'x' }),
      JSON.stringify({ url: 'https://example.com/', include: [1] }),
      JSON.stringify({ url: 'https://example.com/', exclude: [''] }),
      JSON.stringify({ url: 'https://example.com/', respectRobots: 'yes' }),
      JSON.stringify({ url: 'https://example.com/', metadata: 'x' }),
      JSON.stringify({ url: 'https://example.com/', metadata: { big: 'x'.repeat(20_000) } }),
      JSON.stringify({ url: 'https://example.com/', perHostConcurrency: 0 }),
      JSON.stringify({ url: 'https://example.com/', unknownField: true }),
      JSON.stringify({ url: 'https://example.com/', __proto__: { polluted: true }, constructor: { prototype: { polluted: true } } }),
      JSON.stringify({ url: 'file:///etc/passwd' }),
      JSON.stringify({ url: 'ftp://example.com/' }),
      JSON.stringify({ url: 'javascript:alert(1)' }),
      JSON.stringify({ url: 'https://user:secret@example.com/' }),
      JSON.stringify({ url: `https://example.com/${'a'.repeat(10_000)}` }),
      JSON.stringify({ url: 'https://' }),
      // IP literals the processors would refuse: loopback, private, link-local (cloud metadata),
      // unspecified, IPv6 and IPv4-inside-IPv6 forms.
      ...[
        'http://127.0.0.1/',
        'http://[::1]/',
        'http://[::ffff:127.0.0.1]/',
        'http://[::ffff:a9fe:a9fe]/latest/meta-data/',
        'http://169.254.169.254/',
        'http://10.0.0.1:8080/',
        'http://[fd00::1]/',
        'http://[fe80::1]/',
        'http://0.0.0.0/',
        'http://2130706433/',
        'http://0x7f.1/',
      ].map((url) => JSON.stringify({ url })),
      // Homographs: a Cyrillic letter inside a Latin name, and a name of Cyrillic look-alikes only.
      ...['https://pаypal.com/', 'https://xn--pypal-4ve.com/login', 'https://аррӏе.com/', 'https://www.xn--80ak6aa92e.com/'].map((url) =>
        JSON.stringify({ url }),
      ),
      JSON.stringify({ url: `https://example.com/${META}`.replace(/ /g, ' ') }).replace('"url"', '"url" '),
    ];
    for (const body of bodies) {
      const res = await post(body);
      const expected = body.includes('DROP TABLE') ? [201, 400] : [400];
      expect(expected, `${body.slice(0, 80)} → ${res.status}`).toContain(res.status);
      if (res.status === 400) {
        expect(res.headers.get('content-type')).toBe('application/problem+json');
        const problem = (await res.json()) as { status: number; code: string };
        expect(problem.status).toBe(400);
      } else {
        // A valid URL whose path holds SQL and Lua metacharacters is stored as it is, and removed again.
        const job = (await res.json()) as Job;
        expect((await engine.jobs.get(job.id))?.url).toBe(job.url);
        await engine.jobs.cancel(job.id);
      }
    }
    expect((await post('x'.repeat(70_000))).status).toBe(413);
    expect((await post('url=https://example.com/', 'application/x-www-form-urlencoded')).status).toBe(415);
    expect((await post('{}', 'text/plain')).status).toBe(415);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();

    for (const path of ['/jobs/..%2F..%2Fetc%2Fpasswd', '/jobs/%2e%2e', `/jobs/${encodeURIComponent(META)}`, '/jobs/job_x%00', `/jobs/${'a'.repeat(5000)}`]) {
      for (const suffix of ['', '/results', '/events']) {
        const res = await handler(new Request(`${BASE}${path}${suffix}`));
        expect([400, 404], `${path}${suffix}`).toContain(res.status);
        expect(res.headers.get('content-type')).toBe('application/problem+json');
      }
      expect((await handler(new Request(`${BASE}${path}`, { method: 'DELETE' }))).status).toBe(404);
    }
    for (const query of ['?limit=-1', '?limit=1e3', '?limit=abc', `?cursor=${encodeURIComponent(META)}`, '?status=nope', `?cursor=${'9'.repeat(100)}`]) {
      const res = await handler(new Request(`${BASE}/jobs${query}`));
      expect(res.status, query).toBe(400);
    }
    expect((await handler(new Request(`${BASE}/jobs/${baseline.id}/events?after=${encodeURIComponent("1' OR 1=1")}`))).status).toBe(400);

    const after = await snapshot(storage, baseline.id);
    // Only the metacharacter job (created, then cancelled) was added; the baseline is untouched.
    expect(after.jobs.find((j) => j.id === baseline.id)).toEqual(before.jobs.find((j) => j.id === baseline.id));
    expect(after.events).toEqual(before.events);
    expect(after.results).toEqual(before.results);
    expect(after.jobs.filter((j) => j.id !== baseline.id).every((j) => j.status === 'cancelled')).toBe(true);
  }, 60_000);

  test('metacharacters in metadata, globs and ids round-trip intact', async () => {
    const storage = await makeStorage();
    const engine = createCrawlEngine({ storage });
    const job = await engine.jobs.create({
      url: 'https://example.com/',
      include: [`/${META}/**`],
      exclude: [META],
      metadata: { [META]: META, nested: { q: META } },
    });
    const again = await engine.jobs.get(job.id);
    expect(again?.metadata).toEqual({ [META]: META, nested: { q: META } });
    expect(again?.options.include).toEqual([`/${META}/**`]);
    expect(again?.options.exclude).toEqual([META]);
    await engine.jobs.cancel(job.id);
  });
});
