/**
 * How the KV adapter talks to Redis: client detection (ioredis's `eval(script, numKeys, ...)` or
 * Upstash / Vercel KV's `eval(script, keys, args)`), EVALSHA with an EVAL fallback, reply parsing,
 * errors wrapped as `storage_error`, and the index updates claims and completions queue.
 */
import { createHash } from 'node:crypto';
import { CrawlEngineError } from '../../src/storage/index.js';
import { type IndexKeys, indexKeys, type JobKeys, jobKeys } from './keys.js';
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

/** Runs a script: EVALSHA first, EVAL when the server does not have it yet (NOSCRIPT). */
export type Runner = (script: S.ScriptCall, args: Array<string | number>) => Promise<unknown>;

function runnerFor(client: IoredisLikeClient | UpstashLikeClient): Runner {
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
export function parse<T>(reply: unknown): T {
  if (typeof reply !== 'string' || !reply.startsWith('~')) {
    throw new CrawlEngineError('storage_error', `[crawl-engine] [kv] unexpected script reply ${JSON.stringify(reply)?.slice(0, 200)}`);
  }
  return JSON.parse(reply.slice(1)) as T;
}

/**
 * Index updates, applied in one round trip: `touch` (a job gave URLs: to the back of the line),
 * `park` / `wake` with the job's version (applied only if newer than the index has seen), `remove`
 * (no longer active: frees its admission place), `finish` (finished or cancelled: removed, and
 * indexed by its finish time, the score, for the retention sweep) and `start` (started by a claim
 * of its own: out of the admission line, uncounted) and `requeue` (admitted before its data was
 * written: back to the head of the line).
 */
export type IndexOp = ['touch' | 'park' | 'wake' | 'remove' | 'finish' | 'start' | 'requeue', string, number, number, number];

/**
 * The most one call to a REST client (Upstash, Vercel KV) carries, in characters of its arguments
 * (the request body is their JSON: a little more). Upstash refuses requests over 10 MB on its Free
 * and Pay-as-you-go plans ("ERR max request size exceeded"); a tenth of that leaves room for
 * escaping, multi-byte characters and smaller limits. completeMany splits above it.
 */
export const REST_MAX_CALL_CHARS = 1_000_000;

/** One `kvStorage()`'s connection to its keys: what its operations run scripts through. */
export interface Ctx {
  /** Runs a script as it is: errors and replies are the caller's. */
  run: Runner;
  /** The arguments one script call may carry, in characters: REST_MAX_CALL_CHARS over REST, unlimited on ioredis. */
  maxCallChars: number;
  keysOf(jobId: string): JobKeys;
  ix: IndexKeys;
  maxEvents: number;
  /** `finishedTtlSeconds`. */
  ttl: number;
  /** Runs a script on one job's keys and parses its reply; errors become `storage_error`. */
  call<T>(script: S.JobScript, jobId: string, args: Array<string | number>): Promise<T>;
  /** Runs a script on the index; errors become `storage_error`. */
  indexCall(script: S.ScriptCall, args: Array<string | number>): Promise<unknown>;
  /**
   * Applies index updates. `touch` alone (a job gave URLs: to the back of the claim line) is only
   * an ordering hint, so with `deferTouch` it waits up to TOUCH_DEFER_MS, coalesced per job, and
   * goes with the next update that must be applied now (before it, in order) or on its own.
   */
  /** Resolves to how many admission places parked jobs gave up while queued jobs wait (0 if none, or deferred). */
  applyIndex(ops: IndexOp[], options?: { deferTouch?: boolean }): Promise<number>;
  /** Applies the deferred touches now (before the index is read for a claim across jobs). */
  flushTouches(): Promise<void>;
}

/**
 * How long a deferred `touch` may wait. A claim of one job (the `crawl()` loop) otherwise costs a
 * second round trip to the index for it, about a third of a crawl's commands; claims across jobs
 * flush first, so within one storage they see every touch, and other processes see it this late.
 */
export const TOUCH_DEFER_MS = 100;

export function contextFor(client: IoredisLikeClient | UpstashLikeClient, prefix: string, maxEvents: number, ttl: number): Ctx {
  const run = runnerFor(client);
  const maxCallChars = typeof (client as IoredisLikeClient).defineCommand === 'function' ? Number.POSITIVE_INFINITY : REST_MAX_CALL_CHARS;
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
  // Deferred touches: job id → the latest claim time to record.
  const touches = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  const takeTouches = (): IndexOp[] => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const ops = [...touches].map(([id, at]): IndexOp => ['touch', id, 0, at, 0]);
    touches.clear();
    return ops;
  };
  async function flushTouches(): Promise<void> {
    const ops = takeTouches();
    if (ops.length > 0) await indexCall(S.INDEX_APPLY(ix), ops.flat());
  }
  async function applyIndex(ops: IndexOp[], options: { deferTouch?: boolean } = {}): Promise<number> {
    if (options.deferTouch === true && ops.every((op) => op[0] === 'touch')) {
      for (const [, id, , at] of ops) touches.set(id, Math.max(touches.get(id) ?? 0, at));
      if (touches.size > 0 && timer === null) {
        // A lost touch only leaves the job earlier in the claim line: errors are dropped.
        timer = setTimeout(() => void flushTouches().catch(() => undefined), TOUCH_DEFER_MS);
        (timer as { unref?: () => void }).unref?.();
      }
      return 0;
    }
    // Nothing to apply now: deferred touches keep waiting.
    if (ops.length === 0) return 0;
    return Number(await indexCall(S.INDEX_APPLY(ix), [...takeTouches(), ...ops].flat())) || 0;
  }
  return { run, maxCallChars, keysOf, ix, maxEvents, ttl, call, indexCall, applyIndex, flushTouches };
}
