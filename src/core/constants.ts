/**
 * The one source of the names a job, its events and its options can take, and of the named
 * defaults. Dependency-free on purpose: the browser client and the React hook import it too, so
 * nothing here may import anything else.
 */

/** Lifecycle of a crawl job, in order. `completed`, `cancelled` and `failed` are terminal. */
export const JOB_STATUSES = ['queued', 'running', 'completed', 'cancelled', 'failed'] as const;

/** The statuses a job never leaves. */
export const TERMINAL_STATUS_LIST = ['completed', 'cancelled', 'failed'] as const satisfies ReadonlyArray<(typeof JOB_STATUSES)[number]>;

/** Which discovered links a job may follow, compared with its start URL. */
export const CRAWL_SCOPES = ['same-origin', 'same-hostname', 'same-domain', 'any'] as const;

/** The scope a job gets when it names none. */
/** What a result carries besides its metadata (`JobOptions.formats`). */
export const RESULT_FORMATS = ['metadata', 'links', 'text', 'markdown', 'html'] as const;
/** How a job uses the site's sitemaps (`JobOptions.sitemap`). */
export const SITEMAP_MODES = ['include', 'only', 'skip'] as const;

/** When a job's pages are rendered in a browser: `never` (default), `always`, or `auto` (pages that look client-rendered). */
export const RENDER_MODES = ['never', 'always', 'auto'] as const;
/** What a render waits for after the document arrived. */
export const RENDER_WAITS = ['load', 'networkidle'] as const;

/** What a webhook can announce (`JobOptions.webhook.events`), in the order a job can cause them. */
export const WEBHOOK_EVENTS = ['job.started', 'page', 'job.completed', 'job.failed', 'job.cancelled'] as const;

export const DEFAULT_SCOPE = 'same-hostname' satisfies (typeof CRAWL_SCOPES)[number];

/** Progress event types, in the order a job can emit them; `progress` is a snapshot sent in place of trimmed history. */
export const PROGRESS_EVENT_TYPES = [
  'job:created',
  'job:started',
  'page:done',
  'page:failed',
  'page:skipped',
  'job:completed',
  'job:cancelled',
  'job:failed',
  'progress',
] as const;

/** The event types that end a job's event stream. */
export const TERMINAL_EVENT_LIST = ['job:completed', 'job:cancelled', 'job:failed'] as const satisfies ReadonlyArray<(typeof PROGRESS_EVENT_TYPES)[number]>;

/**
 * The skip rule: a page whose error has one of these codes counts as skipped (not fetched, not
 * failed, no place under `maxPages`). Every adapter applies it: memory and KV read this list, the
 * Postgres SQL is generated from it.
 */
export const SKIP_CODE_LIST = ['robots'] as const;

/**
 * Time budgets, in milliseconds, of one unit of processing. Each is a default of a different
 * caller, sized to the place it runs in; they are named here so that a reader sees them side by side.
 */
export const BUDGETS = {
  /** `processor.run()` called directly (a script, a test, a cron job): leaves 10 s of a 60 s function. */
  runMs: 50_000,
  /** The plain HTTP handler's `POST /process` (`processBudgetMs`). */
  httpProcessMs: 50_000,
  /** The Next.js route's `POST /process`: under a 60 s Vercel function with time to answer and chain. */
  nextProcessMs: 40_000,
  /** Work done in Next.js `after()` once a job is created (`afterBudgetMs`), shorter than a request's limit. */
  nextAfterMs: 25_000,
  /** One pass of `processor.start()`'s worker loop, before it yields and claims again. */
  workerPassMs: 30_000,
} as const;

/** The longest sitemap `<lastmod>` a frontier entry keeps (`FrontierLink.lastmod`); longer ones are cut. */
export const LASTMOD_MAX_LENGTH = 64;
