// A loopback TCP proxy that adds network latency, for the storage-RTT rows of the throughput table:
// every chunk is held for rttMs / 2 in each direction, so a request/response round trip through it
// takes at least rttMs longer. Bytes keep their order on each connection (one FIFO per direction,
// due times only grow); a slow reader pauses the sender; half-closes are forwarded in turn, after the
// data before them; an error or reset on either side closes both. Connection setup is not delayed.
// Timers tick in whole milliseconds, so a chunk waits up to about 1 ms more than rttMs / 2 (never
// less); `stats` measures what it really waited. `node bench/proxy.mjs <host:port> <rttMs>` runs
// one in its own process (startDelayProxyProcess), away from a busy crawler's event loop.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/** Bytes held for one direction of a connection before its sender is paused. */
const HIGH_WATER = 1 << 20;

/**
 * Starts a delay proxy on `host` (127.0.0.1) at `port` (0: any free port) in front of
 * `target` ({ host, port }). `close()` stops listening and destroys the open connections.
 */
export async function startDelayProxy({ target, rttMs, host = '127.0.0.1', port = 0 }) {
  if (typeof target?.host !== 'string' || target.host === '') throw new TypeError('startDelayProxy: target.host must be a host name or address');
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) throw new TypeError('startDelayProxy: target.port must be a port number');
  if (typeof rttMs !== 'number' || !Number.isFinite(rttMs) || rttMs < 0) throw new TypeError('startDelayProxy: rttMs must be a finite number ≥ 0');
  const delayMs = rttMs / 2;
  /** Every open connection's teardown, for close(). */
  const open = new Set();
  /** Chunks forwarded and the milliseconds they were held in all (both directions). */
  const held = { chunks: 0, ms: 0 };
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    const up = delayed(client, upstream, delayMs, held);
    const down = delayed(upstream, client, delayMs, held);
    const teardown = () => {
      open.delete(teardown);
      up.stop();
      down.stop();
      client.destroy();
      upstream.destroy();
    };
    open.add(teardown);
    client.on('error', teardown);
    upstream.on('error', teardown);
    // A socket closes by itself once both of its directions are done; one that closes before it
    // sent its end (destroyed, reset) takes the other side down with it.
    let closed = 0;
    const onClose = (direction) => () => {
      if (!direction.ended) teardown();
      else if (++closed === 2) open.delete(teardown);
    };
    client.on('close', onClose(up));
    upstream.on('close', onClose(down));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(undefined);
    });
  });
  const address = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    host,
    port: address.port,
    rttMs,
    /** Connections currently open through the proxy. */
    get connections() {
      return open.size;
    },
    /** Chunks forwarded so far and how long they waited on average: the round trip grew by about twice that. */
    get stats() {
      return { chunks: held.chunks, meanHoldMs: held.chunks === 0 ? 0 : held.ms / held.chunks };
    },
    close() {
      for (const teardown of [...open]) teardown();
      return new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}

/**
 * Copies `src` to `dst`, each chunk `delayMs` after it arrived, in arrival order; `src`'s end
 * becomes `dst.end()` after the data before it. `ended` says whether `src` has ended. Adds each
 * chunk's wait to `held`.
 */
function delayed(src, dst, delayMs, held) {
  /** @type {Array<{ due: number, chunk: Buffer | null } | undefined>} null: the end of the stream */
  let queue = [];
  let head = 0;
  /** Bytes received and not yet written on. */
  let bytes = 0;
  let timer = null;
  let draining = false;
  let stopped = false;
  const state = {
    ended: false,
    stop() {
      stopped = true;
      clearTimeout(timer);
      queue = [];
      head = 0;
    },
  };
  const flush = () => {
    timer = null;
    while (!stopped && !draining && head < queue.length) {
      const item = queue[head];
      const wait = item.due - performance.now();
      // A timer may fire up to a millisecond early against this clock: wait the rest.
      if (wait > 0) {
        timer = setTimeout(flush, Math.ceil(wait));
        break;
      }
      queue[head++] = undefined;
      if (dst.destroyed) return;
      if (item.chunk === null) {
        dst.end();
        continue;
      }
      bytes -= item.chunk.length;
      held.chunks++;
      held.ms += performance.now() - item.due + delayMs;
      if (!dst.write(item.chunk)) {
        draining = true;
        dst.once('drain', () => {
          draining = false;
          flush();
        });
      }
    }
    if (head === queue.length) {
      queue = [];
      head = 0;
    } else if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
    if (bytes < HIGH_WATER / 2 && src.isPaused() && !src.destroyed) src.resume();
  };
  const push = (chunk) => {
    queue.push({ due: performance.now() + delayMs, chunk });
    if (timer === null && !draining) flush();
  };
  src.on('data', (chunk) => {
    bytes += chunk.length;
    if (bytes >= HIGH_WATER) src.pause();
    push(chunk);
  });
  src.on('end', () => {
    state.ended = true;
    push(null);
  });
  return state;
}

/**
 * `url` (postgres://… or redis://…) pointed at a new delay proxy in front of the server it names.
 * Resolves with the proxied URL and the proxy.
 */
export async function proxiedUrl(url, rttMs) {
  const parsed = new URL(url);
  const defaultPort = { 'postgres:': 5432, 'postgresql:': 5432, 'redis:': 6379 }[parsed.protocol];
  if (defaultPort === undefined) throw new TypeError(`proxiedUrl: url must be postgres://, postgresql:// or redis://, got ${parsed.protocol}`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const proxy = await startDelayProxy({ target: { host, port: Number(parsed.port || defaultPort) }, rttMs });
  parsed.hostname = proxy.host;
  parsed.port = String(proxy.port);
  return { url: parsed.href, proxy };
}

/**
 * A delay proxy in a child process (`node bench/proxy.mjs <host:port> <rttMs>`), so that its timers
 * do not wait for the event loop of the process it serves. `close()` ends it.
 */
export async function startDelayProxyProcess({ target, rttMs }) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), `${target.host}:${target.port}`, String(rttMs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const port = /** @type {number} */ (
    await new Promise((resolve, reject) => {
      child.stdout.once('data', (line) => resolve(Number(String(line).trim())));
      child.once('exit', (code) => reject(new Error(`the delay proxy process exited with ${code} before it listened`)));
    })
  );
  return {
    host: '127.0.0.1',
    port,
    rttMs,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.stdin.end(); // the proxy exits when its stdin closes, and so with this process
      await exited;
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [address = '', rtt = ''] = process.argv.slice(2);
  const [, host, port] = /^(.*):(\d+)$/.exec(address) ?? [];
  const proxy = await startDelayProxy({ target: { host, port: Number(port) }, rttMs: rtt === '' ? Number.NaN : Number(rtt) });
  process.stdout.write(`${proxy.port}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}
