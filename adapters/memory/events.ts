/**
 * Progress events of `memoryStorage()`: appending (with trimming to `maxEventsPerJob`), reading
 * after an id (a `progress` snapshot first for a reader that fell behind the trim), and `watch()`.
 */
import { CrawlEngineError, type NewEvent, type ProgressEvent } from '../../src/storage/index.js';
import type { JobState, Store } from './state.js';

/** Wakes the job's watchers, after the operation in progress has returned. */
export function notify(store: Store, jobId: string): void {
  const set = store.listeners.get(jobId);
  if (set === undefined || set.size === 0) return;
  queueMicrotask(() => {
    for (const listener of set) listener();
  });
}

/** Stores one event with the job's current counts, trimming the oldest ones past the limit. */
export function append(store: Store, js: JobState, event: NewEvent): ProgressEvent {
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
  const maxEvents = store.maxEvents;
  if (js.events.length > maxEvents + Math.max(16, maxEvents >> 3)) {
    const drop = js.events.length - maxEvents;
    js.trimmed = js.events[drop - 1]!;
    js.events.splice(0, drop);
  }
  return stored;
}

function eventSeq(id: string | null): number {
  if (id === null) return 0;
  const n = Number(id);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

export function appendEvents(store: Store, jobId: string, events: NewEvent[]): ProgressEvent[] {
  const js = store.jobs.get(jobId);
  if (js === undefined) throw new CrawlEngineError('not_found', `job ${JSON.stringify(jobId)} does not exist`);
  const stored = events.map((event) => append(store, js, event));
  if (stored.length > 0) notify(store, jobId);
  return stored;
}

export function readEvents(store: Store, jobId: string, afterId: string | null, limit: number): ProgressEvent[] {
  const js = store.jobs.get(jobId);
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
}

export function watch(store: Store, jobId: string, listener: () => void): () => void {
  const { listeners } = store;
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
}
