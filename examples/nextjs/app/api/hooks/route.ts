// The webhook receiver: verifies each delivery's Standard Webhooks signature over the raw body
// with WEBHOOK_SECRET and logs it. A delivery may come more than once (at least once): the
// `webhook-id` header is the same each time, so a real receiver records it and skips repeats.
import { verifyWebhook, WebhookVerificationError } from 'crawl-engine';

export async function POST(request: Request): Promise<Response> {
  const secret = process.env.WEBHOOK_SECRET;
  if (!secret) return new Response('webhooks are off: set WEBHOOK_SECRET', { status: 404 });
  try {
    const event = await verifyWebhook(await request.text(), request.headers, secret);
    if (event.type === 'page') console.log(`webhook ${request.headers.get('webhook-id')}: ${event.data.pages.length} pages of ${event.data.jobId}`);
    else console.log(`webhook ${request.headers.get('webhook-id')}: ${event.type} ${event.data.job.id}`, event.data.job.counts);
    return new Response(null, { status: 204 });
  } catch (error) {
    if (error instanceof WebhookVerificationError) return new Response(error.message, { status: 400 });
    throw error;
  }
}
