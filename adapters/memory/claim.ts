/**
 * `claim()` of `memoryStorage()`: first admission (queued jobs start, in priority and creation
 * order, while fewer than `maxActiveJobs` admitted jobs run), then one URL from each job that is
 * not parked (least recently served first), then round-robin over the jobs that had something until
 * the claim is full; a job with nothing ready is parked. A claim for one job visits it whether it is
 * parked or not, and starts it if it was queued (bypassing admission, uncounted).
 */
import type { ClaimQuery, ClaimResult, Lease, ProgressEvent } from '../../src/storage/index.js';
import { append, notify } from './events.js';
import { claimable, nextReadyAt, park, parkedWait, wake, wakeDue } from './ready.js';
import type { Entry, JobState, Store } from './state.js';

/** Leases the entry (again, for an expired lease) under a new token. */
function lease(store: Store, js: JobState, entry: Entry, query: ClaimQuery): Lease {
  if (entry.state === 'pending') {
    js.job.counts.queued--;
    js.job.counts.inProgress++;
    js.leased.add(entry);
    entry.host.inFlight++;
  }
  entry.state = 'leased';
  entry.token = `t${++store.tokenSeq}`;
  entry.attempts++;
  entry.expiresAt = query.now + query.leaseMs;
  const leased: Lease = {
    jobId: js.job.id,
    url: entry.url,
    key: entry.key,
    depth: entry.depth,
    host: entry.host.name,
    token: entry.token,
    attempts: entry.attempts,
    expiresAt: entry.expiresAt,
  };
  // Only when there is one: a lease without a lastmod has no such key at all.
  if (entry.lastmod !== undefined) leased.lastmod = entry.lastmod;
  return leased;
}

/** Starts a queued job: `running`, `startedAt` and `job:started`. */
function start(store: Store, js: JobState, now: number, events: ProgressEvent[]): void {
  js.job.status = 'running';
  js.job.startedAt = new Date(now).toISOString();
  events.push(append(store, js, { type: 'job:started', at: js.job.startedAt }));
  notify(store, js.job.id);
}

/**
 * Takes jobs off the admission line. With a bound, as many as it leaves room for, each started now
 * and counted, and visited first by this claim (they were never served); without one, all of them,
 * to be started by their first lease as before the bound existed. Costs O(admitted) per claim, not
 * O(queued): the line is a heap.
 */
function admit(store: Store, query: ClaimQuery, events: ProgressEvent[]): void {
  const bound = query.maxActiveJobs;
  const admitted: JobState[] = [];
  while (bound === undefined || store.admitted < bound) {
    const item = store.queue.pop();
    if (item === undefined) break;
    const { js } = item;
    // Started by a claim of its own, or cancelled, since it was queued.
    if (!js.waiting || !store.active.has(js)) continue;
    js.waiting = false;
    if (bound === undefined) {
      store.eligible.add(js);
      continue;
    }
    js.admitted = true;
    store.admitted++;
    start(store, js, query.now, events);
    admitted.push(js);
  }
  if (admitted.length > 0) store.eligible = new Set([...admitted, ...store.eligible]);
}

export function claim(store: Store, query: ClaimQuery): ClaimResult {
  const events: ProgressEvent[] = [];
  const leases: Lease[] = [];
  const { now } = query;
  const take = (js: JobState, entry: Entry) => {
    const starting = js.job.status === 'queued';
    if (starting && js.waiting) {
      // Started by a claim of its own, ahead of admission: claims across jobs visit it from now on.
      js.waiting = false;
      store.eligible.add(js);
    }
    leases.push(lease(store, js, entry, query));
    if (starting) start(store, js, now, events);
  };

  if (query.jobId !== undefined) {
    // One job, visited whether it is parked or not.
    const js = store.jobs.get(query.jobId);
    if (js === undefined || !store.active.has(js)) return { leases, events, nextReadyAt: null };
    const it = claimable(js, now);
    while (leases.length < query.limit) {
      const next = it.next();
      if (next.done) break;
      take(js, next.value);
    }
    if (leases.length > 0) wake(store, js);
    else if (query.limit > 0) park(store, js, now);
    return { leases, events, nextReadyAt: leases.length < query.limit ? nextReadyAt(js, now) : null };
  }

  admit(store, query, events);
  const counted = store.admitted;
  wakeDue(store, now);
  // First round: one URL from each job that is not parked, least recently served first; a job
  // with nothing ready is parked, so that it costs the next claims nothing.
  const sources: Array<{ js: JobState; it: Generator<Entry> }> = [];
  const served: JobState[] = [];
  for (const js of store.eligible) {
    if (leases.length >= query.limit) break;
    const it = claimable(js, now);
    const next = it.next();
    if (next.done) {
      park(store, js, now);
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
    store.eligible.delete(js);
    store.eligible.add(js);
  }
  let next: number | null = null;
  if (leases.length < query.limit) {
    next = parkedWait(store);
    for (const js of served) {
      const at = nextReadyAt(js, now);
      if (at !== null && (next === null || at < next)) next = at;
    }
    // Jobs parked on the clock gave up their places: the next claim admits queued jobs at once.
    if (store.admitted < counted && store.queue.size > 0) next = now;
  }
  return { leases, events, nextReadyAt: next };
}
