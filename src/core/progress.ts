/**
 * Progress: the typed in-process event map (mitt) with its isolated `emit`, and the durable
 * progress API (`subscribe()`, `hasEventsAfter()`), which reads the storage's event log so that any
 * process can follow a job and resume after a given event id.
 */
import mitt, { type Emitter } from 'mitt';
import { invalid } from './errors.js';
import { compareIds, FEED_PAGE, type FeedRegistry, feedsOf, isEventId, type PollPace } from './feed.js';
import type { CrawlStorage } from './storage.js';
import { TERMINAL_EVENTS, TERMINAL_STATUSES, type ProgressEvent } from './types.js';

/** In-process events of `engine.events`; each payload is the stored {@link ProgressEvent}. */
export type CrawlEvents = {
  /** A job was stored and its start URL queued. */
  'job:created': ProgressEvent;
  /** A processor claimed the job's first URL. */
  'job:started': ProgressEvent;
  /** A page was fetched and stored. */
  'page:done': ProgressEvent;
  /** A page ended with an error after its retries. */
  'page:failed': ProgressEvent;
  /** A page was not fetched because robots.txt disallows it. */
  'page:skipped': ProgressEvent;
  /** Nothing is left queued or in progress and at least one page succeeded. */
  'job:completed': ProgressEvent;
  /** The job was cancelled. */
  'job:cancelled': ProgressEvent;
  /** The job ended without a single successful page (e.g. its start URL failed). */
  'job:failed': ProgressEvent;
};

export type CrawlEmitter = Emitter<CrawlEvents>;

export interface SubscribeOptions {
  /** Yield only events with an id greater than this (an SSE `Last-Event-ID`). */
  after?: string | null;
  /** Stops the subscription; the iterator then ends without throwing. */
  signal?: AbortSignal;
  /**
   * How often to read the log when the adapter cannot push. While reads find nothing new the
   * interval grows by half each time, up to `maxPollMs`; an event resets it to `pollMs`.
   * @default 250
   */
  pollMs?: number;
  /**
   * The longest wait between reads of an idle job when the adapter cannot push (at least
   * `pollMs`): the most an event can wait after a long quiet spell. With push the reads are only a
   * safety net and back off the same way from 1 s to 5 s.
   * @default 2000
   */
  maxPollMs?: number;
}

export interface ProgressApi {
  /**
   * Every stored event of the job with an id greater than `after`, then new ones as they are
   * stored, ending after the terminal event (or when `signal` aborts, or soon after the job is
   * deleted). Works across processes.
   */
  subscribe(jobId: string, options?: SubscribeOptions): AsyncIterable<ProgressEvent>;
  /**
   * Whether the job's log holds an event with an id greater than `after` (null: any event), in
   * one read. With a finished job it tells a reader that has seen everything (false: nothing left
   * to send, e.g. answer an SSE reconnect with 204) from one that still has events to replay.
   * An unknown job has no events. Throws `invalid_input` naming the field for a non-string id.
   */
  hasEventsAfter(jobId: string, after: string | null): Promise<boolean>;
}

/** Backoff of the reads while a subscription finds nothing new: ×1.5 per empty read. */
const POLL_GROWTH = 1.5;
/** Safety-net reads of a subscription woken by push: from 1 s up to 5 s while idle. */
const PUSH_SAFETY_MS = 1000;
const PUSH_SAFETY_MAX_MS = 5000;

/** Where errors thrown by `engine.events` listeners go; they never reach the code that emitted. */
export type ListenerErrorHandler = (error: unknown, event: ProgressEvent) => void;

export const reportListenerError: ListenerErrorHandler = (error, event) => {
  console.error(`[crawl-engine] an engine.events listener threw on ${event.type} (job ${event.jobId}):`, error);
};

/** Delivers stored events to the in-process listeners of `engine.events`. */
export type EmitFunction = (events: readonly ProgressEvent[]) => void;

/**
 * The in-process event hub: the `emitter` listeners subscribe to, and the one `emit` that delivers
 * stored events to them. Each listener is isolated: one that throws is reported to `onError` and
 * the others still run, so a listener can never fail a claim or a store, strand a lease or skew a
 * run's counts.
 */
export function createEventHub(onError: ListenerErrorHandler = reportListenerError): { emitter: CrawlEmitter; emit: EmitFunction } {
  const emitter: CrawlEmitter = mitt<CrawlEvents>();
  return { emitter, emit: (events) => deliver(emitter, events, onError) };
}

function deliver(emitter: CrawlEmitter, events: readonly ProgressEvent[], onError: ListenerErrorHandler): void {
  for (const event of events) {
    if (event.type === 'progress') continue;
    const typed = emitter.all.get(event.type);
    if (typed !== undefined) {
      for (const handler of [...typed]) {
        settle(onError, event, () => (handler as (event: ProgressEvent) => unknown)(event));
      }
    }
    const any = emitter.all.get('*');
    if (any !== undefined) {
      for (const handler of [...any]) {
        settle(onError, event, () => (handler as (type: string, event: ProgressEvent) => unknown)(event.type, event));
      }
    }
  }
}

/** Calls a listener; a throw, or a rejection of the promise an async listener returns, is reported. */
export function settle(onError: ListenerErrorHandler, event: ProgressEvent, call: () => unknown): void {
  try {
    const returned = call();
    if (typeof (returned as PromiseLike<unknown> | null)?.then === 'function') {
      (returned as PromiseLike<unknown>).then(undefined, (error: unknown) => report(onError, error, event));
    }
  } catch (error) {
    report(onError, error, event);
  }
}

function report(onError: ListenerErrorHandler, error: unknown, event: ProgressEvent): void {
  try {
    onError(error, event);
  } catch {
    // An onError that throws too has nowhere left to report to.
  }
}

/** `feeds`: the shared readers (by default those of every engine over `storage` in this process). */
export function createProgressApi(storage: CrawlStorage, feeds: FeedRegistry = feedsOf(storage)): ProgressApi {
  const batches = (jobId: string, options: SubscribeOptions, pollMs: number, maxPollMs: number): AsyncGenerator<readonly ProgressEvent[]> => {
    const after = options.after ?? null;
    return isEventId(after)
      ? followFeed(storage, feeds, jobId, after, { pollMs, maxPollMs }, options.signal)
      : readAlone(storage, jobId, after, { pollMs, maxPollMs }, options.signal);
  };
  const api: ProgressApi = {
    subscribe(jobId, options = {}) {
      const pollMs = options.pollMs ?? 250;
      const { maxPollMs = 2000 } = options;
      if (typeof maxPollMs !== 'number' || !(maxPollMs > 0) || !Number.isFinite(maxPollMs)) {
        throw invalid('invalid_input', 'subscribe() options', [
          { path: 'maxPollMs', message: `expected a positive number of milliseconds, got ${String(maxPollMs)}` },
        ]);
      }
      return { [Symbol.asyncIterator]: () => eachEvent(batches(jobId, options, pollMs, maxPollMs)) };
    },

    async hasEventsAfter(jobId, after) {
      const errors = [
        ...(typeof jobId === 'string' ? [] : [{ path: 'jobId', message: `expected a job id string, got ${typeof jobId}` }]),
        ...(after === null || typeof after === 'string' ? [] : [{ path: 'after', message: `expected an event id string or null, got ${typeof after}` }]),
      ];
      if (errors.length > 0) throw invalid('invalid_input', 'hasEventsAfter() arguments', errors);
      return (await storage.readEvents(jobId, after, 1)).length > 0;
    },
  };
  batchedApis.set(api, (jobId, options = {}) => {
    // Validated by subscribe() as for any caller.
    api.subscribe(jobId, options);
    return { [Symbol.asyncIterator]: () => batches(jobId, options, options.pollMs ?? 250, options.maxPollMs ?? 2000) };
  });
  return api;
}

type BatchSubscribe = (jobId: string, options?: SubscribeOptions) => AsyncIterable<readonly ProgressEvent[]>;
const batchedApis = new WeakMap<ProgressApi, BatchSubscribe>();

/**
 * `progress.subscribe()` in batches: each array holds the events that became available together
 * (one read of the log), ending with the terminal event at the latest. The SSE route writes each
 * batch at once, and subscribers of one feed receive the very same event objects, so a batch is
 * encoded once for all of them. With a progress API not made by `createProgressApi`, batches of one.
 */
export function subscribeBatches(progress: ProgressApi, jobId: string, options: SubscribeOptions = {}): AsyncIterable<readonly ProgressEvent[]> {
  const batched = batchedApis.get(progress);
  if (batched !== undefined) return batched(jobId, options);
  return {
    async *[Symbol.asyncIterator]() {
      for await (const event of progress.subscribe(jobId, options)) yield [event];
    },
  };
}

async function* eachEvent(batches: AsyncGenerator<readonly ProgressEvent[]>): AsyncGenerator<ProgressEvent> {
  for await (const batch of batches) yield* batch;
}

/** The events of `events` up to and including the first terminal one, and whether there was one. */
function upToTerminal(events: readonly ProgressEvent[]): { batch: readonly ProgressEvent[]; terminal: boolean } {
  const at = events.findIndex((event) => TERMINAL_EVENTS.has(event.type));
  return at === -1 ? { batch: events, terminal: false } : { batch: events.slice(0, at + 1), terminal: true };
}

/**
 * A subscription served by the job's shared feed: from the feed's buffer while its position lies
 * inside it, else from its own reads of the log, a page at a time, until it catches up.
 */
async function* followFeed(
  storage: CrawlStorage,
  feeds: FeedRegistry,
  jobId: string,
  start: string | null,
  pace: PollPace,
  signal: AbortSignal | undefined,
): AsyncGenerator<readonly ProgressEvent[]> {
  let after = start;
  const feed = feeds.get(jobId, after);
  const leave = feed.join(pace);
  try {
    while (!signal?.aborted) {
      if (feed.failure !== null) throw feed.failure.error;
      if (compareIds(after, feed.base) < 0) {
        // Behind the buffer (a late joiner, or one that fell behind): catch up from the log.
        const events = await storage.readEvents(jobId, after, FEED_PAGE);
        if (events.length > 0) {
          const { batch, terminal } = upToTerminal(events);
          after = batch[batch.length - 1]!.id;
          yield batch;
          if (terminal) return;
        }
        if (events.length < FEED_PAGE && compareIds(after, feed.base) < 0) feed.rewind(after);
        continue;
      }
      const events = feed.eventsAfter(after);
      if (events.length > 0) {
        const { batch, terminal } = upToTerminal(events);
        after = batch[batch.length - 1]!.id;
        yield batch;
        if (terminal) return;
        continue;
      }
      if (feed.ended) return;
      await feed.changed(signal);
    }
  } finally {
    leave();
  }
}

/**
 * A subscription that reads the log on its own: for a position the feed cannot place among event
 * ids (adapters' ids are decimal integers; this keeps whatever another adapter does with others).
 */
async function* readAlone(
  storage: CrawlStorage,
  jobId: string,
  start: string | null,
  { pollMs, maxPollMs }: PollPace,
  signal: AbortSignal | undefined,
): AsyncGenerator<readonly ProgressEvent[]> {
  let after = start;
  let wake: (() => void) | null = null;
  let woken = false;
  let checked = false;
  const poke = () => {
    woken = true;
    wake?.();
  };
  let unwatch = storage.capabilities.push && storage.watch ? storage.watch(jobId, poke) : null;
  let first = unwatch === null ? pollMs : Math.max(pollMs, PUSH_SAFETY_MS);
  let cap = Math.max(first, unwatch === null ? maxPollMs : PUSH_SAFETY_MAX_MS);
  let delay = first;
  signal?.addEventListener('abort', poke);
  try {
    let empty = 0;
    while (!signal?.aborted) {
      const poked = woken;
      woken = false;
      if (unwatch !== null && !storage.capabilities.push) {
        // Push turned out unavailable (a REST server without subscribe): poll as without it.
        unwatch();
        unwatch = null;
        first = pollMs;
        cap = Math.max(first, maxPollMs);
        delay = first;
      }
      const events = await storage.readEvents(jobId, after, FEED_PAGE);
      if (events.length > 0) {
        const { batch, terminal } = upToTerminal(events);
        after = batch[batch.length - 1]!.id;
        yield batch;
        if (terminal) return;
      }
      if (events.length > 0) delay = first;
      if (events.length === FEED_PAGE) continue;
      if (events.length === 0) empty++;
      // An unknown job, a reader already past the terminal event, or a job deleted while followed
      // (its events go with it) would wait forever: the job is looked at on the first empty read,
      // on one that followed a push (a delete wakes watchers), and on every 8th.
      if (events.length === 0 && (!checked || poked || empty % 8 === 0)) {
        checked = true;
        const job = await storage.getJob(jobId);
        if (job === null || TERMINAL_STATUSES.has(job.status)) {
          const tail = await storage.readEvents(jobId, after, FEED_PAGE);
          if (tail.length > 0) yield tail;
          return;
        }
      }
      if (woken || signal?.aborted) continue;
      const wait = delay;
      if (events.length === 0) delay = Math.min(cap, delay * POLL_GROWTH);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    unwatch?.();
    signal?.removeEventListener('abort', poke);
  }
}
