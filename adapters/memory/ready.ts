/**
 * Which URLs of `memoryStorage()` are ready: per-host politeness (concurrency, delay), the host
 * rotation within a job, and parking: a job a claim found nothing ready in is skipped by claims
 * until its time comes (the two heaps of the store) or something wakes it.
 */
import type { Entry, HeapItem, HostState, JobState, Store } from './state.js';

export const delayOf = (js: JobState, host: HostState) => Math.max(js.job.options.perHostDelayMs, host.crawlDelayMs);
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
export function* claimable(js: JobState, now: number): Generator<Entry> {
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
export function nextReadyAt(js: JobState, now: number): number | null {
  let next: number | null = null;
  for (const entry of js.delayed) if (next === null || entry.notBefore < next) next = entry.notBefore;
  for (const host of js.hostList) {
    if (host.nextAt > now && host.inFlight < slotsOf(js, host) && pendingIn(host) > 0 && (next === null || host.nextAt < next)) next = host.nextAt;
  }
  return next;
}

/** The job left the active set (finished or cancelled): claims never see it again. */
export function deactivate(store: Store, js: JobState): void {
  store.active.delete(js);
  store.eligible.delete(js);
  js.stamp++;
  js.waiting = false;
  if (js.admitted) {
    js.admitted = false;
    store.admitted--;
  }
}

const live = (store: Store, item: HeapItem) => item.stamp === item.js.stamp && store.active.has(item.js);

/**
 * A claim found nothing ready in the job: skip it until the earliest time it could have work by
 * the clock (a host delay or retry backoff ending, a live lease expiring), or until woken. A job
 * waiting on a delay or backoff no longer counts against `maxActiveJobs`.
 */
export function park(store: Store, js: JobState, now: number): void {
  const waitAt = nextReadyAt(js, now);
  let readyAt = waitAt ?? Infinity;
  for (const entry of js.leased) if (entry.expiresAt < readyAt) readyAt = entry.expiresAt;
  if (readyAt <= now) return;
  // Waiting on the clock (a delay or backoff), it gives up its admission place: it stays running,
  // uncounted, like a job started by a claim of its own. Parked at its hosts' concurrency, it keeps it.
  if (waitAt !== null && js.admitted) {
    js.admitted = false;
    store.admitted--;
  }
  js.readyAt = readyAt;
  js.waitAt = waitAt;
  const stamp = ++js.stamp;
  store.eligible.delete(js);
  if (readyAt !== Infinity) store.parkedUntil.push({ at: readyAt, js, stamp });
  if (waitAt !== null) store.waitingUntil.push({ at: waitAt, js, stamp });
  // Jobs parked and woken again and again leave stale items behind: sweep them now and then.
  for (const heap of [store.parkedUntil, store.waitingUntil]) if (heap.size > 2 * store.active.size + 64) heap.compact((item) => live(store, item));
}

/** Something may have made a parked job ready sooner: claims visit it again. */
export function wake(store: Store, js: JobState): void {
  if (js.readyAt === 0) return;
  js.readyAt = 0;
  js.waitAt = null;
  js.stamp++;
  if (store.active.has(js) && !js.waiting) store.eligible.add(js);
}

/** Wakes the parked jobs whose time has come by this clock. */
export function wakeDue(store: Store, now: number): void {
  const { parkedUntil } = store;
  for (let top = parkedUntil.peek(); top !== undefined && (top.at <= now || !live(store, top)); top = parkedUntil.peek()) {
    parkedUntil.pop();
    if (live(store, top)) wake(store, top.js);
  }
}

/** The earliest time a parked job's URL becomes ready by the clock, or null. */
export function parkedWait(store: Store): number | null {
  const { waitingUntil } = store;
  for (let top = waitingUntil.peek(); top !== undefined; top = waitingUntil.peek()) {
    if (live(store, top)) return top.at;
    waitingUntil.pop();
  }
  return null;
}
