/**
 * The skeleton of a `CrawlStorage` adapter (docs/adapters.md, "Writing an adapter, step by step").
 * The glue every adapter needs is written (options, cursors, push, the maxPages and completion
 * decisions); each method that touches your database is left for you, with the steps it takes and
 * the invariants (I1 … I19 in docs/adapters.md) it keeps. As it stands it typechecks and fails
 * the conformance suite with `unsupported` errors; fill the methods in until the suite passes.
 *
 * Copy it into your package as is: it imports only `crawl-engine/storage`.
 */
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
  type JobCounts,
  type Lease,
  type ListJobsQuery,
  type ListResultsQuery,
  type Paginated,
  type PageResult,
  type ProgressEvent,
  parseDigitsCursor,
  type RetryInput,
  type RobotsRecord,
  SKIP_CODES,
} from 'crawl-engine/storage';

export interface SkeletonStorageOptions<Client> {
  /** Your driver: a connection pool, a D1 binding, a DynamoDB document client. */
  client: Client;
  /**
   * Events kept per job; older ones are trimmed and a late reader gets a `progress` snapshot (I16).
   * @default 10000
   */
  maxEventsPerJob?: number;
  /**
   * Change notifications that reach every process (LISTEN/NOTIFY, pub/sub, a change stream): calls
   * `onAppend` after events are appended to the job, returns the unsubscribe function. Without it,
   * `capabilities.push` is false and progress subscribers poll `readEvents` (I17).
   */
  subscribe?: (jobId: string, onAppend: () => void) => () => void;
}

/** A job's `maxPages` bookkeeping, stored with the job and changed in the same atomic step as its counts (I9). */
export interface Accounting {
  counts: JobCounts;
  /** Links recorded as skipped without a charge (`CompleteInput.skipped`), at most `maxPages`. */
  free: number;
  /** Charges given back by admitted URLs whose result was `robots`, at most `maxPages`. */
  refunds: number;
  /** Spare links kept (not claimable, not counted) to stand in for refunded URLs. */
  spares: number;
  /** Admitted, unfinished URLs whose `robots` was not `allowed` when found: each may still be refunded. */
  unsure: number;
}

/**
 * I9: what becomes of a new link (deduplicated already, I8) of `CompleteInput.links`. `admit`: a
 * pending frontier entry, `discovered` and `queued` + 1, `unsure` + 1 unless its `robots` is
 * `allowed`; `spare`: stored for dedup and as a stand-in, not counted; `drop`: not stored (so are
 * the links after it in the call).
 */
export function placeLink(a: Accounting, maxPages: number): 'admit' | 'spare' | 'drop' {
  const charged = a.counts.discovered - a.free - a.refunds;
  if (charged < maxPages) return 'admit';
  if (a.spares < Math.min(a.unsure, maxPages - a.refunds)) return 'spare';
  return 'drop';
}

/** The skip rule: a result with one of these error codes counts as `skipped`, not `failed` (I7). */
export function isSkip(result: PageResult): boolean {
  return !result.ok && result.error !== null && SKIP_CODES.has(result.error.code);
}

/**
 * I10: the status a running job takes once a `complete()` has left nothing queued or in flight,
 * or null while it has work left. `failed` (with the first error stored) when no page succeeded.
 */
export function finishedStatus(counts: JobCounts): 'completed' | 'failed' | null {
  if (counts.queued !== 0 || counts.inProgress !== 0) return null;
  return counts.succeeded === 0 ? 'failed' : 'completed';
}

const todo = (what: string) => new CrawlEngineError('unsupported', `skeleton adapter: ${what} is not written yet (see docs/adapters.md)`);

/** Event ids are decimal integers, +1 per event of a job (I15): your per-job sequence, as a string. */
export const eventId = (seq: number | bigint): string => String(seq);

export function skeletonStorage<Client>(options: SkeletonStorageOptions<Client>): CrawlStorage {
  const maxEvents = options.maxEventsPerJob ?? 10_000;
  if (!Number.isInteger(maxEvents) || maxEvents < 1) {
    throw new CrawlEngineError('invalid_options', `invalid skeletonStorage options: maxEventsPerJob: expected an integer >= 1, got ${String(maxEvents)}`, {
      errors: [{ path: 'maxEventsPerJob', message: 'expected an integer >= 1' }],
    });
  }
  const { subscribe } = options;

  return {
    name: 'skeleton',
    capabilities: { push: subscribe !== undefined },

    async createJob(job: Job, seed: FrontierLink): Promise<{ job: Job; events: ProgressEvent[] }> {
      // I1, in one atomic step: insert the job row (its counts as given: discovered 1, queued 1),
      // the seed's frontier entry (pending, attempts 0), its host row, and event 1 `job:created`
      // (at job.createdAt, url job.url). A primary-key clash on job.id:
      //   throw new CrawlEngineError('conflict', `job ${job.id} already exists`, { cause });
      throw todo(`createJob(${job.id}, ${seed.key})`);
    },

    async getJob(id: string): Promise<Job | null> {
      // I1, I2: the row as stored (options, counts, metadata round-trip exactly), or null.
      throw todo(`getJob(${id})`);
    },

    async listJobs(query: ListJobsQuery): Promise<Paginated<Job>> {
      // I18: newest first, optionally one status; the cursor is the last item's position.
      const before = parseDigitsCursor(query.cursor);
      throw todo(`listJobs(before ${before ?? 'the newest'})`);
    },

    async listResults(jobId: string, query: ListResultsQuery): Promise<Paginated<PageResult>> {
      // I18: in the order stored; an unknown job has none. Compare cursors as numbers, not text.
      const after = parseDigitsCursor(query.cursor);
      throw todo(`listResults(${jobId}, after ${after ?? 'the start'})`);
    },

    async claim(query: ClaimQuery): Promise<ClaimResult> {
      // One atomic step per job visited (I2, I3, I5, I6, I12, I13, I14):
      // 1. Pick jobs: query.jobId only, or the active jobs least recently served first, skipping
      //    ones parked until a time after query.now (bounded: look at a fixed number of jobs).
      // 2. Per job: expired leases (expiresAt <= now) first, then pending entries whose notBefore
      //    <= now, host by host in rotation, within each host's slots and delay.
      // 3. Each entry taken: state leased, a token never handed out before, attempts + 1, expiresAt =
      //    now + leaseMs. A pending one also moves queued - 1, inProgress + 1 and its host's
      //    in-flight + 1 (an expired lease is in flight already and keeps its host slot).
      // 4. A queued job that got a lease: status running, startedAt now, event `job:started`.
      // 5. A job that gave nothing: park it until its earliest clock-bound change.
      // 6. When fewer leases than query.limit: nextReadyAt, else null.
      throw todo(`claim(limit ${query.limit})`);
    },

    async complete(lease: Lease, input: CompleteInput): Promise<CompleteResult> {
      // One atomic step on the job (I4, I7 – I10, I12, I15):
      // 1. The entry's token must equal lease.token and its state be leased, else return
      //    { ok: false, admitted: 0, events: [] } having changed nothing.
      // 2. Store input.result; the entry is done (result.ok) or failed; succeeded, skipped
      //    (isSkip) or failed + 1, inProgress - 1; free the host slot; unless skipped, the host's
      //    next start is at least input.now + its delay. An unsure entry: unsure - 1.
      // 3. A skipped result with refunds < maxPages: refunds + 1, and the oldest spare (if any) is
      //    admitted (pending; discovered and queued + 1; unsure + 1 unless it was `allowed`).
      // 4. input.links, in order, deduplicated against every entry of the job (spares and skipped
      //    included) and within the call: placeLink() for each.
      // 5. Append the page's event (`page:done` / `page:skipped` / `page:failed`, with its error).
      // 6. input.skipped, while free < maxPages, new keys only: store the entry as finished and its
      //    result; discovered and skipped + 1, free + 1, one `page:skipped` event each.
      // 7. finishedStatus(counts) on a queued or running job: set status, finishedAt (input.now),
      //    job.error = the first error stored when failed, and append `job:completed` / `job:failed`.
      // Every event carries the counts as they are after its change.
      const skipped = isSkip(input.result);
      throw todo(`complete(${lease.key}, ${skipped ? 'skipped' : input.result.ok ? 'done' : 'failed'})`);
    },

    async retry(lease: Lease, input: RetryInput): Promise<boolean> {
      // I4, I6, I12: current token only (else false). The entry goes back to pending with
      // notBefore = input.notBefore; inProgress - 1, queued + 1; the host slot is freed and the
      // host's next start is at least input.now + its delay (the request was made).
      throw todo(`retry(${lease.key}, not before ${input.notBefore})`);
    },

    async release(leases: Lease[]): Promise<number> {
      // I4, I5: for each lease still current: pending at once, attempts - 1 (the claim is not
      // counted), inProgress - 1, queued + 1, host slot freed with no delay, handed out before the
      // host's other URLs. Returns how many were current.
      throw todo(`release(${leases.length} leases)`);
    },

    async cancelJob(id: string, now: number): Promise<CancelResult> {
      // I11: an unknown job gets { job: null, events: [] } (I2), a finished one is returned as it
      // is with no events. Else, in one step: status cancelled, finishedAt now, pending and leased
      // entries cancelled (tokens no longer current), spares dropped, queued and inProgress 0,
      // event `job:cancelled`.
      throw todo(`cancelJob(${id}, ${now})`);
    },

    async getRobots(jobId: string, origin: string): Promise<RobotsRecord | null> {
      // I19: the record as stored for (job, origin), or null.
      throw todo(`getRobots(${jobId}, ${origin})`);
    },

    async putRobots(jobId: string, record: RobotsRecord): Promise<void> {
      // I19, I12: replace the (job, origin) record; the host's crawl delay becomes
      // record.crawlDelayMs ?? 0 (host = new URL(record.origin).hostname); wake a parked job.
      // I2: a job that does not exist gets nothing stored (throwing `not_found` is allowed).
      throw todo(`putRobots(${jobId}, ${record.origin})`);
    },

    async readEvents(jobId: string, afterId: string | null, limit: number): Promise<ProgressEvent[]> {
      // I15, I16: events with id > afterId, oldest first, at most limit. When afterId is older than
      // the newest trimmed event, that event first, retyped `progress` (same id and counts). An
      // unknown job has none (I2); an afterId that is not one of your ids reads from the start.
      throw todo(`readEvents(${jobId}, after ${afterId ?? 'the start'}, ${limit}; ${maxEvents} kept)`);
    },

    ...(subscribe === undefined ? {} : { watch: (jobId: string, listener: () => void) => subscribe(jobId, listener) }),
  };
}
