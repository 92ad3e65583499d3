/**
 * The webhook outbox in `memoryStorage()`: registered jobs with their pump state, and deliveries
 * with their leases. Plain maps; each operation runs synchronously, so each is atomic. Claims take
 * deliveries from a min-heap of the times they become claimable (due, or their lease run out), so
 * a claim costs what it hands out, not what is pending.
 */
import { MinHeap } from './heap.js';
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
  /** Enqueue order (ties between equal times in the heap). */
  seq: number;
  /** Raised on every change of when it is claimable: heap items of older versions are stale. */
  version: number;
}

/** When a delivery becomes claimable: its `nextAttemptAt`, or the end of its lease. */
interface DueItem {
  at: number;
  tie: number;
  record: DeliveryRecord;
  version: number;
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
  /** Pending deliveries by the time they become claimable (stale items dropped as they surface). */
  due: MinHeap<DueItem>;
  /** Deliveries still `pending`, by job (a finished job keeps its place while it has some). */
  pendingByJob: Map<string, number>;
  tokenSeq: number;
  deliverySeq: number;
}

export function newOutbox(): Outbox {
  return { jobs: new Map(), nextOrdinal: 1, deliveries: new Map(), byJob: new Map(), due: new MinHeap(), pendingByJob: new Map(), tokenSeq: 0, deliverySeq: 0 };
}

/** Puts the record in the heap at `at` (its older items go stale). */
function schedule(outbox: Outbox, record: DeliveryRecord, at: number): void {
  record.version++;
  outbox.due.push({ at, tie: record.seq, record, version: record.version });
}

/** The delivery left `pending` (delivered, failed, deleted). */
function unpend(outbox: Outbox, record: DeliveryRecord): void {
  record.version++;
  const left = (outbox.pendingByJob.get(record.delivery.jobId) ?? 1) - 1;
  if (left > 0) outbox.pendingByJob.set(record.delivery.jobId, left);
  else outbox.pendingByJob.delete(record.delivery.jobId);
}

/** Whether the job still has something to deliver: a registration, or deliveries pending. */
export function hasWebhookWork(outbox: Outbox, jobId: string): boolean {
  return outbox.jobs.has(jobId) || outbox.pendingByJob.has(jobId);
}

const copyDelivery = (delivery: WebhookDelivery): WebhookDelivery => ({ ...delivery, lastError: delivery.lastError && { ...delivery.lastError } });
const copyState = (state: WebhookPumpState | null): WebhookPumpState | null => state && { ...state, sent: [...state.sent] };

export function addWebhookJob(outbox: Outbox, jobId: string, now: number): void {
  if (!outbox.jobs.has(jobId)) outbox.jobs.set(jobId, { registeredAt: now, ordinal: outbox.nextOrdinal++, state: null });
}

export function listWebhookJobs(outbox: Outbox, limit: number, after = 0): WebhookJob[] {
  // Map order is insertion order, which is registration (ordinal) order.
  const out: WebhookJob[] = [];
  for (const [jobId, registration] of outbox.jobs) {
    if (out.length >= limit) break;
    if (registration.ordinal <= after) continue;
    out.push({ jobId, ordinal: registration.ordinal, registeredAt: registration.registeredAt, state: copyState(registration.state) });
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
      seq: ++outbox.deliverySeq,
      version: 0,
    };
    outbox.deliveries.set(item.id, record);
    const list = outbox.byJob.get(item.jobId);
    if (list === undefined) outbox.byJob.set(item.jobId, [record]);
    else list.push(record);
    outbox.pendingByJob.set(item.jobId, (outbox.pendingByJob.get(item.jobId) ?? 0) + 1);
    schedule(outbox, record, record.delivery.nextAttemptAt);
  }
  if (next.done) outbox.jobs.delete(jobId);
  else registration.state = copyState(next);
  return true;
}

export function claimWebhookDeliveries(outbox: Outbox, query: ClaimWebhookQuery): WebhookDeliveryLease[] {
  const chosen: DeliveryRecord[] = [];
  const limit = Math.max(0, query.limit);
  while (chosen.length < limit) {
    const top = outbox.due.peek();
    if (top === undefined || top.at > query.now) break;
    outbox.due.pop();
    const { record } = top;
    // Stale: claimed, settled or deleted since this item was pushed.
    if (top.version !== record.version || record.delivery.state !== 'pending') continue;
    chosen.push(record);
  }
  // Due ones first by nextAttemptAt (a lease that ran out surfaces at its end, later than that).
  chosen.sort((a, b) => a.delivery.nextAttemptAt - b.delivery.nextAttemptAt || a.seq - b.seq);
  return chosen.map((record) => {
    record.token = `w${++outbox.tokenSeq}`;
    record.leaseExpiresAt = query.now + query.leaseMs;
    record.delivery.attempts++;
    // Claimable again when the lease runs out, unless settled before.
    schedule(outbox, record, record.leaseExpiresAt);
    return { delivery: copyDelivery(record.delivery), token: record.token, expiresAt: record.leaseExpiresAt };
  });
}

export function settleWebhookDelivery(outbox: Outbox, lease: WebhookDeliveryLease, outcome: WebhookDeliveryOutcome): boolean {
  const record = outbox.deliveries.get(lease.delivery.id);
  if (record === undefined || record.token === null || record.token !== lease.token || record.delivery.state !== 'pending') return false;
  record.token = null;
  const { delivery } = record;
  if (outcome.state === 'delivered') {
    delivery.state = 'delivered';
    delivery.deliveredAt = outcome.now;
    unpend(outbox, record);
  } else if (outcome.state === 'pending') {
    delivery.nextAttemptAt = outcome.nextAttemptAt;
    delivery.lastError = { ...outcome.error };
    schedule(outbox, record, delivery.nextAttemptAt);
  } else if (outcome.state === 'released') {
    delivery.nextAttemptAt = outcome.nextAttemptAt;
    delivery.attempts = Math.max(0, delivery.attempts - 1);
    schedule(outbox, record, delivery.nextAttemptAt);
  } else {
    delivery.state = 'failed';
    delivery.lastError = { ...outcome.error };
    unpend(outbox, record);
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
    record.version++;
  }
  outbox.byJob.delete(jobId);
  outbox.pendingByJob.delete(jobId);
}
