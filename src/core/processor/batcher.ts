/**
 * Group commit, the processor's side: page outcomes are queued and stored with one
 * `storage.completeMany()` call per job and batch instead of one `complete()` per page.
 *
 * A queue is flushed when it holds `maxItems`, when every page the run is working on has queued
 * its outcome (waiting could not grow the batch), or `lingerMs` after its first item, so an
 * outcome waits at most `lingerMs` before its call starts. The calls of one job run one after
 * another (what queues meanwhile goes in the next call), so each job's results arrive, and its
 * events are emitted, in the order storage appended them; different jobs' calls run in parallel.
 *
 * A call that rejects is retried item by item with `complete()`, so one item storage refuses cannot
 * fail the others; an item whose own `complete()` rejects rejects its own promise only (its lease
 * then expires and the URL is claimed again). Items the failed call had stored after all are
 * refused then as spent leases (`ok: false`), so the run's report may count fewer pages than
 * were stored; nothing is stored twice.
 */
import type { CompleteInput, CompleteResult, CrawlStorage, Lease } from '../storage.js';

/** How outcomes are batched; see `RunOptions.batch`. */
export interface BatchSettings {
  maxItems: number;
  lingerMs: number;
}

/**
 * Measured on a 2,000-page loopback crawl at concurrency 20 (issue 14): 8 items made 0.14 storage
 * calls per page, 16 made 0.08 and 32 barely fewer (0.076: a batch seldom outgrows the pages in
 * flight); 5 ms is short next to a page's fetch and parse.
 */
export const DEFAULT_BATCH: Readonly<BatchSettings> = Object.freeze({ maxItems: 16, lingerMs: 5 });
/**
 * Most links (admitted and skipped) in one call, past its first item: encoding a call and reading
 * its answer is synchronous work, and pages of a thousand links each would make a batch of 16 hold
 * the event loop far longer than one page does.
 */
export const MAX_CALL_LINKS = 2_000;
const linksOf = (item: { input: CompleteInput }) => item.input.links.length + (item.input.skipped?.length ?? 0);
/**
 * Most characters of page content (`text`, `markdown`, `html`) in one call, past its first item:
 * each result may carry 3 million, and encoding a call is synchronous work (about 10 ms per
 * million characters here), so a batch of 16 such pages would hold the event loop for the
 * better part of a second.
 */
export const MAX_CALL_CONTENT_CHARS = 2_000_000;
const contentOf = ({ input: { result } }: { input: CompleteInput }) => (result.text?.length ?? 0) + (result.markdown?.length ?? 0) + (result.html?.length ?? 0);
/** Bounds of `batch.maxItems` and `batch.lingerMs`: a call's size, and how stale a queued outcome may get. */
export const MAX_BATCH_ITEMS = 1000;
export const MAX_LINGER_MS = 1000;

const show = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value) : String(value));

/** Checks a `batch` option (of `run()` or `start()`, named by `caller`); `false` turns batching off. */
export function batchSettings(value: unknown, caller: string): BatchSettings | false {
  if (value === undefined) return { ...DEFAULT_BATCH };
  if (value === false) return false;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RangeError(`[crawl-engine] ${caller}: batch: expected false or an object { maxItems?, lingerMs? }, got ${show(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (key !== 'maxItems' && key !== 'lingerMs')
      throw new RangeError(`[crawl-engine] ${caller}: batch.${key}: unknown option (expected maxItems or lingerMs)`);
  }
  const { maxItems = DEFAULT_BATCH.maxItems, lingerMs = DEFAULT_BATCH.lingerMs } = value as Partial<Record<keyof BatchSettings, unknown>>;
  if (typeof maxItems !== 'number' || !Number.isInteger(maxItems) || maxItems < 1 || maxItems > MAX_BATCH_ITEMS) {
    throw new RangeError(`[crawl-engine] ${caller}: batch.maxItems: expected an integer from 1 to ${MAX_BATCH_ITEMS}, got ${show(maxItems)}`);
  }
  if (typeof lingerMs !== 'number' || !Number.isFinite(lingerMs) || lingerMs < 0 || lingerMs > MAX_LINGER_MS) {
    throw new RangeError(`[crawl-engine] ${caller}: batch.lingerMs: expected a number from 0 to ${MAX_LINGER_MS}, got ${show(lingerMs)}`);
  }
  return { maxItems, lingerMs };
}

export interface Batcher {
  /** Stores one page's outcome, as `storage.complete(lease, input)` would, in a batch. */
  complete(lease: Lease, input: CompleteInput): Promise<CompleteResult>;
  /** A page the run was working on ended without queuing an outcome: flushes if every other one has. */
  recheck(): void;
  /** Flushes the queue now; resolves once every call started so far has settled. Never rejects. */
  flush(): Promise<void>;
}

export interface BatcherHooks {
  /**
   * How many pages the run is working on, each of which may still queue one outcome (those queued
   * included). When all have queued theirs, the batch cannot grow, so it goes at once.
   */
  working?: () => number;
  /** Told when a `completeMany` call failed and its items were stored one by one. */
  onError?: (error: unknown) => void;
}

interface Queued {
  lease: Lease;
  input: CompleteInput;
  resolve: (result: CompleteResult) => void;
  reject: (error: unknown) => void;
}

/** One job's calls: the one in flight, and the items waiting for it to end. */
interface Lane {
  waiting: Queued[];
  running: Promise<void> | null;
}

export function createBatcher(storage: CrawlStorage, settings: BatchSettings | false, hooks: BatcherHooks = {}): Batcher {
  if (settings === false || typeof storage.completeMany !== 'function') {
    return { complete: (lease, input) => storage.complete(lease, input), recheck() {}, flush: async () => {} };
  }
  const { maxItems, lingerMs } = settings;
  const working = hooks.working ?? (() => Number.POSITIVE_INFINITY);
  let queue: Queued[] = [];
  /** Items not yet resolved: queued, waiting in a lane, or in a call. */
  let held = 0;
  // Not unref'd: a queued outcome is a page someone awaits, and the timer is at most lingerMs long.
  let timer: ReturnType<typeof setTimeout> | null = null;
  const lanes = new Map<string, Lane>();

  const settle = (item: Queued, outcome: { result: CompleteResult } | { error: unknown }) => {
    held--;
    if ('result' in outcome) item.resolve(outcome.result);
    else item.reject(outcome.error);
  };

  /** One call for `items` (all of one job), item by item with complete() if it fails. Never rejects. */
  async function store(items: Queued[]): Promise<void> {
    let results: CompleteResult[];
    try {
      results = await storage.completeMany!(items.map(({ lease, input }) => ({ lease, input })));
      if (!Array.isArray(results) || results.length !== items.length) {
        throw new Error(`completeMany() returned ${Array.isArray(results) ? results.length : show(results)} results for ${items.length} items`);
      }
    } catch (error) {
      hooks.onError?.(error);
      for (const item of items) {
        try {
          settle(item, { result: await storage.complete(item.lease, item.input) });
        } catch (itemError) {
          settle(item, { error: itemError });
        }
      }
      return;
    }
    // In item order: each awaiting page resumes, and emits its events, in this order.
    for (const [i, item] of items.entries()) settle(item, { result: results[i]! });
  }

  function dispatch(jobId: string, lane: Lane): void {
    if (lane.running !== null) return;
    if (lane.waiting.length === 0) {
      lanes.delete(jobId);
      return;
    }
    let count = 0;
    let links = 0;
    let chars = 0;
    while (count < lane.waiting.length && count < maxItems) {
      const more = linksOf(lane.waiting[count]!);
      const moreChars = contentOf(lane.waiting[count]!);
      if (count > 0 && (links + more > MAX_CALL_LINKS || chars + moreChars > MAX_CALL_CONTENT_CHARS)) break;
      links += more;
      chars += moreChars;
      count++;
    }
    const items = lane.waiting.splice(0, count);
    lane.running = store(items).then(() => {
      lane.running = null;
      dispatch(jobId, lane);
    });
  }

  function flushNow(): void {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    if (queue.length === 0) return;
    const taken = queue;
    queue = [];
    const touched = new Set<string>();
    for (const item of taken) {
      const { jobId } = item.lease;
      let lane = lanes.get(jobId);
      if (lane === undefined) {
        lane = { waiting: [], running: null };
        lanes.set(jobId, lane);
      }
      lane.waiting.push(item);
      touched.add(jobId);
    }
    for (const jobId of touched) dispatch(jobId, lanes.get(jobId)!);
  }

  /** Flushes when the queue is full or nothing else can join it; else starts the linger. */
  function check(): void {
    if (queue.length === 0) return;
    if (
      queue.length >= maxItems ||
      held >= working() ||
      queue.reduce((sum, item) => sum + linksOf(item), 0) >= MAX_CALL_LINKS ||
      queue.reduce((sum, item) => sum + contentOf(item), 0) >= MAX_CALL_CONTENT_CHARS
    )
      flushNow();
    else timer ??= setTimeout(flushNow, lingerMs);
  }

  return {
    complete(lease, input) {
      return new Promise<CompleteResult>((resolve, reject) => {
        queue.push({ lease, input, resolve, reject });
        held++;
        check();
      });
    },
    recheck: check,
    async flush() {
      flushNow();
      while (lanes.size > 0) await Promise.all([...lanes.values()].map((lane) => lane.running));
    },
  };
}
