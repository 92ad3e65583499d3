/**
 * Standard Webhooks signing and verifying, over the `standardwebhooks` package (loaded on first
 * use: the serving path does not carry it).
 */
import { randomBytes } from 'node:crypto';

type StandardWebhooks = typeof import('standardwebhooks');
let loaded: Promise<StandardWebhooks> | null = null;
const load = () => (loaded ??= import('standardwebhooks'));

/** A new signing secret: `whsec_` and the base64 of 32 random bytes. */
export function createWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** The three Standard Webhooks headers of a delivery; one `v1,` signature per secret (rotation). */
export async function signWebhook(id: string, at: number, payload: string, secrets: string | readonly string[]): Promise<Record<string, string>> {
  const { Webhook } = await load();
  const timestamp = new Date(Math.floor(at / 1000) * 1000);
  const list = typeof secrets === 'string' ? [secrets] : secrets;
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at / 1000)),
    'webhook-signature': list.map((secret) => new Webhook(secret).sign(id, timestamp, payload)).join(' '),
  };
}

/** A delivery whose signature, timestamp or body did not verify ({@link verifyWebhook}). */
export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
}

/** Request headers as Node (`req.headers`) or the Fetch API (`request.headers`) gives them. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

function headerOf(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  const value = record[name] ?? Object.entries(record).find(([key]) => key.toLowerCase() === name)?.[1];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Checks a delivery's Standard Webhooks signature against `secret` (or any of several, while
 * secrets rotate) and its timestamp (within 5 minutes), and returns its parsed body. Hand it the
 * raw body, exactly as received (not re-serialized JSON). Throws {@link WebhookVerificationError}.
 *
 * ```ts
 * const event = await verifyWebhook(await request.text(), request.headers, process.env.WEBHOOK_SECRET!);
 * if (event.type === 'page') for (const page of event.data.pages) console.log(page.url, page.status);
 * ```
 */
export async function verifyWebhook<T = import('../types.js').WebhookPayload>(
  body: string | Uint8Array,
  headers: WebhookHeaders,
  secret: string | readonly string[],
): Promise<T> {
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) {
    // A parsed JSON body (express.json()) or none (no body parser matched): it cannot verify.
    throw new WebhookVerificationError('webhook not verified: body: expected the raw body as received (a string or Uint8Array), not parsed JSON');
  }
  const { Webhook, WebhookVerificationError: LibraryError } = await load();
  const text = typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  const wanted = {
    'webhook-id': headerOf(headers, 'webhook-id') ?? '',
    'webhook-timestamp': headerOf(headers, 'webhook-timestamp') ?? '',
    'webhook-signature': headerOf(headers, 'webhook-signature') ?? '',
  };
  const secrets = typeof secret === 'string' ? [secret] : secret;
  if (secrets.length === 0) throw new TypeError('[crawl-engine] verifyWebhook(): secret: expected a whsec_… secret or a non-empty list of them');
  let last: unknown = null;
  for (const one of secrets) {
    try {
      return new Webhook(one).verify(text, wanted) as T;
    } catch (error) {
      if (!(error instanceof LibraryError)) throw error;
      last = error;
    }
  }
  throw new WebhookVerificationError(`webhook not verified: ${(last as Error).message}`);
}
