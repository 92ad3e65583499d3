/**
 * `claim()`, as the Postgres adapter's SQL function does it: admission first (with
 * `maxActiveJobs`, queued jobs start in order of priority, then creation, while fewer than the bound
 * started that way run; the claim then visits running jobs only, so queued ones cost it nothing
 * beyond the next in line), then expired leases, then ready URLs
 * host by host (least recently served first) within each host's concurrency and delay. It visits
 * at most 100 jobs that are not parked (or whose park has ended), least recently served first,
 * each getting a fair share; a job with nothing ready is parked until the earliest time it could
 * have something (a host delay or retry backoff ending, a live lease expiring), so parked jobs cost
 * claims nothing however many there are.
 */
import { randomUUID } from 'node:crypto';
import type { ClaimQuery, Lease, ProgressEvent } from '../../src/storage/index.js';
import { appendEvent, type Ctx, type FrontierRow, isActive, type JobRow, jobRow, least, nextServe } from './rows.js';
import { ACTIVE } from './schema.js';

const MAX_JOBS = 100;
/** A park with nothing waiting on the clock or on a lease: only a wake ends it. */
const FOREVER = 9_000_000_000_000_000;

interface HostRow {
  host: string;
  in_flight: number;
  next_at: number;
  crawl_delay_ms: number;
}

export interface ClaimOutcome {
  leases: Lease[];
  events: ProgressEvent[];
  nextReadyAt: number | null;
}

export function claim(x: Ctx, q: ClaimQuery): ClaimOutcome {
  const { c, t } = x;
  const { now, leaseMs } = q;
  const nowIso = new Date(now).toISOString();
  const leases: Lease[] = [];
  const events: ProgressEvent[] = [];
  const bounded = q.jobId === undefined && q.maxActiveJobs !== undefined;
  if (bounded) admit(x, q.maxActiveJobs!, nowIso, events);
  // Claims with a bound visit running jobs only: queued ones wait for admission.
  const visited = bounded ? `status = 'running'` : ACTIVE;
  const cands =
    q.jobId !== undefined
      ? c.all<{ id: string }>(`SELECT id FROM ${t.jobs} WHERE id = ? AND ${ACTIVE}`, q.jobId)
      : c.all<{ id: string }>(
          `SELECT id FROM (
             SELECT * FROM (SELECT id, last_claim, ordinal FROM ${t.jobs} WHERE ${visited} AND ready_at = 0 ORDER BY last_claim, ordinal LIMIT ${MAX_JOBS})
             UNION ALL
             SELECT * FROM (SELECT id, last_claim, ordinal FROM ${t.jobs} WHERE ${visited} AND ready_at > 0 AND ready_at <= ? ORDER BY ready_at LIMIT ${MAX_JOBS})
           ) ORDER BY last_claim, ordinal LIMIT ${MAX_JOBS}`,
          now,
        );
  const nReady = cands.length;
  const served = new Set<string>();
  const idle = new Set<string>();
  let remaining = q.limit;
  let nextReady: number | null = null;
  let freed = false;

  const lease = (f: FrontierRow): Lease => {
    const token = randomUUID();
    const row = c.get<FrontierRow>(
      `UPDATE ${t.frontier} SET state = 'leased', token = ?, attempts = attempts + 1, lease_until = ?, prio = 0 WHERE seq = ? RETURNING *`,
      token,
      now + leaseMs,
      f.seq,
    )!;
    const out: Lease = {
      jobId: row.job_id,
      url: row.url,
      key: row.url_key,
      depth: row.depth,
      host: row.host,
      token,
      attempts: row.attempts,
      expiresAt: row.lease_until,
    };
    // Only when there is one: a lease without a lastmod has no such key at all.
    if (row.lastmod !== null && row.lastmod !== undefined) out.lastmod = row.lastmod;
    return out;
  };

  for (let pass = 1; pass <= 2 && remaining > 0 && nReady > 0; pass++) {
    const share = pass === 1 ? Math.max(1, Math.ceil(q.limit / Math.min(nReady, q.limit))) : remaining;
    for (const { id } of cands) {
      if (remaining <= 0) break;
      // Pass 1 found nothing in it: no need to look again.
      if (pass === 2 && idle.has(id)) continue;
      const j = jobRow(x, id);
      if (j === undefined || !isActive(j.status)) continue;
      // Parked by pass 1: nothing to find here.
      if (q.jobId === undefined && j.ready_at > now) continue;
      let took = 0;
      let fresh = 0;
      let hostWait: number | null = null;
      // Expired leases: the processor that held them is gone.
      const expired = c.all<FrontierRow>(
        `SELECT * FROM ${t.frontier} WHERE job_id = ? AND state = 'leased' AND lease_until <= ? ORDER BY lease_until LIMIT ?`,
        id,
        now,
        Math.min(share, remaining),
      );
      for (const f of expired) {
        leases.push(lease(f));
        took++;
      }
      // Retries whose backoff has passed become ready, ahead of the others.
      c.run(`UPDATE ${t.frontier} SET not_before = 0, prio = -1 WHERE job_id = ? AND state = 'pending' AND not_before > 0 AND not_before <= ?`, id, now);
      const hosts = c.all<HostRow>(
        `SELECT h.host, h.in_flight, h.next_at, h.crawl_delay_ms FROM ${t.hosts} h
         WHERE h.job_id = ? AND EXISTS (SELECT 1 FROM ${t.frontier} f WHERE f.job_id = h.job_id AND f.host = h.host AND f.state = 'pending' AND f.not_before = 0)
         ORDER BY h.last_pick, h.host`,
        id,
      );
      for (const h of hosts) {
        if (took >= share || took >= remaining) break;
        const delay = Math.max(j.per_host_delay_ms, h.crawl_delay_ms);
        const slots = delay > 0 ? 1 : j.per_host_concurrency;
        if (h.in_flight >= slots) continue;
        if (h.next_at > now) {
          nextReady = least(nextReady, h.next_at);
          hostWait = least(hostWait, h.next_at);
          continue;
        }
        const ready = c.all<FrontierRow>(
          `SELECT * FROM ${t.frontier} WHERE job_id = ? AND host = ? AND state = 'pending' AND not_before = 0 ORDER BY prio, seq LIMIT ?`,
          id,
          h.host,
          Math.min(slots - h.in_flight, share - took, remaining - took),
        );
        for (const f of ready) leases.push(lease(f));
        if (ready.length > 0) {
          c.run(`UPDATE ${t.hosts} SET in_flight = in_flight + ?, last_pick = ? WHERE job_id = ? AND host = ?`, ready.length, nextServe(x), id, h.host);
          took += ready.length;
          fresh += ready.length;
        }
      }
      if (took > 0) {
        c.run(
          `UPDATE ${t.jobs} SET queued = queued - ?, in_progress = in_progress + ?, last_claim = ?, ready_at = 0, wait_at = 0,
             status = 'running', started_at = coalesce(started_at, ?) WHERE id = ?`,
          fresh,
          fresh,
          nextServe(x),
          nowIso,
          id,
        );
        if (j.status === 'queued') events.push(appendEvent(x, id, { type: 'job:started', at: nowIso }));
        served.add(id);
        remaining -= took;
      } else if (!served.has(id)) {
        idle.add(id);
        if (park(x, j, now, hostWait)) freed = true;
      }
    }
  }
  if (remaining <= 0) return { leases, events, nextReadyAt: null };
  // Backoffs of the jobs that gave URLs; parked jobs (those of this claim too) keep theirs in wait_at.
  for (const id of served) {
    const row = c.get<{ at: number | null }>(
      `SELECT min(not_before) AS at FROM ${t.frontier} WHERE job_id = ? AND state = 'pending' AND not_before > 0 AND not_before > ?`,
      id,
      now,
    );
    nextReady = least(nextReady, row?.at);
  }
  const waiting = c.get<{ at: number | null }>(
    `SELECT min(wait_at) AS at FROM ${t.jobs} WHERE ${ACTIVE} AND wait_at > 0 AND wait_at > ? AND (? IS NULL OR id = ?)`,
    now,
    q.jobId ?? null,
    q.jobId ?? null,
  );
  nextReady = least(nextReady, waiting?.at);
  // More jobs were eligible than one claim visits: the next claim sees the others at once.
  if (q.jobId === undefined && nReady >= MAX_JOBS) nextReady = now;
  // Jobs parked on the clock gave up their places: the next claim admits queued jobs at once.
  if (freed && bounded && c.get(`SELECT 1 AS one FROM ${t.jobs} WHERE status = 'queued' LIMIT 1`) !== undefined) nextReady = now;
  return { leases, events, nextReadyAt: nextReady };
}

/**
 * Starts queued jobs, in order of priority (highest first), then creation, while fewer than `bound`
 * jobs started this way run: `running`, `admitted`, `job:started`. Never claimed (`last_claim` 0),
 * they come first in this claim's visit.
 */
function admit(x: Ctx, bound: number, nowIso: string, events: ProgressEvent[]): void {
  const { c, t } = x;
  const row = c.get<{ n: number }>(`SELECT count(*) AS n FROM ${t.jobs} WHERE status = 'running' AND admitted = 1`);
  const room = bound - Number(row?.n ?? 0);
  if (room <= 0) return;
  const line = c.all<{ id: string }>(`SELECT id FROM ${t.jobs} WHERE status = 'queued' ORDER BY priority DESC, ordinal LIMIT ?`, room);
  for (const { id } of line) {
    c.run(`UPDATE ${t.jobs} SET status = 'running', admitted = 1, started_at = coalesce(started_at, ?), ready_at = 0, wait_at = 0 WHERE id = ?`, nowIso, id);
    events.push(appendEvent(x, id, { type: 'job:started', at: nowIso }));
  }
}

/**
 * Nothing was ready in the job: every host was looked at, so each pending URL waits on its host's
 * delay, on its backoff, or on a host slot held by a live lease. Park the job until the earliest
 * of those ends; waiting on the clock, it no longer counts against `maxActiveJobs`. True when it
 * gave up its place so.
 */
function park(x: Ctx, j: JobRow, now: number, hostWait: number | null): boolean {
  const { c, t } = x;
  const backoff = c.get<{ at: number | null }>(
    `SELECT min(not_before) AS at FROM ${t.frontier} WHERE job_id = ? AND state = 'pending' AND not_before > 0`,
    j.id,
  );
  const lease = c.get<{ at: number | null }>(`SELECT min(lease_until) AS at FROM ${t.frontier} WHERE job_id = ? AND state = 'leased'`, j.id);
  const clockWait = least(hostWait, backoff?.at);
  const parkAt = least(clockWait, lease?.at) ?? FOREVER;
  // Waiting on the clock, an admitted job gives up its place (admitted 0) and runs on uncounted.
  // Parked only on host slots held by live leases, it keeps it.
  const release = clockWait !== null && j.admitted === 1;
  if (parkAt > now && (j.ready_at !== parkAt || j.wait_at !== (clockWait ?? 0) || release)) {
    c.run(`UPDATE ${t.jobs} SET ready_at = ?, wait_at = ?, admitted = admitted * ? WHERE id = ?`, parkAt, clockWait ?? 0, clockWait === null ? 1 : 0, j.id);
    return release;
  }
  return false;
}
