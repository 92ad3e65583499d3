/**
 * `complete()`, `completeMany()`, `retry()` and `release()`: the operations that end a lease, each
 * only while the lease's token is current (fencing) and its job active. `complete()` keeps the
 * exact `maxPages` accounting of the contract (see `CrawlStorage.complete`), as the Postgres
 * adapter does; `completeMany()` is `complete()` item after item in one transaction.
 */
import type { CompleteInput, CompleteItem, CompleteResult, ErrorInfo, FieldError, FrontierLink, Lease, ProgressEvent } from '../../src/storage/index.js';
import { CrawlEngineError, SKIP_CODES } from '../../src/storage/index.js';
import { appendEvent, type Ctx, endLease, finishIfDone, type FrontierRow, isActive, type JobRow, jobRow } from './rows.js';

/** The job and the URL of a lease that is still current, or null. */
function current(x: Ctx, lease: Lease): { j: JobRow; f: FrontierRow } | null {
  const j = jobRow(x, lease.jobId);
  // A cancelled job leaves its frontier as it was: its status alone retires its leases.
  if (j === undefined || !isActive(j.status)) return null;
  const f = x.c.get<FrontierRow>(`SELECT * FROM ${x.t.frontier} WHERE job_id = ? AND url_key = ?`, lease.jobId, lease.key);
  if (f === undefined || f.state !== 'leased' || f.token !== lease.token) return null;
  return { j, f };
}

const NOT_CURRENT: CompleteResult = { ok: false, admitted: 0, events: [] };

export function complete(x: Ctx, lease: Lease, input: CompleteInput): CompleteResult {
  const found = current(x, lease);
  if (found === null) return NOT_CURRENT;
  const { c, t } = x;
  const { j, f } = found;
  const id = j.id;
  const { result } = input;
  const nowIso = new Date(input.now).toISOString();
  const ok = result.ok;
  const skipped = !ok && result.error !== null && SKIP_CODES.has(result.error.code);
  c.run(`UPDATE ${t.frontier} SET state = ?, token = NULL, unsure = 0 WHERE seq = ?`, ok ? 'done' : 'failed', f.seq);
  endLease(x, j, f.host, input.now, !skipped);
  c.run(`INSERT INTO ${t.results} (job_id, result) VALUES (?, ?)`, id, JSON.stringify(result));

  // Skipped for robots.txt after it was admitted: its charge goes to the oldest spare, or frees room.
  let refund = 0;
  let promoted = 0;
  let promotedUnsure = 0;
  if (skipped && j.refunds < j.max_pages) {
    refund = 1;
    const spare = j.spares > 0 ? c.get<FrontierRow>(`SELECT * FROM ${t.frontier} WHERE job_id = ? AND state = 'spare' ORDER BY seq LIMIT 1`, id) : undefined;
    if (spare !== undefined) {
      c.run(`UPDATE ${t.frontier} SET state = 'pending' WHERE seq = ?`, spare.seq);
      c.run(`INSERT OR IGNORE INTO ${t.hosts} (job_id, host) VALUES (?, ?)`, id, spare.host);
      promoted = 1;
      promotedUnsure = spare.unsure;
    }
  }

  // New links in order, the first of each key; admitted while a charge is free, then spares.
  const seen = new Set<string>();
  const fresh: FrontierLink[] = [];
  for (const link of input.links) {
    if (seen.has(link.key)) continue;
    seen.add(link.key);
    if (c.get(`SELECT 1 AS x FROM ${t.frontier} WHERE job_id = ? AND url_key = ?`, id, link.key) === undefined) fresh.push(link);
  }
  const room = j.max_pages - (j.discovered + promoted - j.robots_free - j.refunds - refund);
  let admitted = 0;
  let admittedUnsure = 0;
  const insert = (link: FrontierLink, state: 'pending' | 'spare') => {
    const unsure = link.robots === 'allowed' ? 0 : 1;
    c.run(
      `INSERT INTO ${t.frontier} (job_id, url_key, url, depth, host, unsure, state, lastmod) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      id,
      link.key,
      link.url,
      link.depth,
      link.host,
      unsure,
      state,
      link.lastmod ?? null,
    );
    if (state === 'pending') c.run(`INSERT OR IGNORE INTO ${t.hosts} (job_id, host) VALUES (?, ?)`, id, link.host);
    return unsure;
  };
  for (; admitted < fresh.length && admitted < room; admitted++) admittedUnsure += insert(fresh[admitted]!, 'pending');
  // No room left: spares, as many as unfinished unsure URLs (which may yet be refunded) and refunds left.
  const spareRoom = Math.min(j.unsure - f.unsure + promotedUnsure + admittedUnsure, j.max_pages - j.refunds - refund) - (j.spares - promoted);
  let spared = 0;
  if (room - admitted <= 0) for (; spared < spareRoom && admitted + spared < fresh.length; spared++) insert(fresh[admitted + spared]!, 'spare');

  c.run(
    `UPDATE ${t.jobs} SET in_progress = in_progress - 1, succeeded = succeeded + ?, failed = failed + ?, skipped = skipped + ?,
       discovered = discovered + ?, queued = queued + ?, refunds = refunds + ?, unsure = unsure + ?, spares = spares + ?,
       first_error = coalesce(first_error, ?), ready_at = 0, wait_at = 0
     WHERE id = ?`,
    ok ? 1 : 0,
    !ok && !skipped ? 1 : 0,
    skipped ? 1 : 0,
    admitted + promoted,
    admitted + promoted,
    refund,
    -f.unsure + promotedUnsure + admittedUnsure,
    spared - promoted,
    ok || result.error === null ? null : JSON.stringify(result.error),
    id,
  );
  const events: ProgressEvent[] = [
    appendEvent(x, id, {
      type: ok ? 'page:done' : skipped ? 'page:skipped' : 'page:failed',
      at: nowIso,
      url: f.url,
      ...(ok || result.error === null ? {} : { error: result.error }),
    }),
  ];

  // Links robots.txt disallows: recorded as skipped at once, new ones only, at most maxPages per job.
  let recorded = 0;
  for (const { link, result: skippedResult } of input.skipped ?? []) {
    if (j.robots_free + recorded >= j.max_pages) break;
    if (c.get(`SELECT 1 AS x FROM ${t.frontier} WHERE job_id = ? AND url_key = ?`, id, link.key) !== undefined) continue;
    c.run(
      `INSERT INTO ${t.frontier} (job_id, url_key, url, depth, host, state) VALUES (?, ?, ?, ?, ?, 'failed')`,
      id,
      link.key,
      link.url,
      link.depth,
      link.host,
    );
    c.run(`INSERT INTO ${t.results} (job_id, result) VALUES (?, ?)`, id, JSON.stringify(skippedResult));
    c.run(`UPDATE ${t.jobs} SET discovered = discovered + 1, skipped = skipped + 1, robots_free = robots_free + 1 WHERE id = ?`, id);
    recorded++;
    const error: ErrorInfo | null = skippedResult.error;
    events.push(appendEvent(x, id, { type: 'page:skipped', at: nowIso, url: link.url, ...(error === null ? {} : { error }) }));
  }
  finishIfDone(x, id, nowIso, events);
  return { ok: true, admitted, events };
}

/**
 * The bound of one `completeMany()` transaction, so that it holds the write lock about as briefly
 * as a few `complete()` calls: at most `BATCH_ITEMS` items, and no more than `BATCH_LINKS` links
 * (`links` and `skipped` together) unless a single item has more (an item is never split).
 * The processor's batches (16 pages by default) fit in one unless their pages are link-heavy.
 */
export const BATCH_ITEMS = 64;
export const BATCH_LINKS = 4096;

/** The items of a `completeMany()` call as runs of at most one transaction's bound, in order. */
export function batches(items: CompleteItem[]): CompleteItem[][] {
  const runs: CompleteItem[][] = [];
  let run: CompleteItem[] = [];
  let links = 0;
  for (const item of items) {
    const n = item.input.links.length + (item.input.skipped?.length ?? 0);
    if (run.length > 0 && (run.length >= BATCH_ITEMS || links + n > BATCH_LINKS)) {
      runs.push(run);
      run = [];
      links = 0;
    }
    run.push(item);
    links += n;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/** `completeMany()`'s argument has the shape `batches()` and `complete()` rely on; else `invalid_input` naming the field. */
export function checkItems(items: unknown): asserts items is CompleteItem[] {
  const isObject = (v: unknown): v is object => typeof v === 'object' && v !== null;
  const bad: FieldError[] = [];
  if (!Array.isArray(items)) bad.push({ path: 'items', message: 'expected an array of { lease, input }' });
  else {
    for (const [i, item] of (items as unknown[]).entries()) {
      const { lease, input } = (isObject(item) ? item : {}) as Partial<CompleteItem>;
      if (!isObject(lease)) bad.push({ path: `items.${i}.lease`, message: 'expected a lease' });
      if (!isObject(input)) bad.push({ path: `items.${i}.input`, message: 'expected { result, links, now }' });
      else if (!Array.isArray(input.links)) bad.push({ path: `items.${i}.input.links`, message: 'expected an array' });
      else if (input.skipped !== undefined && !Array.isArray(input.skipped)) bad.push({ path: `items.${i}.input.skipped`, message: 'expected an array' });
    }
  }
  if (bad.length > 0) {
    const shown = bad.slice(0, 5).map((e) => `${e.path}: ${e.message}`);
    const more = bad.length > 5 ? ` (and ${bad.length - 5} more)` : '';
    throw new CrawlEngineError('invalid_input', `invalid completeMany() items: ${shown.join('; ')}${more}`, { errors: bad });
  }
}

/** One run of `batches()`: each item exactly as `complete()` stores it, in order, in the caller's transaction. */
export function completeMany(x: Ctx, items: CompleteItem[]): CompleteResult[] {
  return items.map((item) => complete(x, item.lease, item.input));
}

/** Back to pending with a not-before time; the request was made, so the host's delay starts. */
export function retry(x: Ctx, lease: Lease, notBefore: number, now: number): boolean {
  const found = current(x, lease);
  if (found === null) return false;
  const { j, f } = found;
  x.c.run(`UPDATE ${x.t.frontier} SET state = 'pending', token = NULL, not_before = max(?, 1), prio = -1 WHERE seq = ?`, notBefore, f.seq);
  endLease(x, j, f.host, now, true);
  x.c.run(`UPDATE ${x.t.jobs} SET in_progress = in_progress - 1, queued = queued + 1, ready_at = 0, wait_at = 0 WHERE id = ?`, j.id);
  return true;
}

/** Unstarted claims go back at once, ahead of the others, without counting the attempt. */
export function release(x: Ctx, leases: Lease[]): number {
  let n = 0;
  for (const lease of leases) {
    const found = current(x, lease);
    if (found === null) continue;
    const { j, f } = found;
    x.c.run(`UPDATE ${x.t.frontier} SET state = 'pending', token = NULL, attempts = max(0, attempts - 1), prio = -1 WHERE seq = ?`, f.seq);
    endLease(x, j, f.host, 0, false);
    x.c.run(`UPDATE ${x.t.jobs} SET in_progress = in_progress - 1, queued = queued + 1, ready_at = 0, wait_at = 0 WHERE id = ?`, j.id);
    n++;
  }
  return n;
}
