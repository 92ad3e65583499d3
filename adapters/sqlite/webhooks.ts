/**
 * The webhook outbox in SQLite (schema version 5): registrations with their pump state, and
 * deliveries with their leases. Each function runs inside a transaction of the caller (writes in
 * `BEGIN IMMEDIATE`, so one process's claims and enqueues never interleave with another's).
 */
import { randomUUID } from 'node:crypto';
import type {
  ClaimWebhookQuery,
  NewWebhookDelivery,
  Paginated,
  WebhookDelivery,
  WebhookDeliveryLease,
  WebhookDeliveryOutcome,
  WebhookJob,
  WebhookPumpState,
} from '../../src/storage/index.js';
import type { Ctx } from './rows.js';

/** A `webhook_deliveries` row. */
interface DeliveryRow {
  seq: number;
  id: string;
  job_id: string;
  event: WebhookDelivery['event'];
  url: string;
  payload: string;
  created_at: number;
  state: WebhookDelivery['state'];
  attempts: number;
  next_attempt_at: number;
  delivered_at: number | null;
  last_error: string | null;
  token: string | null;
  lease_until: number;
}

function deliveryOf(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    jobId: row.job_id,
    event: row.event,
    url: row.url,
    payload: row.payload,
    createdAt: Number(row.created_at),
    state: row.state,
    attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at),
    deliveredAt: row.delivered_at === null ? null : Number(row.delivered_at),
    lastError: row.last_error === null ? null : (JSON.parse(row.last_error) as WebhookDelivery['lastError']),
  };
}

export function addWebhookJob(x: Ctx, jobId: string, now: number): void {
  x.c.run(`INSERT INTO ${x.t.webhookJobs} (job_id, registered_at) VALUES (?, ?) ON CONFLICT (job_id) DO NOTHING`, jobId, now);
}

export function listWebhookJobs(x: Ctx, limit: number, after: number): WebhookJob[] {
  return x.c
    .all<{ ordinal: number; job_id: string; registered_at: number; state: string | null }>(
      `SELECT ordinal, job_id, registered_at, state FROM ${x.t.webhookJobs} WHERE ordinal > ? ORDER BY ordinal LIMIT ?`,
      after,
      limit,
    )
    .map((row) => ({
      jobId: row.job_id,
      ordinal: Number(row.ordinal),
      registeredAt: Number(row.registered_at),
      state: row.state === null ? null : (JSON.parse(row.state) as WebhookPumpState),
    }));
}

export function removeWebhookJob(x: Ctx, jobId: string): void {
  x.c.run(`DELETE FROM ${x.t.webhookJobs} WHERE job_id = ?`, jobId);
}

/** The compare-and-set: only while the stored `seq` is `expected`'s (NULL for none). */
export function enqueueWebhookDeliveries(
  x: Ctx,
  jobId: string,
  expected: WebhookPumpState | null,
  next: WebhookPumpState,
  deliveries: NewWebhookDelivery[],
): boolean {
  const { c, t } = x;
  const row = c.get<{ seq: number | null }>(`SELECT seq FROM ${t.webhookJobs} WHERE job_id = ?`, jobId);
  if (row === undefined) return false;
  if ((row.seq === null ? null : Number(row.seq)) !== (expected === null ? null : expected.seq)) return false;
  for (const d of deliveries) {
    c.run(
      `INSERT INTO ${t.webhookDeliveries} (id, job_id, event, url, payload, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
      d.id,
      d.jobId,
      d.event,
      d.url,
      d.payload,
      d.createdAt,
      d.createdAt,
    );
  }
  if (next.done) c.run(`DELETE FROM ${t.webhookJobs} WHERE job_id = ?`, jobId);
  else c.run(`UPDATE ${t.webhookJobs} SET seq = ?, state = ? WHERE job_id = ?`, next.seq, JSON.stringify(next), jobId);
  return true;
}

/** Due pending deliveries without a live lease, earliest `next_attempt_at` first (the `webhook_deliveries_due` index). */
export function claimWebhookDeliveries(x: Ctx, query: ClaimWebhookQuery): WebhookDeliveryLease[] {
  const { c, t } = x;
  const due = c.all<{ seq: number }>(
    `SELECT seq FROM ${t.webhookDeliveries} WHERE state = 'pending' AND next_attempt_at <= ? AND lease_until <= ? ORDER BY next_attempt_at, seq LIMIT ?`,
    query.now,
    query.now,
    query.limit,
  );
  const expiresAt = query.now + query.leaseMs;
  return due.map(({ seq }) => {
    const token = randomUUID();
    const row = c.get<DeliveryRow>(
      `UPDATE ${t.webhookDeliveries} SET token = ?, attempts = attempts + 1, lease_until = ? WHERE seq = ? RETURNING *`,
      token,
      expiresAt,
      seq,
    )!;
    return { delivery: deliveryOf(row), token, expiresAt };
  });
}

/** Fenced by the token: a settled, re-claimed or deleted delivery matches no row. */
export function settleWebhookDelivery(x: Ctx, lease: WebhookDeliveryLease, outcome: WebhookDeliveryOutcome): boolean {
  const { c, t } = x;
  const where = `WHERE id = ? AND token = ? AND state = 'pending'`;
  const changed =
    outcome.state === 'delivered'
      ? c.get(
          `UPDATE ${t.webhookDeliveries} SET token = NULL, lease_until = 0, state = 'delivered', delivered_at = ? ${where} RETURNING 1 AS ok`,
          outcome.now,
          lease.delivery.id,
          lease.token,
        )
      : outcome.state === 'released'
        ? c.get(
            `UPDATE ${t.webhookDeliveries} SET token = NULL, lease_until = 0, next_attempt_at = ?, attempts = max(attempts - 1, 0) ${where} RETURNING 1 AS ok`,
            outcome.nextAttemptAt,
            lease.delivery.id,
            lease.token,
          )
        : c.get(
            `UPDATE ${t.webhookDeliveries} SET token = NULL, lease_until = 0, state = ?, last_error = ?, next_attempt_at = coalesce(?, next_attempt_at) ${where} RETURNING 1 AS ok`,
            outcome.state,
            JSON.stringify(outcome.error),
            outcome.state === 'pending' ? outcome.nextAttemptAt : null,
            lease.delivery.id,
            lease.token,
          );
  return changed !== undefined;
}

/** A job's deliveries after `after` (a `seq`, the cursor), in enqueue order. */
export function listWebhookDeliveries(x: Ctx, jobId: string, after: bigint, limit: number): Paginated<WebhookDelivery> {
  const rows = x.c.all<DeliveryRow>(`SELECT * FROM ${x.t.webhookDeliveries} WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?`, jobId, after, limit + 1);
  const page = rows.slice(0, limit);
  return { items: page.map(deliveryOf), nextCursor: rows.length > limit ? String(page[page.length - 1]!.seq) : null };
}

/** Removes a job's registration and deliveries (inside `deleteJob`'s transaction). */
export function forgetWebhookJob(x: Ctx, jobId: string): void {
  x.c.run(`DELETE FROM ${x.t.webhookJobs} WHERE job_id = ?`, jobId);
  x.c.run(`DELETE FROM ${x.t.webhookDeliveries} WHERE job_id = ?`, jobId);
}
