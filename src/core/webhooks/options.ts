/**
 * Webhook options: a job's `webhook` (where its events are posted) and the engine's `webhooks`
 * (signing secrets, a default endpoint, delivery bounds), validated with the field named.
 */
import { z } from 'zod';
import { WEBHOOK_EVENTS } from '../constants.js';
import { crawlableUrl, MAX_URL_LENGTH, normalizeUrl } from '../../crawl/url.js';

/** A Standard Webhooks secret: `whsec_` then base64 of 24 to 64 random bytes. */
const SECRET = /^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/;
export const SECRET_MESSAGE = 'expected a Standard Webhooks secret: whsec_ followed by the base64 of 24 to 64 random bytes (createWebhookSecret() makes one)';

export const webhookSecretSchema = z.string().refine((value) => SECRET.test(value) && secretBytes(value) >= 24 && secretBytes(value) <= 64, SECRET_MESSAGE);

function secretBytes(secret: string): number {
  return Buffer.from(secret.slice('whsec_'.length), 'base64').length;
}

export const webhookUrlSchema = z
  .string({ error: 'expected a string URL' })
  .max(MAX_URL_LENGTH, `expected at most ${MAX_URL_LENGTH} characters`)
  .refine((value) => normalizeUrl(value) !== null && crawlableUrl(value) !== null, 'expected an absolute http(s) URL')
  .refine((value) => !/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value.trim()) && !hasCredentials(value), 'expected a URL without credentials (user:password@)')
  .refine((value) => portOf(value) !== 0, 'expected a port from 1 to 65535');

/** Whether the URL, as a WHATWG parser reads it (`http:user:pw@host` too), carries a user or password. */
function hasCredentials(value: string): boolean {
  try {
    const url = new URL(value.trim());
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}

function portOf(value: string): number | null {
  try {
    const { port } = new URL(value.trim());
    return port === '' ? null : Number(port);
  } catch {
    return null;
  }
}

const eventsSchema = z
  .array(z.enum(WEBHOOK_EVENTS))
  .min(1, 'expected at least one event')
  .max(WEBHOOK_EVENTS.length)
  .refine((list) => new Set(list).size === list.length, 'expected each event at most once');

/** A job's `webhook` option as given to `jobs.create` / `POST /jobs`. */
export const jobWebhookSchema = z.strictObject({
  url: webhookUrlSchema,
  /** Default: all of them. */
  events: eventsSchema.optional(),
  /** Signs this job's deliveries (else the engine's `webhooks.secret`). Never returned by the API. */
  secret: webhookSecretSchema.optional(),
});

/** The engine's `webhooks` option. */
export const engineWebhooksSchema = z
  .strictObject({
    secret: z.union([webhookSecretSchema, z.array(webhookSecretSchema).min(1).max(10)]).optional(),
    url: webhookUrlSchema.optional(),
    events: eventsSchema.optional(),
    maxAttempts: z.int().min(1).max(100).default(8),
    timeoutMs: z.int().min(100).max(120_000).default(10_000),
    retryBaseMs: z.int().min(100).max(3_600_000).default(10_000),
    retryMaxMs: z.int().min(100).max(86_400_000).default(3_600_000),
  })
  .refine((value) => value.retryMaxMs >= value.retryBaseMs, { path: ['retryMaxMs'], message: 'expected at least retryBaseMs' })
  .prefault({});

export type EngineWebhookSettings = z.output<typeof engineWebhooksSchema>;
