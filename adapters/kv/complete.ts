/**
 * `complete()` and `completeMany()` of the KV adapter. One page is one call of lua/complete-13.lua;
 * a batch is one call of lua/complete-many-13.lua per job (a job's keys share one cluster slot,
 * different jobs' may not), the jobs in parallel, then one index update for all of them.
 *
 * Over REST (Upstash, Vercel KV) a request has a size limit, so a job's items over
 * REST_MAX_CALL_CHARS of arguments go in several calls, in order, each atomic: the one case where
 * a job's items are not stored in one step. A link costs about twice its URL: 16 pages of 100
 * links (60-character URLs) are about 250 kB, one call; 16 pages of 1,000 links
 * (`maxLinksPerPage`'s default) about 2.5 MB, three calls.
 */
import { type CompleteInput, type CompleteItem, type CompleteResult, CrawlEngineError, type Lease, SKIP_CODES } from '../../src/storage/index.js';
import type { Ctx, IndexOp } from './client.js';
import * as S from './scripts.js';

/** A script's reply for one item: the result, and what the index must learn. */
interface CompleteReply extends CompleteResult {
  finished?: boolean;
  wake?: number;
}

/** One item's ARGV as both scripts take them: the lease and page, then its links (5 values each, the fifth with the lastmod) and disallowed links (6 each). */
interface Encoded {
  head: Array<string | number>;
  nlinks: number;
  links: Array<string | number>;
  nskips: number;
  skips: Array<string | number>;
}

function encode(lease: Lease, input: CompleteInput): Encoded {
  const { result } = input;
  const skipped = !result.ok && result.error !== null && SKIP_CODES.has(result.error.code);
  const head: Array<string | number> = [
    lease.key,
    lease.token,
    result.ok ? '1' : '0',
    skipped ? '1' : '0',
    JSON.stringify(result),
    result.error ? JSON.stringify(result.error) : '',
    input.now,
    new Date(input.now).toISOString(),
  ];
  const links: Array<string | number> = [];
  // The fifth value: '0' or '1' (robots.txt unknown), then the link's lastmod if it has one.
  for (const link of input.links) links.push(link.key, link.url, link.depth, link.host, `${link.robots === 'allowed' ? '0' : '1'}${link.lastmod ?? ''}`);
  const skips: Array<string | number> = [];
  for (const { link, result: skippedResult } of input.skipped ?? []) {
    skips.push(link.key, link.url, link.depth, link.host, JSON.stringify(skippedResult), skippedResult.error ? JSON.stringify(skippedResult.error) : '');
  }
  return { head, nlinks: input.links.length, links, nskips: input.skipped?.length ?? 0, skips };
}

/** The reply without the index's part. */
const resultOf = (out: CompleteReply): CompleteResult => ({ ok: out.ok, admitted: out.admitted, events: out.events });

export async function complete(ctx: Ctx, lease: Lease, input: CompleteInput): Promise<CompleteResult> {
  const { head, nlinks, links, skips } = encode(lease, input);
  const out = await ctx.call<CompleteReply>(S.COMPLETE, lease.jobId, [...head, ctx.maxEvents, ctx.ttl, nlinks, ...links, ...skips]);
  // Only a finish, or a wake of a parked job, costs a second round trip.
  if (out.finished) await ctx.applyIndex([['finish', lease.jobId, 0, input.now, 0]]);
  else if (out.wake !== undefined) await ctx.applyIndex([['wake', lease.jobId, out.wake, input.now, 0]]);
  return resultOf(out);
}

/** Characters an argument adds to a REST request body (its JSON string: quotes and a comma). */
const charsOf = (values: Array<string | number>) => values.reduce<number>((n, v) => n + String(v).length + 3, 0);

/**
 * Calls of complete-many-13.lua for one job's items (indexes into `items`), in order: one, or over
 * REST, as many as keep each under `ctx.maxCallChars` (an item larger than that goes alone).
 */
function chunksOf(ctx: Ctx, items: CompleteItem[], indexes: number[]): Array<{ indexes: number[]; args: Array<string | number> }> {
  const chunks: Array<{ indexes: number[]; args: Array<string | number> }> = [];
  let chunk: { indexes: number[]; args: Array<string | number> } | null = null;
  let chars = 0;
  for (const i of indexes) {
    const { head, nlinks, links, nskips, skips } = encode(items[i]!.lease, items[i]!.input);
    const itemArgs = [...head, nlinks, nskips, ...links, ...skips];
    const size = Number.isFinite(ctx.maxCallChars) ? charsOf(itemArgs) : 0;
    if (chunk === null || (chunk.indexes.length > 0 && chars + size > ctx.maxCallChars)) {
      chunk = { indexes: [], args: [ctx.maxEvents, ctx.ttl, 0] };
      chunks.push(chunk);
      chars = 0;
    }
    chunk.indexes.push(i);
    for (const value of itemArgs) chunk.args.push(value);
    chars += size;
  }
  for (const c of chunks) c.args[2] = c.indexes.length;
  return chunks;
}

/**
 * Group commit: the items of each job in one script call (see chunksOf for REST), jobs in
 * parallel, then one index update for every job that finished or woke. Each item is exactly
 * `complete(item.lease, item.input)`, in the order given; results come back in that order.
 */
export async function completeMany(ctx: Ctx, items: CompleteItem[]): Promise<CompleteResult[]> {
  if (!Array.isArray(items)) throw new CrawlEngineError('invalid_input', 'invalid completeMany items: expected an array of { lease, input }');
  items.forEach((item, i) => {
    if (typeof item?.lease?.jobId !== 'string' || typeof item.input !== 'object' || item.input === null) {
      throw new CrawlEngineError('invalid_input', `invalid completeMany items[${i}]: expected { lease, input } with a lease of a job`);
    }
  });
  if (items.length === 0) return [];
  const byJob = new Map<string, number[]>();
  items.forEach((item, i) => {
    const indexes = byJob.get(item.lease.jobId);
    if (indexes === undefined) byJob.set(item.lease.jobId, [i]);
    else indexes.push(i);
  });
  const results: CompleteResult[] = new Array(items.length);
  const ops: IndexOp[] = [];
  const settled = await Promise.allSettled(
    [...byJob].map(async ([jobId, indexes]) => {
      let finished: number | null = null;
      let wake: { v: number; now: number } | null = null;
      try {
        for (const chunk of chunksOf(ctx, items, indexes)) {
          const out = await ctx.call<CompleteReply[]>(S.COMPLETE_MANY, jobId, chunk.args);
          if (!Array.isArray(out) || out.length !== chunk.indexes.length) {
            throw new CrawlEngineError(
              'storage_error',
              `[crawl-engine] [kv] complete-many replied ${Array.isArray(out) ? out.length : 'no'} results for ${chunk.indexes.length} items`,
            );
          }
          for (let n = 0; n < out.length; n++) {
            const i = chunk.indexes[n]!;
            const reply = out[n]!;
            results[i] = resultOf(reply);
            if (reply.finished) finished = items[i]!.input.now;
            // Each wake bumps the job's park version: the last one is the newest, the one the index keeps.
            else if (reply.wake !== undefined) wake = { v: reply.wake, now: items[i]!.input.now };
          }
        }
      } finally {
        // What the stored items changed, even when a later call of the job failed.
        if (finished !== null) ops.push(['finish', jobId, 0, finished, 0]);
        else if (wake !== null) ops.push(['wake', jobId, wake.v, wake.now, 0]);
      }
    }),
  );
  await ctx.applyIndex(ops);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return results;
}
