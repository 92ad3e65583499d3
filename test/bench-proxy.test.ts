/**
 * The benchmark's delay proxy (bench/proxy.mjs), which stands for the network between a serverless
 * function and its storage in the storage-RTT rows of BENCHMARKS.md: it must add the round trip,
 * keep every connection's bytes in order, honour a slow reader and half-closes, and carry the real
 * Postgres and Redis protocols. Loopback only.
 */
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterEach, describe, expect, test } from 'vitest';
import { type DelayProxy, proxiedUrl, startDelayProxy, startDelayProxyProcess } from '../bench/proxy.mjs';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A loopback TCP server running `onSocket` for each connection. */
async function serve(onSocket: (socket: Socket) => void): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

/** Echoes every byte, and ends when its client has ended. */
const echo = (socket: Socket) => socket.pipe(socket);

async function proxyTo(port: number, rttMs: number): Promise<DelayProxy> {
  const proxy = await startDelayProxy({ target: { host: '127.0.0.1', port }, rttMs });
  cleanups.push(() => proxy.close());
  return proxy;
}

async function dial(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true });
  cleanups.push(() => socket.destroy());
  await once(socket, 'connect');
  return socket;
}

/** Settles when `socket` is ended, closed or fails: whichever comes first. */
const gone = (socket: Socket) =>
  new Promise((resolve) => {
    for (const event of ['end', 'close', 'error']) socket.once(event, resolve);
  });

/** Everything `socket` sends until it ends. */
function readAll(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

describe('the bench delay proxy', () => {
  test('a ping-pong through it takes at least the round trip, each way at least half', async () => {
    const arrivals: number[] = [];
    const { port } = await serve((socket) =>
      socket.on('data', (chunk) => {
        arrivals.push(performance.now());
        socket.write(chunk);
      }),
    );
    const rttMs = 20;
    const proxy = await proxyTo(port, rttMs);
    const client = await dial(proxy.port);
    for (let i = 0; i < 5; i++) {
      const sent = performance.now();
      client.write(`ping ${i}`);
      const [reply] = await once(client, 'data');
      const elapsed = performance.now() - sent;
      expect(String(reply)).toBe(`ping ${i}`);
      expect(arrivals[i]! - sent).toBeGreaterThanOrEqual(rttMs / 2);
      expect(elapsed).toBeGreaterThanOrEqual(rttMs);
      expect(elapsed).toBeLessThan(rttMs + 1000);
    }
    expect(proxy.connections).toBe(1);
    expect(proxy.stats.chunks).toBe(10);
    expect(proxy.stats.meanHoldMs).toBeGreaterThanOrEqual(rttMs / 2);
  });

  test('runs in a process of its own, with the same delay', async () => {
    const { port } = await serve(echo);
    const rttMs = 20;
    const proxy = await startDelayProxyProcess({ target: { host: '127.0.0.1', port }, rttMs });
    cleanups.push(() => proxy.close());
    const client = await dial(proxy.port);
    const sent = performance.now();
    client.write('ping');
    const [reply] = await once(client, 'data');
    expect(String(reply)).toBe('ping');
    expect(performance.now() - sent).toBeGreaterThanOrEqual(rttMs);
  });

  test('keeps the order of 10,000 chunks interleaved over four connections, both ways, and forwards half-closes after the data', async () => {
    const received = new Map<number, Promise<Buffer>>();
    const { port } = await serve((socket) => {
      // The server side of each connection: what came up, in order; and everything echoed down.
      received.set(received.size, readAll(socket));
      echo(socket);
    });
    const proxy = await proxyTo(port, 2);
    const clients = await Promise.all(Array.from({ length: 4 }, () => dial(proxy.port)));
    const echoed = clients.map(readAll);
    const sent = clients.map(() => [] as string[]);
    for (let i = 0; i < 10_000; i++) {
      const c = i % clients.length;
      // Records of varying length, so that chunk and record boundaries differ.
      const record = `${c}:${i}:${'x'.repeat((i * 37) % 300)}\n`;
      sent[c]!.push(record);
      clients[c]!.write(record);
      // Spread the writes over many due times, so the proxy holds many chunks at once.
      if (i % 100 === 99) await sleep(1);
    }
    for (const client of clients) client.end();
    const down = await Promise.all(echoed);
    const up = await Promise.all([...received.values()]);
    const expected = sent.map((records) => records.join(''));
    // The server saw each connection's records in order, then its end (readAll resolved on it),
    // and so did each client on the way back.
    expect(up.map(String).sort()).toEqual([...expected].sort());
    expect(down.map(String)).toEqual(expected);
    await expect.poll(() => proxy.connections).toBe(0);
  });

  test('a half-closed client still gets its answer', async () => {
    const { port } = await serve((socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('end', () => socket.end(`got ${Buffer.concat(chunks).length} bytes`));
    });
    const proxy = await proxyTo(port, 4);
    const client = await dial(proxy.port);
    const answer = readAll(client);
    client.end('a'.repeat(1000));
    expect(String(await answer)).toBe('got 1000 bytes');
  });

  test('a reader that does not read stops the sender instead of filling the proxy', async () => {
    const BLOCK = 64 * 1024;
    const BLOCKS = 1024; // 64 MiB
    let written = 0;
    const send = async (socket: Socket) => {
      for (let i = 0; i < BLOCKS; i++) {
        written += BLOCK;
        if (!socket.write(Buffer.alloc(BLOCK, i % 251))) await once(socket, 'drain');
      }
      socket.end();
    };
    const { port } = await serve((socket) => void send(socket).catch(() => undefined));
    const proxy = await proxyTo(port, 2);
    const client = await dial(proxy.port); // no 'data' listener yet: nothing is read
    await expect.poll(() => written).toBeGreaterThan(0);
    // Wait until the sender stalls (or has sent it all, which the proxy must not allow).
    let last = -1;
    while (written !== last && written < BLOCK * BLOCKS) {
      last = written;
      await sleep(300);
    }
    const stalledAt = written;
    // What the kernel's socket buffers and the proxy's 1 MiB per direction hold, far from 64 MiB.
    expect(stalledAt).toBeLessThan(40 * 1024 * 1024);
    let position = 0;
    let wrong = 0;
    client.on('data', (chunk: Buffer) => {
      for (let j = 0; j < chunk.length; j++) if (chunk[j] !== Math.floor((position + j) / BLOCK) % 251) wrong++;
      position += chunk.length;
    });
    await once(client, 'end');
    expect(position).toBe(BLOCK * BLOCKS);
    expect(wrong).toBe(0);
  }, 60_000);

  test('closes the client when the target refuses the connection or resets it', async () => {
    const { port, sockets, server } = await serve(() => undefined);
    const proxy = await proxyTo(port, 2);
    const client = await dial(proxy.port);
    const reset = gone(client);
    await expect.poll(() => sockets.length).toBe(1);
    sockets[0]!.resetAndDestroy();
    await reset;

    await new Promise((resolve) => server.close(resolve)); // nothing listens on the target port now
    const refused = await dial(proxy.port);
    await gone(refused);
    await expect.poll(() => proxy.connections).toBe(0);
  });

  test('rejects a bad target or round trip, naming the field', async () => {
    await expect(startDelayProxy({ target: { host: '127.0.0.1', port: 0 }, rttMs: 1 })).rejects.toThrow(/target\.port/);
    await expect(startDelayProxy({ target: { host: '127.0.0.1', port: 5432 }, rttMs: -1 })).rejects.toThrow(/rttMs/);
    await expect(proxiedUrl('http://127.0.0.1:80/', 1)).rejects.toThrow(/url must be postgres/);
  });

  test.skipIf(!process.env.DATABASE_URL)('passes a Postgres query through, one round trip later', async () => {
    const rttMs = 10;
    const { url, proxy } = await proxiedUrl(process.env.DATABASE_URL!, rttMs);
    cleanups.push(() => proxy.close());
    expect(url).toContain(`:${proxy.port}/`);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    cleanups.push(() => client.end());
    const started = performance.now();
    const { rows } = await client.query('SELECT 1 + 1 AS two');
    expect(performance.now() - started).toBeGreaterThanOrEqual(rttMs);
    expect(rows).toEqual([{ two: 2 }]);
  });

  test.skipIf(!process.env.REDIS_URL)('passes a Redis PING through, one round trip later', async () => {
    const rttMs = 10;
    const { url, proxy } = await proxiedUrl(process.env.REDIS_URL!, rttMs);
    cleanups.push(() => proxy.close());
    const redis = new Redis(url, { maxRetriesPerRequest: 1 });
    cleanups.push(() => redis.disconnect());
    await redis.ping(); // connected and ready
    const started = performance.now();
    expect(await redis.ping()).toBe('PONG');
    expect(performance.now() - started).toBeGreaterThanOrEqual(rttMs);
  });
});
