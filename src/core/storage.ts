/**
 * The storage contract. All crawl state lives behind it; processors keep none between runs.
 * Every method is atomic on its own, so a processor may die between any two calls without
 * losing or doubling work.
 *
 * Public as `crawl-engine/storage`. The invariants an implementation keeps, each with the
 * conformance tests that check it, are in docs/adapters.md (I1–I29 there; the webhook outbox I24–I28, getResults I29).
 *
 * @module
 */
import type { RobotsRule } from '../crawl/robots.js';
import type { ErrorInfo, Job, JobStatus, Paginated, PageResult, ProgressEvent } from './types.js';

/** A URL to add to a job's frontier. `key` is the normalised URL used for dedup. */
export interface FrontierLink {
  url: string;
  key: string;
  depth: number;
  /** The URL's hostname, the unit of politeness (per-host concurrency and delay). */
  host: string;
  /**
   * What the processor knew of the URL's robots.txt when it found the link: `allowed` (the rules
   * of its origin were known and allow it, or the job ignores robots.txt) or `unknown` (they were
   * not known yet). An `unknown` URL may still be skipped for robots.txt once claimed, which
   * refunds its charge against `maxPages`, so storage keeps spare links to stand in for such URLs
   * (see `CrawlStorage.complete`). Absent means `unknown`.
   */
  robots?: 'allowed' | 'unknown';
  /**
   * The `<lastmod>` a sitemap listed for the URL (at most 64 characters), handed back on its
   * lease so the result can carry it. Absent for links found on pages.
   */
  lastmod?: string;
}

/** A link the processor knows robots.txt disallows: recorded with its result, never fetched. */
export interface SkippedLink {
  link: FrontierLink;
  /** Its result: error code `robots`, `status` null, `attempts` 0. */
  result: PageResult;
}

/** A claimed URL. Only the holder of the current `token` may finish it (fencing). */
export interface Lease {
  jobId: string;
  url: string;
  key: string;
  depth: number;
  host: string;
  token: string;
  /** How many times this URL has been claimed, this claim included. */
  attempts: number;
  /** Epoch ms after which the URL may be handed to another processor. */
  expiresAt: number;
  /** The sitemap `<lastmod>` stored with the URL's frontier entry (`FrontierLink.lastmod`), if any. */
  lastmod?: string;
}

export interface ClaimQuery {
  limit: number;
  leaseMs: number;
  /** Epoch ms; injected so that tests and adapters agree on one clock. */
  now: number;
  /**
   * Claim only from this job. Such a claim bypasses admission (`maxActiveJobs`): a queued job is
   * started by it at once, and a job started that way does not count against the bound.
   */
  jobId?: string;
  /**
   * Admission bound of a claim across jobs (no `jobId`): queued jobs are started only while fewer
   * than this many jobs started by admission are running, in order of `options.priority` (highest
   * first), then creation (oldest first). Admitting starts the job (`running`, `job:started`) in this
   * claim; a job that ends frees its place for the next claim, and so does one a claim parks waiting
   * on the clock (a host delay or retry backoff; it runs on uncounted), not one parked only at its
   * hosts' concurrency. Absent: no bound (every queued job is
   * claimable, as before the bound existed); an adapter that ignores it still works, unbounded.
   */
  maxActiveJobs?: number;
}

export interface ClaimResult {
  leases: Lease[];
  /** Events the claim appended (`job:started` for jobs that were queued). */
  events: ProgressEvent[];
  /**
   * When fewer URLs than asked for were ready: the earliest time a URL waiting out a retry
   * backoff or a host delay becomes ready, or null (nothing is waiting on the clock).
   */
  nextReadyAt?: number | null;
}

/** A host's robots.txt as fetched for one job. */
export interface RobotsRecord {
  /** `https://example.com` (scheme, host and port). */
  origin: string;
  /**
   * `ok`: rules parsed from a 2xx answer; `unavailable`: 4xx, everything allowed;
   * `unreachable`: 5xx or no answer, everything disallowed until `expiresAt`.
   */
  status: 'ok' | 'unavailable' | 'unreachable';
  rules: RobotsRule[];
  /** `Crawl-delay` in ms (already capped), applied to the origin's host by `putRobots`. */
  crawlDelayMs: number | null;
  httpStatus: number | null;
  fetchedAt: string;
  /** Epoch ms after which the record is fetched again. */
  expiresAt: number;
}

export interface CompleteInput {
  result: PageResult;
  /** Links found on the page, already filtered by depth, scope and globs, that may be fetched. */
  links: FrontierLink[];
  /**
   * Links found on the page (filtered as `links` are) that robots.txt disallows, as the processor
   * knows from the rules of their origin. They are recorded as skipped at once and never fetched;
   * they are not charged against `maxPages`.
   */
  skipped?: SkippedLink[];
  now: number;
}

/** One page's outcome in {@link CrawlStorage.completeMany}. */
export interface CompleteItem {
  lease: Lease;
  input: CompleteInput;
}

export interface CompleteResult {
  /** False when the lease was no longer current (expired and re-claimed, cancelled, finished). */
  ok: boolean;
  /** How many `links` were new and fitted under `maxPages` (spares and `skipped` links not included). */
  admitted: number;
  events: ProgressEvent[];
}

export interface RetryInput {
  notBefore: number;
  error: ErrorInfo;
  now: number;
}

export interface CancelResult {
  job: Job | null;
  /** `job:cancelled`, or nothing when the job was already terminal. */
  events: ProgressEvent[];
}

export interface DeleteResult {
  /** False when there was no job with that id. */
  deleted: boolean;
  /** `job:cancelled` when the job was queued or running (it is cancelled first), else nothing. */
  events: ProgressEvent[];
}

/** Which finished jobs {@link CrawlStorage.deleteFinishedJobs} removes. */
export interface DeleteFinishedQuery {
  /** Epoch ms: only jobs that finished (completed, failed or were cancelled) strictly before this. */
  finishedBefore: number;
  /** The most jobs one call removes (a bound on its work, whatever the size of the jobs). */
  limit: number;
  /**
   * Epoch ms (`Date.now()`'s clock): an adapter that removes jobs one at a time stops between two
   * once it is past, so that a sweep ends within the run that started it.
   */
  deadline?: number;
}

export interface DeleteFinishedResult {
  /** How many jobs were removed (at most `limit`). */
  deleted: number;
}

/** Fields of a new event; storage assigns the id and the counts. */
export interface NewEvent {
  type: ProgressEvent['type'];
  at: string;
  url?: string;
  error?: ErrorInfo;
}

export interface ListJobsQuery {
  status?: JobStatus;
  limit: number;
  cursor?: string | null;
}

export interface ListResultsQuery {
  limit: number;
  cursor?: string | null;
}

/** What an adapter can do beyond the contract, so the engine can pick the best path. */
export interface StorageCapabilities {
  /** `watch()` wakes subscribers when events are appended (else the engine polls `readEvents`). */
  push: boolean;
  /**
   * State is shared between processes (false for the memory adapter).
   * @deprecated Never read by the engine; adapters need not set it. The built-in adapters still
   * do, but the member is optional now: code that reads it must handle `undefined`.
   */
  shared?: boolean;
  /**
   * Finished jobs may vanish on their own, without `deleteJob` (KV's `finishedTtlSeconds`). A
   * recrawl's unchanged pages then keep a copy of their content rather than pointing to the earlier
   * job's (`PageResult.contentFrom`), as on an engine with `retention`. Absent: false.
   */
  expiresFinishedJobs?: boolean;
  /**
   * How long after it finished a job expires, when `expiresFinishedJobs`: a `schedule` whose
   * recrawls come further apart is refused (the job would be gone before its recrawl).
   */
  finishedJobsExpireAfterMs?: number;
}

/**
 * What a webhook delivery announces. `page` carries a batch of page results. `schedule` is not a
 * webhook: the entry of a job's scheduled recrawl, due when the recrawl is (its `createdAt`, thus
 * its first `nextAttemptAt`, is that time); an adapter stores it as any other.
 */
export type WebhookEventType = 'job.started' | 'page' | 'job.completed' | 'job.failed' | 'job.cancelled' | 'schedule';

/** A delivery to store in the webhook outbox ({@link CrawlStorage.enqueueWebhookDeliveries}). */
export interface NewWebhookDelivery {
  /**
   * Stable and unique across the storage: the `webhook-id` header of every attempt, so receivers
   * can drop duplicates. Inserting an id that exists already changes nothing.
   */
  id: string;
  jobId: string;
  event: WebhookEventType;
  /** Where it is posted. */
  url: string;
  /** The JSON body, exactly as it is signed and posted. */
  payload: string;
  /** Epoch ms. */
  createdAt: number;
}

/** A delivery as stored. */
export interface WebhookDelivery extends NewWebhookDelivery {
  /** `pending` (waiting for a try, or being tried under a lease), `delivered` or `failed` (gave up). */
  state: 'pending' | 'delivered' | 'failed';
  /** Tries so far (claims), the current one included. */
  attempts: number;
  /** Epoch ms before which it is not tried (again). */
  nextAttemptAt: number;
  /** Epoch ms, when delivered. */
  deliveredAt: number | null;
  /** Why the last try failed (`status`: the receiver's HTTP status, null without an answer). */
  lastError: (ErrorInfo & { status: number | null }) | null;
}

/** A claimed delivery; only the holder of the current `token` may settle it. */
export interface WebhookDeliveryLease {
  delivery: WebhookDelivery;
  token: string;
  /** Epoch ms after which another processor may claim it. */
  expiresAt: number;
}

/** How a try of a delivery ended ({@link CrawlStorage.settleWebhookDelivery}). */
export type WebhookDeliveryOutcome =
  | { state: 'delivered'; now: number }
  /** Tried again at `nextAttemptAt`. */
  | { state: 'pending'; nextAttemptAt: number; error: ErrorInfo & { status: number | null } }
  /** Given up: not tried again. */
  | { state: 'failed'; error: ErrorInfo & { status: number | null } }
  /**
   * Handed back untried (this processor cannot post it: no signing secret for it, or no time left
   * in its run): still `pending`, claimable again at `nextAttemptAt`, its `attempts` back down by
   * the claim's one, its `lastError` unchanged.
   */
  | { state: 'released'; nextAttemptAt: number };

/**
 * How far the engine has turned a job's progress into deliveries. The engine owns its meaning;
 * storage keeps it as given and compares `seq` only.
 */
export interface WebhookPumpState {
  /** Number of the job's next delivery (its id is made from it); increases with every enqueue. */
  seq: number;
  /** `listResults` cursor of the first result not yet fully turned into `page` deliveries. */
  resultsCursor: string | null;
  /** How many results from `resultsCursor` on have been delivered already. */
  resultsSkip: number;
  /** Lifecycle events enqueued already. */
  sent: WebhookEventType[];
  /** Nothing more is to be enqueued for the job: it leaves the list of webhook jobs. */
  done: boolean;
}

/** A job registered for webhook deliveries ({@link CrawlStorage.listWebhookJobs}). */
export interface WebhookJob {
  jobId: string;
  /** Registration order: increases with every registration (a cursor for `listWebhookJobs`). */
  ordinal: number;
  /** Epoch ms of `addWebhookJob`. */
  registeredAt: number;
  /** Null until the first enqueue. */
  state: WebhookPumpState | null;
}

export interface ClaimWebhookQuery {
  limit: number;
  leaseMs: number;
  now: number;
}

export interface ListWebhookDeliveriesQuery {
  limit: number;
  cursor?: string | null;
}

export interface CrawlStorage {
  readonly name: string;
  readonly capabilities: StorageCapabilities;

  /**
   * Stores the job row and its first frontier entry together, and appends `job:created`. A job id
   * that exists already is refused with a `CrawlEngineError` of code `conflict`.
   */
  createJob(job: Job, seed: FrontierLink): Promise<{ job: Job; events: ProgressEvent[] }>;
  /** The job as stored, or null when there is none with that id. */
  getJob(id: string): Promise<Job | null>;
  /**
   * Newest first. `nextCursor` is an opaque string (null on the last page); a cursor the adapter
   * did not hand out is refused with `invalid_input` naming `cursor` (see `parseDigitsCursor`).
   */
  listJobs(query: ListJobsQuery): Promise<Paginated<Job>>;
  /** In the order results were stored; cursors as for `listJobs`. An unknown job has no results. */
  listResults(jobId: string, query: ListResultsQuery): Promise<Paginated<PageResult>>;

  /**
   * The stored result of each URL (by its normalised URL, the `url` of the result and the key of
   * its frontier entry) in a job, in the order asked, null where there is none (an unknown job has
   * none). Cheap whatever the size of the job: an index from URL to result, never a scan. At most
   * 1,000 URLs a call.
   *
   * Optional: without it recrawls (`jobs.recrawl`) are refused with `unsupported`.
   */
  getResults?(jobId: string, urls: string[]): Promise<Array<PageResult | null>>;

  /**
   * Hands out ready URLs (pending with `notBefore <= now`, or leased with an expired lease) of
   * queued or running jobs, each with a fresh token; fair across jobs; never one URL to two live
   * leases; never more than `perHostConcurrency` leases on one host of a job (one when the host
   * has a delay), nor a host's next URL before its delay has passed since the last one finished.
   * Moves queued jobs to running: with `maxActiveJobs`, only as many as the bound admits, in
   * priority and creation order (claims then serve only running jobs).
   */
  claim(query: ClaimQuery): Promise<ClaimResult>;
  /**
   * Only if the lease token still matches: stores the result (a result whose error code is
   * `robots` counts as skipped), marks the URL done or failed, admits new links, records skipped
   * links, updates counters, appends events (the page's own first, then one `page:skipped` per
   * skipped link recorded), and finishes the job exactly once when nothing is queued or in progress.
   *
   * `maxPages` bounds the pages fetched: every admitted URL is charged against it, and a charge is
   * kept by any result but `robots`. Links (`links` and `skipped` alike) are deduplicated per job
   * and within the call; among the new ones, in order:
   * - `links` are admitted (claimable, counted in `discovered` and `queued`) while fewer than
   *   `maxPages` admitted URLs hold a charge. Once none fits, they are kept as spares (not
   *   claimable, not counted, but taken for dedup) while the job has fewer spares than unfinished
   *   admitted URLs whose `robots` is `unknown`, and no more than refunds it has left; others are
   *   dropped.
   * - `skipped` links are recorded as finished at once: their result stored, `discovered` and
   *   `skipped` counted, a `page:skipped` event each; no charge. At most `maxPages` per job, past
   *   which they are dropped.
   * - A leased URL whose result is `robots` (robots.txt learned only after it was admitted) gives
   *   its charge back, at most `maxPages` times per job: the oldest spare is admitted in its place,
   *   or, without spares, there is room for one more link.
   */
  complete(lease: Lease, input: CompleteInput): Promise<CompleteResult>;
  /**
   * Group commit: several pages' outcomes in one round trip. Each item is exactly
   * `complete(item.lease, item.input)`, applied in the order given: fenced by its own lease (a
   * stale one gets `ok: false` and changes nothing, the others are stored), its links
   * deduplicated against everything stored before it, earlier items of the call included, and
   * the job finished exactly once, by the item after which nothing is queued or in progress. The
   * results come back in the same order, each with the events its item appended (events of one
   * job in id order across the call).
   *
   * The items of one job are stored atomically together, up to a bound the adapter documents
   * (past it, in several units applied in order, each as atomic); items of different jobs may be
   * stored independently (an adapter may split the call by job, as KV does). When the call rejects, any
   * item may or may not have been stored: a caller that stores them again with `complete()` is
   * refused (`ok: false`) for those that were, as for any spent lease.
   *
   * Optional: without it the processor calls `complete()` once per page.
   */
  completeMany?(items: CompleteItem[]): Promise<CompleteResult[]>;
  /** Back to pending with a not-before time. False when the lease was no longer current. */
  retry(lease: Lease, input: RetryInput): Promise<boolean>;
  /** Unstarted claims go back at once (their attempt is not counted). Returns how many did. */
  release(leases: Lease[]): Promise<number>;
  /** Idempotent. Pending URLs are never claimed again and live leases stop being current. */
  cancelJob(id: string, now: number): Promise<CancelResult>;

  /**
   * Removes a job and everything it owns: its row, frontier, results, events, robots.txt records,
   * per-host state and its entries in any index shared by jobs; nothing of another job changes. A
   * queued or running job is cancelled first, as by `cancelJob` (its `job:cancelled` is appended,
   * waking watchers, and returned): its live leases stop being current, so a late `complete`,
   * `retry` or `release` is refused and stores nothing. Afterwards the job is as if it never
   * existed: `getJob` null, not listed, no results, no events. All or nothing; a job with many
   * results must not hold other jobs up for long (see docs/adapters.md for each adapter's bound).
   *
   * Optional: without it the engine's `jobs.delete` fails with `unsupported`.
   */
  deleteJob?(id: string, now: number): Promise<DeleteResult>;
  /**
   * Retention: removes, as `deleteJob` does, at most `limit` finished jobs (completed, failed or
   * cancelled) whose `finishedAt` is before `finishedBefore`, oldest finish first; never a queued
   * or running one. Each job goes all or nothing; the call as a whole need not be atomic. Finding
   * them is cheap (an index), however many jobs are kept.
   *
   * Optional: without it the engine's `retention` option is refused.
   */
  deleteFinishedJobs?(query: DeleteFinishedQuery): Promise<DeleteFinishedResult>;

  /**
   * Webhook outbox (all of the methods below, or none: without them webhooks are refused). Jobs are
   * registered with `addWebhookJob` before `createJob`; the engine turns a registered job's results
   * and status into deliveries with `enqueueWebhookDeliveries`, and any processor claims and posts
   * them. `deleteJob` (and so retention) removes a job's registration and deliveries too.
   *
   * Registers `jobId` for deliveries; idempotent (a second call keeps the first `registeredAt`).
   */
  addWebhookJob?(jobId: string, now: number): Promise<void>;
  /**
   * Registered jobs that are not done, in registration order (`ordinal`) from the first with an
   * `ordinal` greater than `after` (default: from the oldest), at most `limit`. The engine pages
   * through them with `after`, so that a few long-running jobs do not hide the others.
   */
  listWebhookJobs?(limit: number, after?: number): Promise<WebhookJob[]>;
  /** Forgets a registration (a job that was never created), with nothing else. */
  removeWebhookJob?(jobId: string): Promise<void>;
  /**
   * Atomically, only while the job's stored pump state is `expected` (null: none stored yet;
   * compared by `seq`): stores `deliveries` (`pending`, 0 attempts, `nextAttemptAt` = their
   * `createdAt`; an id that exists is left as it is) and `next` as the job's state (`done` ends its
   * registration). Returns false, storing nothing, when the state moved on (another processor
   * enqueued first) or the job is not registered.
   */
  enqueueWebhookDeliveries?(jobId: string, expected: WebhookPumpState | null, next: WebhookPumpState, deliveries: NewWebhookDelivery[]): Promise<boolean>;
  /**
   * Hands out deliveries that are `pending` with `nextAttemptAt <= now` and no live lease (a lease
   * past its `expiresAt` is dead), earliest `nextAttemptAt` first, each with a fresh token and its
   * `attempts` raised by one; never one delivery to two live leases.
   */
  claimWebhookDeliveries?(query: ClaimWebhookQuery): Promise<WebhookDeliveryLease[]>;
  /** Only while the lease's token is current: records the try's outcome. False otherwise. */
  settleWebhookDelivery?(lease: WebhookDeliveryLease, outcome: WebhookDeliveryOutcome): Promise<boolean>;
  /** A job's deliveries in the order they were enqueued; cursors as for `listJobs`. */
  listWebhookDeliveries?(jobId: string, query: ListWebhookDeliveriesQuery): Promise<Paginated<WebhookDelivery>>;

  /** The job's stored robots.txt record for an origin, or null. */
  getRobots(jobId: string, origin: string): Promise<RobotsRecord | null>;
  /** Stores (replaces) a robots.txt record; its `crawlDelayMs` becomes the host's delay. */
  putRobots(jobId: string, record: RobotsRecord): Promise<void>;

  /**
   * Appends events of the caller's choosing to a job's log.
   * @deprecated Never called by the engine: every event is appended by the operation that causes
   * it (`createJob`, `claim`, `complete`, `cancelJob`). Adapters need not implement it; the
   * built-in ones keep it for existing callers.
   */
  appendEvents?(jobId: string, events: NewEvent[]): Promise<ProgressEvent[]>;
  /**
   * Events with an id greater than `afterId` (all when null), oldest first, at most `limit`. Ids
   * are decimal integers, increasing per job. When `afterId` is older than the retained log, a
   * `progress` snapshot comes first: the newest trimmed event, retyped, with its id. An unknown
   * job has no events.
   */
  readEvents(jobId: string, afterId: string | null, limit: number): Promise<ProgressEvent[]>;

  /**
   * With `capabilities.push`: calls `listener` (no arguments, possibly more often than needed)
   * after events are appended to the job, from any process; returns the unsubscribe function.
   * The engine then reads them with `readEvents`.
   */
  watch?(jobId: string, listener: () => void): () => void;
  /** Releases connections the adapter opened itself. */
  close?(): Promise<void>;
}
