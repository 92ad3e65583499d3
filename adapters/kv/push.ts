/**
 * `watch()` of the KV adapter over Redis pub/sub: one extra connection (ioredis's
 * `client.duplicate()`) while anything is watched, one channel per watched job; the scripts that
 * store events PUBLISH on it.
 */
import { pushChannel } from './keys.js';

/** The part of an ioredis connection that pub/sub uses. */
interface Subscriber {
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  disconnect(): void;
}

/** Whether the client can open the second connection SUBSCRIBE needs. */
export const canDuplicate = (client: unknown): boolean => typeof (client as { duplicate?: unknown }).duplicate === 'function';

/** `watch()` and `close()` for a client that `canDuplicate`. */
export function pubSub(client: unknown, prefix: string): { watch(jobId: string, listener: () => void): () => void; close(): Promise<void> } {
  const duplicate = (client as { duplicate?: () => Subscriber }).duplicate;
  const channelOf = (jobId: string) => pushChannel(prefix, jobId);
  /** Listeners by channel. */
  const watchers = new Map<string, Set<() => void>>();
  let subscriber: Subscriber | null = null;
  const subscriberFor = () => {
    if (subscriber === null) {
      subscriber = duplicate!.call(client);
      subscriber.on('error', () => undefined); // ioredis reconnects and subscribes again by itself
      subscriber.on('message', (channel) => {
        for (const listener of watchers.get(channel) ?? []) listener();
      });
    }
    return subscriber;
  };

  return {
    watch(jobId: string, listener: () => void) {
      const channel = channelOf(jobId);
      let set = watchers.get(channel);
      if (set === undefined) {
        set = new Set();
        watchers.set(channel, set);
        // A failed SUBSCRIBE leaves the subscriber polling, which it does anyway as a safety net.
        subscriberFor()
          .subscribe(channel)
          .catch(() => undefined);
      }
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size > 0 || watchers.get(channel) !== set) return;
        watchers.delete(channel);
        if (watchers.size > 0) {
          subscriber?.unsubscribe(channel).catch(() => undefined);
        } else {
          // Nobody watches: close the extra connection, so that it never keeps a process alive.
          subscriber?.disconnect();
          subscriber = null;
        }
      };
    },
    async close() {
      watchers.clear();
      subscriber?.disconnect();
      subscriber = null;
    },
  };
}
