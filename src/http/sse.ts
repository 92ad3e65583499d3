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
}

/**
 * Bytes a stream holds for its client before it stops taking events from the subscription: a
 * client that reads slowly (or not at all) leaves its subscription behind, which later catches up
 * from the log, instead of piling the job's events up in the server's memory.
 */
const HIGH_WATER_MARK = 16 * 1024;
/** Encoded batches kept for other streams at the same position (each at most one read's worth). */
const ENCODED_BATCHES = 32;

const encoder = new TextEncoder();

/** One SSE message: `id`, `event` and a JSON `data` line. */
export function sseMessage(event: ProgressEvent): string {
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * The encoded messages of the newest batches, by their first event. Subscribers of one job share
 * their events (one reader per job, src/core/feed.ts) and are usually at the same position, so a
 * dashboard open in 500 browsers encodes each batch once and writes the same bytes to every
 * stream. Bounded: the memory adapter hands out its stored events themselves, which would keep
 * every cached batch alive as long as the job.
 */
const encodedBatches = new Map<ProgressEvent, { last: ProgressEvent; bytes: Uint8Array }>();

function encodeBatch(events: readonly ProgressEvent[]): Uint8Array {
  const first = events[0]!;
  const last = events[events.length - 1]!;
  const cached = encodedBatches.get(first);
  if (cached !== undefined && cached.last === last) return cached.bytes;
  let text = '';
  for (const event of events) text += sseMessage(event);
  const bytes = encoder.encode(text);
  encodedBatches.delete(first);
  encodedBatches.set(first, { last, bytes });
  if (encodedBatches.size > ENCODED_BATCHES) encodedBatches.delete(encodedBatches.keys().next().value!);
  return bytes;
}

/**
 * A `text/event-stream` of a job's progress: replays the events after `after`, then follows new
 * ones; a comment heartbeat keeps proxies from closing an idle stream; it ends after the terminal
 * event, at `maxStreamMs` (the browser reconnects with `Last-Event-ID` and resumes), or when the
 * client goes away (the subscription is released). Events are taken from the subscription only
 * as the client reads them (backpressure), so a stalled client costs a paused subscription, not
 * memory.
 */
export function progressStream(engine: CrawlEngine, jobId: string, options: SseOptions): Response {
  const stop = new AbortController();
  const onClientGone = () => stop.abort();
  options.signal.addEventListener('abort', onClientGone, { once: true });
  const batches = subscribeBatches(engine.progress, jobId, { after: options.after, signal: stop.signal, pollMs: options.pollMs })[Symbol.asyncIterator]();
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let deadline: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const cleanup = () => {
    clearInterval(heartbeat);
    clearTimeout(deadline);
    options.signal.removeEventListener('abort', onClientGone);
    stop.abort();
    // Ends the subscription even while no pull is waiting on it (a stalled client at maxStreamMs).
    void batches.return?.(undefined).catch(() => undefined);
  };

  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const finish = () => {
          if (closed) return;
          closed = true;
          cleanup();
          try {
            controller.close();
          } catch {
            // already closed because the client went away
          }
        };
        stop.signal.addEventListener('abort', finish, { once: true });
        controller.enqueue(encoder.encode(`retry: ${options.retryMs}\n: stream of ${jobId}\n\n`));
        const beat = encoder.encode(': heartbeat\n\n');
        heartbeat = setInterval(() => {
          if (!closed) controller.enqueue(beat);
        }, options.heartbeatMs);
        deadline = setTimeout(finish, options.maxStreamMs);
      },
      async pull(controller) {
        if (closed) return;
        try {
          const next = await batches.next();
          if (closed) return;
          if (next.done) {
            stop.abort();
            return;
          }
          const batch = next.value;
          if (batch.length > 0) controller.enqueue(encodeBatch(batch));
          if (batch.length > 0 && TERMINAL_EVENTS.has(batch[batch.length - 1]!.type)) stop.abort();
        } catch (error) {
          if (closed) return;
          controller.enqueue(encoder.encode(`event: error\ndata: ${JSON.stringify({ message: error instanceof Error ? error.message : String(error) })}\n\n`));
          stop.abort();
        }
      },
      cancel() {
        closed = true;
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
