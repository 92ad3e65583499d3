import type { CrawlEngine } from '../core/engine.js';
import { subscribeBatches } from '../core/progress.js';
import { TERMINAL_EVENTS, type ProgressEvent } from '../core/types.js';

export interface SseOptions {
  after: string | null;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  maxStreamMs: number;
  heartbeatMs: number;
  retryMs: number;
  pollMs: number;
  /**
   * The most bytes a stream may hold for a client that does not read them (a stalled connection):
   * past it the stream ends, and EventSource reconnects with `Last-Event-ID` and resumes.
   * @default 1 MiB
   */
  maxQueuedBytes?: number;
}

const MAX_QUEUED_BYTES = 1 << 20;
const HIGH_WATER_MARK = 16 * 1024;

const encoder = new TextEncoder();

/** One SSE message: `id`, `event` and a JSON `data` line. */
export function sseMessage(event: ProgressEvent): string {
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * The encoded messages of a batch, by its first event. Subscribers of one job share their events
 * (one reader per job, src/core/feed.ts) and are usually at the same position, so a dashboard open
 * in 500 browsers encodes each batch once and writes the same bytes to every stream.
 */
const encodedBatches = new WeakMap<ProgressEvent, { last: ProgressEvent; bytes: Uint8Array }>();

function encodeBatch(events: readonly ProgressEvent[]): Uint8Array {
  const first = events[0]!;
  const last = events[events.length - 1]!;
  const cached = encodedBatches.get(first);
  if (cached !== undefined && cached.last === last) return cached.bytes;
  let text = '';
  for (const event of events) text += sseMessage(event);
  const bytes = encoder.encode(text);
  encodedBatches.set(first, { last, bytes });
  return bytes;
}

/**
 * A `text/event-stream` of a job's progress: replays the events after `after`, then follows new
 * ones; a comment heartbeat keeps proxies from closing an idle stream; it ends after the terminal
 * event, at `maxStreamMs` (the browser reconnects with `Last-Event-ID` and resumes), or when the
 * client goes away (the subscription is released).
 */
export function progressStream(engine: CrawlEngine, jobId: string, options: SseOptions): Response {
  const stop = new AbortController();
  const onClientGone = () => stop.abort();
  options.signal.addEventListener('abort', onClientGone, { once: true });
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const cleanup = () => {
    clearInterval(heartbeat);
    clearTimeout(deadline);
    options.signal.removeEventListener('abort', onClientGone);
    stop.abort();
  };

  const body = new ReadableStream<Uint8Array>(
    {
      async start(controller) {
        const maxQueued = options.maxQueuedBytes ?? MAX_QUEUED_BYTES;
        const send = (bytes: Uint8Array) => {
          if (stop.signal.aborted) return;
          controller.enqueue(bytes);
          // desiredSize is the high-water mark minus what the client has not taken yet.
          if (HIGH_WATER_MARK - (controller.desiredSize ?? 0) > maxQueued) stop.abort();
        };
        send(encoder.encode(`retry: ${options.retryMs}\n: stream of ${jobId}\n\n`));
        const beat = encoder.encode(': heartbeat\n\n');
        heartbeat = setInterval(() => send(beat), options.heartbeatMs);
        deadline = setTimeout(() => stop.abort(), options.maxStreamMs);
        try {
          const batches = subscribeBatches(engine.progress, jobId, { after: options.after, signal: stop.signal, pollMs: options.pollMs });
          for await (const batch of batches) {
            if (batch.length === 0) continue;
            send(encodeBatch(batch));
            if (TERMINAL_EVENTS.has(batch[batch.length - 1]!.type)) break;
          }
        } catch (error) {
          send(encoder.encode(`event: error\ndata: ${JSON.stringify({ message: error instanceof Error ? error.message : String(error) })}\n\n`));
        } finally {
          cleanup();
          try {
            controller.close();
          } catch {
            // already closed because the client went away
          }
        }
      },
      cancel() {
        cleanup();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: HIGH_WATER_MARK }),
  );

  return new Response(body, {
    status: 200,
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    },
  });
}
