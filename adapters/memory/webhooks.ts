/**
 * The webhook outbox in `memoryStorage()`: registered jobs with their pump state, and deliveries
 * with their leases. Plain maps; each operation runs synchronously, so each is atomic.
 */
import {
  type ClaimWebhookQuery,
  type ListWebhookDeliveriesQuery,
  type NewWebhookDelivery,
  type Paginated,
  parseDigitsCursor,
  type WebhookDelivery,
  type WebhookDeliveryLease,
  type WebhookDeliveryOutcome,
  type WebhookJob,
  type WebhookPumpState,
} from '../../src/storage/index.js';

interface DeliveryRecord {
  delivery: WebhookDelivery;
  /** The live lease's token, or null. */
  token: string | null;
  leaseExpiresAt: number;
}

interface Registration {
  registeredAt: number;
  /** Registration order, for listing oldest first. */
  ordinal: number;
  state: WebhookPumpState | null;
}

export interface Outbox {
  jobs: Map<string, Registration>;
  nextOrdinal: number;
  deliveries: Map<string, DeliveryRecord>;
  /** Each job's deliveries in enqueue order. */
  byJob: Map<string, DeliveryRecord[]>;
  /** Deliveries still `pending` (claimable when due and not leased). */
  pending: Set<DeliveryRecord>;
  tokenSeq: number;
}

export function newOutbox(): Outbox {
  return { jobs: new Map(), nextOrdinal: 0, deliveries: new Map(), byJob: new Map(), pending: new Set(), tokenSeq: 0 };
}

const copyDelivery = (delivery: WebhookDelivery): WebhookDelivery => ({ ...delivery, lastError: delivery.lastError && { ...delivery.lastError } });
const copyState = (state: WebhookPumpState | null): WebhookPumpState | null => state && { ...state, sent: [...state.sent] };

export function addWebhookJob(outbox: Outbox, jobId: string, now: number): void {
  if (!outbox.jobs.has(jobId)) outbox.jobs.set(jobId, { registeredAt: now, ordinal: outbox.nextOrdinal++, state: null });
}

export function listWebhookJobs(outbox: Outbox, limit: number): WebhookJob[] {
  // Map order is insertion order, which is registration order.
  const out: WebhookJob[] = [];
  for (const [jobId, registration] of outbox.jobs) {
    if (out.length >= limit) break;
    out.push({ jobId, registeredAt: registration.registeredAt, state: copyState(registration.state) });
  }
  return out;
}

export function enqueueWebhookDeliveries(
  outbox: Outbox,
  jobId: string,
  expected: WebhookPumpState | null,
  next: WebhookPumpState,
  deliveries: NewWebhookDelivery[],
): boolean {
  const registration = outbox.jobs.get(jobId);
  if (registration === undefined) return false;
  if ((registration.state?.seq ?? null) !== (expected?.seq ?? null)) return false;
  for (const item of deliveries) {
    if (outbox.deliveries.has(item.id)) continue;
    const record: DeliveryRecord = {
      delivery: { ...item, state: 'pending', attempts: 0, nextAttemptAt: item.createdAt, deliveredAt: null, lastError: null },
      token: null,
      leaseExpiresAt: 0,
    };
    outbox.deliveries.set(item.id, record);
    const list = outbox.byJob.get(item.jobId);
    if (list === undefined) outbox.byJob.set(item.jobId, [record]);
    else list.push(record);
    outbox.pending.add(record);
  }
  if (next.done) outbox.jobs.delete(jobId);
  else registration.state = copyState(next);
  return true;
}

export function claimWebhookDeliveries(outbox: Outbox, query: ClaimWebhookQuery): WebhookDeliveryLease[] {
  const ready: DeliveryRecord[] = [];
  for (const record of outbox.pending) {
    if (record.delivery.nextAttemptAt <= query.now && (record.token === null || record.leaseExpiresAt <= query.now)) ready.push(record);
  }
  ready.sort((a, b) => a.delivery.nextAttemptAt - b.delivery.nextAttemptAt);
  return ready.slice(0, Math.max(0, query.limit)).map((record) => {
    record.token = `w${++outbox.tokenSeq}`;
    record.leaseExpiresAt = query.now + query.leaseMs;
    record.delivery.attempts++;
    return { delivery: copyDelivery(record.delivery), token: record.token, expiresAt: record.leaseExpiresAt };
  });
}

export function settleWebhookDelivery(outbox: Outbox, lease: WebhookDeliveryLease, outcome: WebhookDeliveryOutcome): boolean {
  const record = outbox.deliveries.get(lease.delivery.id);
  if (record === undefined || record.token === null || record.token !== lease.token) return false;
  record.token = null;
  const { delivery } = record;
  if (outcome.state === 'delivered') {
    delivery.state = 'delivered';
    delivery.deliveredAt = outcome.now;
    outbox.pending.delete(record);
  } else if (outcome.state === 'pending') {
    delivery.nextAttemptAt = outcome.nextAttemptAt;
    delivery.lastError = { ...outcome.error };
  } else {
    delivery.state = 'failed';
    delivery.lastError = { ...outcome.error };
    outbox.pending.delete(record);
  }
  return true;
}

export function listWebhookDeliveries(outbox: Outbox, jobId: string, query: ListWebhookDeliveriesQuery): Paginated<WebhookDelivery> {
  const start = Number(parseDigitsCursor(query.cursor, 15) ?? 0);
  const list = outbox.byJob.get(jobId) ?? [];
  const items = list.slice(start, start + Math.max(0, query.limit)).map((record) => copyDelivery(record.delivery));
  const end = start + items.length;
  return { items, nextCursor: end < list.length ? String(end) : null };
}

/** Forgets a job's registration and deliveries (the job is deleted, or was never created). */
export function forgetWebhookJob(outbox: Outbox, jobId: string, deliveriesToo: boolean): void {
  outbox.jobs.delete(jobId);
  if (!deliveriesToo) return;
  for (const record of outbox.byJob.get(jobId) ?? []) {
    outbox.deliveries.delete(record.delivery.id);
    outbox.pending.delete(record);
  }
  outbox.byJob.delete(jobId);
}
