/**
 * The sender: claims due deliveries from the storage's outbox with a lease, signs each per
 * Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`: one signature per
 * secret while secrets rotate), posts it through the guarded fetcher (no redirects, a timeout, the
 * answer's size capped), and settles it: delivered on a 2xx, else tried again after an exponential
 * backoff with full jitter until `maxAttempts`, then failed. A processor killed mid-post leaves the
 * lease to expire and another processor posts again with the same `webhook-id`: at least once.
 */
import type { Fetcher } from '../../crawl/fetcher.js';
import type { CrawlStorage, WebhookDeliveryLease, WebhookDeliveryOutcome } from '../storage.js';
import type { Job } from '../types.js';
import type { EngineWebhookSettings } from './options.js';
import { signWebhook } from './sign.js';

/** Deliveries claimed at once (and posted in parallel). */
export const DELIVERY_BATCH = 8;
/** Most bytes of a receiver's answer that are read. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

export interface DeliverReport {
  delivered: number;
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
}

/** The wait before try `attempts + 1`: `retryBaseMs * 2^(attempts-1)`, capped at `retryMaxMs`, full jitter. */
export function deliveryBackoffMs(attempts: number, settings: Pick<EngineWebhookSettings, 'retryBaseMs' | 'retryMaxMs'>, random = Math.random): number {
  const ceiling = Math.min(settings.retryMaxMs, settings.retryBaseMs * 2 ** Math.min(30, Math.max(0, attempts - 1)));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Claims and posts due deliveries until none is due or `deadline` passes (no claim starts after it). */
export async function deliverWebhooks(deps: DeliverDeps, deadline: number): Promise<DeliverReport> {
  const { storage, settings, now } = deps;
  const report: DeliverReport = { delivered: 0, retried: 0, failed: 0, errors: [] };
  if (storage.claimWebhookDeliveries === undefined || storage.settleWebhookDelivery === undefined) return report;
  const jobs = new Map<string, Promise<Job | null>>();
  const jobOf = (id: string) => {
    const found = jobs.get(id) ?? storage.getJob(id);
    jobs.set(id, found);
    return found;
  };
  while (now() < deadline) {
    const leases = await storage.claimWebhookDeliveries({ limit: DELIVERY_BATCH, leaseMs: 2 * settings.timeoutMs + 30_000, now: now() });
    if (leases.length === 0) break;
    await Promise.all(
      leases.map(async (lease) => {
        try {
          const outcome = await attempt(deps, lease, await jobOf(lease.delivery.jobId));
          if (await storage.settleWebhookDelivery!(lease, outcome)) {
            if (outcome.state === 'delivered') report.delivered++;
            else if (outcome.state === 'pending') report.retried++;
            else report.failed++;
          }
        } catch (error) {
          // Left to its lease, which expires: another try then.
          report.errors.push(`webhook ${lease.delivery.id}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }),
    );
  }
  return report;
}

async function attempt(deps: DeliverDeps, lease: WebhookDeliveryLease, job: Job | null): Promise<WebhookDeliveryOutcome> {
  const { delivery } = lease;
  const { settings, now } = deps;
  const secrets = job?.options.webhook?.secret ?? settings.secret;
  if (secrets === undefined) {
    return {
      state: 'failed',
      error: { code: 'no_secret', message: 'no signing secret: the job has none and this engine has no webhooks.secret', status: null },
    };
  }
  const sentAt = now();
  const headers = await signWebhook(delivery.id, sentAt, delivery.payload, secrets);
  const answer = await deps.fetcher().post(
    delivery.url,
    delivery.payload,
    { 'content-type': 'application/json', ...headers },
    {
      timeoutMs: settings.timeoutMs,
      maxResponseBytes: MAX_RESPONSE_BYTES,
    },
  );
  if (answer.error === null && answer.status !== null && answer.status >= 200 && answer.status < 300) return { state: 'delivered', now: now() };
  const error =
    answer.error === null
      ? { code: 'http_error', message: `HTTP ${answer.status}`, status: answer.status }
      : { code: answer.error.code, message: answer.error.message, status: answer.status };
  // A refused address does not become allowed by waiting.
  if (error.code === 'blocked' || lease.delivery.attempts >= settings.maxAttempts) return { state: 'failed', error };
  return { state: 'pending', nextAttemptAt: now() + deliveryBackoffMs(lease.delivery.attempts, settings, deps.random), error };
}
