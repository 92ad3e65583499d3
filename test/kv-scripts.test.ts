// Over 300 lines: the script build checks and the differential test of complete-many against complete share the script fixtures.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Redis from 'ioredis';
import RedisMock from 'ioredis-mock';
import { afterAll, describe, expect, test } from 'vitest';
import { kvStorage } from '../adapters/kv/index.js';
import { HOST_STATE, indexKeys, JOB_FIELDS, jobKeys, URL_ENTRY, webhookKeys } from '../adapters/kv/keys.js';
import * as S from '../adapters/kv/scripts.js';
import type { CompleteResult, FrontierLink, Lease } from '../src/core/storage.js';
import type { PageResult } from '../src/core/types.js';
import { jobRecord } from '../src/testing/index.js';
import { expandLua } from '../scripts/lua.mjs';

const LUA = fileURLToPath(new URL('../adapters/kv/lua/', import.meta.url));
const files = readdirSync(LUA).filter((f) => f.endsWith('.lua'));

describe('expandLua (scripts/lua.mjs)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lua-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => writeFileSync(join(dir, name), text);

  test('expands includes relative to the including file, each file once, and drops comment lines', () => {
    write('a.lua', '-- header\n--- @include "b"\n--- @include "c.lua"\n\nreturn b() + c()\n');
    write('b.lua', '--- @include "c"\nlocal function b() return c() end  \n');
    write('c.lua', '-- c\nlocal function c() return 1 end\n');
    const { code, files } = expandLua(join(dir, 'a.lua'));
    expect(code).toBe('local function c() return 1 end\nlocal function b() return c() end\nreturn b() + c()\n');
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(['a.lua', 'b.lua', 'c.lua']);
  });

  test('a missing include or an include cycle is an error naming the files', () => {
    write('missing.lua', '--- @include "nowhere"\n');
    expect(() => expandLua(join(dir, 'missing.lua'))).toThrow(/missing\.lua:1: included file .*nowhere\.lua does not exist/);
    write('x.lua', '--- @include "y"\n');
    write('y.lua', '--- @include "x"\n');
    expect(() => expandLua(join(dir, 'x.lua'))).toThrow('include cycle in');
    expect(() => expandLua(join(dir, 'x.lua'))).toThrow('x.lua -> y.lua -> x.lua');
    write('block.lua', '--[[ no ]]\n');
    expect(() => expandLua(join(dir, 'block.lua'))).toThrow(/block comments/);
  });

  test.each([
    `--- @include 'includes/h'`,
    `--- @include "includes/h" -- note`,
    `-- @include "includes/h"`,
    `--- @include includes/h`,
    `  ---@include"includes/h"`,
    `-- see @include "includes/h" below`,
  ])('a comment line mentioning @include that is not the strict form is a build error naming the file and line: %s', (line) => {
    write('h.lua', 'local function h() return 1 end\n');
    write('typo.lua', `-- header\n${line}\nreturn h()\n`);
    expect(() => expandLua(join(dir, 'typo.lua'))).toThrow(
      new RegExp(
        `\\[lua\\] .*typo\\.lua:2: malformed include ${JSON.stringify(line.trim()).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: expected the whole line to be --- @include "path"`,
      ),
    );
  });
});

describe('the KV Lua scripts', () => {
  const k = jobKeys('p:', 'id');
  const ix = indexKeys('p:');
  const w = webhookKeys('p:');
  const calls = [
    S.CREATE(k, 'h'),
    ...[
      S.READ_JOB,
      S.CLAIM,
      S.COMPLETE,
      S.COMPLETE_MANY,
      S.RETRY,
      S.RELEASE,
      S.CANCEL,
      S.DELETE,
      S.APPEND_EVENTS,
      S.READ_EVENTS,
      S.READ_RESULTS,
      S.GET_RESULTS,
      S.PUT_ROBOTS,
      S.GET_ROBOTS,
    ].map((s) => s(k)),
    S.INDEX_ADD(ix, 'id'),
    S.INDEX_ACTIVE(ix),
    S.INDEX_APPLY(ix),
    S.INDEX_LIST(ix),
    S.INDEX_DROP(ix, 'id'),
    S.INDEX_FINISHED(ix),
    S.WEBHOOK_ADD(w, 'id'),
    S.WEBHOOK_JOBS(w),
    S.WEBHOOK_REMOVE(w, 'id'),
    S.WEBHOOK_ENQUEUE(w, 'id'),
    S.WEBHOOK_CLAIM(w),
    S.WEBHOOK_SETTLE(w),
    S.WEBHOOK_LIST(w, 'id'),
    S.WEBHOOK_DROP(w, 'id'),
  ];

  test('one script per file, named <name>-<number of KEYS>.lua, inlined with its includes', () => {
    expect(calls.map((c) => `${c.name}-${c.keys.length}.lua`).sort()).toEqual([...files].sort());
    for (const c of calls) expect(c.lua).toBe(expandLua(join(LUA, `${c.name}-${c.keys.length}.lua`)).code);
  });

  test("the index of results by URL is the results list's key followed by `ix`, as the scripts that have only the list name it", () => {
    expect(k.resultIndex).toBe(`${k.results}ix`);
    for (const name of ['includes/complete.lua', 'includes/expire.lua', 'delete-13.lua']) {
      expect(readFileSync(join(LUA, name), 'utf8'), name).toContain("K.results .. 'ix'");
    }
  });

  test('complete-many takes the KEYS of complete, as many as its file name says', () => {
    const many = S.COMPLETE_MANY(k);
    expect(many.keys).toEqual(S.COMPLETE(k).keys);
    expect(`${many.name}-${many.keys.length}.lua`).toBe('complete-many-13.lua');
    expect(files).toContain('complete-many-13.lua');
    expect(many.lua).toBe(expandLua(join(LUA, 'complete-many-13.lua')).code);
  });

  test.each(files)('%s: its header names every KEYS[i] and ARGV[i] it uses, and it uses no other KEYS', (file) => {
    const text = readFileSync(join(LUA, file), 'utf8');
    const header = text.slice(0, text.search(/^[^-\n]/m));
    const body = text.slice(header.length);
    const count = Number(/-(\d+)\.lua$/.exec(file)![1]);
    for (let i = 1; i <= count; i++) expect(header, `KEYS[${i}]`).toMatch(new RegExp(`^-- +KEYS\\[${i}\\] `, 'm'));
    for (const [, i] of body.matchAll(/KEYS\[(\d+)\]/g)) expect(Number(i)).toBeLessThanOrEqual(count);
    for (const [argv] of body.matchAll(/ARGV\[\d+\]/g)) expect(header, argv).toContain(argv);
    expect(header).toMatch(/^-- Returns /m);
  });

  test('every field of the job hash the scripts use is in the key map (keys.ts), and every field there is used', () => {
    const used = new Set<string>();
    const lua = files.map((f) => expandLua(join(LUA, f)).code).join('\n');
    for (const [, name] of lua.matchAll(/\bfield\(K, '(\w+)'\)/g)) used.add(name!);
    // redis.call('<command>', K.job, ...): fields are every argument of HMGET, the even ones of HSET.
    for (const m of lua.matchAll(/redis\.call\('(HSET|HGET|HMGET|HINCRBY|HSETNX|HEXISTS)', K\.job, /g)) {
      const args: string[] = [];
      let depth = 0;
      let quote = false;
      let current = '';
      for (const ch of lua.slice(m.index + m[0].length)) {
        if (ch === "'") quote = !quote;
        if (!quote && ch === '(') depth++;
        if (!quote && ch === ')' && depth-- === 0) break;
        if (!quote && depth === 0 && ch === ',') {
          args.push(current.trim());
          current = '';
        } else current += ch;
      }
      args.push(current.trim());
      const fields = m[1] === 'HMGET' ? args : m[1] === 'HSET' ? args.filter((_, i) => i % 2 === 0) : args.slice(0, 1);
      // The one call with a variable field: field(K, name) itself, counted at its callers above.
      if (fields[0] === 'name' && m[1] === 'HGET') continue;
      for (const f of fields) {
        expect(f, `${m[1]} field`).toMatch(/^'\w+'$/);
        used.add(f.slice(1, -1));
      }
    }
    expect([...used].sort()).toEqual([...JOB_FIELDS].sort());
  });

  test('the packed URL entries and host states are decoded part by part, in the order keys.ts documents', () => {
    const entries = readFileSync(join(LUA, 'includes/entries.lua'), 'utf8');
    expect(entries).toContain(
      `local ${URL_ENTRY.join(', ')} = string.match(s, '^${URL_ENTRY.map((_, i) => (i < URL_ENTRY.length - 1 ? '([^|]*)|' : '(.*)$')).join('')}')`,
    );
    expect(entries).toContain(`local ${HOST_STATE.join(', ')} = string.match(s, '^${HOST_STATE.map(() => '([^|]*)').join('|')}$')`);
  });
});

// complete-many-13.lua against complete-13.lua: twin jobs (same id, two prefixes on one server)
// driven by the same seeded random claims and completes, one side a complete() per page, the other
// the same pages through completeMany() in random batches; replies and every key must be equal.
const REDIS_URL = process.env.REDIS_URL || null;
const T0 = Date.UTC(2030, 0, 1);

/** mulberry32: a seeded random number in [0, 1). */
function randomOf(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Lease tokens are `<12 random characters>:<n>`: each side's are renamed T0, T1, ... in claim order. */
const TOKEN = /[\w-]{12}:\d+/g;
const renamed = (value: unknown, tokens: Map<string, string>) => JSON.parse(JSON.stringify(value).replace(TOKEN, (t) => tokens.get(t) ?? t));

/** Every key under `prefix` (the prefix cut off) with its type, value and whether it expires. */
async function dump(client: Redis, prefix: string, tokens: Map<string, string>): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const key of (await client.keys(`${prefix}*`)).sort()) {
    const type = await client.type(key);
    const value =
      type === 'hash'
        ? await client.hgetall(key)
        : type === 'list'
          ? await client.lrange(key, 0, -1)
          : type === 'set'
            ? (await client.smembers(key)).sort()
            : type === 'zset'
              ? // The active line's scores are last claims, which a claim of one job records up to
                // TOUCH_DEFER_MS later (timing, not the scripts compared here): its members only.
                key.endsWith('{index}:active')
                ? (await client.zrange(key, 0, -1)).sort()
                : await client.zrange(key, 0, -1, 'WITHSCORES')
              : await client.get(key);
    out[key.slice(prefix.length)] = { type, value, expires: (await client.ttl(key)) > 0 };
  }
  return renamed(out, tokens);
}

/** Swaps one script for another on the way to the server (a different complete on one side). */
function swapScript(client: Redis, from: string, to: string): Redis {
  const sha = createHash('sha1').update(from).digest('hex');
  return new Proxy(client, {
    get(target, name) {
      const value = Reflect.get(target, name) as unknown;
      const run = target as unknown as Record<'eval' | 'evalsha', (...args: unknown[]) => unknown>;
      if (name === 'evalsha') return (s: string, ...rest: unknown[]) => (s === sha ? run.eval(to, ...rest) : run.evalsha(s, ...rest));
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * One seeded run: claims (of the job, or across jobs, which may park it) and completes (ok, failed,
 * skipped for robots.txt; links to three hosts, known or unknown to robots.txt; disallowed links;
 * stale leases: spent, or with a wrong token) until the job ends or 60 steps, leases expiring as
 * the clock moves. `sequential` stores the pages one complete() at a time.
 */
async function twinRun(client: Redis, seed: number, sequential: Redis = client): Promise<number> {
  const random = randomOf(seed);
  const int = (n: number) => Math.floor(random() * n);
  const base = `t${process.pid}_${Date.now().toString(36)}_${seed}`;
  const options = { maxEventsPerJob: 1 + int(12), finishedTtlSeconds: int(2) * 60, listen: false };
  const a = kvStorage({ client: sequential as never, prefix: `${base}a:`, ...options });
  const b = kvStorage({ client: client as never, prefix: `${base}b:`, ...options });
  const [tokensA, tokensB] = [new Map<string, string>(), new Map<string, string>()];
  const job = jobRecord({
    id: 'job_twin',
    url: 'http://h0.test/p0',
    createdAt: new Date(T0).toISOString(),
    options: { maxPages: 3 + int(15), perHostConcurrency: 1 + int(3), perHostDelayMs: int(2) * 100, maxRetries: 0, respectRobots: true },
  });
  const seedLink = { url: job.url, key: job.url, depth: 0, host: 'h0.test' };
  expect(await b.createJob(job, seedLink)).toEqual(await a.createJob(job, seedLink));
  const link = (): FrontierLink => {
    const url = `http://h${int(3)}.test/p${int(40)}`;
    return { url, key: url, depth: 1 + int(3), host: new URL(url).hostname, ...(random() < 0.5 ? { robots: random() < 0.5 ? 'allowed' : 'unknown' } : {}) };
  };
  const page = (lease: Lease, now: number, outcome: 'ok' | 'failed' | 'robots', url = lease.url, attempts = lease.attempts): PageResult => ({
    url,
    finalUrl: url,
    depth: lease.depth,
    status: outcome === 'ok' ? 200 : outcome === 'failed' ? 500 : null,
    ok: outcome === 'ok',
    contentType: outcome === 'robots' ? null : 'text/html',
    title: outcome === 'ok' ? `"${url}" \\ ✓` : null,
    description: null,
    canonical: null,
    links: 0,
    wordCount: 1,
    error: outcome === 'ok' ? null : outcome === 'failed' ? { code: 'http_error', message: 'HTTP 500' } : { code: 'robots', message: 'disallowed' },
    attempts,
    durationMs: 1,
    fetchedAt: new Date(now).toISOString(),
    data: outcome === 'ok' ? { seed, n: int(1000) } : null,
  });
  const held: Array<[Lease, Lease]> = [];
  const spent: Array<[Lease, Lease]> = [];
  let now = T0;
  let step = 0;
  try {
    for (; step < 60; step++) {
      now += 1 + int(600); // leases last 1000 ms: some expire and are claimed again
      const query = { limit: 1 + int(4), leaseMs: 1000, now, ...(random() < 0.5 ? { jobId: job.id } : {}) };
      const [claimA, claimB] = [await a.claim(query), await b.claim(query)];
      for (const [i, lease] of claimA.leases.entries()) {
        tokensA.set(lease.token, `T${tokensA.size}`);
        tokensB.set(claimB.leases[i]?.token ?? '', `T${tokensB.size}`);
      }
      expect(renamed(claimB, tokensB), `step ${step}: claim`).toEqual(renamed(claimA, tokensA));
      held.push(...claimA.leases.map((l, i): [Lease, Lease] => [l, claimB.leases[i]!]));
      const picked: Array<[Lease, Lease]> = [];
      for (let n = int(held.length + 1); n > 0; n--) picked.push(held.splice(int(held.length), 1)[0]!);
      if (spent.length > 0 && random() < 0.3) picked.splice(int(picked.length + 1), 0, spent[int(spent.length)]!);
      if (picked.length > 0 && random() < 0.2) {
        const [la, lb] = picked[int(picked.length)]!;
        picked.splice(int(picked.length + 1), 0, [
          { ...la, token: `${la.token}x` },
          { ...lb, token: `${lb.token}x` },
        ]);
      }
      const inputs = picked.map(([lease]) => {
        const outcome = (['ok', 'ok', 'ok', 'failed', 'robots'] as const)[int(5)]!;
        const links = outcome === 'ok' ? Array.from({ length: int(6) }, link) : [];
        const skipped =
          outcome === 'ok' ? Array.from({ length: int(3) }, () => link()).map((l) => ({ link: l, result: page(lease, now, 'robots', l.url, 0) })) : [];
        return { result: page(lease, now, outcome), links, ...(skipped.length > 0 || random() < 0.5 ? { skipped } : {}), now };
      });
      const one: CompleteResult[] = [];
      for (const [i, [lease]] of picked.entries()) one.push(await a.complete(lease, inputs[i]!));
      const many: CompleteResult[] = [];
      for (let i = 0; i < picked.length; ) {
        const size = 1 + int(picked.length - i);
        many.push(...(await b.completeMany!(picked.slice(i, i + size).map(([, lease], n) => ({ lease, input: inputs[i + n]! })))));
        i += size;
      }
      expect(many, `step ${step}: replies`).toEqual(one);
      spent.push(...picked);
      expect(await dump(client, `${base}b:`, tokensB), `step ${step}: keys`).toEqual(await dump(client, `${base}a:`, tokensA));
      const status = (await a.getJob(job.id))?.status;
      if (status !== 'queued' && status !== 'running') break;
    }
  } finally {
    for (const prefix of [`${base}a:`, `${base}b:`]) {
      const keys = await client.keys(`${prefix}*`);
      if (keys.length > 0) await client.del(...keys);
    }
  }
  return step;
}

const backends: Array<[string, () => Redis]> = [
  ['ioredis-mock', () => new RedisMock() as unknown as Redis],
  ...(REDIS_URL ? [['the real Redis', () => new Redis(REDIS_URL!, { maxRetriesPerRequest: 2 })] as [string, () => Redis]] : []),
];

describe.each(backends)('complete-many-13.lua stores each item as complete-13.lua does (%s)', (_, connect) => {
  const client = connect();
  afterAll(() => client.disconnect());

  test('on 20 seeded random runs: the same replies and the same keys after every step', async () => {
    const steps: number[] = [];
    for (let seed = 1; seed <= 20; seed++) steps.push(await twinRun(client, seed));
    // The runs go somewhere: most jobs end within the 60 steps.
    expect(steps.filter((n) => n < 60).length).toBeGreaterThan(15);
  }, 120_000);

  test('the comparison fails when one side stores differently (complete-13.lua counting a success twice)', async () => {
    const from = S.COMPLETE(jobKeys('p:', 'id')).lua;
    const to = from.replace("redis.call('HINCRBY', K.job, 'succ', 1)", "redis.call('HINCRBY', K.job, 'succ', 2)");
    expect(to).not.toBe(from);
    await expect(twinRun(client, 1, swapScript(client, from, to))).rejects.toThrow(/step \d+: replies/);
  });
});
