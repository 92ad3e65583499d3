export interface DelayProxy {
  host: string;
  port: number;
  rttMs: number;
  /** Connections currently open through the proxy. */
  readonly connections: number;
  /** Chunks forwarded so far and how long they waited on average: the round trip grew by about twice that. */
  readonly stats: { chunks: number; meanHoldMs: number };
  /** Stops listening and destroys the open connections. */
  close(): Promise<void>;
}
export function startDelayProxy(options: { target: { host: string; port: number }; rttMs: number; host?: string; port?: number }): Promise<DelayProxy>;
export function proxiedUrl(url: string, rttMs: number): Promise<{ url: string; proxy: DelayProxy }>;
/** A delay proxy in a child process; `close()` ends it. */
export function startDelayProxyProcess(options: {
  target: { host: string; port: number };
  rttMs: number;
}): Promise<{ host: string; port: number; rttMs: number; close(): Promise<void> }>;
