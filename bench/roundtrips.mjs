// Storage round trips made by this process, for the per-page columns of the throughput table.
// `postgres`: queries sent by node-postgres clients (each one waits for its answer: one round trip);
// `kv`: commands sent by ioredis connections, a pipeline counting once; `rest`: HTTP requests the
// bench's Upstash-protocol REST server received (what @upstash/redis sends, auto-pipelined or not).
// storages.mjs installs the counters when it loads each client.

export const roundTrips = { postgres: 0, kv: 0, rest: 0 };

export function resetRoundTrips() {
  roundTrips.postgres = 0;
  roundTrips.kv = 0;
  roundTrips.rest = 0;
}

/** The sum of several processes' `roundTrips`. */
export function addRoundTrips(...counts) {
  const sum = { postgres: 0, kv: 0, rest: 0 };
  for (const c of counts) for (const k of Object.keys(sum)) sum[k] += c?.[k] ?? 0;
  return sum;
}

const counted = Symbol('bench round trips');

/** Counts every query of every node-postgres Client (a Pool's `query` runs on one of them). */
export function countPostgres(pg) {
  const proto = pg.Client.prototype;
  if (proto[counted]) return;
  const query = proto.query;
  proto.query = function (...args) {
    roundTrips.postgres++;
    return query.apply(this, args);
  };
  proto[counted] = true;
}

/**
 * Counts every command an ioredis connection (or its `duplicate()`) sends once it is ready (a
 * command queued while connecting counts when it is sent; the handshake does not count); the
 * commands of a pipeline or MULTI share one write stream and count once.
 */
export function countIoredis(Redis) {
  const proto = Redis.prototype;
  if (proto[counted]) return;
  const sendCommand = proto.sendCommand;
  const pipelines = new WeakSet();
  proto.sendCommand = function (command, stream, ...rest) {
    if (this.status === 'ready' && !pipelines.has(stream)) {
      roundTrips.kv++;
      if (stream) pipelines.add(stream);
    }
    return sendCommand.call(this, command, stream, ...rest);
  };
  proto[counted] = true;
}

/** Counts the HTTP requests of the bench's REST server. */
export function countRest(handler) {
  return (request) => {
    roundTrips.rest++;
    return handler(request);
  };
}
