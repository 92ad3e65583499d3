/** The options of `createCrawlHandler` and the action names `authorize` sees. */
import type { Job } from '../core/types.js';

/**
 * What a request wants to do, for `authorize`. `delete` is `DELETE /jobs/:id?purge=true`, which
 * removes the job and its data (`cancel` is the same route without `purge`).
 */
export type CrawlAction = 'create' | 'list' | 'read' | 'cancel' | 'delete' | 'results' | 'events' | 'process' | 'map';

export interface CrawlHandlerOptions {
  /**
   * Path prefix of every route.
   * @default '/api/crawl'
   */
  basePath?: string;
  /**
   * Bearer secret of the process route (`Authorization: Bearer <secret>`), compared in constant
   * time; at least 16 characters. Vercel Cron sends `CRON_SECRET` this way. Without it the process
   * route runs only when `authorize` allows the action `'process'`; with neither it answers 401.
   */
  cronSecret?: string;
  /**
   * Your user auth. Called for every route (the process route only when no `cronSecret` is set)
   * with the action; return true to allow, false for a 401, or a Response of your own (a 403, a
   * redirect).
   */
  authorize?: (req: Request, context: { action: CrawlAction; jobId?: string }) => boolean | Response | Promise<boolean | Response>;
  /**
   * Lets anyone create, list, read and cancel jobs when there is no `authorize`. Needed when
   * `NODE_ENV` is `production`: a handler with neither `authorize` nor `public: true` is a
   * configuration error there (in development everything is allowed without it). Does not open
   * the process route, which always needs `cronSecret` or `authorize`.
   * @default false
   */
  public?: boolean;
  /**
   * How long one SSE response stays open; the browser then reconnects and resumes.
   * @default 120000
   */
  maxStreamMs?: number;
  /** @default 15000 */
  heartbeatMs?: number;
  /**
   * The reconnection delay sent to browsers (`retry:`).
   * @default 2000
   */
  retryMs?: number;
  /**
   * How often SSE reads the event log when the storage cannot push.
   * @default 500
   */
  pollMs?: number;
  /**
   * Largest request body accepted.
   * @default 65536
   */
  maxBodyBytes?: number;
  /**
   * Time budget of a run started by the process route.
   * @default 50000
   */
  processBudgetMs?: number;
  /** @default 20 */
  processConcurrency?: number;
  /** Called after a job is created (Next.js uses it to start processing with `after()`). */
  onJobCreated?: (job: Job, req: Request) => void | Promise<void>;
  /**
   * Called with unexpected errors (the client gets a 500 without details). What it throws, or a
   * promise it returns rejects with, is logged with the error and never replaces the answer.
   * @default console.error
   */
  onError?: (error: unknown, req: Request) => void;
}

export type CrawlHandler = (req: Request) => Promise<Response>;

/**
 * The `onError` a handler calls: the operator's, made safe (what it throws, or a promise it returns
 * rejects with, is logged with the error it was given, and never replaces a request's answer), or
 * `console.error` with the handler's `label`.
 */
export function errorReporter(onError: CrawlHandlerOptions['onError'], label: string): (error: unknown, req: Request) => void {
  if (onError === undefined) return (error) => console.error(`[crawl-engine] ${label} error:`, error);
  const failed = (error: unknown, failure: unknown) => console.error(`[crawl-engine] onError failed (${label}) while reporting:`, error, failure);
  return (error, req) => {
    try {
      const out: unknown = onError(error, req);
      if (typeof (out as PromiseLike<unknown> | null)?.then === 'function') Promise.resolve(out).catch((failure: unknown) => failed(error, failure));
    } catch (failure) {
      failed(error, failure);
    }
  };
}
