/**
 * `createCrawlEngine`: validates options and wires storage, the fetcher, the processor, the
 * in-process emitter and the durable progress API together.
 */
import { z } from 'zod';
import { fieldErrors, invalid } from './errors.js';
import { createFetcher, type Fetcher } from '../crawl/fetcher.js';
import type { PlaywrightRenderer, PlaywrightRendererOptions } from '../crawl/playwright.js';
import { type Renderer, RenderError } from '../crawl/render.js';
import { createJobsApi, type JobInput, type JobsApi } from './jobs.js';
import { engineWebhooksSchema } from './webhooks/options.js';
import { hasOutbox } from './webhooks/index.js';
import type { WebhookEvent } from './types.js';
import type { MapOptions, MapResult } from './map.js';
import { createAddressGuard, invalidAllowanceEntry } from '../crawl/netguard.js';
import { createProcessor, type ExtractFunction, type Processor } from './processor/index.js';
import {
  createEventHub,
  createProgressApi,
  reportListenerError,
  settle,
  type CrawlEmitter,
  type CrawlEvents,
  type ListenerErrorHandler,
  type ProgressApi,
} from './progress.js';
import type { CrawlStorage } from './storage.js';
import type { Job, ProgressEvent } from './types.js';
import { TERMINAL_STATUSES } from './types.js';

/** The default of `maxActiveJobs`. */
export const DEFAULT_MAX_ACTIVE_JOBS = 10;

export const DEFAULT_USER_AGENT = 'crawl-engine/0.1 (+https://www.npmjs.com/package/crawl-engine)';

export interface FetchSettings {
  /** @default 'crawl-engine/0.1 (+https://www.npmjs.com/package/crawl-engine)' */
  userAgent?: string;
  /**
   * Whole request, headers and body; a slower page fails with `timeout` (and is retried).
   * @default 15000
   */
  timeoutMs?: number;
  /**
   * Body cap, on the decoded size too; larger pages fail with `too_large`.
   * @default 5242880
   */
  maxBytes?: number;
  /** @default 5 */
  maxRedirects?: number;
  /**
   * `true`, or a list of hosts / CIDRs, lets crawls reach private and loopback addresses.
   * @default false
   */
  allowPrivateNetwork?: boolean | string[];
  /**
   * Longest `Retry-After` that is honoured; longer ones are cut to this.
   * @default 60000
   */
  maxRetryAfterMs?: number;
}

export interface CrawlEngineOptions {
  /** Where jobs, the frontier, results and events live. */
  storage: CrawlStorage;
  fetch?: FetchSettings;
  /**
   * A claimed URL returns to the queue after this; at least `fetch.timeoutMs`.
   * @default 60000
   */
  leaseMs?: number;
  /** Backoff of transient failures: `baseDelayMs * 2^(attempt-1)`, capped, with jitter. */
  retry?: {
    /** @default 1000 */
    baseDelayMs?: number;
    /** @default 30000 */
    maxDelayMs?: number;
  };
  /**
   * Admission: the most jobs that claims across jobs keep running at once. A queued job starts only
   * when fewer than this many run, in order of `priority` (highest first), then creation (oldest
   * first); a job that ends frees its place for the next queued one at once. Running jobs share
   * claims fairly. Claims of one job (`processor.run({ jobId })`, `crawl()`) start it at once and
   * are not counted. The default keeps one processor's 20 fetch slots busy with jobs at the default
   * `perHostConcurrency` (2); with more processors, or slow sites, raise it to about
   * `processors × concurrency / perHostConcurrency`. Lower finishes each job sooner under a backlog:
   * admitted jobs share the processors fairly, so a job's time grows with how many run beside it.
   * @default 10
   */
  maxActiveJobs?: number;
  /**
   * Links taken from one page at most (the rest are ignored).
   * @default 1000
   */
  maxLinksPerPage?: number;
  /** Extra per-page data, stored in `result.data`; a throw fails the page with `extract_error`. */
  extract?: ExtractFunction;
  /**
   * Called when an `engine.events` listener throws. Listeners are isolated: the error never
   * reaches the claim, store or run that emitted the event.
   * @default logs with console.error
   */
  onListenerError?: (error: unknown, event: ProgressEvent) => void;
  /**
   * Deletes finished (completed, failed, cancelled) jobs, with their results, events and frontier,
   * once they finished more than `finishedJobsMaxAgeMs` ago. The processor does it: each processor
   * sweeps at most `batchSize` jobs every `intervalMs`, next to a run (so `processor.run()`,
   * `start()`, the HTTP process route and Next.js `after()` all apply it); a failed sweep never
   * fails the run. Needs a storage with `deleteFinishedJobs()` (every built-in adapter).
   * @default undefined (finished jobs are kept until deleted with `jobs.delete()`)
   */
  retention?: RetentionOptions;
  /**
   * Webhooks: how this engine signs and posts jobs' events (a job asks for them with its own
   * `webhook` option). Processors post deliveries from the storage's outbox next to every run, so
   * every engine that processes needs the same `secret` (unless each job has its own).
   */
  webhooks?: WebhookSettings;
  /**
   * Rendering pages in a browser, for jobs with `render: 'always' | 'auto'`: Chromium through
   * `playwright-core` (an optional peer dependency: `npm install playwright-core`), launched by the
   * processor (`executablePath`) or reached over a WebSocket (`connect`, e.g. a browser service
   * from a serverless function), or any `renderer` of your own. The browser never reaches the
   * network by itself: its document is the one the fetcher fetched, and every other request goes
   * through the fetcher (the private-network guard, timeouts, byte caps) or is refused.
   * @default undefined (jobs that render are refused with a 400 naming `render`)
   */
  render?: RenderSettings;
}

/** See {@link CrawlEngineOptions.render}. */
export interface RenderSettings {
  /**
   * A local Chromium to launch: Debian's `/usr/bin/chromium`, `@sparticuz/chromium`'s
   * `await chromium.executablePath()` on AWS Lambda or Vercel… Absent (and no `connect`): the
   * Chromium Playwright installs (`npx playwright install chromium`).
   */
  executablePath?: string;
  /** More Chromium flags, after the engine's own (see docs/rendering.md). */
  args?: string[];
  /**
   * A remote browser instead of a local one: its WebSocket endpoint over the Chrome DevTools
   * Protocol (`protocol: 'cdp'`, default: Browserless, a Chromium started with
   * `--remote-debugging-port`), or Playwright's own (`'playwright'`: `launchServer()`).
   */
  connect?: { wsEndpoint: string; protocol?: 'cdp' | 'playwright'; headers?: Record<string, string> };
  /** Pages rendered at once by one engine (1–64). @default 4 */
  concurrency?: number;
  /** A page's whole render, from the browser's start when it needs one; past it the page fails with `render_failed` (and is retried). Also the longest a render goes on after a run's `budgetMs` (a page not yet rendering then goes back to the queue). @default 30000 */
  timeoutMs?: number;
  /** Longest wait for `load`, `networkidle` or the job's `renderSelector`; past it the page is read as it stands. @default 10000 */
  waitMs?: number;
  /** Largest rendered HTML, in characters; a larger page fails with `too_large`. @default fetch.maxBytes */
  maxHtmlBytes?: number;
  /** Requests one page may make through the fetcher (scripts, styles, fetch/XHR, frames); further ones are refused. @default 200 */
  maxRequests?: number;
  /** Bytes of (decoded) body all of one page's requests may bring in, together; past it further requests are refused. @default 4 × fetch.maxBytes */
  maxPageBytes?: number;
  /** Resource types refused without a request (Playwright's `resourceType()` names). @default ['image', 'font', 'media'] */
  block?: string[];
  /** A local Chromium is restarted after this many pages (a remote one is reconnected). @default 100 */
  restartAfterPages?: number;
  /** The browser is closed after this long without a render (0: kept open until `close()`). @default 30000 */
  idleCloseMs?: number;
  /** V8 heap cap of a page in a local Chromium, in MB: a page past it crashes alone (`render_failed`). @default 512 */
  maxHeapMb?: number;
  /** Your own renderer (see the `Renderer` interface): the options above are then unused, but `maxHtmlBytes`, and `timeoutMs` as the longest a render may go on past a run's budget. */
  renderer?: Renderer;
}

/** See {@link CrawlEngineOptions.webhooks}. */
export interface WebhookSettings {
  /**
   * Signing secret(s), `whsec_…` (Standard Webhooks; `createWebhookSecret()` makes one). With
   * several, every delivery carries one signature per secret: rotate by adding the new secret,
   * moving receivers to it, then removing the old one.
   */
  secret?: string | string[];
  /** An endpoint every job gets unless it names its own (or `webhook: null`). */
  url?: string;
  /** The events of jobs that name none. @default all */
  events?: WebhookEvent[];
  /** Tries of a delivery before it is marked failed. @default 8 */
  maxAttempts?: number;
  /** One try's time, answer included. @default 10000 */
  timeoutMs?: number;
  /** First retry's wait; doubled each try, with jitter. @default 10000 */
  retryBaseMs?: number;
  /** Longest wait between tries. @default 3600000 */
  retryMaxMs?: number;
}

/** See {@link CrawlEngineOptions.retention}. */
export interface RetentionOptions {
  /** Age (since `finishedAt`) past which a finished job is deleted; at least 1000 ms. */
  finishedJobsMaxAgeMs: number;
  /**
   * Jobs deleted per sweep at most (1–10,000).
   * @default 100
   */
  batchSize?: number;
  /**
   * Least time between two sweeps of one processor (0–86,400,000 ms).
   * @default 60000
   */
  intervalMs?: number;
}

export interface CrawlOptions {
  /** Called with every event of the job, in order. */
  onEvent?: (event: ProgressEvent) => void;
  /** Stops the crawl and cancels the job. */
  signal?: AbortSignal;
  /** @default 20 */
  concurrency?: number;
}

export interface CrawlEngine {
  readonly storage: CrawlStorage;
  readonly jobs: JobsApi;
  readonly processor: Processor;
  /** In-process events, emitted as this process stores them. */
  readonly events: CrawlEmitter;
  /** Durable, cross-process, resumable progress. */
  readonly progress: ProgressApi;
  /** Creates a job and processes it to the end in this process. */
  crawl(input: JobInput, options?: CrawlOptions): Promise<Job>;
  /**
   * A site's URLs, fast, without creating a job or touching storage: those its sitemaps list (with
   * their `<lastmod>`) and those its start page links to, in scope, each once, at most `limit`
   * (default 5000), within `timeoutMs` (default 30 s). Fetched like a crawl's pages (the same
   * user agent, timeouts and private-network guard). Throws `invalid_input` naming the bad field.
   */
  map(url: string, options?: MapOptions): Promise<MapResult>;
  /** Closes the HTTP connection pool and the renderer's browser (not the storage, which the caller owns). */
  close(): Promise<void>;
}

const int = (min: number, max: number) => z.int().min(min).max(max);

const optionsSchema = z
  .object({
    storage: z.custom<CrawlStorage>(
      (value) =>
        typeof value === 'object' &&
        value !== null &&
        typeof (value as CrawlStorage).claim === 'function' &&
        typeof (value as CrawlStorage).complete === 'function',
      'expected a CrawlStorage such as memoryStorage()',
    ),
    fetch: z
      .strictObject({
        userAgent: z.string().min(1).max(512).default(DEFAULT_USER_AGENT),
        timeoutMs: int(1, 600_000).default(15_000),
        maxBytes: int(1024, 1024 ** 3).default(5 * 1024 * 1024),
        maxRedirects: int(0, 50).default(5),
        allowPrivateNetwork: z
          .union([
            z.boolean(),
            z.array(
              z.string().refine((entry) => invalidAllowanceEntry(entry) === null, {
                error: (issue) => `expected a host name, IP or CIDR, got ${JSON.stringify(issue.input)}`,
              }),
            ),
          ])
          .default(false),
        maxRetryAfterMs: int(0, 3_600_000).default(60_000),
      })
      .prefault({}),
    leaseMs: int(1, 3_600_000).optional(),
    retry: z
      .strictObject({
        baseDelayMs: int(0, 600_000).default(1000),
        maxDelayMs: int(0, 3_600_000).default(30_000),
      })
      .prefault({}),
    maxActiveJobs: int(1, 100_000).default(DEFAULT_MAX_ACTIVE_JOBS),
    maxLinksPerPage: int(1, 1_000_000).default(1000),
    extract: z.custom<ExtractFunction>((value) => typeof value === 'function', 'expected a function').optional(),
    onListenerError: z.custom<ListenerErrorHandler>((value) => typeof value === 'function', 'expected a function').optional(),
    retention: z
      .strictObject({
        finishedJobsMaxAgeMs: int(1000, 100 * 365 * 86_400_000),
        batchSize: int(1, 10_000).default(100),
        intervalMs: int(0, 86_400_000).default(60_000),
      })
      .optional(),
    webhooks: engineWebhooksSchema,
    render: z
      .strictObject({
        executablePath: z.string().min(1).max(4096).optional(),
        args: z.array(z.string().max(4096)).max(100).optional(),
        connect: z
          .strictObject({
            wsEndpoint: z.url({ protocol: /^(?:wss?|https?)$/, error: 'expected a ws://, wss://, http:// or https:// URL' }),
            protocol: z.enum(['cdp', 'playwright']).optional(),
            headers: z.record(z.string(), z.string()).optional(),
          })
          .optional(),
        concurrency: int(1, 64).default(4),
        timeoutMs: int(1000, 600_000).default(30_000),
        waitMs: int(0, 600_000).default(10_000),
        maxHtmlBytes: int(1024, 1024 ** 3).optional(),
        maxRequests: int(0, 10_000).default(200),
        maxPageBytes: int(1024, 1024 ** 4).optional(),
        block: z.array(z.string().min(1).max(64)).max(20).default(['image', 'font', 'media']),
        restartAfterPages: int(1, 1_000_000).default(100),
        idleCloseMs: int(0, 86_400_000).default(30_000),
        maxHeapMb: int(16, 65_536).default(512),
        renderer: z
          .custom<Renderer>(
            (value) =>
              typeof value === 'object' &&
              value !== null &&
              typeof (value as Renderer).render === 'function' &&
              typeof (value as Renderer).close === 'function',
            'expected a Renderer: an object with render() and close()',
          )
          .optional(),
      })
      .optional(),
  })
  .strict()
  .superRefine((options, ctx) => {
    if (options.retention !== undefined && typeof options.storage.deleteFinishedJobs !== 'function') {
      ctx.addIssue({
        code: 'custom',
        path: ['retention'],
        message: `expected a storage with deleteFinishedJobs() (${options.storage.name ?? 'this storage'} has none)`,
      });
    }
    if (options.render?.executablePath !== undefined && options.render.connect !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['render', 'connect'],
        message: 'expected either executablePath (a local Chromium) or connect (a remote one), not both',
      });
    }
    if (options.render !== undefined && options.leaseMs !== undefined && options.leaseMs < options.fetch.timeoutMs + options.render.timeoutMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['leaseMs'],
        message: `expected at least fetch.timeoutMs + render.timeoutMs (${options.fetch.timeoutMs + options.render.timeoutMs}) so that a page's fetch and render keep its lease`,
      });
    } else if (options.leaseMs !== undefined && options.leaseMs < options.fetch.timeoutMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['leaseMs'],
        message: `expected at least fetch.timeoutMs (${options.fetch.timeoutMs}) so that a slow fetch keeps its lease`,
      });
    }
  });

/**
 * The Playwright renderer, its module loaded on the first render: an engine that never renders
 * (a serverless function that creates jobs and streams progress) never loads it.
 */
function lazyPlaywrightRenderer(options: PlaywrightRendererOptions): Renderer {
  let inner: Promise<PlaywrightRenderer> | null = null;
  const load = () => (inner ??= import('../crawl/playwright.js').then(({ createPlaywrightRenderer }) => createPlaywrightRenderer(options)));
  return {
    render: async (request) => (await load()).render(request),
    close: async () => {
      if (inner !== null) await (await inner).close();
    },
  };
}

/** The renderer of a closed engine: starts no browser. */
const CLOSED_RENDERER: Renderer = {
  render: () => Promise.reject(new RenderError('render_failed', 'the engine was closed', true)),
  close: () => Promise.resolve(),
};

export function createCrawlEngine(options: CrawlEngineOptions): CrawlEngine {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw invalid('invalid_options', 'createCrawlEngine options', fieldErrors(parsed.error.issues));
  const settings = parsed.data;
  const storage = settings.storage;
  const now = Date.now;
  const onListenerError = settings.onListenerError ?? reportListenerError;
  const { emitter, emit } = createEventHub(onListenerError);

  let fetcher: Fetcher | null = null;
  const getFetcher = () =>
    (fetcher ??= createFetcher({
      userAgent: settings.fetch.userAgent,
      timeoutMs: settings.fetch.timeoutMs,
      maxBytes: settings.fetch.maxBytes,
      maxRedirects: settings.fetch.maxRedirects,
      maxRetryAfterMs: settings.fetch.maxRetryAfterMs,
      allowPrivateNetwork: settings.fetch.allowPrivateNetwork,
    }));

  const renderSettings = settings.render;
  let renderer: Renderer | null = null;
  let closed = false;
  const getRenderer = (): Renderer => {
    if (closed) return CLOSED_RENDERER;
    renderer ??=
      renderSettings?.renderer ??
      lazyPlaywrightRenderer({
        ...(renderSettings?.executablePath === undefined ? {} : { executablePath: renderSettings.executablePath }),
        ...(renderSettings?.args === undefined ? {} : { args: renderSettings.args }),
        ...(renderSettings?.connect === undefined ? {} : { connect: renderSettings.connect }),
        userAgent: settings.fetch.userAgent,
        concurrency: renderSettings!.concurrency,
        timeoutMs: renderSettings!.timeoutMs,
        waitMs: renderSettings!.waitMs,
        maxHtmlBytes: renderSettings!.maxHtmlBytes ?? settings.fetch.maxBytes,
        maxRequests: renderSettings!.maxRequests,
        maxPageBytes: renderSettings!.maxPageBytes ?? 4 * settings.fetch.maxBytes,
        block: renderSettings!.block,
        restartAfterPages: renderSettings!.restartAfterPages,
        idleCloseMs: renderSettings!.idleCloseMs,
        maxHeapMb: renderSettings!.maxHeapMb,
      });
    return renderer;
  };

  const { checkHost } = createAddressGuard(settings.fetch.allowPrivateNetwork);
  const webhookRefused = settings.webhooks.url === undefined ? null : checkHost(new URL(settings.webhooks.url).hostname);
  if (webhookRefused !== null) {
    throw invalid('invalid_options', 'createCrawlEngine options', [
      { path: 'webhooks.url', message: `expected an address the processors may post to: ${webhookRefused}` },
    ]);
  }
  // Webhooks are delivered by the processors of an engine made with the `webhooks` option (`{}`
  // will do when jobs bring their own secrets); without it, runs pay nothing for them.
  const webhooksOn = options.webhooks !== undefined;
  if (webhooksOn && !hasOutbox(storage)) {
    throw invalid('invalid_options', 'createCrawlEngine options', [
      { path: 'webhooks', message: `expected a storage with a webhook outbox (${storage.name} has none)` },
    ]);
  }
  const { recrawlScheduled, ...jobs }: ReturnType<typeof createJobsApi> = createJobsApi(
    storage,
    emit,
    now,
    checkHost,
    {
      ...(settings.webhooks.url === undefined ? {} : { url: settings.webhooks.url }),
      ...(settings.webhooks.events === undefined ? {} : { events: settings.webhooks.events }),
      hasSecret: settings.webhooks.secret !== undefined,
      enabled: webhooksOn,
    },
    settings.retention?.finishedJobsMaxAgeMs,
    renderSettings !== undefined,
  );
  const processor = createProcessor({
    storage,
    userAgent: settings.fetch.userAgent,
    fetcher: getFetcher,
    fetchTimeoutMs: settings.fetch.timeoutMs,
    emit,
    // A rendering page holds its lease through its fetch, render, parse and content (up to 15 s each
    // for the last two): the default lease leaves room for all of them.
    leaseMs: settings.leaseMs ?? Math.max(60_000, settings.fetch.timeoutMs + (renderSettings === undefined ? 0 : renderSettings.timeoutMs + 30_000)),
    ...(renderSettings === undefined
      ? {}
      : { render: { renderer: getRenderer, timeoutMs: renderSettings.timeoutMs, maxBytes: renderSettings.maxHtmlBytes ?? settings.fetch.maxBytes } }),
    retry: settings.retry,
    maxLinksPerPage: settings.maxLinksPerPage,
    maxActiveJobs: settings.maxActiveJobs,
    extract: settings.extract,
    now,
    ...(settings.retention === undefined ? {} : { retention: settings.retention }),
    // Every engine on a storage with the outbox starts the recrawls that schedules make due; only
    // those made with the webhooks option post webhooks.
    ...(hasOutbox(storage) ? { outbox: { settings: settings.webhooks, posts: webhooksOn, recrawlScheduled } } : {}),
  });
  const progress = createProgressApi(storage);

  async function crawl(input: JobInput, crawlOptions: CrawlOptions = {}): Promise<Job> {
    const { onEvent, signal } = crawlOptions;
    let jobId: string | null = null;
    const early: ProgressEvent[] = [];
    const listener = (_type: keyof CrawlEvents, event: ProgressEvent) => {
      if (jobId === null) early.push(event);
      else if (event.jobId === jobId) return onEvent?.(event);
    };
    if (onEvent) emitter.on('*', listener);
    try {
      const job = await jobs.create(input);
      jobId = job.id;
      // Replayed with the same isolation as the listener itself: a throwing onEvent is reported.
      for (const event of early.splice(0)) if (event.jobId === jobId) settle(onListenerError, event, () => onEvent?.(event));
      let idle = 0;
      for (;;) {
        if (signal?.aborted) return await jobs.cancel(job.id);
        const report = await processor.run({ jobId: job.id, budgetMs: 60_000, concurrency: crawlOptions.concurrency ?? 20, ...(signal ? { signal } : {}) });
        if (report.errors.length > 0 && report.claimed === 0) {
          throw new Error(`[crawl-engine] crawl(): storage failed: ${report.errors.join('; ')}`);
        }
        const current = await jobs.get(job.id);
        if (current === null || TERMINAL_STATUSES.has(current.status)) return current ?? job;
        if (report.claimed === 0) {
          // Waiting out a retry backoff or an expired lease: poll gently.
          idle = Math.min(idle + 50, 500);
          await new Promise((resolve) => setTimeout(resolve, idle));
        } else idle = 0;
      }
    } finally {
      if (onEvent) emitter.off('*', listener);
    }
  }

  return {
    storage,
    jobs,
    processor,
    events: emitter,
    progress,
    crawl,
    async map(url, mapOptions) {
      const { mapSite } = await import('./map.js');
      return mapSite({ fetcher: getFetcher, userAgent: settings.fetch.userAgent, maxLinksPerPage: settings.maxLinksPerPage, checkHost }, url, mapOptions);
    },
    async close() {
      const current = fetcher;
      fetcher = null;
      // A render asked for after close() fails (transiently: the page is retried by another engine)
      // rather than starting a browser nobody would close.
      if (renderSettings !== undefined) closed = true;
      const browser = renderer;
      renderer = null;
      await Promise.all([current?.close(), browser?.close()]);
    },
  };
}
