/**
 * `createNextHandlers`: drop-in App Router route handlers for
 * `app/api/crawl/[...path]/route.ts`. A new job starts processing right after the response with
 * `after()` from `next/server`, so a small crawl finishes in seconds without waiting for cron; a
 * run that ends with work left calls the process route again (a fresh invocation with a fresh time
 * budget) when a `cronSecret` is set; the cron route is the safety net.
 *
 * @module crawl-engine/next
 */
import { BUDGETS } from '../core/constants.js';
import type { CrawlEngine } from '../core/engine.js';
import { invalid } from '../core/errors.js';
import { createCrawlHandler, type CrawlHandlerOptions } from './index.js';
import { errorReporter } from './options.js';
import type { Job, RunReport } from '../core/types.js';

/** The origin of an absolute http(s) URL, or `invalid_options` naming `origin`. */
function checkOrigin(value: unknown): string {
  const url = typeof value === 'string' && URL.canParse(value) ? new URL(value) : null;
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search !== '' || url.username !== '') {
    throw invalid('invalid_options', 'Next.js handler options', [
      {
        path: 'origin',
        message: `expected an origin (scheme, host and port, no path: basePath says where the routes are) such as https://app.example.com (got ${JSON.stringify(value)})`,
      },
    ]);
  }
  return url.origin;
}

/** How long chaining waits for the next invocation to answer before leaving it to run. */
const CHAIN_WAIT_MS = 2000;

/** Hosts naming this machine, where the request's own origin is safe to call back. */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export interface NextHandlersOptions extends Omit<CrawlHandlerOptions, 'onJobCreated'> {
  /**
   * Budget of a run of the process route (cron, chaining); keep it under your route's
   * `maxDuration` less one fetch timeout (or, with a browser, `render.timeoutMs` + 5 s if longer)
   * and the 2 s a chained run waits for the next invocation to take its request.
   * @default 40000 (the plain HTTP handler's default is 50000)
   */
  processBudgetMs?: number;
  /**
   * Start processing a new job with `after()` once the 201 is sent.
   * @default true
   */
  processOnCreate?: boolean;
  /**
   * Budget of the run started with `after()`; keep it under your route's `maxDuration` less one
   * fetch timeout (or, with a browser, `render.timeoutMs` + 5 s if longer) and the 2 s of a chain
   * call.
   * @default 25000
   */
  afterBudgetMs?: number;
  /**
   * When a run ends with work left, call the process route for the next run (needs `cronSecret`).
   * @default true
   */
  chain?: boolean;
  /** Called with each job created (after `after()` was scheduled). */
  onJobCreated?: CrawlHandlerOptions['onJobCreated'];
  /** Stand-in for `after` from `next/server` (tests, or other frameworks with a waitUntil). */
  after?: (task: () => Promise<void>) => void;
  /** Used to call the process route when chaining. @default globalThis.fetch */
  fetch?: typeof fetch;
  /**
   * Where chaining calls the process route (with the cron secret), e.g. `https://app.example.com`.
   * The Host of the request that ran the job comes from the client, so it is trusted only on
   * Vercel (which routes a request only for the project's own domains) and when it names this
   * machine (`localhost`, `127.0.0.1`, `[::1]`: `next dev`, `next start`). Anywhere else, set
   * this, or nothing chains (cron still continues the job) and `onError` says so once.
   */
  origin?: string;
}

/** Next 15/16 route context (`params` is a Promise); the handler reads the path from the URL. */
export interface NextRouteContext {
  params: Promise<Record<string, string | string[] | undefined>>;
}

export type NextRouteHandler = (req: Request, context?: NextRouteContext) => Promise<Response>;

async function nextAfter(): Promise<(task: () => Promise<void>) => void> {
  // A literal specifier, so Next's bundler resolves it; next is an optional peer without types here.
  // biome-ignore lint/suspicious/noTsIgnore: next may or may not be installed where this compiles, so @ts-expect-error would fail one way
  // @ts-ignore
  const server = (await import('next/server')) as { after: (task: () => Promise<void>) => void };
  return server.after;
}

export function createNextHandlers(
  engine: CrawlEngine,
  options: NextHandlersOptions = {},
): { GET: NextRouteHandler; POST: NextRouteHandler; DELETE: NextRouteHandler } {
  const basePath = (options.basePath ?? '/api/crawl').replace(/\/+$/, '');
  const chain = options.chain ?? true;
  const budgetMs = options.afterBudgetMs ?? BUDGETS.nextAfterMs;
  const origin = options.origin === undefined ? undefined : checkOrigin(options.origin);
  // Reports from chaining happen after the run, inside after() or before the process route's
  // answer: an onError that throws must lose neither that answer nor the chain.
  const onError = errorReporter(options.onError, 'next handler');
  const schedule = async (task: () => Promise<void>) => (options.after ?? (await nextAfter()))(task);

  let warned = false;
  let warnedNoSecret = false;
  /** The origin chaining may send the cron secret to, or null (said once through onError). */
  function processOrigin(req: Request): string | null {
    if (origin !== undefined) return origin;
    const requested = new URL(req.url);
    if (process.env.VERCEL !== undefined) return requested.origin;
    // This machine: plain http (the scheme of req.url follows X-Forwarded-Proto, which a TLS proxy
    // in front sets to https) at the port the server listens on (next start and next dev set PORT),
    // not one the request named.
    if (LOOPBACK_HOSTS.has(requested.hostname)) return `http://${requested.hostname}:${process.env.PORT || requested.port || '80'}`;
    if (!warned) {
      warned = true;
      onError(
        new Error(
          `crawl-engine: not chaining the next run through ${requested.host}: the Host header comes from the client; set the origin option of createNextHandlers (cron still continues the job)`,
        ),
        req,
      );
    }
    return null;
  }

  /** Asks for another run in a fresh invocation, when this one ended with work left. */
  async function continueIfNeeded(jobId: string, report: RunReport, req: Request): Promise<void> {
    if (!chain || report.claimed === 0) return;
    if (options.cronSecret === undefined) {
      const job = await engine.jobs.get(jobId);
      if (job === null || (job.status !== 'running' && job.status !== 'queued')) return;
      if (!warnedNoSecret) {
        warnedNoSecret = true;
        onError(
          new Error(
            `crawl-engine: job ${jobId} has work left after its run and no cronSecret is set, so it is not chained: only a worker (processor.start()) or an authorized call of the process route continues it`,
          ),
          req,
        );
      }
      return;
    }
    const base = processOrigin(req);
    if (base === null) return;
    const job = await engine.jobs.get(jobId);
    if (job === null || (job.status !== 'running' && job.status !== 'queued')) return;
    const url = new URL(`${basePath}/process?jobId=${encodeURIComponent(jobId)}`, base);
    // Wait only until the next invocation has the request; it then runs on its own budget (so a
    // timeout here is the normal case). A refusal or an error answer is the operator's to fix. A
    // `fetch` of the operator's that ignores the signal is not waited for longer either.
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const calling = (options.fetch ?? fetch)(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.cronSecret}` },
        signal: AbortSignal.timeout(CHAIN_WAIT_MS),
      });
      calling.then((late) => late.body?.cancel().catch(() => undefined)).catch(() => undefined);
      const res = await Promise.race([
        calling,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new DOMException('the next invocation did not answer in time', 'TimeoutError')), CHAIN_WAIT_MS + 100);
        }),
      ]);
      if (!res.ok)
        onError(
          new Error(
            `crawl-engine: chaining job ${jobId} through ${url.origin}${basePath}/process got HTTP ${res.status}; check cronSecret, basePath and origin (cron still continues the job)`,
          ),
          req,
        );
    } catch (error) {
      if (!(error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))) {
        onError(
          new Error(
            `crawl-engine: chaining job ${jobId} through ${url.origin}${basePath}/process failed: ${error instanceof Error ? error.message : String(error)} (cron still continues the job)`,
            { cause: error },
          ),
          req,
        );
      }
    } finally {
      clearTimeout(timer);
    }
  }

  const runAfter = async (jobId: string, req: Request) => {
    await schedule(async () => {
      try {
        const report = await engine.processor.run({ jobId, budgetMs });
        await continueIfNeeded(jobId, report, req);
      } catch (error) {
        onError(error, req);
      }
    });
  };

  const handler = createCrawlHandler(engine, {
    ...options,
    onError,
    // The process route's run: under a 60 s maxDuration with a 15 s fetch timeout and the chain's 2 s to spare.
    processBudgetMs: options.processBudgetMs ?? BUDGETS.nextProcessMs,
    onJobCreated: async (job: Job, req: Request) => {
      if (options.processOnCreate ?? true) await runAfter(job.id, req);
      await options.onJobCreated?.(job, req);
    },
  });

  const route: NextRouteHandler = async (req) => {
    const response = await handler(req);
    // A process run for one job that left work behind schedules the next one, like a new job does.
    const url = new URL(req.url);
    const jobId = url.searchParams.get('jobId');
    if (response.status === 200 && jobId !== null && url.pathname.replace(/\/+$/, '') === `${basePath}/process`) {
      // Before answering, not in after(): this request's caller (the previous link of the chain)
      // stops waiting after CHAIN_WAIT_MS, and Next.js does not run after() tasks of a request whose
      // client has gone, so a run longer than that (any run of the default budget) ended the chain.
      try {
        const report = (await response.clone().json()) as RunReport;
        await continueIfNeeded(jobId, report, req);
      } catch (error) {
        onError(error, req);
      }
    }
    return response;
  };
  return { GET: route, POST: route, DELETE: route };
}
