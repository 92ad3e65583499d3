import {
  type CRAWL_SCOPES,
  type JOB_STATUSES,
  type PROGRESS_EVENT_TYPES,
  type RESULT_FORMATS,
  type RENDER_MODES,
  type SITEMAP_MODES,
  type WEBHOOK_EVENTS,
  SKIP_CODE_LIST,
  TERMINAL_EVENT_LIST,
  TERMINAL_STATUS_LIST,
} from './constants.js';

/** Lifecycle of a crawl job. `completed`, `cancelled` and `failed` are terminal. */
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Which discovered links a job may follow, compared with its start URL. */
export type CrawlScope = (typeof CRAWL_SCOPES)[number];

/**
 * What a result carries besides its metadata: `metadata` (title, description, canonical, link and
 * word counts: always there), `links` (`PageResult.outlinks`), `text`, `markdown` and `html`.
 */
export type ResultFormat = (typeof RESULT_FORMATS)[number];

/** How a job uses the site's sitemaps: `include` them with the links, `only` them, or `skip` them. */
export type SitemapMode = (typeof SITEMAP_MODES)[number];

/** What a webhook can announce: a job's start, batches of its pages, its end. */
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** Where a job's events are posted (`JobOptions.webhook`). */
export interface JobWebhook {
  /** The receiver; the private-network guard applies to it as to pages. */
  url: string;
  /** The events posted (default all of them). */
  events: WebhookEvent[];
  /**
   * The job's own signing secret (`whsec_…`), when it has one; else the engine's `webhooks.secret`
   * signs. Kept in storage, never returned by `jobs.get`, `jobs.list` or the HTTP API.
   */
  secret?: string;
}

/** A job's options after validation and defaults. */
export interface JobOptions {
  /**
   * The most pages the job fetches, and exactly that many when it can reach more. A page counts as
   * fetched when a processor tried to fetch it: every result except a robots.txt skip, whatever
   * the outcome (any HTTP status, a timeout, a network error, a refused address, a page abandoned
   * after its attempts ran out); `succeeded + failed` never exceeds it. URLs robots.txt disallows
   * are not fetched and do not count: up to `maxPages` of them found as links are recorded as
   * skipped (error `robots`), and up to `maxPages` admitted before their robots.txt was known give
   * their place back when skipped. Past those bounds, or when a site changes its robots.txt during
   * the job, fewer than `maxPages` may be fetched; never more.
   */
  maxPages: number;
  /** Link hops from the start URL (depth 0) that are still fetched. */
  maxDepth: number;
  scope: CrawlScope;
  /** URL globs; when non-empty a discovered URL must match one of them. */
  include: string[];
  /** URL globs; a discovered URL that matches one is skipped. */
  exclude: string[];
  respectRobots: boolean;
  /** Retries of a transient failure (network, timeout, 408/425/429/5xx) before the page fails. */
  maxRetries: number;
  /** Requests in flight to one host at once, across all processors. */
  perHostConcurrency: number;
  /**
   * Pause between the end of one request to a host and the start of the next (raised by
   * robots.txt `Crawl-delay`). A delay above 0 also means one request at a time to that host.
   */
  perHostDelayMs: number;
  /**
   * Admission order (-1000 to 1000, default 0): **higher runs first**, as in pg-boss. A claim across
   * jobs starts queued jobs, while fewer than the engine's `maxActiveJobs` are running, in order of
   * priority (highest first), then creation (oldest first). Every job created by this version has
   * it; jobs created before priorities existed have none stored (hence optional): read it as 0.
   */
  priority?: number;
  /**
   * What each result carries besides its metadata (default `['metadata']`). Jobs created before
   * formats existed have none stored: read it as `['metadata']`.
   */
  formats?: ResultFormat[];
  /**
   * With `text` or `markdown`: keep only the page's main content, dropping navigation, headers,
   * footers, sidebars, cookie banners and ads, as reader views do (default true).
   */
  onlyMainContent?: boolean;
  /**
   * `include`: URLs listed in the site's sitemaps (robots.txt `Sitemap:` lines, else
   * `/sitemap.xml`) are crawled with the links found, at depth 0 like the start URL; `only`: the
   * start URL and its sitemaps' URLs, no links followed; `skip` (default, and for jobs created
   * before sitemaps were read): sitemaps are not read.
   */
  sitemap?: SitemapMode;
  /**
   * Where the job's events are posted, signed per Standard Webhooks, from the storage's outbox
   * (at least once, retried with backoff). Absent: no webhook.
   */
  webhook?: JobWebhook;
  /**
   * Set on a recrawl (`engine.jobs.recrawl()`): the id of the job it crawls again. Its pages are
   * fetched with conditional requests from that job's stored validators, its frontier starts with
   * that job's URLs, and each result says how the page changed (`PageResult.change`). Absent on
   * other jobs.
   */
  recrawlOf?: string;
  /**
   * A cron expression (5 fields, or 6 with seconds first): when the job has completed or failed
   * and the next time it names has come, a processor run starts its recrawl, which carries the
   * schedule on. Absent: no schedule.
   */
  schedule?: string;
  /** The IANA time zone `schedule` is read in (absent: UTC). */
  scheduleTimezone?: string;
  /**
   * Whether pages are rendered in a browser (the engine's `render` option) before they are read:
   * `never` (default, and for jobs created before rendering existed), `always`, or `auto`: only
   * pages whose fetched HTML looks like a client-rendered shell (see `looksClientRendered`).
   */
  render?: RenderMode;
  /** What a render waits for after the document arrived: `load` (default) or `networkidle`, within the engine's `render.waitMs`. */
  renderWait?: 'load' | 'networkidle';
  /** A render also waits until an element matches this CSS selector (within `render.waitMs`). */
  renderSelector?: string;
}

/** When a job's pages are rendered in a browser (`JobOptions.render`). */
export type RenderMode = (typeof RENDER_MODES)[number];

/**
 * Counters kept by storage, updated atomically with every state change. They add up:
 * `discovered = queued + inProgress + succeeded + failed + skipped`.
 */
export interface JobCounts {
  /**
   * URLs admitted to the job (the start URL included), skipped ones too: at most `maxPages` to
   * fetch, plus the robots.txt-disallowed ones recorded without a charge (at most `maxPages` found
   * as links, and at most `maxPages` refunded when skipped after admission), so never above
   * 3 × `maxPages`.
   */
  discovered: number;
  /** Waiting to be fetched (including ones waiting out a retry backoff). */
  queued: number;
  /** Claimed by a processor and not yet finished. */
  inProgress: number;
  /** Fetched, and stored without error. `succeeded + failed` (pages fetched) never exceeds `maxPages`. */
  succeeded: number;
  /** Fetched (or tried), and failed: any error code but `robots`. */
  failed: number;
  /**
   * Not fetched because robots.txt disallows them (error code `robots`); they do not use up
   * `maxPages`, within the bounds described there.
   */
  skipped: number;
}

export interface ErrorInfo {
  code: string;
  message: string;
}

export interface Job {
  id: string;
  status: JobStatus;
  url: string;
  options: JobOptions;
  counts: JobCounts;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: ErrorInfo | null;
  metadata: Record<string, unknown>;
}

/** Error codes a page result can carry. */
export type PageErrorCode =
  | 'timeout'
  | 'too_large'
  /** Past a parse bound: more than 1,000,000 HTML nodes, or more than 10 s of parsing. */
  | 'too_complex'
  | 'redirect_loop'
  | 'too_many_redirects'
  | 'bad_redirect'
  | 'http_error'
  | 'network'
  | 'blocked'
  | 'not_html'
  | 'robots'
  | 'extract_error'
  /** The page could not be rendered (`render`): the browser crashed, could not start, or the render took longer than `render.timeoutMs`. */
  | 'render_failed'
  /** Its attempts were used up by processors that stopped (or lost the lease) before storing a result. */
  | 'abandoned';

/** Error codes that count a page as skipped rather than failed. */
export const SKIP_CODES: ReadonlySet<string> = new Set(SKIP_CODE_LIST);

/** A link found on a page (`formats: ['links']`). */
export interface PageLink {
  /** Absolute and normalised, as the crawler would fetch it. */
  url: string;
  /** The anchor's text, whitespace collapsed (at most 500 characters); '' when it has none. */
  text: string;
  /** The `rel` attribute as written (e.g. `nofollow`), or null. */
  rel: string | null;
  /** Whether the job's scope includes it (same host as the start URL, by default). */
  internal: boolean;
}

/**
 * A link of a job's page with the outcome of its target (`engine.jobs.links()`): the target's
 * result's status and error, or nulls when the job has no result for it (a link outside the
 * job's scope, past `maxDepth` or `maxPages`, or not crawled yet).
 */
export interface JobLink extends PageLink {
  /** The `url` of the result (the page) the link is on. */
  from: string;
  /** HTTP status of the target's result, or null (no result, or no answer). */
  status: number | null;
  /** Error of the target's result, or null. */
  error: ErrorInfo | null;
}

export interface PageResult {
  url: string;
  finalUrl: string;
  depth: number;
  /** HTTP status of the final response, or null when none arrived. */
  status: number | null;
  ok: boolean;
  contentType: string | null;
  title: string | null;
  description: string | null;
  canonical: string | null;
  /** How many distinct crawlable links the page had (before scope and depth filters). */
  links: number;
  wordCount: number;
  error: (ErrorInfo & { code: PageErrorCode | (string & {}) }) | null;
  attempts: number;
  durationMs: number;
  fetchedAt: string;
  data: unknown;
  /** The page's links, in document order (`formats` has `links`). */
  outlinks?: PageLink[];
  /** The page's text, main content only unless `onlyMainContent: false` (`formats` has `text`). */
  text?: string | null;
  /** The page as markdown, main content only unless `onlyMainContent: false` (`formats` has `markdown`). */
  markdown?: string | null;
  /** The HTML as fetched, decoded to text (`formats` has `html`). */
  html?: string | null;
  /**
   * Fields cut at their size cap (`text`, `markdown` and `html` at 1,000,000 characters,
   * `outlinks` at 5,000 links); a cut text also ends with a line saying so.
   */
  truncated?: string[];
  /** The `<lastmod>` a sitemap gave for this URL, when the job read sitemaps and found one. */
  lastmod?: string | null;
  /** On the start URL's result of a job with `sitemap: 'include' | 'only'`: what reading its sitemaps found. */
  sitemaps?: SitemapSummary;
  /** The response's `ETag` header (at most 512 characters), sent back as `If-None-Match` by a recrawl. */
  etag?: string | null;
  /** The response's `Last-Modified` header (at most 128 characters), sent back as `If-Modified-Since` by a recrawl. */
  lastModified?: string | null;
  /**
   * SHA-256 (hex) of what the page says: its title, description, text (as the word count reads
   * it) and links. Two fetches with the same hash have the same metadata and links. A recrawl's
   * 304 keeps the previous one. Null for a page without HTML.
   */
  contentHash?: string | null;
  /**
   * On a recrawl's results only: how the page compares with the job it crawls again. `new`: no
   * result there; `unchanged`: a 304 answer to the conditional request, or the same
   * `contentHash` (or, for a page that failed both times, the same status and error code);
   * `changed`: anything else; `gone`: 404 or 410 now, a 2xx answer before.
   */
  change?: ResultChange;
  /**
   * On an unchanged page of a recrawl whose formats include `links`, `text`, `markdown` or
   * `html`: the id of the job whose result holds those fields. They are stored once, there, and
   * filled in by every read (`jobs.results`, `jobs.links`, the exports, the HTTP API). Not set
   * by a processor whose engine has `retention`: it stores a copy instead.
   */
  contentFrom?: string;
  /** True when the page's HTML is what a browser rendered (`render: 'always'`, or `'auto'` on a page that looked client-rendered). */
  rendered?: boolean;
}

/** How a recrawl's page compares with the job it crawls again (`PageResult.change`). */
export type ResultChange = 'new' | 'changed' | 'unchanged' | 'gone';

/** What reading a site's sitemaps found (`PageResult.sitemaps`, `engine.map()`). */
export interface SitemapSummary {
  /** The sitemap files read, in order. */
  read: string[];
  /** URLs listed that passed the job's scope and globs (each once). */
  urls: number;
  /** True when more URLs were listed than kept (at most 2 × `maxPages`, and 50,000, for a job). */
  truncated: boolean;
  /**
   * What went wrong, each with the sitemap's URL (at most 50): fetch errors as pages have them
   * (`http_error`, `timeout`, `too_large` past 50 MB, `blocked`…), `invalid_sitemap` (not a sitemap,
   * or it declares XML entities), `too_many_urls` (past 50,000 in one file), `sitemap_loop`,
   * `too_deep` (indexes nested past 3), `too_many_sitemaps` (past 50 files), `timeout` (the
   * reading's time ran out: 30 s for a job).
   */
  errors: Array<ErrorInfo & { url: string }>;
}

/** Progress event types; `progress` is a snapshot sent in place of trimmed history. */
export type ProgressEventType = (typeof PROGRESS_EVENT_TYPES)[number];

export interface ProgressEvent {
  /** Increases per job; usable as an SSE `id` / `Last-Event-ID`. */
  id: string;
  jobId: string;
  type: ProgressEventType;
  at: string;
  counts: JobCounts;
  url?: string;
  error?: ErrorInfo;
}

/** The event types that end a job's event stream. */
export const TERMINAL_EVENTS: ReadonlySet<ProgressEventType> = new Set(TERMINAL_EVENT_LIST);

/** The statuses a job never leaves. */
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(TERMINAL_STATUS_LIST);

/** A page of a cursor-paginated listing. */
export interface Paginated<T> {
  items: T[];
  nextCursor: string | null;
}

/** What one `processor.run()` did. */
export interface RunReport {
  claimed: number;
  succeeded: number;
  failed: number;
  /** Pages skipped for robots.txt: claimed ones, and disallowed links recorded with the pages stored. */
  skipped: number;
  retried: number;
  released: number;
  durationMs: number;
  jobsTouched: string[];
  /** Storage errors that ended the run early; the URLs involved return to the queue when their leases expire. */
  errors: string[];
  /**
   * Present when the run swept finished jobs (the engine's `retention` option): how many it
   * deleted, and the error of a sweep that failed (a failed sweep never fails the run; the next
   * one tries again).
   */
  retention?: { deleted: number; error?: string };
  /**
   * What the run did for webhooks (present when the storage has a webhook outbox): deliveries
   * enqueued, delivered, to be retried, given up, and storage errors.
   */
  webhooks?: { enqueued: number; delivered: number; retried: number; failed: number; errors: string[] };
}

/** A job as a webhook carries it (`job.*` events): no options (they may hold the signing secret). */
export type WebhookJobSummary = Pick<Job, 'id' | 'status' | 'url' | 'counts' | 'createdAt' | 'startedAt' | 'finishedAt' | 'error' | 'metadata'>;

/**
 * A page as a `page` webhook carries it: its metadata (with `change` and `contentHash` on a
 * recrawl's pages); its content is read from the API.
 */
export type WebhookPage = Pick<
  PageResult,
  | 'url'
  | 'finalUrl'
  | 'depth'
  | 'status'
  | 'ok'
  | 'contentType'
  | 'title'
  | 'description'
  | 'canonical'
  | 'links'
  | 'wordCount'
  | 'error'
  | 'attempts'
  | 'durationMs'
  | 'fetchedAt'
  | 'contentHash'
  | 'change'
>;

/** The JSON body of a webhook delivery (Standard Webhooks' `{ type, timestamp, data }`). */
export type WebhookPayload =
  | { type: 'job.started' | 'job.completed' | 'job.failed' | 'job.cancelled'; timestamp: string; data: { job: WebhookJobSummary } }
  | { type: 'page'; timestamp: string; data: { jobId: string; pages: WebhookPage[] } };
