/**
 * `memoryStorage()`: the whole storage contract inside one process, for tests, the CLI and
 * single-process apps. Every operation runs synchronously inside its promise, so each one is
 * atomic with respect to the others.
 *
 * The parts: state.ts (the data), ready.ts (host politeness and parked jobs), claim.ts,
 * complete.ts (ending leases and jobs, `maxPages`, deleting a job), retention.ts (the cap on finished
 * jobs, the retention sweep), frontier.ts (adding URLs), events.ts, listing.ts.
 *
 * @module crawl-engine/adapters/memory
 */
import {
  type CancelResult,
  type ClaimQuery,
  type ClaimResult,
  type CompleteInput,
  type CompleteItem,
  type CompleteResult,
  CrawlEngineError,
  type DeleteFinishedQuery,
  type DeleteFinishedResult,
  type DeleteResult,
  type CrawlStorage,
  type Job,
  type Lease,
  type ListJobsQuery,
  type ListResultsQuery,
  type NewEvent,
  type Paginated,
  type PageResult,
  type ProgressEvent,
  type RetryInput,
  type RobotsRecord,
} from '../../src/storage/index.js';
import { claim } from './claim.js';
import { cancelJob, complete, deleteJob, release, retry } from './complete.js';
import { append, appendEvents, notify, readEvents, watch } from './events.js';
import { addEntry } from './frontier.js';
import { listJobs, listResults } from './listing.js';
import { pinEarlier } from './retention.js';
import { wake } from './ready.js';
import { deleteFinishedJobs } from './retention.js';
import { admissionRank, copyJob, hostOf, newJobState, newStore } from './state.js';
import {
  addWebhookJob,
  claimWebhookDeliveries,
  enqueueWebhookDeliveries,
  forgetWebhookJob,
  listWebhookDeliveries,
  listWebhookJobs,
  settleWebhookDelivery,
} from './webhooks.js';

export interface MemoryStorageOptions {
  /**
   * Events kept per job; older ones are dropped and a reader that asks for them gets a
   * `progress` snapshot first.
   * @default 10000
   */
  maxEventsPerJob?: number;
  /**
   * Finished (completed, failed or cancelled) jobs kept: when one more finishes, the one that
   * finished longest ago is deleted with its results and events. `Infinity` keeps them all (the
   * memory then grows with every job, some 30 kB each for a small crawl).
   * @default 1000
   */
  maxFinishedJobs?: number;
}

/** Creates an in-process storage. State lives as long as the returned object. */
export function memoryStorage(options: MemoryStorageOptions = {}): CrawlStorage {
  const maxEvents = options.maxEventsPerJob ?? 10_000;
  if (!Number.isInteger(maxEvents) || maxEvents < 1) {
    throw new CrawlEngineError('invalid_options', `invalid memoryStorage options: maxEventsPerJob: expected an integer >= 1, got ${String(maxEvents)}`, {
      errors: [{ path: 'maxEventsPerJob', message: 'expected an integer >= 1' }],
    });
  }
  const maxFinished = options.maxFinishedJobs ?? 1000;
  if (maxFinished !== Number.POSITIVE_INFINITY && (!Number.isInteger(maxFinished) || maxFinished < 1)) {
    throw new CrawlEngineError(
      'invalid_options',
      `invalid memoryStorage options: maxFinishedJobs: expected an integer >= 1 or Infinity, got ${String(maxFinished)}`,
      { errors: [{ path: 'maxFinishedJobs', message: 'expected an integer >= 1 or Infinity' }] },
    );
  }
  const store = newStore(maxEvents, maxFinished);

  const storage: CrawlStorage = {
    name: 'memory',
    capabilities: { push: true, shared: false },

    async createJob(job, seed) {
      if (store.jobs.has(job.id)) throw new CrawlEngineError('conflict', `job ${job.id} already exists`);
      const js = newJobState(job, store.nextOrdinal++);
      addEntry(js, seed);
      store.jobs.set(job.id, js);
      pinEarlier(store, js, 1);
      store.order.push(js);
      store.active.add(js);
      // Claims across jobs visit it once admitted (or at once, by claims without a bound).
      js.waiting = true;
      store.queue.push({ at: admissionRank(js), js });
      const events = [append(store, js, { type: 'job:created', at: job.createdAt, url: job.url })];
      notify(store, job.id);
      return { job: copyJob(js.job), events };
    },

    async getJob(id) {
      const js = store.jobs.get(id);
      return js === undefined ? null : copyJob(js.job);
    },

    async listJobs(query: ListJobsQuery): Promise<Paginated<Job>> {
      return listJobs(store, query);
    },

    async listResults(jobId: string, query: ListResultsQuery): Promise<Paginated<PageResult>> {
      return listResults(store, jobId, query);
    },

    async getResults(jobId: string, urls: string[]): Promise<Array<PageResult | null>> {
      const js = store.jobs.get(jobId);
      return urls.map((url) => {
        const at = js?.resultAt.get(url);
        return at === undefined ? null : { ...js!.results[at]! };
      });
    },

    async claim(query: ClaimQuery): Promise<ClaimResult> {
      return claim(store, query);
    },

    async complete(lease: Lease, input: CompleteInput): Promise<CompleteResult> {
      return complete(store, lease, input);
    },

    async completeMany(items: CompleteItem[]): Promise<CompleteResult[]> {
      // complete() item after item, synchronously: the whole call is atomic, as complete() is.
      return items.map(({ lease, input }) => complete(store, lease, input));
    },

    async retry(lease: Lease, input: RetryInput): Promise<boolean> {
      return retry(store, lease, input);
    },

    async release(leases: Lease[]): Promise<number> {
      return release(store, leases);
    },

    async cancelJob(id: string, now: number): Promise<CancelResult> {
      return cancelJob(store, id, now);
    },

    async deleteJob(id: string, now: number): Promise<DeleteResult> {
      return deleteJob(store, id, now);
    },

    async deleteFinishedJobs(query: DeleteFinishedQuery): Promise<DeleteFinishedResult> {
      return deleteFinishedJobs(store, query);
    },

    async addWebhookJob(jobId, now) {
      addWebhookJob(store.outbox, jobId, now);
    },

    async listWebhookJobs(limit, after) {
      return listWebhookJobs(store.outbox, limit, after);
    },

    async removeWebhookJob(jobId) {
      forgetWebhookJob(store.outbox, jobId, false);
    },

    async enqueueWebhookDeliveries(jobId, expected, next, deliveries) {
      return enqueueWebhookDeliveries(store.outbox, jobId, expected, next, deliveries);
    },

    async claimWebhookDeliveries(query) {
      return claimWebhookDeliveries(store.outbox, query);
    },

    async settleWebhookDelivery(lease, outcome) {
      return settleWebhookDelivery(store.outbox, lease, outcome);
    },

    async listWebhookDeliveries(jobId, query) {
      return listWebhookDeliveries(store.outbox, jobId, query);
    },

    async getRobots(jobId: string, origin: string): Promise<RobotsRecord | null> {
      const record = store.jobs.get(jobId)?.robots.get(origin);
      return record === undefined ? null : structuredClone(record);
    },

    async putRobots(jobId: string, record: RobotsRecord): Promise<void> {
      const js = store.jobs.get(jobId);
      // A job deleted while its robots.txt was being fetched: nothing to keep it for (as on Postgres and KV).
      if (js === undefined) return;
      js.robots.set(record.origin, structuredClone(record));
      hostOf(js, new URL(record.origin).hostname).crawlDelayMs = record.crawlDelayMs ?? 0;
      // A shorter Crawl-delay may give a host more slots at once.
      wake(store, js);
    },

    async appendEvents(jobId: string, events: NewEvent[]): Promise<ProgressEvent[]> {
      return appendEvents(store, jobId, events);
    },

    async readEvents(jobId: string, afterId: string | null, limit: number): Promise<ProgressEvent[]> {
      return readEvents(store, jobId, afterId, limit);
    },

    watch(jobId: string, listener: () => void): () => void {
      return watch(store, jobId, listener);
    },
  };
  return storage;
}
