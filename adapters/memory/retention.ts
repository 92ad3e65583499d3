/**
 * Deleting jobs in `memoryStorage()`: removing a job and everything it holds (`deleteJob()` in
 * complete.ts cancels an active one first), the retention sweep `deleteFinishedJobs()`, and the
 * cap on finished jobs kept (`maxFinishedJobs`), which deletes the oldest finished jobs as others
 * finish.
 */
import type { DeleteFinishedQuery, DeleteFinishedResult } from '../../src/storage/index.js';
import { notify } from './events.js';
import type { JobState, Store } from './state.js';
import { forgetWebhookJob, hasWebhookWork } from './webhooks.js';

/** Index in `store.order` of the first job whose ordinal is at least `ordinal`. */
export function orderIndex(store: Store, ordinal: number): number {
  const { order } = store;
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (order[mid]!.ordinal < ordinal) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A recrawl with content formats that was stored (`by` 1) or removed (`by` -1): the job it crawls
 * again, whose content it may point to, is kept from (or given back to) the `maxFinished` cap.
 */
export function pinEarlier(store: Store, js: JobState, by: 1 | -1): void {
  const earlier = js.job.options.recrawlOf;
  // A scheduled recrawl keeps copies of unchanged content, not pointers: it pins nothing.
  if (earlier === undefined || js.job.options.schedule !== undefined || !(js.job.options.formats ?? []).some((format) => format !== 'metadata')) return;
  const count = (store.recrawledBy.get(earlier) ?? 0) + by;
  if (count > 0) store.recrawledBy.set(earlier, count);
  else store.recrawledBy.delete(earlier);
}

/** Drops a finished job from every structure of the store; its watchers wake and find nothing. */
export function remove(store: Store, js: JobState): void {
  pinEarlier(store, js, -1);
  store.jobs.delete(js.job.id);
  store.finished.delete(js);
  forgetWebhookJob(store.outbox, js.job.id, true);
  const at = orderIndex(store, js.ordinal);
  if (store.order[at] === js) store.order.splice(at, 1);
  // Parked-job heaps may still hold it: their items are stale once the job is not active.
  store.active.delete(js);
  store.eligible.delete(js);
  js.stamp++;
  notify(store, js.job.id);
}

/**
 * A job just finished (completed, failed or cancelled): keep at most `maxFinished` of them, the
 * oldest going first. A job a stored recrawl may point to is passed over and not counted (so
 * the cap may be exceeded by those), until the recrawl is deleted.
 */
export function retire(store: Store, js: JobState): void {
  store.finished.add(js);
  let passed = 0;
  for (const oldest of store.finished) {
    if (store.finished.size - passed <= store.maxFinished) break;
    if (store.recrawledBy.has(oldest.job.id)) passed++;
    // A job whose webhooks are not all delivered yet stays until they are (its deliveries go with
    // it): the cap evicts the next oldest instead, and this one at a later finish.
    else if (!hasWebhookWork(store.outbox, oldest.job.id)) remove(store, oldest);
  }
}

export function deleteFinishedJobs(store: Store, query: DeleteFinishedQuery): DeleteFinishedResult {
  // `finished` is in the order jobs finished, which is finishedAt order unless callers' clocks
  // disagree: sorted to be sure (a stable sort, over at most maxFinishedJobs jobs).
  const due: Array<{ js: JobState; at: number }> = [];
  for (const js of store.finished) {
    const at = Date.parse(js.job.finishedAt!);
    if (at < query.finishedBefore) due.push({ js, at });
  }
  due.sort((a, b) => a.at - b.at);
  const chosen = due.slice(0, Math.max(0, query.limit));
  for (const { js } of chosen) remove(store, js);
  return { deleted: chosen.length };
}
