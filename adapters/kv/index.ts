/**
 * `kvStorage({ client })`: the storage contract on Redis data structures, atomic by Lua, for
 * Upstash Redis, Vercel KV (`createClient()` or `kv`) and ioredis (and ioredis-mock in tests).
 * Every read-and-write operation is one script; no blocking commands, no Streams, no cjson.
 *
 * @module crawl-engine/adapters/kv
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type CancelResult,
  type ClaimQuery,
  type ClaimResult,
  type CompleteInput,
  type CompleteResult,
  CrawlEngineError,
  type CrawlStorage,
  type FrontierLink,
  type Job,
  type Lease,
  type ListJobsQuery,
  type ListResultsQuery,
  type NewEvent,
  type Paginated,
  type PageResult,
  type ProgressEvent,
  parseDigitsCursor,
  type RetryInput,
  type RobotsRecord,
  SKIP_CODES,
} from '../../src/storage/index.js';
import { indexKeys, jobKeys, pushChannel } from './keys.js';
import * as S from './scripts.js';

/** ioredis (and ioredis-mock): `eval(script, numKeys, ...keys, ...args)`. */
export interface IoredisLikeClient {
  eval(script: string, numKeys: number, ...rest: Array<string | number>): Promise<unknown>;
  evalsha(sha: string, numKeys: number, ...rest: Array<string | number>): Promise<unknown>;
  defineCommand: unknown;
}
/** @upstash/redis and @vercel/kv: `eval(script, keys, args)`. */
export interface UpstashLikeClient {
  eval(script: string, keys: string[], args: unknown[]): Promise<unknown>;
  evalsha(sha: string, keys: string[], args: unknown[]): Promise<unknown>;
}

export interface KvStorageOptions {
  client: IoredisLikeClient | UpstashLikeClient;
  /**
   * Prefix of every key.
   * @default 'crawl:'
   */
  prefix?: string;
  /**
   * Events kept per job; older ones are trimmed and a late reader gets a `progress` snapshot.
   * @default 10000
   */
  maxEventsPerJob?: number;
  /**
   * Seconds after which a finished (completed, failed or cancelled) job's data expires; 0 keeps it.
   * @default 0
   */
  finishedTtlSeconds?: number;
  /**
   * Wake progress subscribers at once through Redis pub/sub instead of polling. Needs a client
   * that can open a second connection for SUBSCRIBE (ioredis: `client.duplicate()`), so it is on
   * by default for ioredis and unavailable over REST (Upstash, Vercel KV), where subscribers poll.
   * @default true when the client has `duplicate()`
   */
  listen?: boolean;
}

/** The part of an ioredis connection that pub/sub uses. */
interface Subscriber {
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  disconnect(): void;
}

/** Runs a script: EVALSHA first, EVAL when the server does not have it yet (NOSCRIPT). */
type Runner = (script: S.ScriptCall, args: Array<string | number>) => Promise<unknown>;

function runnerFor(client: KvStorageOptions['client']): Runner {
  const shas = new Map<string, string>();
  const sha = (script: string) => {
    let found = shas.get(script);
    if (found === undefined) {
      found = createHash('sha1').update(script).digest('hex');
      shas.set(script, found);
    }
    return found;
  };
  const isNoScript = (error: unknown) => /NOSCRIPT/i.test(String((error as Error)?.message ?? error));
  if (typeof (client as IoredisLikeClient).defineCommand === 'function') {
    const c = client as IoredisLikeClient;
    return async ({ lua, keys }, args) => {
      try {
        return await c.evalsha(sha(lua), keys.length, ...keys, ...args);
      } catch (error) {
        if (!isNoScript(error)) throw error;
        return c.eval(lua, keys.length, ...keys, ...args);
      }
    };
  }
  const c = client as UpstashLikeClient;
  return async ({ lua, keys }, args) => {
    const strings = args.map(String);
    try {
      return await c.evalsha(sha(lua), keys, strings);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return c.eval(lua, keys, strings);
    }
  };
}

/** Replies start with `~` so that Upstash's automatic JSON parsing leaves them alone. */
function parse<T>(reply: unknown): T {
  if (typeof reply !== 'string' || !reply.startsWith('~')) {
    throw new CrawlEngineError('storage_error', `[crawl-engine] [kv] unexpected script reply ${JSON.stringify(reply)?.slice(0, 200)}`);
  }
  return JSON.parse(reply.slice(1)) as T;
}

function parseCursor(cursor: string | null | undefined): number | null {
  const digits = parseDigitsCursor(cursor, 15);
  return digits === null ? null : Number(digits);
}

/** Jobs one claim across all jobs looks at, at most. */
const WINDOW = 50;

export function kvStorage(options: KvStorageOptions): CrawlStorage {
  const client = options.client as unknown as { eval?: unknown; evalsha?: unknown } | undefined;
  const bad = [
    ...(client && typeof client.eval === 'function' && typeof client.evalsha === 'function'
      ? []
      : [{ path: 'client', message: 'expected an @upstash/redis or @vercel/kv client, or ioredis' }]),
    ...(options.prefix === undefined || /^[\w:.-]{0,64}$/.test(options.prefix)
      ? []
      : [{ path: 'prefix', message: 'expected up to 64 letters, digits, _ : . or -' }]),
    ...(options.maxEventsPerJob === undefined || (Number.isInteger(options.maxEventsPerJob) && options.maxEventsPerJob >= 1)
      ? []
      : [{ path: 'maxEventsPerJob', message: 'expected an integer >= 1' }]),
    ...(options.listen === undefined || typeof options.listen === 'boolean' ? [] : [{ path: 'listen', message: 'expected a boolean' }]),
    ...(options.listen === true && typeof (options.client as { duplicate?: unknown }).duplicate !== 'function'
      ? [{ path: 'listen', message: 'needs a client with duplicate() (ioredis); REST clients cannot subscribe' }]
      : []),
    ...(options.finishedTtlSeconds === undefined || (Number.isInteger(options.finishedTtlSeconds) && options.finishedTtlSeconds >= 0)
      ? []
      : [{ path: 'finishedTtlSeconds', message: 'expected an integer >= 0' }]),
  ];
  if (bad.length > 0)
    throw new CrawlEngineError('invalid_options', `invalid kvStorage options: ${bad.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { errors: bad });
  const prefix = options.prefix ?? 'crawl:';
  const maxEvents = options.maxEventsPerJob ?? 10_000;
  const ttl = options.finishedTtlSeconds ?? 0;
  const run = runnerFor(options.client);
  const keysOf = (jobId: string) => jobKeys(prefix, jobId);
  const ix = indexKeys(prefix);

  async function call<T>(script: S.JobScript, jobId: string, args: Array<string | number>): Promise<T> {
    try {
      return parse<T>(await run(script(keysOf(jobId)), args));
    } catch (error) {
      if (error instanceof CrawlEngineError) throw error;
      throw new CrawlEngineError('storage_error', `[crawl-engine] [kv] ${(error as Error).message}`, { cause: error });
    }
  }
  async function indexCall(script: S.ScriptCall, args: Array<string | number>): Promise<unknown> {
    try {
      return await run(script, args);
    } catch (error) {
      throw new CrawlEngineError('storage_error', `[crawl-engine] [kv] ${(error as Error).message}`, { cause: error });
    }
  }
  /**
   * Index updates, applied in one round trip: `touch` (a job gave URLs: to the back of the line),
   * `park` / `wake` with the job's version (applied only if newer than the index has seen), and
   * `remove` (finished or cancelled).
   */
  type IndexOp = ['touch' | 'park' | 'wake' | 'remove', string, number, number, number];
  async function applyIndex(ops: IndexOp[]): Promise<void> {
    if (ops.length > 0) await indexCall(S.INDEX_APPLY(ix), ops.flat());
  }

  interface ClaimReply {
    leases: Lease[];
    events: ProgressEvent[];
    nextReadyAt: number | null;
    inactive?: boolean;
    park?: { v: number; at: number; wait: number };
    wake?: number;
  }

  /** Claims from one job; queues what the index must learn in `ops`. */
  async function claimJob(jobId: string, limit: number, query: ClaimQuery, force: 1 | 0 | -1, ops: IndexOp[]): Promise<ClaimReply> {
    const out = await call<ClaimReply>(S.CLAIM, jobId, [
      limit,
      query.leaseMs,
      query.now,
      new Date(query.now).toISOString(),
      maxEvents,
      randomBytes(9).toString('base64url'),
      force,
    ]);
    if (out.inactive) ops.push(['remove', jobId, 0, 0, 0]);
    else if (out.park !== undefined) ops.push(['park', jobId, out.park.v, out.park.at, out.park.wait]);
    else if (out.wake !== undefined) ops.push(['wake', jobId, out.wake, query.now, 0]);
    else if (out.leases.length > 0) ops.push(['touch', jobId, 0, query.now, 0]);
    return out;
  }

  // Pub/sub: one extra connection while anything is watched, one channel per watched job.
  const duplicate = (options.client as { duplicate?: () => Subscriber }).duplicate;
  const canListen = options.listen ?? typeof duplicate === 'function';
  const channelOf = (jobId: string) => pushChannel(prefix, jobId);
  /** Listeners by channel. */
  const watchers = new Map<string, Set<() => void>>();
  let subscriber: Subscriber | null = null;
  const subscriberFor = () => {
    if (subscriber === null) {
      subscriber = duplicate!.call(options.client);
      subscriber.on('error', () => undefined); // ioredis reconnects and subscribes again by itself
      subscriber.on('message', (channel) => {
        for (const listener of watchers.get(channel) ?? []) listener();
      });
    }
    return subscriber;
  };

  const storage: CrawlStorage = {
    name: 'kv',
    capabilities: { push: canListen, shared: true },

    ...(canListen
      ? {
          watch(jobId: string, listener: () => void) {
            const channel = channelOf(jobId);
            let set = watchers.get(channel);
            if (set === undefined) {
              set = new Set();
              watchers.set(channel, set);
              // A failed SUBSCRIBE leaves the subscriber polling, which it does anyway as a safety net.
              subscriberFor()
                .subscribe(channel)
                .catch(() => undefined);
            }
            set.add(listener);
            return () => {
              set.delete(listener);
              if (set.size > 0 || watchers.get(channel) !== set) return;
              watchers.delete(channel);
              if (watchers.size > 0) {
                subscriber?.unsubscribe(channel).catch(() => undefined);
              } else {
                // Nobody watches: close the extra connection, so that it never keeps a process alive.
                subscriber?.disconnect();
                subscriber = null;
              }
            };
          },
          async close() {
            watchers.clear();
            subscriber?.disconnect();
            subscriber = null;
          },
        }
      : {}),

    async createJob(job: Job, seed: FrontierLink) {
      const ordinal = Number(await indexCall(S.INDEX_ADD(ix, job.id), [job.id]));
      const doc = JSON.stringify({ id: job.id, url: job.url, options: job.options, createdAt: job.createdAt, metadata: job.metadata });
      const reply = await run(S.CREATE(keysOf(job.id), seed.host), [
        doc,
        seed.url,
        seed.key,
        seed.host,
        job.options.maxPages,
        job.options.perHostConcurrency,
        job.options.perHostDelayMs,
        job.createdAt,
        maxEvents,
        job.id,
        ordinal,
      ]);
      if (reply === '~exists') throw new CrawlEngineError('conflict', `job ${job.id} already exists`);
      return parse<{ job: Job; events: ProgressEvent[] }>(reply);
    },

    async getJob(id) {
      return call<Job | null>(S.READ_JOB, id, []);
    },

    async listJobs(query: ListJobsQuery): Promise<Paginated<Job>> {
      let before = parseCursor(query.cursor);
      const items: Job[] = [];
      let lastOrdinal: number | null = null;
      let more = false;
      // Walk the index newest first; a status filter reads a few extra pages.
      for (let page = 0; page < 50 && !more; page++) {
        const flat = (await indexCall(S.INDEX_LIST(ix), [before === null ? 'inf' : before, 100])) as Array<string | number>;
        if (flat.length === 0) break;
        for (let i = 0; i < flat.length; i += 2) {
          const id = String(flat[i]);
          const ordinal = Number(flat[i + 1]);
          before = ordinal;
          const job = await storage.getJob(id);
          // A job whose data expired (finishedTtlSeconds) leaves the index as it is found.
          if (job === null) await indexCall(S.INDEX_DROP(ix, id), [id]);
          if (job === null || (query.status !== undefined && job.status !== query.status)) continue;
          if (items.length === query.limit) {
            more = true;
            break;
          }
          items.push(job);
          lastOrdinal = ordinal;
        }
        if (flat.length < 200) break;
      }
      return { items, nextCursor: more && lastOrdinal !== null ? String(lastOrdinal) : null };
    },

    async listResults(jobId: string, query: ListResultsQuery): Promise<Paginated<PageResult>> {
      const start = parseCursor(query.cursor) ?? 0;
      const rows = await call<PageResult[]>(S.READ_RESULTS, jobId, [start, query.limit + 1]);
      const items = rows.slice(0, query.limit);
      return { items, nextCursor: rows.length > query.limit ? String(start + query.limit) : null };
    },

    async claim(query: ClaimQuery): Promise<ClaimResult> {
      const ops: IndexOp[] = [];
      if (query.jobId !== undefined) {
        const out = await claimJob(query.jobId, query.limit, query, 0, ops);
        await applyIndex(ops);
        return { leases: out.leases, events: out.events, nextReadyAt: out.leases.length < query.limit ? out.nextReadyAt : null };
      }
      // Active jobs and parked ones whose time has come, longest idle first; parked jobs cost nothing.
      const { next: waiting, ids } = parse<{ next: number | null; ids: string[] }>(await indexCall(S.INDEX_ACTIVE(ix), [WINDOW, query.now]));
      const leases: Lease[] = [];
      const events: ProgressEvent[] = [];
      let next = waiting;
      const idle = new Set<string>();
      try {
        // A fair share per job first, then whatever is left to whoever has more.
        for (const pass of [1, 2]) {
          for (const id of ids) {
            const want = query.limit - leases.length;
            if (want <= 0) break;
            if (idle.has(id)) continue;
            const share = pass === 1 ? Math.max(1, Math.ceil(query.limit / ids.length)) : want;
            // A job is parked only when this claim got nothing from it.
            const out = await claimJob(id, Math.min(share, want), query, pass === 1 ? 1 : -1, ops);
            leases.push(...out.leases);
            events.push(...out.events);
            if (out.leases.length === 0) idle.add(id);
            if (out.nextReadyAt !== null && (next === null || out.nextReadyAt < next)) next = out.nextReadyAt;
          }
        }
      } finally {
        await applyIndex(ops);
      }
      // More jobs were eligible than one claim visits: the next claim sees the others at once.
      if (ids.length >= WINDOW) next = query.now;
      return { leases, events, nextReadyAt: leases.length < query.limit ? next : null };
    },

    async complete(lease: Lease, input: CompleteInput): Promise<CompleteResult> {
      const { result } = input;
      const skipped = !result.ok && result.error !== null && SKIP_CODES.has(result.error.code);
      const args: Array<string | number> = [
        lease.key,
        lease.token,
        result.ok ? '1' : '0',
        skipped ? '1' : '0',
        JSON.stringify(result),
        result.error ? JSON.stringify(result.error) : '',
        input.now,
        new Date(input.now).toISOString(),
        maxEvents,
        ttl,
        input.links.length,
      ];
      for (const link of input.links) args.push(link.key, link.url, link.depth, link.host, link.robots === 'allowed' ? '0' : '1');
      for (const { link, result: skippedResult } of input.skipped ?? []) {
        args.push(link.key, link.url, link.depth, link.host, JSON.stringify(skippedResult), skippedResult.error ? JSON.stringify(skippedResult.error) : '');
      }
      const out = await call<CompleteResult & { finished?: boolean; wake?: number }>(S.COMPLETE, lease.jobId, args);
      // Only a finish, or a wake of a parked job, costs a second round trip.
      if (out.finished) await applyIndex([['remove', lease.jobId, 0, 0, 0]]);
      else if (out.wake !== undefined) await applyIndex([['wake', lease.jobId, out.wake, input.now, 0]]);
      return { ok: out.ok, admitted: out.admitted, events: out.events };
    },

    async retry(lease: Lease, input: RetryInput) {
      const out = await call<{ ok: boolean; wake?: number }>(S.RETRY, lease.jobId, [lease.key, lease.token, input.notBefore, input.now]);
      if (out.wake !== undefined) await applyIndex([['wake', lease.jobId, out.wake, input.now, 0]]);
      return out.ok;
    },

    async release(leases: Lease[]) {
      let released = 0;
      const ops: IndexOp[] = [];
      try {
        for (const lease of leases) {
          const out = await call<{ ok: boolean; wake?: number }>(S.RELEASE, lease.jobId, [lease.key, lease.token]);
          if (out.ok) released++;
          // Released URLs are ready at once: the job goes to the front of the line.
          if (out.wake !== undefined) ops.push(['wake', lease.jobId, out.wake, 0, 0]);
        }
      } finally {
        await applyIndex(ops);
      }
      return released;
    },

    async cancelJob(id: string, now: number): Promise<CancelResult> {
      const out = await call<CancelResult>(S.CANCEL, id, [new Date(now).toISOString(), maxEvents, ttl]);
      if (out.job !== null) await applyIndex([['remove', id, 0, 0, 0]]);
      return out;
    },

    async getRobots(jobId: string, origin: string) {
      return call<RobotsRecord | null>(S.GET_ROBOTS, jobId, [origin]);
    },

    async putRobots(jobId: string, record: RobotsRecord) {
      await run(S.PUT_ROBOTS(keysOf(jobId)), [record.origin, JSON.stringify(record), new URL(record.origin).hostname, record.crawlDelayMs ?? 0]);
    },

    async appendEvents(jobId: string, events: NewEvent[]) {
      const args: Array<string | number> = [maxEvents];
      for (const e of events) args.push(e.type, e.at, e.url === undefined ? '' : JSON.stringify(e.url), e.error === undefined ? '' : JSON.stringify(e.error));
      const out = await call<ProgressEvent[] | null>(S.APPEND_EVENTS, jobId, args);
      if (out === null) throw new CrawlEngineError('not_found', `job ${JSON.stringify(jobId)} does not exist`);
      return out;
    },

    async readEvents(jobId: string, afterId: string | null, limit: number) {
      if (limit <= 0) return [];
      const after = afterId !== null && /^\d{1,15}$/.test(afterId) ? Number(afterId) : 0;
      return call<ProgressEvent[]>(S.READ_EVENTS, jobId, [after, limit]);
    },
  };
  return storage;
}
