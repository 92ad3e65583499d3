/**
 * Ctrl-C and SIGTERM. The first one stops the crawl (see `runJob`); before and after the crawl,
 * and on a second signal, the process exits at once. Also the HTTP sockets of the fetcher, which
 * the CLI destroys to abort the fetches in flight.
 */
import { subscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { EXIT } from './errors.js';

export const interrupt = {
  signal: null as NodeJS.Signals | null,
  /** Set while a crawl runs: starts stopping it. */
  onFirst: null as ((signal: NodeJS.Signals) => void) | null,
  /** When set, `main`'s caller exits with process.exit instead of waiting for the event loop. */
  forceExit: false,
  /** Printed when a second signal exits at once: how to continue the job. */
  resumeHint: null as string | null,
};

export const exitCodeOf = (signal: NodeJS.Signals) => (signal === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted);

export function onSignal(signal: NodeJS.Signals): void {
  if (interrupt.signal === null && interrupt.onFirst !== null) {
    interrupt.signal = signal;
    interrupt.onFirst(signal);
    return;
  }
  const hint = interrupt.resumeHint === null ? '' : `\n${interrupt.resumeHint}`;
  process.stderr.write(`\ncrawl-engine: ${interrupt.signal === null ? 'interrupted' : 'interrupted again'}; exiting now${hint}\n`);
  process.exit(exitCodeOf(signal));
}

/** Resolves with the promise's value, or with `fallback` after `ms`. Never rejects. */
export function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(fallback), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      () => {
        clearTimeout(timer);
        resolve(fallback);
      },
    );
  });
}

/**
 * Sockets of undici (the fetcher's HTTP client), seen through its diagnostics channel: the
 * engine has no way to abort fetches in flight (run({ signal }) only stops starting new ones,
 * engine.close() waits for them), so on Ctrl-C the CLI destroys these.
 */
const httpSockets = new Set<Socket>();
let refuseHttpSockets = false;

export function trackHttpSockets(): void {
  subscribe('undici:client:connected', (message) => {
    const socket = (message as { socket?: Socket }).socket;
    if (socket === undefined) return;
    if (refuseHttpSockets) {
      socket.destroy();
      return;
    }
    httpSockets.add(socket);
    socket.once('close', () => httpSockets.delete(socket));
  });
}

export function abortHttpRequests(): void {
  refuseHttpSockets = true;
  for (const socket of httpSockets) socket.destroy();
  httpSockets.clear();
}
