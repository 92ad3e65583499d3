/**
 * Listing in `memoryStorage()`: jobs newest first (the cursor is a job's creation ordinal) and a
 * job's results in completion order (the cursor is an index into them).
 */
import { type Job, type ListJobsQuery, type ListResultsQuery, type Paginated, type PageResult, parseDigitsCursor } from '../../src/storage/index.js';
import { orderIndex } from './retention.js';
import { copyJob, type Store } from './state.js';

function parseCursor(cursor: string | null | undefined): number | null {
  const digits = parseDigitsCursor(cursor, 15);
  return digits === null ? null : Number(digits);
}

export function listJobs(store: Store, query: ListJobsQuery): Paginated<Job> {
  const { jobs, order } = store;
  const before = parseCursor(query.cursor);
  const items: Job[] = [];
  // Ordinals have gaps where jobs were deleted: the cursor is found by search, not as an index.
  let i = (before === null ? order.length : orderIndex(store, before)) - 1;
  for (; i >= 0 && items.length < query.limit; i--) {
    const js = order[i]!;
    if (query.status === undefined || js.job.status === query.status) items.push(copyJob(js.job));
  }
  let more = false;
  for (; i >= 0 && !more; i--) more = query.status === undefined || order[i]!.job.status === query.status;
  const last = items.length > 0 ? jobs.get(items[items.length - 1]!.id)! : null;
  return { items, nextCursor: more && last !== null ? String(last.ordinal) : null };
}

export function listResults(store: Store, jobId: string, query: ListResultsQuery): Paginated<PageResult> {
  const start = parseCursor(query.cursor) ?? 0;
  const js = store.jobs.get(jobId);
  if (js === undefined) return { items: [], nextCursor: null };
  const end = Math.min(start + query.limit, js.results.length);
  const items = js.results.slice(start, end).map((r) => ({ ...r }));
  return { items, nextCursor: end < js.results.length ? String(end) : null };
}
