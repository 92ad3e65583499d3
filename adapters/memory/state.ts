/**
 * The state behind one `memoryStorage()`: each job's URLs (entries), hosts, results, events and
 * park state, and the store that holds the jobs and the claim order. Plain data; the operations
 * live in ready.ts, claim.ts, complete.ts, events.ts and listing.ts.
 */
import type { ErrorInfo, Job, PageResult, ProgressEvent, RobotsRecord } from '../../src/storage/index.js';
import { MinHeap } from './heap.js';
import { newOutbox, type Outbox } from './webhooks.js';

/** `spare`: a link kept past `maxPages` to stand in for an admitted URL that gets refunded. */
export type EntryState = 'pending' | 'leased' | 'done' | 'failed' | 'cancelled' | 'spare';

export interface Entry {
  url: string;
  key: string;
  depth: number;
  host: HostState;
  state: EntryState;
  token: string | null;
  attempts: number;
  expiresAt: number;
  notBefore: number;
  /** Admitted with robots.txt unknown, and not finished: it may still be refunded. */
  unsure: boolean;
  /** The link's sitemap `<lastmod>`, handed back on its leases; undefined when it had none. */
  lastmod: string | undefined;
}

/** One host of one job: its queue of ready URLs and its politeness state. */
export interface HostState {
  name: string;
  /** Ready entries in discovery order (BFS). */
  queue: Entry[];
  head: number;
  /** Released or retried entries, handed out before the queue. */
  front: Entry[];
  inFlight: number;
  /** Epoch ms before which no URL of this host is handed out. */
  nextAt: number;
  /** From robots.txt `Crawl-delay`. */
  crawlDelayMs: number;
}

export interface JobState {
  ordinal: number;
  job: Job;
  entries: Map<string, Entry>;
  hosts: Map<string, HostState>;
  /** Hosts in first-seen order; claims rotate through them. */
  hostList: HostState[];
  hostCursor: number;
  /** Pending entries waiting out a retry backoff. */
  delayed: Entry[];
  /** Spare links, oldest first (from `spareHead`). */
  spares: Entry[];
  spareHead: number;
  /** Skipped links recorded without a charge against maxPages. */
  free: number;
  /** Charges given back by URLs skipped for robots.txt after they were admitted. */
  refunds: number;
  /** Unfinished admitted entries whose robots.txt was unknown when they were found. */
  unsure: number;
  leased: Set<Entry>;
  results: PageResult[];
  /** Index of each URL's result in `results`, by the result's `url` (for `getResults`). */
  resultAt: Map<string, number>;
  events: ProgressEvent[];
  eventSeq: number;
  /** The newest event that was trimmed away; the snapshot a late reader gets. */
  trimmed: ProgressEvent | null;
  firstError: ErrorInfo | null;
  robots: Map<string, RobotsRecord>;
  /**
   * 0: claims visit the job. Otherwise the job is parked: a claim found nothing ready in it, and
   * claims skip it until this time (the earliest a host delay, a retry backoff or a live lease
   * ends; Infinity: until woken) or until something that can make it ready sooner wakes it
   * (complete, retry, release, putRobots).
   */
  readyAt: number;
  /** While parked: when the first URL waiting on the clock alone becomes ready (for nextReadyAt). */
  waitAt: number | null;
  /** Bumped on every park and wake; heap entries with an older stamp are stale. */
  stamp: number;
  /** Queued and in the admission line (`store.queue`): claims across jobs do not visit it yet. */
  waiting: boolean;
  /** Started by admission, not finished nor parked on the clock since: counted in `store.admitted` against `maxActiveJobs`. */
  admitted: boolean;
}

export interface HeapItem {
  at: number;
  js: JobState;
  stamp: number;
}

/** A queued job in the admission line; `at` orders it (see `admissionRank`). */
export interface QueueItem {
  at: number;
  js: JobState;
}

/**
 * The admission order as one number, lowest first: priority (highest first, -1000 to 1000), then
 * the creation ordinal. Exact while ordinals stay below 2^40.
 */
export const admissionRank = (js: JobState) => (1000 - (js.job.options.priority ?? 0)) * 2 ** 40 + js.ordinal;

/** Everything one `memoryStorage()` holds. */
export interface Store {
  /** Events kept per job. */
  maxEvents: number;
  /** Finished jobs kept; past it the oldest finished ones are deleted. */
  maxFinished: number;
  jobs: Map<string, JobState>;
  /** Jobs in creation order (`ordinal`, increasing; deleted jobs leave it). */
  order: JobState[];
  /** The ordinal of the next job created. */
  nextOrdinal: number;
  /** Finished (completed, failed, cancelled) jobs in the order they finished, oldest first. */
  finished: Set<JobState>;
  /**
   * Per job id: how many stored recrawls of it (`options.recrawlOf`) may point to its content
   * (formats beyond `metadata`). The `maxFinished` cap does not evict such a job.
   */
  recrawledBy: Map<string, number>;
  active: Set<JobState>;
  /**
   * Active jobs that are not parked nor waiting for admission, least recently served first: a claim
   * visits them in this order, and a job it got URLs from moves to the back.
   */
  eligible: Set<JobState>;
  /**
   * Queued jobs not yet visited by claims across jobs, in admission order (stale items, of jobs
   * started by a claim of their own or cancelled, are dropped when they reach the top).
   */
  queue: MinHeap<QueueItem>;
  /** Active jobs started by admission (`admitted`), at most the claims' `maxActiveJobs`. */
  admitted: number;
  /** Parked jobs by the time their park ends (finite ones only). */
  parkedUntil: MinHeap<HeapItem>;
  /** Parked jobs by the time their first URL waiting on the clock becomes ready. */
  waitingUntil: MinHeap<HeapItem>;
  listeners: Map<string, Set<() => void>>;
  /** The last lease token handed out. */
  tokenSeq: number;
  /** The webhook outbox. */
  outbox: Outbox;
}

export const ACTIVE = new Set(['queued', 'running']);

export function newStore(maxEvents: number, maxFinished: number): Store {
  return {
    maxEvents,
    maxFinished,
    jobs: new Map(),
    order: [],
    nextOrdinal: 0,
    finished: new Set(),
    recrawledBy: new Map(),
    active: new Set(),
    eligible: new Set(),
    queue: new MinHeap(),
    admitted: 0,
    parkedUntil: new MinHeap(),
    waitingUntil: new MinHeap(),
    listeners: new Map(),
    tokenSeq: 0,
    outbox: newOutbox(),
  };
}

/** A new job's state, with no URLs yet; `job` is copied. */
export function newJobState(job: Job, ordinal: number): JobState {
  return {
    ordinal,
    job: copyJob(job),
    entries: new Map(),
    hosts: new Map(),
    hostList: [],
    hostCursor: 0,
    delayed: [],
    spares: [],
    spareHead: 0,
    free: 0,
    refunds: 0,
    unsure: 0,
    leased: new Set(),
    results: [],
    resultAt: new Map(),
    events: [],
    eventSeq: 0,
    trimmed: null,
    firstError: null,
    robots: new Map(),
    readyAt: 0,
    waitAt: null,
    stamp: 0,
    waiting: false,
    admitted: false,
  };
}

export function copyJob(job: Job): Job {
  return {
    ...job,
    options: { ...job.options, include: [...job.options.include], exclude: [...job.options.exclude] },
    counts: { ...job.counts },
    error: job.error && { ...job.error },
    metadata: structuredClone(job.metadata),
  };
}

/** The job's host of that name, registered (claims rotate through it) on first use. */
export function hostOf(js: JobState, name: string): HostState {
  let host = js.hosts.get(name);
  if (host === undefined) {
    host = { name, queue: [], head: 0, front: [], inFlight: 0, nextAt: 0, crawlDelayMs: 0 };
    js.hosts.set(name, host);
    js.hostList.push(host);
  }
  return host;
}
