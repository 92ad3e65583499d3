/**
 * How leases and jobs end in `memoryStorage()`: `complete()` (the result, the links it admits
 * within `maxPages`, refunds for URLs robots.txt turned out to disallow, the job's finish),
 * `retry()`, `release()`, `cancelJob()` and `deleteJob()`.
 */
import {
  type CancelResult,
  type CompleteInput,
  type CompleteResult,
  type DeleteResult,
  type Lease,
  type ProgressEvent,
  type RetryInput,
  SKIP_CODES,
} from '../../src/storage/index.js';
import { append, notify } from './events.js';
import { addEntry, addSkipped, addSpare, admitSpare } from './frontier.js';
import { deactivate, delayOf, wake } from './ready.js';
import { remove, retire } from './retention.js';
import { ACTIVE, copyJob, type Entry, type JobState, type Store } from './state.js';

/** The lease's job and entry, if the lease is still the entry's current one. */
function current(store: Store, lease: Lease): { js: JobState; entry: Entry } | null {
  const js = store.jobs.get(lease.jobId);
  const entry = js?.entries.get(lease.key);
  if (js === undefined || entry === undefined) return null;
  if (entry.state !== 'leased' || entry.token !== lease.token) return null;
  return { js, entry };
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

function finishIfDone(store: Store, js: JobState, now: number, events: ProgressEvent[]): void {
  const { counts } = js.job;
  if (counts.queued !== 0 || counts.inProgress !== 0 || !ACTIVE.has(js.job.status)) return;
  const failed = counts.succeeded === 0;
  js.job.status = failed ? 'failed' : 'completed';
  js.job.finishedAt = new Date(now).toISOString();
  if (failed) js.job.error = js.firstError ?? { code: 'failed', message: 'no page could be fetched' };
  deactivate(store, js);
  events.push(append(store, js, { type: failed ? 'job:failed' : 'job:completed', at: js.job.finishedAt, ...(failed ? { error: js.job.error! } : {}) }));
  retire(store, js);
}

export function complete(store: Store, lease: Lease, input: CompleteInput): CompleteResult {
  const found = current(store, lease);
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
  js.resultAt.set(input.result.url, js.results.push({ ...input.result }) - 1);
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
    append(store, js, {
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
    js.resultAt.set(result.url, js.results.push({ ...result }) - 1);
    events.push(append(store, js, { type: 'page:skipped', at, url: link.url, ...(result.error ? { error: result.error } : {}) }));
  }
  finishIfDone(store, js, input.now, events);
  // A freed host slot or new links may make a parked job ready sooner.
  wake(store, js);
  notify(store, js.job.id);
  return { ok: true, admitted, events };
}

export function retry(store: Store, lease: Lease, input: RetryInput): boolean {
  const found = current(store, lease);
  if (found === null) return false;
  const { js, entry } = found;
  endLease(js, entry, input.now, true);
  entry.state = 'pending';
  entry.notBefore = input.notBefore;
  js.job.counts.queued++;
  js.delayed.push(entry);
  wake(store, js);
  return true;
}

export function release(store: Store, leases: Lease[]): number {
  let released = 0;
  for (const lease of leases) {
    const found = current(store, lease);
    if (found === null) continue;
    const { js, entry } = found;
    endLease(js, entry, 0, false);
    entry.state = 'pending';
    entry.attempts = Math.max(0, entry.attempts - 1);
    js.job.counts.queued++;
    entry.host.front.push(entry);
    wake(store, js);
    released++;
  }
  return released;
}

export function cancelJob(store: Store, id: string, now: number, keep = true): CancelResult {
  const js = store.jobs.get(id);
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
  deactivate(store, js);
  const events = [append(store, js, { type: 'job:cancelled', at: js.job.finishedAt })];
  // Kept among the finished jobs unless it is about to be deleted: retiring it would evict the
  // oldest finished job at the cap, another job, for one that is going anyway.
  if (keep) retire(store, js);
  notify(store, id);
  return { job: copyJob(js.job), events };
}

export function deleteJob(store: Store, id: string, now: number): DeleteResult {
  const js = store.jobs.get(id);
  if (js === undefined) return { deleted: false, events: [] };
  // Cancelled first: job:cancelled reaches the watchers, and live leases are refused from here on.
  const { events } = ACTIVE.has(js.job.status) ? cancelJob(store, id, now, false) : { events: [] };
  remove(store, js);
  return { deleted: true, events };
}
