/**
 * The sender: claims due deliveries from the storage's outbox with a lease, signs each per
 * Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`: one signature per
 * secret while secrets rotate), posts it through the guarded fetcher (no redirects, a timeout, the
 * answer's size capped), and settles it: delivered on a 2xx, else tried again after an exponential
 * backoff with full jitter (or the receiver's `Retry-After`) until `maxAttempts`, then failed; a
 * 410 Gone fails it at once. A processor killed mid-post leaves the lease to expire and another
 * processor posts again with the same `webhook-id`: at least once.
 *
 * Posts run in a pool of {@link DELIVERY_SLOTS}, each settled on its own, at most
 * {@link SLOTS_PER_RECEIVER} per receiver origin (the others claimed for it wait in memory under
 * their lease, and are handed back untried if the run ends first), so a receiver that never
 * answers holds two slots, not the others' deliveries. No post outlasts the run: none starts with less than
 * {@link MIN_POST_MS} left, each one's timeout is cut to the time left, and the run's signal
 * (a worker's `stop()`) aborts them.
 */
import type { Fetcher } from '../../crawl/fetcher.js';
import type { CrawlStorage, WebhookDeliveryLease, WebhookDeliveryOutcome } from '../storage.js';
import type { Job } from '../types.js';
import type { EngineWebhookSettings } from './options.js';
import { signWebhook } from './sign.js';
import { CrawlEngineError } from '../errors.js';
import { SCHEDULE_EVENT } from '../schedule.js';

/** Posts in flight at once. */
export const DELIVERY_SLOTS = 8;
/** Posts in flight at once to one receiver (scheme, host and port). */
export const SLOTS_PER_RECEIVER = 2;
/** Least time left in the run for a post to start. */
export const MIN_POST_MS = 200;
/** Deliveries held at once: posting, or claimed and waiting for a slot of their receiver. */
export const MAX_HELD = 4 * DELIVERY_SLOTS;
/** How long a delivery this processor has no secret for is handed back for (to one that has). */
export const HAND_BACK_MS = 1000;
/** Most bytes of a receiver's answer that are read. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

export interface DeliverReport {
  /** Outbox entries claimed (webhooks and schedules). */
  claimed: number;
  delivered: number;
  /** Scheduled recrawls started. */
  recrawls: number;
  /** Claimed and handed back untried, for an engine that can post or start them. */
  handedBack: number;
  retried: number;
  failed: number;
  errors: string[];
}

export interface DeliverDeps {
  storage: CrawlStorage;
  fetcher: () => Fetcher;
  settings: EngineWebhookSettings;
  now: () => number;
  random?: () => number;
  /**
   * Whether this engine posts webhooks (made with the `webhooks` option). Without it, webhook
   * deliveries it claims are handed back untried, and only schedules are its business.
   */
  posts?: boolean;
  /** Starts the recrawl of a schedule's entry (`jobs.recrawlScheduled`); without it, entries are handed back. */
  recrawlScheduled?: (entry: { id: string; jobId: string }) => Promise<'started' | 'gone'>;
}

/** The wait before try `attempts + 1`: `retryBaseMs * 2^(attempts-1)`, capped at `retryMaxMs`, full jitter. */
export function deliveryBackoffMs(attempts: number, settings: Pick<EngineWebhookSettings, 'retryBaseMs' | 'retryMaxMs'>, random = Math.random): number {
  const ceiling = Math.min(settings.retryMaxMs, settings.retryBaseMs * 2 ** Math.min(30, Math.max(0, attempts - 1)));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** The receiver a delivery goes to: posts are limited per receiver. */
function receiverOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/**
 * Claims and posts due deliveries until none is due, `deadline` comes near or `signal` aborts;
 * returns when every post it started is settled.
 */
export async function deliverWebhooks(deps: DeliverDeps, deadline: number, signal?: AbortSignal): Promise<DeliverReport> {
  const { storage, settings, now } = deps;
  const report: DeliverReport = { claimed: 0, delivered: 0, recrawls: 0, handedBack: 0, retried: 0, failed: 0, errors: [] };
  const posts = deps.posts ?? true;
  if (storage.claimWebhookDeliveries === undefined || storage.settleWebhookDelivery === undefined) return report;
  const settle = storage.settleWebhookDelivery.bind(storage);
  const jobs = new Map<string, Promise<Job | null>>();
  const jobOf = (id: string) => {
    const found = jobs.get(id) ?? storage.getJob(id);
    jobs.set(id, found);
    return found;
  };
  const inFlight = new Set<Promise<void>>();
  const perReceiver = new Map<string, number>();
  const count = (outcome: WebhookDeliveryOutcome) => {
    if (outcome.state === 'delivered') report.delivered++;
    else if (outcome.state === 'pending') report.retried++;
    else if (outcome.state === 'failed') report.failed++;
  };
  const handBack = async (lease: WebhookDeliveryLease, delayMs: number) => {
    if (delayMs > 0) report.handedBack++;
    try {
      await settle(lease, { state: 'released', nextAttemptAt: now() + delayMs });
    } catch (error) {
      report.errors.push(`webhook ${lease.delivery.id}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  const open = () => !signal?.aborted && deadline - now() >= MIN_POST_MS;
  /** Claimed, with a secret, waiting for a slot: by receiver, in claim order. */
  const waiting = new Map<string, Array<{ lease: WebhookDeliveryLease; secrets: string | string[] }>>();
  let waitingCount = 0;
  /** Starts what waits, while slots (overall and per receiver) are free. */
  const fill = () => {
    for (const [receiver, queue] of waiting) {
      while (queue.length > 0 && inFlight.size < DELIVERY_SLOTS && (perReceiver.get(receiver) ?? 0) < SLOTS_PER_RECEIVER && open()) {
        const next = queue.shift()!;
        waitingCount--;
        post(next.lease, next.secrets, receiver);
      }
      if (queue.length === 0) waiting.delete(receiver);
    }
  };
  const post = (lease: WebhookDeliveryLease, secrets: string | string[], receiver: string) => {
    perReceiver.set(receiver, (perReceiver.get(receiver) ?? 0) + 1);
    const task: Promise<void> = (async () => {
      try {
        const outcome = await attempt(deps, lease, secrets, deadline, signal);
        if (await settle(lease, outcome)) count(outcome);
      } catch (error) {
        // Left to its lease, which expires: another try then.
        report.errors.push(`webhook ${lease.delivery.id}: ${error instanceof Error ? error.message : String(error)}`);
      }
    })().finally(() => {
      const left = (perReceiver.get(receiver) ?? 1) - 1;
      if (left > 0) perReceiver.set(receiver, left);
      else perReceiver.delete(receiver);
      inFlight.delete(task);
      fill();
    });
    inFlight.add(task);
  };

  try {
    // Whether the last claim found fewer due than it asked for: then none is claimed again until
    // what is in flight ends (the pass after this one looks again).
    let drained = false;
    while (open()) {
      const limit = Math.min(DELIVERY_SLOTS - inFlight.size, MAX_HELD - inFlight.size - waitingCount);
      if (limit > 0 && !drained) {
        const leases = await storage.claimWebhookDeliveries({ limit, leaseMs: 2 * settings.timeoutMs + 30_000, now: now() });
        drained = leases.length < limit;
        report.claimed += leases.length;
        for (const lease of leases) {
          const job = await jobOf(lease.delivery.jobId);
          const webhook = job?.options.webhook;
          // What this engine cannot do (post at all, sign for a job that has no secret of its own,
          // or start a recrawl whose webhook it could not take) is handed back untried to one that
          // can; an engine that posts no webhooks then claims no more in this pass, so as not to
          // stand in the way of those that do.
          const foreign = webhook !== undefined && (!posts || (webhook.secret === undefined && settings.secret === undefined));
          if ((lease.delivery.event as string) === SCHEDULE_EVENT) {
            if (deps.recrawlScheduled === undefined || foreign) await handBack(lease, HAND_BACK_MS);
            else await startRecrawl(deps, lease, deps.recrawlScheduled, report);
            continue;
          }
          const secrets = webhook?.secret ?? settings.secret;
          if (!posts || secrets === undefined) {
            await handBack(lease, HAND_BACK_MS);
            if (!posts) drained = true;
            continue;
          }
          const receiver = receiverOf(lease.delivery.url);
          const queue = waiting.get(receiver);
          if (queue === undefined) waiting.set(receiver, [{ lease, secrets }]);
          else queue.push({ lease, secrets });
          waitingCount++;
        }
        fill();
        if (!drained) continue;
      }
      if (inFlight.size === 0) break;
      await Promise.race(inFlight);
    }
  } finally {
    await Promise.all(inFlight);
    // Claimed and never posted (the run ended): handed back untried, due at once.
    const left = [...waiting.values()].flat();
    waiting.clear();
    await Promise.all(left.map(({ lease }) => handBack(lease, 0)));
  }
  return report;
}

/**
 * Starts a schedule's recrawl and settles its entry: delivered once the recrawl exists (now or by
 * an earlier try) or the job is gone; a failure is tried again after a backoff, as a post would be.
 */
async function startRecrawl(
  deps: DeliverDeps,
  lease: WebhookDeliveryLease,
  recrawlScheduled: NonNullable<DeliverDeps['recrawlScheduled']>,
  report: DeliverReport,
): Promise<void> {
  const { delivery } = lease;
  let outcome: WebhookDeliveryOutcome;
  try {
    const started = await recrawlScheduled({ id: delivery.id, jobId: delivery.jobId });
    outcome = { state: 'delivered', now: deps.now() };
    if (started === 'started') report.recrawls++;
  } catch (error) {
    const code = error instanceof CrawlEngineError ? error.code : 'storage_error';
    const failure = { code, message: error instanceof Error ? error.message : String(error), status: null };
    // A job the engine now refuses (its webhook no longer acceptable) is not fixed by waiting.
    outcome =
      code === 'invalid_input' || delivery.attempts >= deps.settings.maxAttempts
        ? { state: 'failed', error: failure }
        : { state: 'pending', nextAttemptAt: deps.now() + deliveryBackoffMs(delivery.attempts, deps.settings, deps.random), error: failure };
    report.errors.push(`scheduled recrawl of ${delivery.jobId}: ${failure.message}`);
  }
  try {
    if (await deps.storage.settleWebhookDelivery!(lease, outcome)) {
      if (outcome.state === 'pending') report.retried++;
      else if (outcome.state === 'failed') report.failed++;
    }
  } catch (error) {
    report.errors.push(`schedule ${delivery.id}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function attempt(
  deps: DeliverDeps,
  lease: WebhookDeliveryLease,
  secrets: string | string[],
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<WebhookDeliveryOutcome> {
  const { delivery } = lease;
  const { settings, now } = deps;
  const sentAt = now();
  const headers = await signWebhook(delivery.id, sentAt, delivery.payload, secrets);
  // Never past the run's end: cut to the time left.
  const timeoutMs = Math.max(1, Math.min(settings.timeoutMs, deadline - sentAt));
  const answer = await deps
    .fetcher()
    .post(
      delivery.url,
      delivery.payload,
      { 'content-type': 'application/json', ...headers },
      { timeoutMs, maxResponseBytes: MAX_RESPONSE_BYTES, ...(signal === undefined ? {} : { signal }) },
    );
  if (answer.error === null && answer.status !== null && answer.status >= 200 && answer.status < 300) return { state: 'delivered', now: now() };
  // Stopped (a worker's stop()): handed back, its attempt given back, for the next run.
  if (answer.error?.code === 'aborted') return { state: 'released', nextAttemptAt: now() };
  const error =
    answer.error === null
      ? { code: 'http_error', message: `HTTP ${answer.status}`, status: answer.status }
      : { code: answer.error.code, message: answer.error.message, status: answer.status };
  // A refused address does not become allowed by waiting, nor does a receiver that says it is gone.
  if (error.code === 'blocked' || answer.status === 410 || delivery.attempts >= settings.maxAttempts) return { state: 'failed', error };
  // Cut short by the run's end rather than by its own timeout: tried again by the next run.
  if (error.code === 'timeout' && timeoutMs < settings.timeoutMs) {
    return { state: 'pending', nextAttemptAt: now(), error: { ...error, message: `no answer within ${timeoutMs} ms, when the run ended` } };
  }
  const backoff = deliveryBackoffMs(delivery.attempts, settings, deps.random);
  // A receiver's Retry-After (429, 503) is honoured up to retryMaxMs.
  const wait = answer.retryAfterMs === null ? backoff : Math.min(settings.retryMaxMs, Math.max(backoff, answer.retryAfterMs));
  return { state: 'pending', nextAttemptAt: now() + wait, error };
}
