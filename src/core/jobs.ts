/**
 * Job input schema and the `engine.jobs` API: create, get, cancel, delete, list, results.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { CRAWL_SCOPES, DEFAULT_SCOPE, JOB_STATUSES, RENDER_MODES, RENDER_WAITS, RESULT_FORMATS, SITEMAP_MODES, WEBHOOK_EVENTS } from './constants.js';
import { CrawlEngineError, fieldErrors, invalid } from './errors.js';
import { type ListLinksOptions, listLinks, parseLinksOptions } from './links.js';
import type { CrawlStorage, WebhookDelivery } from './storage.js';
import { jobWebhookSchema } from './webhooks/options.js';
import { isWellFormed, jsonProblem } from '../crawl/text.js';
import { fillContent } from './recrawl.js';
import { checkSchedule, longestScheduleGapMs, MAX_SCHEDULE_LENGTH, SCHEDULE_EVENT, scheduledJobId } from './schedule.js';
import type { Job, JobLink, JobOptions, JobStatus, JobWebhook, Paginated, PageResult, ProgressEvent, WebhookEvent } from './types.js';
import { TERMINAL_STATUSES } from './types.js';
import { crawlableUrl, homographReason, MAX_URL_LENGTH, normalizeUrl } from '../crawl/url.js';

// NUL characters and lone surrogates cannot be stored by Postgres (text, jsonb) and are never
// meaningful here: refused on every adapter alike.
const noNul = (value: string) => !value.includes('\u0000');
const NUL_MESSAGE = 'expected no NUL (\\u0000) characters';
const SURROGATE_MESSAGE = 'expected well-formed Unicode text (no lone surrogates such as \\ud800)';

const glob = z
  .string()
  .min(1, 'expected a non-empty glob')
  .max(1000, 'expected at most 1000 characters')
  .refine(noNul, NUL_MESSAGE)
  .refine(isWellFormed, SURROGATE_MESSAGE);

/** Bounds of `metadata`, checked before anything recursive (JSON, storage) touches it. */
export const METADATA_LIMITS = { maxBytes: 16_384, maxDepth: 20, maxKeys: 1000 } as const;

const metadata = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  const found = jsonProblem(value, METADATA_LIMITS);
  if (found !== null) {
    ctx.addIssue({ code: 'custom', path: found.path === '' ? [] : found.path.split('.'), message: found.message });
    return;
  }
  if (JSON.stringify(value).length > METADATA_LIMITS.maxBytes)
    ctx.addIssue({ code: 'custom', message: `expected at most ${METADATA_LIMITS.maxBytes / 1024} kB of JSON` });
});

/** The job input accepted by `jobs.create` and `POST /jobs`. Unknown fields are refused. */
export const jobInputSchema = z.strictObject({
  url: z
    .string({ error: 'expected a string URL' })
    .max(MAX_URL_LENGTH, `expected at most ${MAX_URL_LENGTH} characters`)
    .refine(noNul, NUL_MESSAGE)
    .refine(isWellFormed, SURROGATE_MESSAGE)
    .refine((value) => normalizeUrl(value) !== null, 'expected an absolute http(s) URL')
    .refine((value) => !/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value.trim()), 'expected a URL without credentials (user:password@)')
    .superRefine((value, ctx) => {
      const url = crawlableUrl(value);
      const reason = url === null ? null : homographReason(url.hostname);
      if (reason !== null) ctx.addIssue({ code: 'custom', message: `expected a host name that is not a look-alike: ${reason}` });
    }),
  /**
   * The most pages the job fetches (1–1,000,000; default 50), and exactly that many when it can
   * reach more. Fetched means a processor tried: every result but a robots.txt skip counts, whatever
   * the outcome (any HTTP status, a timeout, a network error). URLs robots.txt disallows are not
   * fetched and do not count; up to `maxPages` of them are recorded as skipped results.
   */
  maxPages: z.int().min(1).max(1_000_000).default(50),
  maxDepth: z.int().min(0).max(1000).default(2),
  scope: z.enum(CRAWL_SCOPES).default(DEFAULT_SCOPE),
  include: z.array(glob).max(100).default([]),
  exclude: z.array(glob).max(100).default([]),
  respectRobots: z.boolean().default(true),
  maxRetries: z.int().min(0).max(10).default(2),
  perHostConcurrency: z.int().min(1).max(100).default(2),
  perHostDelayMs: z.int().min(0).max(600_000).default(0),
  /**
   * Admission order, an integer from -1000 to 1000 (default 0): higher runs first. Queued jobs are
   * started in order of priority, then creation, while fewer than the engine's `maxActiveJobs` run.
   */
  priority: z.int().min(-1000).max(1000).default(0),
  /**
   * What each result carries besides its metadata: any of `metadata`, `links`, `text`,
   * `markdown`, `html` (default `['metadata']`, the cheapest).
   */
  formats: z
    .array(z.enum(RESULT_FORMATS))
    .max(RESULT_FORMATS.length)
    .refine((list) => new Set(list).size === list.length, 'expected each format at most once')
    .default(['metadata']),
  /** With `text` or `markdown`: only the page's main content (default true). */
  onlyMainContent: z.boolean().default(true),
  /** Read the site's sitemaps: `include`, `only` or `skip` (default). */
  sitemap: z.enum(SITEMAP_MODES).default('skip'),
  /**
   * Where the job's events are posted: `{ url, events?, secret? }` (Standard Webhooks signatures).
   * `null`: none, even when the engine has a default `webhooks.url`.
   */
  webhook: jobWebhookSchema.nullable().optional(),
  /**
   * Recrawl the job on a schedule: a cron expression (5 fields, `minute hour day month weekday`,
   * or 6 with seconds first; e.g. `0 3 * * *` for 03:00 every day), read by croner. When the job
   * has ended (completed or failed; a cancelled job's schedule stops) and the next time the
   * expression names has come, a processor run starts `jobs.recrawl()` of it, which carries the
   * schedule on. Needs a storage with the outbox and `getResults` (every built-in adapter).
   */
  schedule: z
    .string({ error: 'expected a cron expression string' })
    .max(MAX_SCHEDULE_LENGTH, `expected at most ${MAX_SCHEDULE_LENGTH} characters`)
    .refine(noNul, NUL_MESSAGE)
    .optional(),
  /** The time zone `schedule` is read in: an IANA name such as `Europe/Paris` (default UTC). */
  scheduleTimezone: z
    .string({ error: 'expected an IANA time zone name' })
    .min(1)
    .max(64, 'expected at most 64 characters')
    .refine(noNul, NUL_MESSAGE)
    .optional(),
  /**
   * Render pages in a browser before reading them (needs an engine made with the `render` option):
   * `never` (default), `always`, or `auto`: only pages whose fetched HTML looks like a
   * client-rendered shell (a script, and almost no text or an empty `#root`/`#app`/`#__next`).
   */
  render: z.enum(RENDER_MODES).default('never'),
  /** What a render waits for after the document arrived: `load` (default) or `networkidle`, within the engine's `render.waitMs`. */
  renderWait: z.enum(RENDER_WAITS).optional(),
  /** A render also waits until an element matches this CSS selector (within the engine's `render.waitMs`). */
  renderSelector: z
    .string({ error: 'expected a CSS selector string' })
    .min(1)
    .max(500, 'expected at most 500 characters')
    .refine(noNul, NUL_MESSAGE)
    .optional(),
  metadata: metadata.optional(),
});

/** What `jobs.create` accepts. */
export type JobInput = z.input<typeof jobInputSchema>;

/** A job option a recrawl keeps: any value given is refused, naming it. */
const fixed = (name: string) =>
  z
    .unknown()
    .refine((value) => value === undefined, `cannot be changed by a recrawl (it keeps the earlier job's ${name}); create a new job instead`)
    .optional();

/**
 * Options a recrawl may change (`jobs.recrawl(id, overrides)`): all but `url`, `formats` and
 * `onlyMainContent`, which decide what its unchanged pages share with the job crawled again.
 * Unknown fields, and those three, are refused naming the field.
 */
export const recrawlOverridesSchema = z.strictObject({
  maxPages: jobInputSchema.shape.maxPages.removeDefault().optional(),
  maxDepth: jobInputSchema.shape.maxDepth.removeDefault().optional(),
  scope: jobInputSchema.shape.scope.removeDefault().optional(),
  include: jobInputSchema.shape.include.removeDefault().optional(),
  exclude: jobInputSchema.shape.exclude.removeDefault().optional(),
  respectRobots: jobInputSchema.shape.respectRobots.removeDefault().optional(),
  maxRetries: jobInputSchema.shape.maxRetries.removeDefault().optional(),
  perHostConcurrency: jobInputSchema.shape.perHostConcurrency.removeDefault().optional(),
  perHostDelayMs: jobInputSchema.shape.perHostDelayMs.removeDefault().optional(),
  priority: jobInputSchema.shape.priority.removeDefault().optional(),
  sitemap: jobInputSchema.shape.sitemap.removeDefault().optional(),
  render: jobInputSchema.shape.render.removeDefault().optional(),
  renderWait: jobInputSchema.shape.renderWait,
  renderSelector: jobInputSchema.shape.renderSelector,
  /** Replaces the earlier job's webhook (default: the earlier job's; `null`: none). */
  webhook: jobInputSchema.shape.webhook,
  /**
   * A schedule for the recrawl (default: none: a recrawl started by hand does not take the
   * earlier job's schedule, so that the schedule goes on in one line of jobs only).
   */
  schedule: jobInputSchema.shape.schedule.nullable(),
  scheduleTimezone: jobInputSchema.shape.scheduleTimezone.nullable(),
  /** Replaces the earlier job's metadata (default: the earlier job's). */
  metadata: metadata.optional(),
  url: fixed('url'),
  formats: fixed('formats'),
  onlyMainContent: fixed('onlyMainContent'),
});

/** What `jobs.recrawl` accepts besides the job id: options that differ from the earlier job's. */
export type RecrawlOverrides = z.input<typeof recrawlOverridesSchema>;

export interface ListJobsOptions {
  status?: JobStatus;
  /** @default 20 (at most 100) */
  limit?: number;
  cursor?: string | null;
}

/** Most results a page of `jobs.results` holds for a job with `text`, `markdown` or `html`. */
export const CONTENT_RESULTS_PAGE = 25;

export interface ListResultsOptions {
  /** @default 100 (at most 1000; at most 25 are returned for a job with `text`, `markdown` or `html`) */
  limit?: number;
  cursor?: string | null;
}

const statusSchema = z.enum(JOB_STATUSES);
const cursorSchema = z.string().max(200).nullable().optional();
const listJobsSchema = z.strictObject({
  status: statusSchema.optional(),
  limit: z.int().min(1).max(100).default(20),
  cursor: cursorSchema,
});
const listResultsSchema = z.strictObject({
  limit: z.int().min(1).max(1000).default(100),
  cursor: cursorSchema,
});

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid('invalid_input', what, fieldErrors(parsed.error.issues));
  return parsed.data;
}

export function parseJobInput(input: unknown): z.output<typeof jobInputSchema> {
  return parse(jobInputSchema, input, 'job input');
}

function timezoneWithoutSchedule(): CrawlEngineError {
  return invalid('invalid_input', 'job input', [{ path: 'scheduleTimezone', message: 'expected only with a schedule' }]);
}

/** Job ids are URL-safe so they can sit in paths and storage keys without escaping. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

function newJobId(): string {
  return `job_${randomBytes(12).toString('base64url')}`;
}

export interface JobsApi {
  /** Validates the input, stores the job and its start URL, and returns it (`queued`). */
  create(input: JobInput): Promise<Job>;
  get(id: string): Promise<Job | null>;
  /**
   * A new job (`queued`) over the same site with the same options (but `overrides`), that crawls
   * the finished job `id` again cheaply: its frontier starts with that job's URLs at their depths,
   * each page is fetched with a conditional request (`If-None-Match` / `If-Modified-Since` from the
   * stored `etag` / `lastModified`), and each result says how the page changed (`change`: `new`,
   * `changed`, `unchanged`, `gone`). An unchanged page keeps the earlier metadata, and its `links`,
   * `text`, `markdown` and `html` stay stored once, in the job that holds them (`contentFrom`),
   * filled in by every read. `options.recrawlOf` of the new job is `id`.
   *
   * Throws `invalid_input` naming `id` or the override at fault (`url`, `formats` and
   * `onlyMainContent` cannot change), `not_found`, `conflict` for a job that is not finished
   * (queued or running), and `unsupported` when the storage has no `getResults()`.
   */
  recrawl(id: string, overrides?: RecrawlOverrides): Promise<Job>;
  /** Idempotent; no URL of a cancelled job is fetched afterwards. Throws `not_found`. */
  cancel(id: string): Promise<Job>;
  /**
   * Deletes the job with its results, events, frontier and robots.txt records; true if it existed,
   * false if there was no such job. A queued or running job is cancelled first: `job:cancelled` is
   * emitted, and its pages still in flight are not stored. Throws `invalid_input` naming `id` for
   * an id that is not one, and `unsupported` when the storage has no `deleteJob()`.
   *
   * A job with `links`, `text`, `markdown` or `html` that a recrawl crawled again may hold content
   * the recrawl's unchanged pages point to: while such a recrawl exists, deleting the job is refused
   * with `conflict` naming it (delete the newest recrawl first). Finding them reads the list of
   * jobs, so it takes a call per 100 jobs stored; jobs with only `metadata` skip it (their recrawls
   * point to nothing).
   */
  delete(id: string): Promise<boolean>;
  list(options?: ListJobsOptions): Promise<Paginated<Job>>;
  /**
   * Stored page results in the order they were stored. A job whose `formats` include `text`,
   * `markdown` or `html` lists at most {@link CONTENT_RESULTS_PAGE} results a page whatever the
   * `limit` (each may carry a million characters of each), so a page stays within tens of MB; follow
   * `nextCursor` as always.
   */
  results(id: string, options?: ListResultsOptions): Promise<Paginated<PageResult>>;
  /**
   * The links of the job's pages (a job created with the `links` format; else `invalid_input`
   * naming `formats`), in the order their pages were stored and then document order, each with
   * the status and error of its target's result. `broken: true` keeps those whose target failed
   * (an HTTP 4xx/5xx, or no 2xx answer at all; never a robots.txt skip). Every call reads the
   * job's results once to learn its targets' outcomes, keeping those of failed targets only with
   * `broken: true` (all of them without), then the pages from the cursor on until it has `limit`
   * links (and one more, to know there are more).
   */
  links(id: string, options?: ListLinksOptions): Promise<Paginated<JobLink>>;
  /**
   * The job's webhook deliveries in the order they were enqueued, with their state (`pending`,
   * `delivered`, `failed`), attempts, next try and last error. Throws `not_found` for an unknown
   * job, `unsupported` when the storage has no webhook outbox.
   */
  deliveries(id: string, options?: ListDeliveriesOptions): Promise<Paginated<WebhookDelivery>>;
}

/** The jobs API and what the processors need of it for schedules (not part of `engine.jobs`). */
export interface JobsApiWithSchedules extends JobsApi {
  /**
   * Starts the recrawl a schedule's outbox entry stands for, under an id derived from the entry's
   * (so a second try finds it started): `started` (now or before), or `gone` when the job is no
   * more (or has no schedule). Throws what `jobs.create` would (the webhook checked again).
   */
  recrawlScheduled(entry: { id: string; jobId: string }): Promise<'started' | 'gone'>;
}

export interface ListDeliveriesOptions {
  /** @default 100 (at most 1000) */
  limit?: number;
  cursor?: string | null;
}

/** The engine's webhook settings the jobs API applies when a job is created. */
export interface JobWebhookDefaults {
  /** The endpoint of jobs that name none (`webhooks.url`). */
  url?: string;
  events?: WebhookEvent[];
  /** Whether the engine signs with a secret of its own (`webhooks.secret`). */
  hasSecret: boolean;
  /** Whether the engine was made with the `webhooks` option (its processors deliver webhooks). */
  enabled?: boolean;
}

/** The job as the API returns it: the webhook's secret stays in storage. */
export function publicJob(job: Job): Job {
  const webhook = job.options.webhook;
  if (webhook?.secret === undefined) return job;
  const { secret: _secret, ...rest } = webhook;
  return { ...job, options: { ...job.options, webhook: rest } };
}

/** Whether a job's results carry content a recrawl's unchanged results may point to. */
function holdsContentFormats(job: Job): boolean {
  return (job.options.formats ?? []).some((format) => format !== 'metadata');
}

function badId(id: unknown, what: string): CrawlEngineError {
  const got = typeof id === 'string' ? JSON.stringify(id.slice(0, 80)) : typeof id;
  return invalid('invalid_input', `${what} arguments`, [{ path: 'id', message: `expected a job id (1 to 64 letters, digits, _ and -), got ${got}` }]);
}

export function createJobsApi(
  storage: CrawlStorage,
  emit: (events: ProgressEvent[]) => void,
  now: () => number,
  /** A refusal reason for a start URL's host (an IP literal the fetcher would refuse), or null. */
  checkHost: (hostname: string) => string | null = () => null,
  webhookDefaults: JobWebhookDefaults = { hasSecret: false },
  /** The engine's `retention.finishedJobsMaxAgeMs`: a schedule must recrawl a job before it is deleted. */
  finishedJobsMaxAgeMs?: number,
  /** Whether the engine was made with the `render` option: a job that renders needs it. */
  canRender = true,
): JobsApiWithSchedules {
  /** Refuses `render: 'always' | 'auto'` on an engine that cannot render. */
  const checkRender = (options: { render?: string | undefined }) => {
    if (canRender || options.render === undefined || options.render === 'never') return;
    throw invalid('invalid_input', 'job input', [
      {
        path: 'render',
        message: `expected 'never' on an engine made without the render option (createCrawlEngine({ render: { executablePath } }) or render: { connect: { wsEndpoint } }; the CLI: --render with --chromium or --browser-ws)`,
      },
    ]);
  };
  /** The job's webhook with the engine's defaults applied, checked; undefined for none. */
  const resolveWebhook = (given: z.output<typeof jobWebhookSchema> | null | undefined): JobWebhook | undefined => {
    if (given === null) return undefined;
    const url = given?.url ?? webhookDefaults.url;
    if (url === undefined) return undefined;
    const refuse = (message: string, path = 'webhook') => invalid('invalid_input', 'job input', [{ path, message }]);
    const refused = checkHost(new URL(url).hostname);
    if (refused !== null) throw refuse(`expected an address the processors may post to: ${refused}`, 'webhook.url');
    if (given?.secret === undefined && !webhookDefaults.hasSecret) {
      throw refuse('expected a secret (whsec_…) to sign with, here or in createCrawlEngine({ webhooks: { secret } })', 'webhook.secret');
    }
    if (typeof storage.enqueueWebhookDeliveries !== 'function' || typeof storage.addWebhookJob !== 'function') {
      throw refuse(`expected a storage with a webhook outbox (${storage.name} has none)`);
    }
    if (webhookDefaults.enabled === false) {
      throw refuse(
        'expected an engine made with the webhooks option (createCrawlEngine({ webhooks: { secret } }), or webhooks: {} when jobs bring their own secret): its processors deliver them',
      );
    }
    return {
      url: normalizeUrl(url)!,
      events: [...(given?.events ?? webhookDefaults.events ?? WEBHOOK_EVENTS)],
      ...(given?.secret === undefined ? {} : { secret: given.secret }),
    };
  };

  return {
    async create(input) {
      const parsed = parseJobInput(input);
      const url = normalizeUrl(parsed.url)!;
      // A start URL the processors would refuse (http://127.0.0.1/, http://[::1]/, the cloud
      // metadata address) is refused now, before anything is stored.
      const refused = checkHost(new URL(url).hostname);
      if (refused !== null) throw invalid('invalid_input', 'job input', [{ path: 'url', message: `expected an address the processors may fetch: ${refused}` }]);
      const { metadata: meta, url: _url, webhook: givenWebhook, ...rest } = parsed;
      const webhook = resolveWebhook(givenWebhook);
      checkRender(rest);
      await checkScheduleOption(rest);
      return store(url, rest, webhook, meta ?? {});
    },

    async recrawl(id, overrides = {}) {
      if (typeof id !== 'string' || !JOB_ID_PATTERN.test(id)) throw badId(id, 'recrawl()');
      const parsed = parse(recrawlOverridesSchema, overrides ?? {}, 'recrawl overrides');
      if (typeof storage.getResults !== 'function') {
        throw new CrawlEngineError('unsupported', `the ${storage.name} storage cannot recrawl: it has no getResults()`);
      }
      const earlier = await storage.getJob(id);
      if (earlier === null) throw new CrawlEngineError('not_found', `job ${JSON.stringify(id)} does not exist`);
      if (!TERMINAL_STATUSES.has(earlier.status)) {
        throw new CrawlEngineError(
          'conflict',
          `job ${JSON.stringify(id)} is ${earlier.status}: only a finished job (completed, failed or cancelled) can be recrawled`,
        );
      }
      const { metadata: meta, url: _u, formats: _f, onlyMainContent: _o, webhook: givenWebhook, schedule, scheduleTimezone, ...changed } = parsed;
      const { webhook: earlierWebhook, schedule: _s, scheduleTimezone: _z, ...earlierOptions } = earlier.options;
      const options: JobOptions = {
        ...earlierOptions,
        ...(Object.fromEntries(Object.entries(changed).filter(([, v]) => v !== undefined)) as Partial<JobOptions>),
        ...(typeof schedule === 'string' ? { schedule } : {}),
        ...(typeof schedule === 'string' && typeof scheduleTimezone === 'string' ? { scheduleTimezone } : {}),
        recrawlOf: id,
      };
      if (typeof scheduleTimezone === 'string' && typeof schedule !== 'string') throw timezoneWithoutSchedule();
      // The merged options: an earlier job that rendered needs an engine that can, unless the overrides say never.
      checkRender(options);
      // The earlier job's webhook (secret included) unless the overrides name another or null;
      // checked again, as the engine or its defaults may have changed since.
      const webhook = resolveWebhook(givenWebhook === undefined ? earlierWebhook : givenWebhook);
      await checkScheduleOption(options);
      return store(earlier.url, options, webhook, meta ?? earlier.metadata);
    },

    async recrawlScheduled(entry) {
      const id = scheduledJobId(entry.id);
      const earlier = await storage.getJob(entry.jobId);
      if (earlier === null || earlier.options.schedule === undefined) return (await storage.getJob(id)) === null ? 'gone' : 'started';
      const { webhook: earlierWebhook, ...earlierOptions } = earlier.options;
      // The schedule goes on with the recrawl; the webhook is checked again.
      const webhook = resolveWebhook(earlierWebhook === undefined ? null : earlierWebhook);
      try {
        await store(earlier.url, { ...earlierOptions, recrawlOf: earlier.id }, webhook, earlier.metadata, id);
      } catch (error) {
        // Created by an earlier try of the entry (its processor stopped before settling it): the
        // storage's createJob refuses the id, and finishes what that try may have left half done.
        if (error instanceof CrawlEngineError && error.code === 'conflict') return 'started';
        throw error;
      }
      return 'started';
    },

    async get(id) {
      if (typeof id !== 'string' || !JOB_ID_PATTERN.test(id)) return null;
      const job = await storage.getJob(id);
      return job === null ? null : publicJob(job);
    },

    async cancel(id) {
      const notFound = () => new CrawlEngineError('not_found', `job ${JSON.stringify(id)} does not exist`);
      if (typeof id !== 'string' || !JOB_ID_PATTERN.test(id)) throw notFound();
      const { job, events } = await storage.cancelJob(id, now());
      if (job === null) throw notFound();
      emit(events);
      return publicJob(job);
    },

    async delete(id) {
      if (typeof id !== 'string' || !JOB_ID_PATTERN.test(id)) throw badId(id, 'delete()');
      if (typeof storage.deleteJob !== 'function') {
        throw new CrawlEngineError('unsupported', `the ${storage.name} storage cannot delete jobs: it has no deleteJob()`);
      }
      const job = await storage.getJob(id);
      if (job !== null && holdsContentFormats(job)) {
        const recrawl = await findRecrawl(id);
        if (recrawl !== null) {
          throw new CrawlEngineError(
            'conflict',
            `job ${JSON.stringify(id)} holds content that its recrawl ${JSON.stringify(recrawl)} points to: delete ${JSON.stringify(recrawl)} first`,
          );
        }
      }
      const { deleted, events } = await storage.deleteJob(id, now());
      emit(events);
      return deleted;
    },

    async list(options = {}) {
      const query = parse(listJobsSchema, options, 'list options');
      const page = await storage.listJobs(query);
      return { ...page, items: page.items.map(publicJob) };
    },

    async results(id, options = {}) {
      const query = parse(listResultsSchema, options, 'results options');
      const job = typeof id === 'string' && JOB_ID_PATTERN.test(id) ? await storage.getJob(id) : null;
      if (job === null) throw new CrawlEngineError('not_found', `job ${JSON.stringify(id)} does not exist`);
      const content = (job.options.formats ?? []).some((format) => format === 'text' || format === 'markdown' || format === 'html');
      const page = await storage.listResults(id, content ? { ...query, limit: Math.min(query.limit, CONTENT_RESULTS_PAGE) } : query);
      // A recrawl's unchanged pages point to the job holding their content: filled in here.
      if (job.options.recrawlOf === undefined || !holdsContentFormats(job)) return page;
      return { items: await fillContent(storage, job.options.formats, page.items), nextCursor: page.nextCursor };
    },

    async links(id, options = {}) {
      const query = parseLinksOptions(options);
      const job = typeof id === 'string' && JOB_ID_PATTERN.test(id) ? await storage.getJob(id) : null;
      if (job === null) throw new CrawlEngineError('not_found', `job ${JSON.stringify(id)} does not exist`);
      return listLinks(storage, job, query);
    },

    async deliveries(id, options = {}) {
      const query = parse(listResultsSchema, options, 'deliveries options');
      if (typeof storage.listWebhookDeliveries !== 'function') {
        throw new CrawlEngineError('unsupported', `the ${storage.name} storage has no webhook outbox`);
      }
      const job = typeof id === 'string' && JOB_ID_PATTERN.test(id) ? await storage.getJob(id) : null;
      if (job === null) throw new CrawlEngineError('not_found', `job ${JSON.stringify(id)} does not exist`);
      const page = await storage.listWebhookDeliveries(id, query);
      if (job.options.schedule === undefined) return page;
      // A schedule's entry shares the outbox but is not a webhook, and is not listed. A job has at
      // most one: a page that held it gets the next delivery instead, and a page followed by it
      // alone is the last.
      const isWebhook = (d: WebhookDelivery) => (d.event as string) !== SCHEDULE_EVENT;
      const items = page.items.filter(isWebhook);
      if (page.nextCursor === null) return { items, nextCursor: null };
      const next = await storage.listWebhookDeliveries(id, { limit: items.length < page.items.length ? 1 : 2, cursor: page.nextCursor });
      if (items.length < page.items.length) return { items: [...items, ...next.items.filter(isWebhook)], nextCursor: next.nextCursor };
      return { items, nextCursor: next.items.some(isWebhook) ? page.nextCursor : null };
    },
  };

  /**
   * Checks a job's schedule when it has one: the storage must have the outbox (where the schedule
   * waits) and getResults (recrawls), and croner must read it.
   */
  async function checkScheduleOption(options: JobOptions): Promise<void> {
    if (options.schedule === undefined) {
      if (options.scheduleTimezone !== undefined) throw timezoneWithoutSchedule();
      return;
    }
    const lacks =
      typeof storage.addWebhookJob !== 'function' || typeof storage.enqueueWebhookDeliveries !== 'function'
        ? 'a webhook outbox'
        : typeof storage.getResults !== 'function'
          ? 'getResults() (recrawls)'
          : null;
    if (lacks !== null) {
      throw invalid('invalid_input', 'job input', [{ path: 'schedule', message: `expected a storage with ${lacks} (${storage.name} has none)` }]);
    }
    await checkSchedule(options.schedule, options.scheduleTimezone, now());
    // A finished job deleted (by age) before its recrawl is due takes its schedule with it.
    const limits: Array<[number | undefined, string]> = [
      [finishedJobsMaxAgeMs, "this engine's retention deletes finished jobs"],
      [storage.capabilities.finishedJobsExpireAfterMs, `the ${storage.name} storage expires finished jobs (finishedTtlSeconds)`],
    ];
    for (const [limit, why] of limits) {
      if (limit === undefined) continue;
      const gap = await longestScheduleGapMs(options.schedule, options.scheduleTimezone, now());
      if (gap >= limit) {
        throw invalid('invalid_input', 'job input', [
          {
            path: 'schedule',
            message: `expected a schedule whose recrawls come less than ${Math.round(limit / 1000)} s apart: ${why} after that long, before their recrawl (this one waits up to ${Math.round(gap / 1000)} s)`,
          },
        ]);
      }
    }
  }

  /** Stores a new job over `url` and its start URL (registered in the outbox when it has a webhook or a schedule). */
  async function store(url: string, rest: JobOptions, webhook: JobWebhook | undefined, meta: Record<string, unknown>, givenId?: string): Promise<Job> {
    const options: JobOptions = webhook === undefined ? rest : { ...rest, webhook };
    const id = givenId ?? newJobId();
    // Registered first: a processor that finds the registration without its job (this call
    // failed in between) drops it after a while; a job without its registration would never
    // have its events posted.
    if (webhook !== undefined || options.schedule !== undefined) await storage.addWebhookJob!(id, now());
    const job: Job = {
      id,
      status: 'queued',
      url,
      options,
      counts: { discovered: 1, queued: 1, inProgress: 0, succeeded: 0, failed: 0, skipped: 0 },
      createdAt: new Date(now()).toISOString(),
      startedAt: null,
      finishedAt: null,
      error: null,
      metadata: meta,
    };
    const created = await storage.createJob(job, { url, key: url, depth: 0, host: new URL(url).hostname });
    emit(created.events);
    return publicJob(created.job);
  }

  /** A stored job that recrawls `id`, or null: the list of jobs read 100 at a time. */
  async function findRecrawl(id: string): Promise<string | null> {
    let cursor: string | null = null;
    do {
      const page: Paginated<Job> = await storage.listJobs({ limit: 100, cursor });
      // A scheduled recrawl keeps copies of unchanged content, never pointers: it holds nothing back.
      const found = page.items.find((job) => job.options.recrawlOf === id && job.options.schedule === undefined);
      if (found !== undefined) return found.id;
      cursor = page.nextCursor;
    } while (cursor !== null);
    return null;
  }
}
