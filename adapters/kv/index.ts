/**
 * `kvStorage({ client })`: the storage contract on Redis data structures, atomic by Lua, for
 * Upstash Redis, Vercel KV (`createClient()` or `kv`) and ioredis (and ioredis-mock in tests).
 * Every read-and-write operation is one script (completeMany: one per job of the batch); no
 * blocking commands, no Streams, no cjson.
 *
 * The parts: client.ts (running scripts on either kind of client), claim.ts, complete.ts (one page
 * or a batch), push.ts (`watch()` over pub/sub), scripts.ts and lua/ (the scripts), keys.ts (every
 * key and field).
 *
 * @module crawl-engine/adapters/kv
 */
import { randomUUID } from 'node:crypto';
import {
  type CancelResult,
  type ClaimQuery,
  type ClaimWebhookQuery,
  type ClaimResult,
  type CompleteInput,
  type CompleteItem,
  type CompleteResult,
  CrawlEngineError,
  type CrawlStorage,
  type DeleteFinishedQuery,
  type DeleteFinishedResult,
  type DeleteResult,
  type FrontierLink,
  type Job,
  type Lease,
  type ListJobsQuery,
  type ListResultsQuery,
  type ListWebhookDeliveriesQuery,
  type NewEvent,
  type NewWebhookDelivery,
  type Paginated,
  type PageResult,
  type ProgressEvent,
  parseDigitsCursor,
  type RetryInput,
  type RobotsRecord,
  sweepEach,
  type WebhookDelivery,
  type WebhookDeliveryLease,
  type WebhookDeliveryOutcome,
  type WebhookJob,
  type WebhookPumpState,
} from '../../src/storage/index.js';
import { claim } from './claim.js';
import { contextFor, type IndexOp, type IoredisLikeClient, parse, type UpstashLikeClient } from './client.js';
import { complete, completeMany } from './complete.js';
import { webhookKeys } from './keys.js';
import { canDuplicate, pubSub } from './push.js';
import { restEndpoint, restPubSub } from './rest-push.js';
import * as S from './scripts.js';

export type { IoredisLikeClient, UpstashLikeClient } from './client.js';

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
   * Wake progress subscribers at once through Redis pub/sub instead of polling. With ioredis, a
   * second connection for SUBSCRIBE (`client.duplicate()`); over REST (an @upstash/redis or
   * @vercel/kv client with `subscribe()`), one HTTP event stream per watched job. If the REST
   * server turns out to have no subscribe endpoint, `capabilities.push` becomes false and
   * subscribers poll (with backoff while the job is idle).
   * @default true when the client has `duplicate()` or `subscribe()`
   */
  listen?: boolean;
}

/** A delivery as the outbox scripts reply it: `[doc, state, attempts, nextAttemptAt, deliveredAt, lastError, ...]`. */
type DeliveryReply = [NewWebhookDelivery, WebhookDelivery['state'], number, number, number | null, WebhookDelivery['lastError'], ...unknown[]];

function deliveryOf([doc, state, attempts, nextAttemptAt, deliveredAt, lastError]: DeliveryReply): WebhookDelivery {
  return { ...doc, state, attempts, nextAttemptAt, deliveredAt, lastError };
}

function parseCursor(cursor: string | null | undefined): number | null {
  const digits = parseDigitsCursor(cursor, 15);
  return digits === null ? null : Number(digits);
}

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
    ...(options.listen === true && !canDuplicate(options.client) && restEndpoint(options.client) === null
      ? [{ path: 'listen', message: 'needs a client with duplicate() (ioredis) or an @upstash/redis / @vercel/kv client with subscribe()' }]
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
  const ctx = contextFor(options.client, prefix, maxEvents, ttl);
  const { run, keysOf, ix, call, indexCall, applyIndex } = ctx;
  const wk = webhookKeys(prefix);
  /** Runs an outbox script (keys under {webhooks}) and parses its reply. */
  const outbox = async <T>(script: S.ScriptCall, args: Array<string | number>): Promise<T> => parse<T>(await indexCall(script, args));
  /** Removes a deleted job's registration and deliveries: a second script, after the job's own keys went. */
  const dropOutbox = (id: string) => indexCall(S.WEBHOOK_DROP(wk, id), [id]);
  const rest = canDuplicate(options.client) ? null : restEndpoint(options.client);
  const canListen = options.listen ?? (canDuplicate(options.client) || rest !== null);
  // Mutable: a REST server without a subscribe endpoint turns push off for later subscribers.
  const capabilities = { push: canListen, shared: true, ...(ttl > 0 ? { expiresFinishedJobs: true, finishedJobsExpireAfterMs: ttl * 1000 } : {}) };

  const storage: CrawlStorage = {
    name: 'kv',
    capabilities,

    // Pub/sub: ioredis, one extra connection while anything is watched; REST, one stream per watched job.
    ...(canListen
      ? rest === null
        ? pubSub(options.client, prefix)
        : restPubSub(rest, prefix, {
            onUnsupported: () => {
              capabilities.push = false;
            },
          })
      : {}),

    // The job's data first, then its index entry (index-add: its ordinal and its place in the
    // admission line). The other way round, a claim or listJobs landing in between found an index
    // entry without data, took the job for gone and dropped it: created, then queued for ever.
    // If this process dies between the two, the job was never reported created and is never
    // claimed nor listed (its keys stay, unreachable), unless the same id is created again.
    async createJob(job: Job, seed: FrontierLink) {
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
        0,
        seed.lastmod ?? '',
      ]);
      // An id that exists: its index entry is added all the same (the step is idempotent: an entry
      // keeps its ordinal and state), so a create that stopped between the two steps and is tried
      // again with the same id (a schedule's recrawl) leaves a job that is claimed, not stranded.
      if (reply === '~exists') {
        await indexCall(S.INDEX_ADD(ix, job.id), [job.id, job.options.priority ?? 0]);
        throw new CrawlEngineError('conflict', `job ${job.id} already exists`);
      }
      await indexCall(S.INDEX_ADD(ix, job.id), [job.id, job.options.priority ?? 0]);
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
          // A job whose data expired (finishedTtlSeconds) leaves the index, and the outbox, as it is found.
          if (job === null) {
            await dropOutbox(id);
            await indexCall(S.INDEX_DROP(ix, id), [id]);
          }
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

    async getResults(jobId: string, urls: string[]): Promise<Array<PageResult | null>> {
      const out: Array<PageResult | null> = [];
      for (let from = 0; from < urls.length; from += 1000)
        out.push(...(await call<Array<PageResult | null>>(S.GET_RESULTS, jobId, urls.slice(from, from + 1000))));
      return out;
    },

    async claim(query: ClaimQuery): Promise<ClaimResult> {
      return claim(ctx, query);
    },

    async complete(lease: Lease, input: CompleteInput): Promise<CompleteResult> {
      return complete(ctx, lease, input);
    },

    // One script call per job of the batch (lua/complete-many-13.lua), jobs in parallel.
    async completeMany(items: CompleteItem[]): Promise<CompleteResult[]> {
      return completeMany(ctx, items);
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
      if (out.events.length > 0) await applyIndex([['finish', id, 0, now, 0]]);
      else if (out.job !== null) await applyIndex([['remove', id, 0, 0, 0]]);
      return out;
    },

    // The job's keys first (one script, lua/delete-13.lua), then its index entries: if the second
    // step is lost, listJobs, claims and the sweep drop the entries of a job that is gone.
    async deleteJob(id: string, now: number): Promise<DeleteResult> {
      const out = await call<DeleteResult>(S.DELETE, id, [new Date(now).toISOString(), maxEvents, '']);
      if (out.deleted) {
        // The outbox is in another slot ({webhooks}): its own script, which must not be lost (its
        // deliveries would still be posted), so its failure fails the call; deleting again finds
        // no job and repairs nothing, so it runs before the index step.
        await dropOutbox(id);
        // The job is gone once the script ran: a lost index step is repaired later, not an error.
        await indexCall(S.INDEX_DROP(ix, id), [id]).catch(() => undefined);
      }
      return out;
    },

    // The due jobs from p{index}:finished, oldest first, then one script per job (which checks
    // again that the job is finished before the cutoff).
    async deleteFinishedJobs(query: DeleteFinishedQuery): Promise<DeleteFinishedResult> {
      if (!(query.limit >= 1)) return { deleted: 0 };
      const before = new Date(query.finishedBefore).toISOString();
      const due = (await indexCall(S.INDEX_FINISHED(ix), [query.finishedBefore, Math.floor(query.limit)])) as Array<string | number>;
      return sweepEach(due.map(String), query, async (id) => {
        const out = await call<DeleteResult>(S.DELETE, id, [before, maxEvents, before]);
        if (out.deleted) {
          await dropOutbox(id);
          await indexCall(S.INDEX_DROP(ix, id), [id]).catch(() => undefined);
          return true;
        }
        // Not deleted: its data expired (finishedTtlSeconds) or went with a delete whose index step
        // was lost, and it leaves the index; or its score was off, and it is put at its finish time
        // (either way the next sweep does not find it again).
        const job = await storage.getJob(id);
        if (job === null) {
          await dropOutbox(id);
          await indexCall(S.INDEX_DROP(ix, id), [id]);
        } else if (job.finishedAt !== null) await applyIndex([['finish', id, 0, Date.parse(job.finishedAt), 0]]);
        return false;
      });
    },

    // The webhook outbox: lua/webhook-*.lua, every key under {webhooks} (keys.ts), so that a claim
    // across all jobs is one script.
    async addWebhookJob(jobId: string, now: number) {
      await outbox<boolean>(S.WEBHOOK_ADD(wk, jobId), [jobId, JSON.stringify(jobId), now]);
    },

    async listWebhookJobs(limit: number, after = 0): Promise<WebhookJob[]> {
      if (!(limit >= 1)) return [];
      return outbox<WebhookJob[]>(S.WEBHOOK_JOBS(wk), [Math.floor(limit), Number.isSafeInteger(after) && after > 0 ? after : 0]);
    },

    async removeWebhookJob(jobId: string) {
      await outbox<boolean>(S.WEBHOOK_REMOVE(wk, jobId), [jobId]);
    },

    async enqueueWebhookDeliveries(jobId: string, expected: WebhookPumpState | null, next: WebhookPumpState, deliveries: NewWebhookDelivery[]) {
      const args: Array<string | number> = [
        jobId,
        expected === null ? '' : String(expected.seq),
        String(next.seq),
        JSON.stringify(next),
        next.done ? '1' : '0',
      ];
      for (const d of deliveries) {
        const doc = { id: d.id, jobId: d.jobId, event: d.event, url: d.url, payload: d.payload, createdAt: d.createdAt };
        args.push(d.id, JSON.stringify(doc), d.createdAt);
      }
      return outbox<boolean>(S.WEBHOOK_ENQUEUE(wk, jobId), args);
    },

    async claimWebhookDeliveries(query: ClaimWebhookQuery): Promise<WebhookDeliveryLease[]> {
      if (!(query.limit >= 1)) return [];
      const expiresAt = query.now + query.leaseMs;
      const rows = await outbox<Array<[...DeliveryReply, string]>>(S.WEBHOOK_CLAIM(wk), [query.now, expiresAt, Math.floor(query.limit), randomUUID()]);
      return rows.map((row) => ({ delivery: deliveryOf(row), token: String(row[6]), expiresAt }));
    },

    async settleWebhookDelivery(lease: WebhookDeliveryLease, outcome: WebhookDeliveryOutcome) {
      const at = outcome.state === 'delivered' ? outcome.now : outcome.state === 'pending' || outcome.state === 'released' ? outcome.nextAttemptAt : '';
      const error = outcome.state === 'pending' || outcome.state === 'failed' ? JSON.stringify(outcome.error) : '';
      return outbox<boolean>(S.WEBHOOK_SETTLE(wk), [lease.delivery.id, lease.token, outcome.state, at, error]);
    },

    async listWebhookDeliveries(jobId: string, query: ListWebhookDeliveriesQuery): Promise<Paginated<WebhookDelivery>> {
      const after = parseCursor(query.cursor) ?? 0;
      if (!(query.limit >= 1)) return { items: [], nextCursor: null };
      const rows = await outbox<Array<[number, ...DeliveryReply]>>(S.WEBHOOK_LIST(wk, jobId), [after, Math.floor(query.limit) + 1]);
      const page = rows.slice(0, query.limit);
      return {
        items: page.map(([, ...row]) => deliveryOf(row as DeliveryReply)),
        nextCursor: rows.length > query.limit ? String(page[page.length - 1]![0]) : null,
      };
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
