/**
 * `watch()` of the KV adapter over REST (@upstash/redis, @vercel/kv): Upstash's SUBSCRIBE over HTTP
 * streaming. One stream per watched job, shared by every watcher in the process and closed with
 * the last one; a stream that ends or fails is opened again with backoff, and its watchers are
 * woken each time the server confirms the subscription (a message may have been missed before).
 *
 * The request is the one `@upstash/redis`'s own `subscribe()` sends (POST `<url>/subscribe/<channel>`,
 * `Accept: text/event-stream`, the client's headers, body `[]`), made here with fetch because the
 * client's Subscriber never reports that the server ended a stream, so it could not reconnect. The
 * server answers with server-sent events `data: subscribe,<channel>,<count>` then
 * `data: message,<channel>,<message>` for each PUBLISH.
 */
import { pushChannel } from './keys.js';

/** What is read from an @upstash/redis `Redis` (or @vercel/kv `VercelKV`): its HTTP client's base URL and headers. */
interface RestInternals {
  subscribe: unknown;
  client?: { baseUrl?: unknown; headers?: unknown };
}

/** Where and how to open a subscription stream, or null when the client does not offer one. */

/** A stream that stayed open this long was healthy: the next reconnect starts from the first delay again. */
const STABLE_MS = 10_000;
export interface RestEndpoint {
  baseUrl: string;
  headers: Record<string, string>;
}

/** The endpoint of a REST client that offers `subscribe()` (recent @upstash/redis, and @vercel/kv built on it), else null. */
export function restEndpoint(client: unknown): RestEndpoint | null {
  const c = client as RestInternals | null;
  if (c === null || typeof c !== 'object' || typeof c.subscribe !== 'function') return null;
  const http = c.client;
  if (http === undefined || http === null || typeof http.baseUrl !== 'string' || !/^https?:\/\//.test(http.baseUrl)) return null;
  if (http.headers === null || typeof http.headers !== 'object') return null;
  return { baseUrl: http.baseUrl.replace(/\/$/, ''), headers: http.headers as Record<string, string> };
}

export interface RestPushOptions {
  /** First reconnect delay, doubled per failure up to `maxBackoffMs`. @default 100 */
  backoffMs?: number;
  /** @default 5000 */
  maxBackoffMs?: number;
  /** Called once when the server shows it has no subscribe endpoint (404, 405, 501 or not an event stream). */
  onUnsupported?: () => void;
}

/** HTTP statuses that mean "no such endpoint here": stop trying instead of reconnecting. */
const UNSUPPORTED = new Set([404, 405, 501]);

/** `watch()` and `close()` over REST subscription streams. */
export function restPubSub(
  endpoint: RestEndpoint,
  prefix: string,
  options: RestPushOptions = {},
): { watch(jobId: string, listener: () => void): () => void; close(): Promise<void> } {
  const backoffMs = options.backoffMs ?? 100;
  const maxBackoffMs = options.maxBackoffMs ?? 5000;
  /** Open streams by channel, with their listeners. */
  const streams = new Map<string, { listeners: Set<() => void>; controller: AbortController }>();
  let unsupported = false;

  const wake = (listeners: Set<() => void>) => {
    for (const listener of [...listeners]) listener();
  };

  /** Keeps one channel's stream open until its controller aborts. */
  async function follow(channel: string, listeners: Set<() => void>, signal: AbortSignal): Promise<void> {
    let delay = backoffMs;
    while (!signal.aborted && !unsupported) {
      // When the stream was confirmed; one that lived STABLE_MS resets the backoff, so a server that
      // accepts streams and ends them at once is not asked again every backoffMs.
      let confirmedAt = 0;
      try {
        const res = await fetch(`${endpoint.baseUrl}/subscribe/${channel}`, {
          method: 'POST',
          headers: { ...endpoint.headers, Accept: 'text/event-stream', 'Cache-Control': 'no-cache' },
          body: '[]',
          signal,
        });
        if (UNSUPPORTED.has(res.status) || (res.ok && !/text\/event-stream/i.test(res.headers.get('content-type') ?? ''))) {
          await res.body?.cancel().catch(() => undefined);
          unsupported = true;
          options.onUnsupported?.();
          // Subscribers waiting on this stream look again now, and poll from then on.
          wake(listeners);
          return;
        }
        if (!res.ok || res.body === null) throw new Error(`subscribe answered ${res.status}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          const lines = buffer.split('\n');
          buffer = lines.pop() ?? '';
          if (buffer.length > 1 << 20) throw new Error('subscribe stream line over 1 MB');
          // `subscribe` confirms the stream is live: a PUBLISH before it (or during a reconnect) was
          // missed, so the watchers read once; `message` is a PUBLISH.
          for (const line of lines) {
            if (line.startsWith('data: subscribe,') && confirmedAt === 0) confirmedAt = Date.now();
            if (line.startsWith('data: message,') || line.startsWith('data: subscribe,')) wake(listeners);
          }
        }
      } catch {
        // Aborted (the last watcher left: the loop ends) or a network error (reconnect below).
      }
      if (signal.aborted) return;
      if (confirmedAt !== 0 && Date.now() - confirmedAt >= STABLE_MS) delay = backoffMs;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, delay);
        signal.addEventListener('abort', done);
      });
      delay = Math.min(delay * 2, maxBackoffMs);
    }
  }

  return {
    watch(jobId: string, listener: () => void) {
      const channel = pushChannel(prefix, jobId);
      let stream = streams.get(channel);
      if (stream === undefined) {
        const created = { listeners: new Set<() => void>(), controller: new AbortController() };
        stream = created;
        streams.set(channel, created);
        if (!unsupported) void follow(channel, created.listeners, created.controller.signal);
      }
      const { listeners, controller } = stream;
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
        if (listeners.size > 0 || streams.get(channel) !== stream) return;
        streams.delete(channel);
        controller.abort();
      };
    },
    async close() {
      for (const { controller } of streams.values()) controller.abort();
      streams.clear();
    },
  };
}
