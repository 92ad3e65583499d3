/**
 * A loopback Upstash REST stand-in: @humanwhocodes/upstash-redis-server in front of the real Redis
 * (it needs REDIS_URL), plus the `/subscribe/<channel>` endpoint it lacks, speaking Upstash's
 * format (server-sent events `data: subscribe,<channel>,1`, then `data: message,<channel>,<message>`
 * per PUBLISH) from a SUBSCRIBE on the same Redis. Counts commands and open streams, and can cut
 * every stream (as a proxy or a server restart would).
 */
import { createServer, type ServerResponse } from 'node:http';
import { createRequestListener } from '@remix-run/node-fetch-server';
import Redis from 'ioredis';

export interface UpstashStandIn {
  url: string;
  token: string;
  /** Command requests answered (POST /, /pipeline, ...), subscriptions excluded. */
  commands(): number;
  /** Subscription requests received. */
  subscribes(): number;
  /** Subscription streams open now. */
  openStreams(): number;
  /** Ends every open subscription stream from the server side. */
  cutStreams(): void;
  close(): Promise<void>;
}

export async function startUpstashStandIn(redisUrl: string, options: { subscribe?: boolean; endStreamsAtOnce?: boolean } = {}): Promise<UpstashStandIn> {
  const { createApp } = await import('@humanwhocodes/upstash-redis-server');
  const token = 'test-token';
  const app = createApp({ token, redisUrl });
  const forward = createRequestListener((req) => app.fetch(req));
  const streams = new Set<ServerResponse>();
  let commands = 0;
  let subscribes = 0;

  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (!path.startsWith('/subscribe/') || options.subscribe === false) {
      commands++;
      forward(req, res);
      return;
    }
    subscribes++;
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'Unauthorized' }));
      return;
    }
    const channel = decodeURIComponent(path.slice('/subscribe/'.length));
    const subscriber = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
    subscriber.on('error', () => undefined);
    const end = () => {
      streams.delete(res);
      subscriber.disconnect();
      if (!res.writableEnded) res.end();
    };
    req.resume();
    res.on('close', end);
    streams.add(res);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    subscriber.on('message', (ch: string, message: string) => res.write(`data: message,${ch},${message}\n\n`));
    subscriber.subscribe(channel).then((count) => {
      res.write(`data: subscribe,${channel},${String(count)}\n\n`);
      if (options.endStreamsAtOnce === true) end();
    }, end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    token,
    commands: () => commands,
    subscribes: () => subscribes,
    openStreams: () => streams.size,
    cutStreams() {
      for (const res of [...streams]) res.end();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of [...streams]) res.end();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
