import type { CrawlEngine } from '../core/engine.js';
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

const encoder = new TextEncoder();

/** One SSE message: `id`, `event` and a JSON `data` line. */
export function sseMessage(event: ProgressEvent): string {
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
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

  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      const send = (text: string) => {
        if (!stop.signal.aborted) controller.enqueue(encoder.encode(text));
      };
      send(`retry: ${options.retryMs}\n: stream of ${jobId}\n\n`);
      heartbeat = setInterval(() => send(': heartbeat\n\n'), options.heartbeatMs);
      deadline = setTimeout(() => stop.abort(), options.maxStreamMs);
      try {
        for await (const event of engine.progress.subscribe(jobId, { after: options.after, signal: stop.signal, pollMs: options.pollMs })) {
          send(sseMessage(event));
          if (TERMINAL_EVENTS.has(event.type)) break;
        }
      } catch (error) {
        send(`event: error\ndata: ${JSON.stringify({ message: error instanceof Error ? error.message : String(error) })}\n\n`);
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
  });

  return new Response(body, {
    status: 200,
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    },
  });
}
