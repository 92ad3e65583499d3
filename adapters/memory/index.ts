/**
 * `memoryStorage()`: the whole storage contract inside one process, for tests, the CLI and
 * single-process apps. Every operation runs synchronously inside its promise, so each one is
 * atomic with respect to the others.
 *
 * @module crawl-engine/adapters/memory
 */
import {
  type CancelResult,
  type ClaimQuery,
  type ClaimResult,
  type CompleteInput,
  type CompleteResult,
  CrawlEngineError,
  type CrawlStorage,
  type ErrorInfo,
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

export interface MemoryStorageOptions {
  /**
   * Events kept per job; older ones are dropped and a reader that asks for them gets a
   * `progress` snapshot first.
   * @default 10000
   */
  maxEventsPerJob?: number;
}

/** `spare`: a link kept past `maxPages` to stand in for an admitted URL that gets refunded. */
type EntryState = 'pending' | 'leased' | 'done' | 'failed' | 'cancelled' | 'spare';

interface Entry {
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
}

/** One host of one job: its queue of ready URLs and its politeness state. */
interface HostState {
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

interface JobState {
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
}

interface HeapItem {
  at: number;
  js: JobState;
  stamp: number;
}

/** A binary min-heap on `at`; stale items are dropped lazily when they reach the top. */
class MinHeap {
  private items: HeapItem[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): HeapItem | undefined {
    return this.items[0];
  }

  push(item: HeapItem): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.at <= item.at) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = item;
  }

  /** Drops the items `keep` refuses and restores the heap order. */
  compact(keep: (item: HeapItem) => boolean): void {
    const kept = this.items.filter(keep);
    this.items = [];
    for (const item of kept) this.push(item);
  }

  pop(): HeapItem | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && items[right]!.at < items[left]!.at ? right : left;
      if (items[child]!.at >= last.at) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }
}

const ACTIVE = new Set(['queued', 'running']);

function copyJob(job: Job): Job {
  return {
    ...job,
    options: { ...job.options, include: [...job.options.include], exclude: [...job.options.exclude] },
    counts: { ...job.counts },
    error: job.error && { ...job.error },
    metadata: structuredClone(job.metadata),
  };
}

function parseCursor(cursor: string | null | undefined): number | null {
  const digits = parseDigitsCursor(cursor, 15);
  return digits === null ? null : Number(digits);
}

function eventSeq(id: string | null): number {
  if (id === null) return 0;
  const n = Number(id);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/** Creates an in-process storage. State lives as long as the returned object. */
export function memoryStorage(options: MemoryStorageOptions = {}): CrawlStorage {
  const maxEvents = options.maxEventsPerJob ?? 10_000;
  if (!Number.isInteger(maxEvents) || maxEvents < 1) {
    throw new CrawlEngineError('invalid_options', `invalid memoryStorage options: maxEventsPerJob: expected an integer >= 1, got ${String(maxEvents)}`, {
      errors: [{ path: 'maxEventsPerJob', message: 'expected an integer >= 1' }],
    });
  }
  const jobs = new Map<string, JobState>();
  const order: JobState[] = [];
  const active = new Set<JobState>();
  /**
   * Active jobs that are not parked, least recently served first: a claim visits them in this
   * order, and a job it got URLs from moves to the back.
   */
  const eligible = new Set<JobState>();
  /** Parked jobs by the time their park ends (finite ones only). */
  const parkedUntil = new MinHeap();
  /** Parked jobs by the time their first URL waiting on the clock becomes ready. */
  const waitingUntil = new MinHeap();
  const listeners = new Map<string, Set<() => void>>();
  let tokenSeq = 0;

  function notify(jobId: string): void {
    const set = listeners.get(jobId);
    if (set === undefined || set.size === 0) return;
    queueMicrotask(() => {
      for (const listener of set) listener();
    });
  }

  function append(js: JobState, event: NewEvent): ProgressEvent {
    const stored: ProgressEvent = Object.freeze({
      id: String(++js.eventSeq),
      jobId: js.job.id,
      type: event.type,
      at: event.at,
      counts: Object.freeze({ ...js.job.counts }),
      ...(event.url === undefined ? {} : { url: event.url }),
      ...(event.error === undefined ? {} : { error: { ...event.error } }),
    });
    js.events.push(stored);
    // Trim in slices so appending stays O(1) amortised.
    if (js.events.length > maxEvents + Math.max(16, maxEvents >> 3)) {
      const drop = js.events.length - maxEvents;
      js.trimmed = js.events[drop - 1]!;
      js.events.splice(0, drop);
    }
    return stored;
  }

  function finishIfDone(js: JobState, now: number, events: ProgressEvent[]): void {
    const { counts } = js.job;
    if (counts.queued !== 0 || counts.inProgress !== 0 || !ACTIVE.has(js.job.status)) return;
    const failed = counts.succeeded === 0;
    js.job.status = failed ? 'failed' : 'completed';
    js.job.finishedAt = new Date(now).toISOString();
    if (failed) js.job.error = js.firstError ?? { code: 'failed', message: 'no page could be fetched' };
    deactivate(js);
    events.push(append(js, { type: failed ? 'job:failed' : 'job:completed', at: js.job.finishedAt, ...(failed ? { error: js.job.error! } : {}) }));
  }

  function current(lease: Lease): { js: JobState; entry: Entry } | null {
    const js = jobs.get(lease.jobId);
    const entry = js?.entries.get(lease.key);
    if (js === undefined || entry === undefined) return null;
    if (entry.state !== 'leased' || entry.token !== lease.token) return null;
    return { js, entry };
  }

  function hostOf(js: JobState, name: string): HostState {
    let host = js.hosts.get(name);
    if (host === undefined) {
      host = { name, queue: [], head: 0, front: [], inFlight: 0, nextAt: 0, crawlDelayMs: 0 };
      js.hosts.set(name, host);
      js.hostList.push(host);
    }
    return host;
  }

  const delayOf = (js: JobState, host: HostState) => Math.max(js.job.options.perHostDelayMs, host.crawlDelayMs);
  const slotsOf = (js: JobState, host: HostState) => (delayOf(js, host) > 0 ? 1 : js.job.options.perHostConcurrency);
  const pendingIn = (host: HostState) => host.front.length + host.queue.length - host.head;

  function takePending(host: HostState): Entry | undefined {
    const released = host.front.pop();
    if (released !== undefined) return released;
    if (host.head >= host.queue.length) return undefined;
    const entry = host.queue[host.head]!;
    host.queue[host.head++] = undefined as unknown as Entry;
    if (host.head > 1024 && host.head * 2 > host.queue.length) {
      host.queue = host.queue.slice(host.head);
      host.head = 0;
    }
    return entry;
  }

  /**
   * Yields the claimable entries of one job: expired leases first, then ready URLs one host at a
   * time in rotation, skipping hosts that are at their concurrency or inside their delay.
   */
  function* claimable(js: JobState, now: number): Generator<Entry> {
    for (const entry of js.leased) if (entry.expiresAt <= now) yield entry;
    if (js.delayed.length > 0) {
      const still: Entry[] = [];
      for (const entry of js.delayed) {
        if (entry.notBefore <= now) entry.host.front.push(entry);
        else still.push(entry);
      }
      js.delayed = still;
    }
    const hosts = js.hostList;
    for (let progressed = true; progressed; ) {
      progressed = false;
      for (let i = 0; i < hosts.length; i++) {
        const host = hosts[(js.hostCursor + i) % hosts.length]!;
        if (host.inFlight >= slotsOf(js, host) || host.nextAt > now) continue;
        const entry = takePending(host);
        if (entry === undefined) continue;
        progressed = true;
        js.hostCursor = (js.hostCursor + i + 1) % hosts.length;
        yield entry;
        break;
      }
    }
  }

  /** The earliest time a waiting URL of the job becomes ready by the clock alone. */
  function nextReadyAt(js: JobState, now: number): number | null {
    let next: number | null = null;
    for (const entry of js.delayed) if (next === null || entry.notBefore < next) next = entry.notBefore;
    for (const host of js.hostList) {
      if (host.nextAt > now && host.inFlight < slotsOf(js, host) && pendingIn(host) > 0 && (next === null || host.nextAt < next)) next = host.nextAt;
    }
    return next;
  }

  /** The job left the active set (finished or cancelled): claims never see it again. */
  function deactivate(js: JobState): void {
    active.delete(js);
    eligible.delete(js);
    js.stamp++;
  }

  /**
   * A claim found nothing ready in the job: skip it until the earliest time it could have work by
   * the clock (a host delay or retry backoff ending, a live lease expiring), or until woken.
   */
  function park(js: JobState, now: number): void {
    const waitAt = nextReadyAt(js, now);
    let readyAt = waitAt ?? Infinity;
    for (const entry of js.leased) if (entry.expiresAt < readyAt) readyAt = entry.expiresAt;
    if (readyAt <= now) return;
    js.readyAt = readyAt;
    js.waitAt = waitAt;
    const stamp = ++js.stamp;
    eligible.delete(js);
    if (readyAt !== Infinity) parkedUntil.push({ at: readyAt, js, stamp });
    if (waitAt !== null) waitingUntil.push({ at: waitAt, js, stamp });
    // Jobs parked and woken again and again leave stale items behind: sweep them now and then.
    for (const heap of [parkedUntil, waitingUntil]) if (heap.size > 2 * active.size + 64) heap.compact(live);
  }

  /** Something may have made a parked job ready sooner: claims visit it again. */
  function wake(js: JobState): void {
    if (js.readyAt === 0) return;
    js.readyAt = 0;
    js.waitAt = null;
    js.stamp++;
    if (active.has(js)) eligible.add(js);
  }

  const live = (item: HeapItem) => item.stamp === item.js.stamp && active.has(item.js);

  /** Wakes the parked jobs whose time has come by this clock. */
  function wakeDue(now: number): void {
    for (let top = parkedUntil.peek(); top !== undefined && (top.at <= now || !live(top)); top = parkedUntil.peek()) {
      parkedUntil.pop();
      if (live(top)) wake(top.js);
    }
  }

  /** The earliest time a parked job's URL becomes ready by the clock, or null. */
  function parkedWait(): number | null {
    for (let top = waitingUntil.peek(); top !== undefined; top = waitingUntil.peek()) {
      if (live(top)) return top.at;
      waitingUntil.pop();
    }
    return null;
  }

  function lease(js: JobState, entry: Entry, query: ClaimQuery): Lease {
    if (entry.state === 'pending') {
      js.job.counts.queued--;
      js.job.counts.inProgress++;
      js.leased.add(entry);
      entry.host.inFlight++;
    }
    entry.state = 'leased';
    entry.token = `t${++tokenSeq}`;
    entry.attempts++;
    entry.expiresAt = query.now + query.leaseMs;
    return {
      jobId: js.job.id,
      url: entry.url,
      key: entry.key,
      depth: entry.depth,
      host: entry.host.name,
      token: entry.token,
      attempts: entry.attempts,
      expiresAt: entry.expiresAt,
    };
  }

  /** A lease ended (finished, retried or released): free its host slot. */
  function endLease(js: JobState, entry: Entry, now: number, started: boolean): void {
    js.leased.delete(entry);
    entry.token = null;
    entry.host.inFlight--;
    js.job.counts.inProgress--;
    if (started) {
      const delay = delayOf(js, entry.host);
      if (delay > 0) entry.host.nextAt = Math.max(entry.host.nextAt, now + delay);
    }
  }

  function entryOf(link: FrontierLink, host: HostState, state: EntryState, unsure: boolean): Entry {
    return { url: link.url, key: link.key, depth: link.depth, host, state, token: null, attempts: 0, expiresAt: 0, notBefore: 0, unsure };
  }

  /** A host not registered with the job (claims never see it): for entries that are not claimable. */
  const detachedHost = (name: string): HostState => ({ name, queue: [], head: 0, front: [], inFlight: 0, nextAt: 0, crawlDelayMs: 0 });

  function addEntry(js: JobState, link: FrontierLink): Entry {
    const host = hostOf(js, link.host);
    const entry = entryOf(link, host, 'pending', link.robots !== 'allowed');
    js.entries.set(link.key, entry);
    host.queue.push(entry);
    if (entry.unsure) js.unsure++;
    return entry;
  }

  /** Kept for dedup and as a stand-in; its host is registered only when it is admitted. */
  function addSpare(js: JobState, link: FrontierLink): void {
    const entry = entryOf(link, detachedHost(link.host), 'spare', link.robots !== 'allowed');
    js.entries.set(link.key, entry);
    js.spares.push(entry);
  }

  /** Admits the oldest spare in place of a refunded URL; false when there is none. */
  function admitSpare(js: JobState): boolean {
    const entry = js.spares[js.spareHead];
    if (entry === undefined) return false;
    js.spares[js.spareHead++] = undefined as unknown as Entry;
    if (js.spareHead > 1024 && js.spareHead * 2 > js.spares.length) {
      js.spares = js.spares.slice(js.spareHead);
      js.spareHead = 0;
    }
    const host = hostOf(js, entry.host.name);
    entry.host = host;
    entry.state = 'pending';
    host.queue.push(entry);
    if (entry.unsure) js.unsure++;
    js.job.counts.discovered++;
    js.job.counts.queued++;
    return true;
  }

  /** Records a link robots.txt disallows as skipped, without a lease and without a charge. */
  function addSkipped(js: JobState, link: FrontierLink): void {
    js.entries.set(link.key, entryOf(link, detachedHost(link.host), 'failed', false));
  }

  const storage: CrawlStorage = {
    name: 'memory',
    capabilities: { push: true, shared: false },

    async createJob(job, seed) {
      if (jobs.has(job.id)) throw new CrawlEngineError('conflict', `job ${job.id} already exists`);
      const js: JobState = {
        ordinal: order.length,
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
        events: [],
        eventSeq: 0,
        trimmed: null,
        firstError: null,
        robots: new Map(),
        readyAt: 0,
        waitAt: null,
        stamp: 0,
      };
      addEntry(js, seed);
      jobs.set(job.id, js);
      order.push(js);
      active.add(js);
      eligible.add(js);
      const events = [append(js, { type: 'job:created', at: job.createdAt, url: job.url })];
      notify(job.id);
      return { job: copyJob(js.job), events };
    },

    async getJob(id) {
      const js = jobs.get(id);
      return js === undefined ? null : copyJob(js.job);
    },

    async listJobs(query: ListJobsQuery): Promise<Paginated<Job>> {
      const before = parseCursor(query.cursor);
      const items: Job[] = [];
      let i = Math.min(before ?? order.length, order.length) - 1;
      for (; i >= 0 && items.length < query.limit; i--) {
        const js = order[i]!;
        if (query.status === undefined || js.job.status === query.status) items.push(copyJob(js.job));
      }
      let more = false;
      for (; i >= 0 && !more; i--) more = query.status === undefined || order[i]!.job.status === query.status;
      const last = items.length > 0 ? jobs.get(items[items.length - 1]!.id)! : null;
      return { items, nextCursor: more && last !== null ? String(last.ordinal) : null };
    },

    async listResults(jobId: string, query: ListResultsQuery): Promise<Paginated<PageResult>> {
      const start = parseCursor(query.cursor) ?? 0;
      const js = jobs.get(jobId);
      if (js === undefined) return { items: [], nextCursor: null };
      const end = Math.min(start + query.limit, js.results.length);
      const items = js.results.slice(start, end).map((r) => ({ ...r }));
      return { items, nextCursor: end < js.results.length ? String(end) : null };
    },

    async claim(query: ClaimQuery): Promise<ClaimResult> {
      const events: ProgressEvent[] = [];
      const leases: Lease[] = [];
      const { now } = query;
      const take = (js: JobState, entry: Entry) => {
        const starting = js.job.status === 'queued';
        if (starting) {
          js.job.status = 'running';
          js.job.startedAt = new Date(now).toISOString();
        }
        leases.push(lease(js, entry, query));
        if (starting) {
          events.push(append(js, { type: 'job:started', at: js.job.startedAt! }));
          notify(js.job.id);
        }
      };

      if (query.jobId !== undefined) {
        // One job, visited whether it is parked or not.
        const js = jobs.get(query.jobId);
        if (js === undefined || !active.has(js)) return { leases, events, nextReadyAt: null };
        const it = claimable(js, now);
        while (leases.length < query.limit) {
          const next = it.next();
          if (next.done) break;
          take(js, next.value);
        }
        if (leases.length > 0) wake(js);
        else if (query.limit > 0) park(js, now);
        return { leases, events, nextReadyAt: leases.length < query.limit ? nextReadyAt(js, now) : null };
      }

      wakeDue(now);
      // First round: one URL from each job that is not parked, least recently served first; a job
      // with nothing ready is parked, so that it costs the next claims nothing.
      const sources: Array<{ js: JobState; it: Generator<Entry> }> = [];
      const served: JobState[] = [];
      for (const js of eligible) {
        if (leases.length >= query.limit) break;
        const it = claimable(js, now);
        const next = it.next();
        if (next.done) {
          park(js, now);
          continue;
        }
        take(js, next.value);
        sources.push({ js, it });
        served.push(js);
      }
      // Then round-robin over the jobs that had something, until the claim is full.
      while (leases.length < query.limit && sources.length > 0) {
        for (let i = 0; i < sources.length && leases.length < query.limit; ) {
          const { js, it } = sources[i]!;
          const next = it.next();
          if (next.done) {
            sources.splice(i, 1);
            continue;
          }
          take(js, next.value);
          i++;
        }
      }
      // The jobs served go to the back of the line.
      for (const js of served) {
        eligible.delete(js);
        eligible.add(js);
      }
      let next: number | null = null;
      if (leases.length < query.limit) {
        next = parkedWait();
        for (const js of served) {
          const at = nextReadyAt(js, now);
          if (at !== null && (next === null || at < next)) next = at;
        }
      }
      return { leases, events, nextReadyAt: next };
    },

    async complete(lease: Lease, input: CompleteInput): Promise<CompleteResult> {
      const found = current(lease);
      if (found === null) return { ok: false, admitted: 0, events: [] };
      const { js, entry } = found;
      const { counts, options } = js.job;
      const ok = input.result.ok;
      const skipped = !ok && input.result.error !== null && SKIP_CODES.has(input.result.error.code);
      endLease(js, entry, input.now, !skipped);
      entry.state = ok ? 'done' : 'failed';
      if (entry.unsure) {
        entry.unsure = false;
        js.unsure--;
      }
      if (ok) counts.succeeded++;
      else if (skipped) counts.skipped++;
      else counts.failed++;
      if (!ok) js.firstError ??= input.result.error;
      js.results.push({ ...input.result });
      const { maxPages } = options;
      // Skipped for robots.txt after it was admitted: its charge goes to the oldest spare, or frees room.
      if (skipped && js.refunds < maxPages) {
        js.refunds++;
        admitSpare(js);
      }
      const charged = () => counts.discovered - js.free - js.refunds;
      let admitted = 0;
      for (const link of input.links) {
        if (js.entries.has(link.key)) continue;
        if (charged() < maxPages) {
          addEntry(js, link);
          counts.discovered++;
          counts.queued++;
          admitted++;
        } else if (js.spares.length - js.spareHead < Math.min(js.unsure, maxPages - js.refunds)) {
          addSpare(js, link);
        } else {
          break;
        }
      }
      const at = new Date(input.now).toISOString();
      const events = [
        append(js, {
          type: ok ? 'page:done' : skipped ? 'page:skipped' : 'page:failed',
          at,
          url: lease.url,
          ...(input.result.error ? { error: input.result.error } : {}),
        }),
      ];
      for (const { link, result } of input.skipped ?? []) {
        if (js.free >= maxPages) break;
        if (js.entries.has(link.key)) continue;
        addSkipped(js, link);
        js.free++;
        counts.discovered++;
        counts.skipped++;
        js.results.push({ ...result });
        events.push(append(js, { type: 'page:skipped', at, url: link.url, ...(result.error ? { error: result.error } : {}) }));
      }
      finishIfDone(js, input.now, events);
      // A freed host slot or new links may make a parked job ready sooner.
      wake(js);
      notify(js.job.id);
      return { ok: true, admitted, events };
    },

    async retry(lease: Lease, input: RetryInput): Promise<boolean> {
      const found = current(lease);
      if (found === null) return false;
      const { js, entry } = found;
      endLease(js, entry, input.now, true);
      entry.state = 'pending';
      entry.notBefore = input.notBefore;
      js.job.counts.queued++;
      js.delayed.push(entry);
      wake(js);
      return true;
    },

    async release(leases: Lease[]): Promise<number> {
      let released = 0;
      for (const lease of leases) {
        const found = current(lease);
        if (found === null) continue;
        const { js, entry } = found;
        endLease(js, entry, 0, false);
        entry.state = 'pending';
        entry.attempts = Math.max(0, entry.attempts - 1);
        js.job.counts.queued++;
        entry.host.front.push(entry);
        wake(js);
        released++;
      }
      return released;
    },

    async cancelJob(id: string, now: number): Promise<CancelResult> {
      const js = jobs.get(id);
      if (js === undefined) return { job: null, events: [] };
      if (!ACTIVE.has(js.job.status)) return { job: copyJob(js.job), events: [] };
      js.job.status = 'cancelled';
      js.job.finishedAt = new Date(now).toISOString();
      for (const entry of js.entries.values()) {
        if (entry.state === 'pending' || entry.state === 'leased') {
          entry.state = 'cancelled';
          entry.token = null;
        }
      }
      js.leased.clear();
      js.delayed = [];
      js.spares = [];
      js.spareHead = 0;
      for (const host of js.hostList) {
        host.queue = [];
        host.head = 0;
        host.front = [];
        host.inFlight = 0;
      }
      js.job.counts.queued = 0;
      js.job.counts.inProgress = 0;
      deactivate(js);
      const events = [append(js, { type: 'job:cancelled', at: js.job.finishedAt })];
      notify(id);
      return { job: copyJob(js.job), events };
    },

    async getRobots(jobId: string, origin: string): Promise<RobotsRecord | null> {
      const record = jobs.get(jobId)?.robots.get(origin);
      return record === undefined ? null : structuredClone(record);
    },

    async putRobots(jobId: string, record: RobotsRecord): Promise<void> {
      const js = jobs.get(jobId);
      if (js === undefined) throw new CrawlEngineError('not_found', `job ${JSON.stringify(jobId)} does not exist`);
      js.robots.set(record.origin, structuredClone(record));
      hostOf(js, new URL(record.origin).hostname).crawlDelayMs = record.crawlDelayMs ?? 0;
      // A shorter Crawl-delay may give a host more slots at once.
      wake(js);
    },

    async appendEvents(jobId: string, events: NewEvent[]): Promise<ProgressEvent[]> {
      const js = jobs.get(jobId);
      if (js === undefined) throw new CrawlEngineError('not_found', `job ${JSON.stringify(jobId)} does not exist`);
      const stored = events.map((event) => append(js, event));
      if (stored.length > 0) notify(jobId);
      return stored;
    },

    async readEvents(jobId: string, afterId: string | null, limit: number): Promise<ProgressEvent[]> {
      const js = jobs.get(jobId);
      if (js === undefined || limit <= 0) return [];
      const after = eventSeq(afterId);
      const out: ProgressEvent[] = [];
      const firstSeq = js.events.length > 0 ? Number(js.events[0]!.id) : js.eventSeq + 1;
      let from = after;
      if (js.trimmed !== null && after < Number(js.trimmed.id)) {
        out.push(Object.freeze({ ...js.trimmed, type: 'progress' as const }));
        from = Number(js.trimmed.id);
      }
      for (let i = Math.max(0, from - firstSeq + 1); i < js.events.length && out.length < limit; i++) {
        out.push(js.events[i]!);
      }
      return out;
    },

    watch(jobId: string, listener: () => void): () => void {
      let set = listeners.get(jobId);
      if (set === undefined) {
        set = new Set();
        listeners.set(jobId, set);
      }
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0) listeners.delete(jobId);
      };
    },
  };
  return storage;
}
