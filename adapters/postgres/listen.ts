/**
 * `watch()` of the Postgres adapter over LISTEN/NOTIFY: the functions that store events NOTIFY
 * `<tablePrefix>events` with the job id; one connection is held for LISTEN while anything is
 * watched (taken from a pg / Neon Pool, the Client itself, or PGlite's `listen()`), given back
 * when the last watcher leaves, and taken again after it drops.
 */

type Listener = () => void;
interface NotificationSource {
  on?(event: 'notification', listener: (msg: { channel: string; payload?: string }) => void): unknown;
  on?(event: 'error', listener: (error: Error) => void): unknown;
  off?(event: string, listener: (...args: never[]) => void): unknown;
  removeListener?(event: string, listener: (...args: never[]) => void): unknown;
  query(text: string): Promise<unknown>;
  release?(error?: Error | boolean): void;
}

/** `watch()` and `close()` over LISTEN on `channel`; nothing is held until the first `watch()`. */
export function notifications(client: unknown, channel: string): { watch(jobId: string, listener: Listener): () => void; close(): Promise<void> } {
  const listeners = new Map<string, Set<Listener>>();
  let listening: Promise<(() => Promise<void>) | null> | null = null;

  const dispatch = (jobId: string | undefined) => {
    if (jobId === undefined) return;
    for (const listener of listeners.get(jobId) ?? []) listener();
  };

  // A pg Pool hands out a connection to hold for LISTEN (and a new one after it drops); a single
  // Client listens on itself and, once dropped, stays down.
  const isPool = typeof (client as { connect?: unknown }).connect === 'function' && 'totalCount' in (client as object);

  /** Bumped by every start and stop, so that a connection's late error only touches its own start. */
  let generation = 0;
  /** The previous stop (UNLISTEN, release): a new start waits for it, so they cannot cross. */
  let stopped: Promise<void> = Promise.resolve();

  async function startListening(gen: number): Promise<(() => Promise<void>) | null> {
    const c = client as unknown as {
      listen?: (channel: string, cb: (payload: string) => void) => Promise<() => Promise<void>>;
      connect?: () => Promise<NotificationSource>;
      totalCount?: number;
      on?: NotificationSource['on'];
    };
    if (typeof c.listen === 'function') return c.listen(channel, (payload) => dispatch(payload));
    let source: NotificationSource;
    if (isPool) source = await c.connect!();
    else if (typeof c.on === 'function') source = c as unknown as NotificationSource;
    else return null;
    let dropped = false;
    const onNotification = (msg: { channel: string; payload?: string }) => {
      if (msg.channel === channel) dispatch(msg.payload);
    };
    const onConnectionError = (error: Error) => {
      // The connection dropped (a database restart, say): give it back to the pool as broken (a
      // pool waits for checked-out clients on end()), let subscribers poll meanwhile, and listen
      // again on a new connection while anyone is watching.
      if (dropped) return;
      dropped = true;
      detach();
      if (source !== client) source.release?.(error);
      if (gen === generation) {
        listening = null;
        relisten();
      }
    };
    // The handlers go when this listening ends: a pooled connection (or a single Client) is used
    // again by the next start, which adds its own.
    const detach = () => {
      const off = (source.off ?? source.removeListener)?.bind(source);
      off?.('notification', onNotification);
      off?.('error', onConnectionError);
    };
    source.on!('notification', onNotification);
    source.on!('error', onConnectionError);
    try {
      await source.query(`LISTEN "${channel}"`);
    } catch (error) {
      if (!dropped) {
        detach();
        if (source !== client) source.release?.(error as Error);
      }
      dropped = true;
      throw error;
    }
    return async () => {
      if (dropped) return;
      dropped = true;
      await source.query(`UNLISTEN "${channel}"`).catch(() => undefined);
      detach();
      source.release?.();
    };
  }

  /** Stops listening (UNLISTEN, connection released) once any start in flight has settled. */
  function stopListening(): void {
    const current = listening;
    listening = null;
    generation++;
    if (relistenTimer !== null) clearTimeout(relistenTimer);
    relistenTimer = null;
    if (current !== null) stopped = current.then((stop) => stop?.()).catch(() => undefined);
  }

  /** Starts listening after any stop in flight; a start that fails is retried while anyone watches. */
  function listen(): void {
    const gen = ++generation;
    const started: Promise<(() => Promise<void>) | null> = stopped
      .then(() => startListening(gen))
      .catch(() => {
        // Only if this start is still the current one (a stop and a new start may have followed).
        if (listening === started) {
          listening = null;
          relisten();
        }
        return null;
      });
    listening = started;
  }

  let relistenTimer: ReturnType<typeof setTimeout> | null = null;
  function relisten(): void {
    if (!isPool || relistenTimer !== null || closed) return;
    relistenTimer = setTimeout(() => {
      relistenTimer = null;
      if (listening !== null || listeners.size === 0 || closed) return;
      listen();
    }, 1000);
    relistenTimer.unref?.();
  }
  let closed = false;

  return {
    watch(jobId: string, listener: Listener) {
      let set = listeners.get(jobId);
      if (set === undefined) {
        set = new Set();
        listeners.set(jobId, set);
      }
      set.add(listener);
      if (listening === null) listen();
      return () => {
        set.delete(listener);
        if (set.size === 0) listeners.delete(jobId);
        // The last watcher left: give the LISTEN connection back to the pool, so that an idle
        // instance holds no connection and pool.end() returns at once. The next watch()
        // takes one again.
        if (listeners.size === 0) stopListening();
      };
    },
    async close() {
      closed = true;
      if (relistenTimer !== null) clearTimeout(relistenTimer);
      relistenTimer = null;
      const stop = await listening;
      listening = null;
      await stop?.();
    },
  };
}
