/**
 * The page pipeline: one lease's work, from the robots.txt verdict through fetch, parse and
 * extract to its outcome (a retry, or a stored result with the links it admits and the links
 * robots.txt disallows).
 */
import { type ContentFields, pageContent, wantsContent } from '../../crawl/content.js';
import { WORKER_TIMEOUT_MS } from '../../crawl/main-content.js';
import { type extractPage, extractPageAsync } from '../../crawl/extract.js';
import { loadCheerio, ParseLimitError, parseHtml } from '../../crawl/parse.js';
import { sliceUsed, yieldToLoop } from '../../crawl/slices.js';
import { linkFilter, scopeMatcher } from '../../crawl/url.js';
import { type FetchResult, validator } from '../../crawl/fetcher.js';
import { looksClientRendered, RenderError } from '../../crawl/render.js';
import { changeOf, fillContent } from '../recrawl.js';
import type { FrontierLink, Lease, SkippedLink } from '../storage.js';
import type { ErrorInfo, Job, PageResult, RunReport } from '../types.js';
import { SKIP_CODES, TERMINAL_STATUSES } from '../types.js';
import type { Batcher } from './batcher.js';
import { emptyResult, skippedResult, storable } from './results.js';
import { judgeLink, ROBOTS_SKIP_CODE, type RobotsPolicy, type RobotsRunCache } from './robots-policy.js';
import { message } from './shared.js';
import { createPriorLoader, notModifiedResult, referToPrior, seedLinks } from './recrawl.js';
import { createSitemapReader, readsSitemaps, sitemapSummary } from './sitemaps.js';
import type { ProcessorDeps } from './types.js';

/** What one run shares with every lease it works on. */
export interface RunState {
  report: RunReport;
  /** When the run started; `deadline` is its budget's end. */
  started: number;
  deadline: number;
  robots: RobotsRunCache;
  /** The run's `signal`: a render in flight ends when it is aborted. */
  signal?: AbortSignal;
  /** Stores outcomes, batched into `completeMany` calls when the storage and the run allow. */
  batcher: Batcher;
  /**
   * Jobs that ended (cancelled, deleted) while this run worked on them, as learnt from an outcome
   * storage refused: their leases still waiting in the run's buffer are released, not fetched.
   */
  refused?: Set<string>;
}

/** A job as the pipeline judges URLs by it. */
export interface JobContext {
  job: Job;
  follow: (url: URL) => boolean;
  inScope: (url: string) => boolean;
  /** {@link inScope} of a parsed URL (a link's `internal`). */
  inScopeUrl: (url: URL) => boolean;
}

export interface Pipeline {
  /** Fetches, parses and stores one URL; `fetchDone()` is called once the network part is over. */
  work(lease: Lease, ctx: JobContext, run: RunState, fetchDone: () => void): Promise<void>;
  /** Leases just claimed for a job: a recrawl looks up their earlier results now, in one call. */
  claimed(leases: Lease[], ctx: JobContext): void;
}

/**
 * Most time spent judging one page's links against the job's globs and robots.txt rules; links
 * past it are dropped.
 */
export const LINK_FILTER_BUDGET_MS = 2000;
/** Most wall time judging one page's links may take, waits for the event loop included. */
export const LINK_FILTER_WALL_MS = 10_000;
/**
 * Pages parsed at once by one processor. Parsing is CPU work on this thread, so more at once only
 * interleaves them, and multiplies the memory their documents hold (up to ~200 MB each for a page
 * at the node cap).
 */
const MAX_PARSING = 2;

/** Exponential backoff with jitter: base * 2^(attempt-1), capped, then scaled by 0.5–1. */
export function backoffMs(attempt: number, baseDelayMs: number, maxDelayMs: number): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * (0.5 + Math.random() * 0.5));
}

export function jobContext(job: Job): JobContext {
  const follow = linkFilter({
    startUrl: job.url,
    scope: job.options.scope,
    include: job.options.include,
    exclude: job.options.exclude,
  });
  const scope = scopeMatcher(job.url, job.options.scope);
  return {
    job,
    follow,
    inScopeUrl: scope,
    inScope: (href) => {
      try {
        return scope(new URL(href));
      } catch {
        return false;
      }
    },
  };
}

/** The pipeline of one processor; its parse slots are shared by all its runs. */
export function createPipeline(deps: ProcessorDeps, robots: RobotsPolicy): Pipeline {
  const { storage, emit, now } = deps;
  const sitemaps = createSitemapReader(deps);
  const priors = createPriorLoader(storage);
  /**
   * With `retention` (or a storage whose finished jobs expire), jobs are deleted by age, whatever points to them: a recrawl's
   * unchanged pages then keep a copy of their content (the earlier job's goes with it) instead of
   * pointing to it (`contentFrom`).
   */
  const copiesEverywhere = deps.retention !== undefined || storage.capabilities.expiresFinishedJobs === true;
  /**
   * So do the jobs of a schedule: a line of recrawls that grows for as long as the schedule runs,
   * each of which must stay deletable (and evictable by the memory adapter's cap) on its own.
   */
  const copyContent = (job: Job) => copiesEverywhere || job.options.schedule !== undefined;

  let parsing = 0;
  const parseWaiters: Array<() => void> = [];
  /** Runs `task` in one of MAX_PARSING slots; a freed slot goes straight to the next waiter. */
  async function withParseSlot<T>(task: () => Promise<T>): Promise<T> {
    if (parsing < MAX_PARSING) parsing++;
    else await new Promise<void>((resolve) => parseWaiters.push(resolve));
    try {
      return await task();
    } finally {
      const next = parseWaiters.shift();
      if (next !== undefined) next();
      else parsing--;
    }
  }

  async function work(lease: Lease, ctx: JobContext, run: RunState, fetchDone: () => void): Promise<void> {
    const { job } = ctx;
    const { report } = run;
    const startedAt = now();
    let hopDelayMs = job.options.perHostDelayMs;
    // A recrawl: the page's result in the job crawled again, for its validators and to compare.
    const recrawlOf = job.options.recrawlOf;
    const prior = recrawlOf === undefined ? undefined : await priors.get(recrawlOf, lease.url);

    // Every claim counts an attempt. A lease whose earlier attempts ended without a result (their
    // processor was killed, or lost its lease) and that is past 1 + maxRetries is not fetched
    // again: the URL fails, so no page is requested more than 1 + maxRetries times.
    if (lease.attempts > job.options.maxRetries + 1) {
      fetchDone();
      const error = {
        code: 'abandoned',
        message: `not fetched again: ${lease.attempts - 1} earlier attempts ended without a result (processor stopped or lease expired) and maxRetries is ${job.options.maxRetries}`,
      };
      await finish(lease, run, { ...emptyResult(lease, startedAt, now), error }, [], [], ctx, prior);
      return;
    }

    if (job.options.respectRobots) {
      const verdict = await robots.verdict(lease, run.robots, run.deadline);
      if (verdict.kind === 'release') {
        if (await storage.release([lease])) report.released++;
        return;
      }
      if (verdict.kind === 'skip' || verdict.kind === 'unreachable') {
        fetchDone();
        const error = { code: ROBOTS_SKIP_CODE, message: verdict.message };
        if (verdict.kind === 'unreachable' && lease.attempts <= job.options.maxRetries) {
          const at = now();
          if (
            await storage.retry(lease, {
              notBefore: Math.max(verdict.retryAt, at + backoffMs(lease.attempts, deps.retry.baseDelayMs, deps.retry.maxDelayMs)),
              error,
              now: at,
            })
          )
            report.retried++;
          return;
        }
        await finish(lease, run, { ...emptyResult(lease, startedAt, now), error }, [], [], ctx, prior);
        return;
      }
      hopDelayMs = Math.max(hopDelayMs, verdict.crawlDelayMs);
    }

    // A start URL's sitemaps are read while its page is fetched.
    if (readsSitemaps(lease, job)) void sitemaps.read(lease, ctx.follow, job, run.deadline).catch(() => undefined);
    const conditional =
      prior?.ok === true && (prior.etag != null || prior.lastModified != null)
        ? { url: prior.finalUrl, etag: prior.etag ?? null, lastModified: prior.lastModified ?? null }
        : undefined;
    const fetched = await deps.fetcher().fetch(lease.url, (hop) => (ctx.inScope(hop) ? null : `outside the job's scope (${job.options.scope})`), {
      hopDelayMs,
      ...(conditional === undefined ? {} : { conditional }),
    });
    fetchDone();
    if (fetched.notModified === true && prior != null && recrawlOf !== undefined) {
      // 304: the earlier result stands; the recrawl's frontier already holds the page's links.
      // With retention the earlier job will be deleted: the content is copied, not pointed to.
      const copy = copyContent(job);
      const source = copy && prior.contentFrom !== undefined ? ((await fillContent(storage, job.options.formats, [prior]))[0] ?? prior) : prior;
      const base = { ...emptyResult(lease, startedAt, now), finalUrl: fetched.finalUrl, status: fetched.status, durationMs: now() - startedAt };
      await finish(lease, run, notModifiedResult(base, source, recrawlOf, fetched.headers, copy), [], [], ctx, prior);
      return;
    }
    let error: (ErrorInfo & { transient?: boolean; retryAfterMs?: number | null }) | null = fetched.error;
    let extracted: ReturnType<typeof extractPage> | null = null;
    let data: unknown = null;
    let content: ContentFields | null = null;
    // With the `links` format the walk also collects every link's anchor text and rel.
    const withLinks = job.options.formats?.includes('links') === true;
    const renderMode = job.options.render ?? 'never';
    /** The page's HTML: as fetched, or as a browser rendered it (`render`). */
    let body = fetched.html;
    let rendered = false;
    let unstarted = false;
    const renderNow = async (html: string) => {
      const out = await renderPage(lease, ctx, run, fetched, html, startedAt);
      if ('unstarted' in out) {
        unstarted = true;
        error = { code: 'render_failed', message: out.unstarted };
      } else if ('error' in out) error = out.error;
      else {
        body = out.html;
        rendered = true;
      }
    };
    if (error === null && body !== null && renderMode === 'always') await renderNow(body);
    // No renderer slot came free while the lease allowed: the page goes back to the queue, its attempt not used.
    const giveBack = async () => {
      if (await storage.release([lease])) report.released++;
    };
    if (unstarted) return giveBack();
    if (error === null && body !== null) {
      // Parsing and the walk yield to the event loop as they go; a page past a parse bound is
      // stored as failed (`too_complex`, not transient) rather than thrown, which would retry it.
      // With `render: 'auto'`, a page that looks client-rendered is rendered, then parsed again.
      const parse = (html: string, checkShell: boolean) =>
        withParseSlot(async () => {
          const document = await parseHtml(html).catch((cause: unknown) => {
            if (!(cause instanceof ParseLimitError)) throw cause;
            error = { code: cause.code, message: cause.message };
            return null;
          });
          if (document === null) return null;
          if (checkShell && looksClientRendered(document)) return 'shell' as const;
          const found = await extractPageAsync(
            document,
            fetched.finalUrl,
            deps.maxLinksPerPage,
            undefined,
            withLinks ? { outlinks: ctx.inScopeUrl, hash: true } : { hash: true },
          );
          return { document, extracted: found };
        });
      let parsed = await parse(body, renderMode === 'auto');
      if (parsed === 'shell') {
        await renderNow(body);
        if (unstarted) return giveBack();
        parsed = error === null ? await parse(body, false) : null;
      }
      const page = parsed === 'shell' ? null : parsed;
      const document = page?.document ?? null;
      extracted = page?.extracted ?? null;
      const html = body;
      // The text, markdown and html the job's formats ask for (see crawl/content.ts). Outside the
      // parse slot: most of it is the content worker's, and this thread parses other pages meanwhile.
      if (document !== null && wantsContent(job.options.formats)) {
        // A page queued behind slow ones in the content worker waits no longer than its lease
        // allows (a quarter of it kept for the page's own 15 s at most, the fallback and the store).
        const maxWaitMs = Math.max(0, lease.expiresAt - now() - deps.leaseMs / 4 - WORKER_TIMEOUT_MS);
        content = await pageContent(html, document, {
          formats: job.options.formats!,
          onlyMainContent: job.options.onlyMainContent,
          url: fetched.finalUrl,
          maxWaitMs,
        });
      }
      if (document !== null && deps.extract !== undefined) {
        try {
          const $ = (await loadCheerio()).load(document);
          data = await deps.extract({
            url: lease.url,
            finalUrl: fetched.finalUrl,
            depth: lease.depth,
            status: fetched.status!,
            headers: fetched.headers,
            html,
            $,
            job,
          });
        } catch (cause) {
          error = { code: 'extract_error', message: `extract() threw: ${message(cause)}` };
        }
      }
    }

    if (error?.transient === true && lease.attempts <= job.options.maxRetries) {
      const delay = error.retryAfterMs ?? backoffMs(lease.attempts, deps.retry.baseDelayMs, deps.retry.maxDelayMs);
      const at = now();
      if (await storage.retry(lease, { notBefore: at + delay, error: { code: error.code, message: error.message }, now: at })) {
        report.retried++;
      }
      return;
    }

    const finishedAt = now();
    const result: PageResult = {
      ...emptyResult(lease, startedAt, now),
      finalUrl: fetched.finalUrl,
      status: fetched.status,
      ok: error === null,
      contentType: fetched.contentType,
      title: extracted?.title ?? null,
      description: extracted?.description ?? null,
      canonical: extracted?.canonical ?? null,
      links: extracted?.links.length ?? 0,
      wordCount: extracted?.wordCount ?? 0,
      error: error === null ? null : { code: error.code, message: error.message },
      durationMs: finishedAt - startedAt,
      data,
      ...contentFields(job.options.formats, content),
      etag: validator(fetched.headers.etag),
      lastModified: validator(fetched.headers['last-modified']),
      contentHash: extracted?.contentHash ?? null,
      ...(rendered ? { rendered } : {}),
    };
    if (withLinks) {
      result.outlinks = extracted?.outlinks ?? [];
      if (extracted?.outlinksTruncated === true) result.truncated = [...(result.truncated ?? []), 'outlinks'];
    }
    // `sitemap: 'only'`: pages' links are not followed.
    if (error === null && extracted !== null && lease.depth < job.options.maxDepth && job.options.sitemap !== 'only') {
      const { links, skipped } = await judgeLinks(extracted.links, lease.depth + 1, ctx, run);
      await finish(lease, run, result, links, skipped, ctx, prior);
    } else {
      await finish(lease, run, result, [], [], ctx, prior);
    }
  }

  /**
   * Renders a fetched page in the engine's renderer. The browser is handed the fetched document and
   * makes every other request through the fetcher's `resource()` (the guard, caps and timeouts of
   * pages; robots.txt for frames' documents, as far as this processor knows the origin's rules).
   * The render ends by the renderer's `timeoutMs`, the run's signal, when only a quarter of the
   * lease would be left for parsing and storing, or `timeoutMs` after the run's budget ends: a page
   * that waited for a renderer slot past the budget still ends inside it plus one render (the
   * bound a serverless function's maxDuration is set by), and one that never started goes back to
   * the queue. A failure is the page's error (`render_failed`, transient, or `too_large`).
   */
  async function renderPage(
    lease: Lease,
    ctx: JobContext,
    run: RunState,
    fetched: FetchResult,
    html: string,
    fetchStartedAt: number,
  ): Promise<{ html: string } | { error: ErrorInfo & { transient: boolean } } | { unstarted: string }> {
    const render = deps.render;
    if (render === undefined) {
      return {
        error: {
          code: 'render_failed',
          message: `the job has render: '${ctx.job.options.render}', and this processor's engine was made without the render option`,
          transient: false,
        },
      };
    }
    const leaseEnd = lease.expiresAt - deps.leaseMs / 4;
    const budgetEnd = run.deadline + render.timeoutMs;
    const endsAt = Math.min(leaseEnd, budgetEnd);
    const why = endsAt === budgetEnd ? `render.timeoutMs (${render.timeoutMs} ms) after the run's budget ended` : 'only a quarter of the lease was left';
    // A run already stopped gives the page back unrendered. With no time left (a fetch that ended
    // late), the renderer is not called either: the page goes back, its attempt unused, only when
    // a run of this one's budget would fetch it in time to render (its fetch took less than the
    // budget); otherwise (a fetch slower than that every time, or one past its lease) it is a
    // failed attempt, so that it cannot come back for ever.
    if (run.signal?.aborted === true) return { unstarted: 'the run was stopped before the render could start' };
    if (endsAt <= now()) {
      const message = `the render could not start: ${why}`;
      const fits = endsAt === budgetEnd && now() - fetchStartedAt < run.deadline - run.started;
      return fits ? { unstarted: message } : { error: { code: 'render_failed', message, transient: true } };
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new RenderError('render_failed', `the render was stopped: ${why}`, true)), endsAt - now());
    const stop = () => controller.abort(new RenderError('render_failed', 'the render was stopped: the run was stopped', true));
    run.signal?.addEventListener('abort', stop, { once: true });
    const fetcher = deps.fetcher();
    try {
      const out = await render.renderer().render({
        url: fetched.finalUrl,
        document: { status: fetched.status ?? 200, contentType: fetched.contentType, html },
        waitUntil: ctx.job.options.renderWait ?? 'load',
        ...(ctx.job.options.renderSelector === undefined ? {} : { selector: ctx.job.options.renderSelector }),
        signal: controller.signal,
        load: async (request) => {
          // A frame's document, and every redirect hop of it, is checked against robots.txt.
          const allowHop = request.kind === 'document' ? (url: string) => robotsRefusal(url, ctx, run) : undefined;
          const refusal = (await allowHop?.(request.url)) ?? null;
          if (refusal !== null) return { url: request.url, status: null, headers: {}, body: null, error: { code: 'robots', message: refusal } };
          return fetcher.resource(request, {
            maxBytes: Math.min(render.maxBytes, request.maxBytes ?? render.maxBytes),
            timeoutMs: deps.fetchTimeoutMs ?? 15_000,
            signal: controller.signal,
            ...(allowHop === undefined ? {} : { allowHop }),
          });
        },
      });
      if (out.html.length > render.maxBytes) {
        return { error: { code: 'too_large', message: `the rendered HTML is larger than render.maxHtmlBytes (${render.maxBytes})`, transient: false } };
      }
      return { html: out.html };
    } catch (cause) {
      if (cause instanceof RenderError) {
        return cause.unstarted ? { unstarted: cause.message } : { error: { code: cause.code, message: cause.message, transient: cause.transient } };
      }
      return { error: { code: 'render_failed', message: `the renderer threw: ${message(cause)}`, transient: true } };
    } finally {
      clearTimeout(timer);
      run.signal?.removeEventListener('abort', stop);
      // Requests the page still had in flight end with the render.
      controller.abort();
    }
  }

  /** Why robots.txt refuses a frame's document, by the rules this processor knows of its origin; null: allowed (or unknown). */
  async function robotsRefusal(href: string, ctx: JobContext, run: RunState): Promise<string | null> {
    if (!ctx.job.options.respectRobots) return null;
    let url: URL;
    try {
      url = new URL(href);
    } catch {
      return null;
    }
    const rules = await robots.linkRecords(ctx.job.id, [url], run.robots);
    const verdict = judgeLink(url, rules.get(url.origin) ?? null, now());
    return verdict.robots === 'disallowed' ? verdict.message : null;
  }

  /** The content fields a job asks for: those worked out, or null for a page without them (not HTML, failed). */
  function contentFields(formats: Job['options']['formats'], content: ContentFields | null): ContentFields {
    if (!wantsContent(formats)) return {};
    if (content !== null) return content;
    const fields: ContentFields = {};
    for (const name of ['text', 'markdown', 'html'] as const) if (formats!.includes(name)) fields[name] = null;
    return fields;
  }

  /** A page's links at `depth`: those to follow, and those robots.txt disallows (recorded as skipped). */
  async function judgeLinks(found: readonly URL[], depth: number, ctx: JobContext, run: RunState): Promise<{ links: FrontierLink[]; skipped: SkippedLink[] }> {
    const { job } = ctx;
    const links: FrontierLink[] = [];
    const skipped: SkippedLink[] = [];
    // Globs come from whoever created the job, and links and robots.txt rules from the site: their
    // matching is linear but not free, so it yields to the event loop every few ms, and a page
    // whose links take longer than LINK_FILTER_BUDGET_MS in all keeps the links judged so far.
    // Only this page's own work counts against the budget, not the turns spent waiting.
    // Waiting is bounded apart (LINK_FILTER_WALL_MS), so a crowd of such pages cannot outlast a run.
    let spent = 0;
    let slice = performance.now();
    const filterStarted = slice;
    const withinBudget = async () => {
      if (!sliceUsed()) return true;
      const at = performance.now();
      spent += at - slice;
      if (spent > LINK_FILTER_BUDGET_MS || at - filterStarted > LINK_FILTER_WALL_MS) return false;
      await yieldToLoop();
      slice = performance.now();
      return true;
    };
    const followed: URL[] = [];
    for (const url of found) {
      if (!(await withinBudget())) break;
      if (ctx.follow(url)) followed.push(url);
    }
    // Links robots.txt disallows, by the rules of their origin this processor knows, are
    // recorded as skipped rather than admitted, so that they take no place under maxPages.
    const rules = job.options.respectRobots ? await robots.linkRecords(job.id, followed, run.robots) : null;
    slice = performance.now();
    const at = now();
    for (const url of followed) {
      if (!(await withinBudget())) break;
      const href = url.href;
      const link: FrontierLink = { url: href, key: href, depth, host: url.hostname };
      const verdict = rules === null ? { robots: 'allowed' as const } : judgeLink(url, rules.get(url.origin) ?? null, at);
      if (verdict.robots === 'disallowed') skipped.push({ link, result: skippedResult(link, verdict.message, at) });
      else links.push({ ...link, robots: verdict.robots });
    }
    return { links, skipped };
  }

  /**
   * The start URL's outcome with its job's sitemaps: their URLs judged as links are (scope, globs,
   * robots.txt), at depth 0 and with their `<lastmod>`. A URL both linked from the page and listed
   * takes the page link's place; the others follow the page's links. What reading found goes in
   * `result.sitemaps`.
   */
  async function withSitemaps(lease: Lease, ctx: JobContext, run: RunState, page: PageResult, found: FrontierLink[], disallowed: SkippedLink[]) {
    const reading = await sitemaps.read(lease, ctx.follow, ctx.job, run.deadline);
    const lastmods = new Map(reading.urls.map((entry) => [entry.url, entry.lastmod]));
    const judged = await judgeLinks(
      reading.urls.map((entry) => new URL(entry.url)),
      0,
      ctx,
      run,
    );
    const dated = (link: FrontierLink): FrontierLink => {
      const lastmod = lastmods.get(link.url);
      return lastmod === undefined ? link : { ...link, lastmod };
    };
    const listed = new Map(judged.links.map((link) => [link.key, dated(link)]));
    const links = found.map((link) => {
      const same = listed.get(link.key);
      if (same === undefined) return link;
      listed.delete(link.key);
      return same;
    });
    links.push(...listed.values());
    const skippedKeys = new Set(judged.skipped.map((s) => s.link.key));
    const skipped = [
      ...disallowed.filter((s) => !skippedKeys.has(s.link.key)),
      ...judged.skipped.map(({ link, result }) => {
        const lastmod = lastmods.get(link.url);
        return lastmod === undefined ? { link, result } : { link: { ...link, lastmod }, result: { ...result, lastmod } };
      }),
    ];
    const own = lastmods.get(lease.url);
    const result: PageResult = { ...page, ...(own === undefined || page.lastmod ? {} : { lastmod: own }), sitemaps: sitemapSummary(reading) };
    return { result, links, skipped };
  }

  /**
   * A recrawl's outcome: the page's `change` (and, unchanged with content, a pointer to where the
   * content is instead of a second copy), `change` on the robots.txt skips recorded with it, and,
   * on the start URL, the earlier job's URLs ahead of the page's own links (see `seedLinks`).
   */
  async function asRecrawl(
    lease: Lease,
    ctx: JobContext,
    recrawlOf: string,
    outcome: { page: PageResult; found: FrontierLink[]; disallowed: SkippedLink[] },
    prior: PageResult | null,
  ): Promise<{ page: PageResult; found: FrontierLink[]; disallowed: SkippedLink[] }> {
    let page = outcome.page;
    if (page.change === undefined) {
      const change = changeOf(prior, page, false);
      page =
        change === 'unchanged' && prior !== null && page.ok && !copyContent(ctx.job)
          ? { ...referToPrior(page, prior, recrawlOf), change }
          : { ...page, change };
    }
    let disallowed = outcome.disallowed;
    if (disallowed.length > 0) {
      const earlier = await priors.getMany(
        recrawlOf,
        disallowed.map((s) => s.link.url),
      );
      disallowed = disallowed.map((s, i) => ({ ...s, result: { ...s.result, change: changeOf(earlier[i] ?? null, s.result, false) } }));
    }
    let found = outcome.found;
    if (lease.depth === 0 && lease.key === ctx.job.url) {
      // The earlier URLs first (a sitemap's lastmod for one is kept), then the page's new links.
      const seeded = await seedLinks(storage, ctx.job, recrawlOf, ctx.follow);
      const lastmods = new Map(found.flatMap((link) => (link.lastmod === undefined ? [] : [[link.key, link.lastmod] as const])));
      const keys = new Set(seeded.map((link) => link.key));
      found = [
        ...seeded.map((link) => {
          const lastmod = lastmods.get(link.key);
          return lastmod === undefined ? link : { ...link, lastmod };
        }),
        ...found.filter((link) => !keys.has(link.key)),
      ];
    }
    return { page, found, disallowed };
  }

  /**
   * Stores the page's outcome through the fenced `complete` (in a batch, see batcher.ts), counts it
   * and emits its events. Pages of a batch resume in item order, so events are emitted in order.
   * The start URL of a job that reads sitemaps is stored with them (see `withSitemaps`).
   */
  async function finish(
    lease: Lease,
    run: RunState,
    page: PageResult,
    found: FrontierLink[],
    disallowed: SkippedLink[] = [],
    ctx?: JobContext,
    /** On a recrawl: the page's result in the job crawled again (null: none). */
    prior?: PageResult | null,
  ): Promise<void> {
    let outcome = { page: lease.lastmod === undefined ? page : { ...page, lastmod: lease.lastmod }, found, disallowed };
    const seed = ctx !== undefined && readsSitemaps(lease, ctx.job);
    if (seed) {
      const merged = await withSitemaps(lease, ctx, run, outcome.page, found, disallowed);
      outcome = { page: merged.result, found: merged.links, disallowed: merged.skipped };
    }
    const recrawlOf = ctx?.job.options.recrawlOf;
    if (recrawlOf !== undefined && ctx !== undefined) outcome = await asRecrawl(lease, ctx, recrawlOf, outcome, prior ?? null);
    const { result, links, skipped } = storable(outcome.page, outcome.found, outcome.disallowed);
    const stored = await run.batcher.complete(lease, { result, links, ...(skipped.length > 0 ? { skipped } : {}), now: now() });
    if (seed) sitemaps.done(lease.jobId);
    if (!stored.ok) {
      // A job cancelled (or deleted) meanwhile: its leases still in the run's buffer are not fetched.
      // A lease that merely expired (another processor has the URL) leaves the job's others alone.
      if (run.refused?.has(lease.jobId) !== true) {
        const current = await storage.getJob(lease.jobId).catch(() => undefined);
        if (current === null || (current !== undefined && TERMINAL_STATUSES.has(current.status))) {
          run.refused ??= new Set();
          run.refused.add(lease.jobId);
        }
      }
      return;
    }
    if (result.ok) run.report.succeeded++;
    else if (!SKIP_CODES.has(result.error?.code ?? '')) run.report.failed++;
    // The page itself when robots.txt disallowed it, and the disallowed links recorded with it.
    run.report.skipped += stored.events.filter((event) => event.type === 'page:skipped').length;
    emit(stored.events);
  }

  function claimed(leases: Lease[], ctx: JobContext): void {
    const recrawlOf = ctx.job.options.recrawlOf;
    if (recrawlOf !== undefined)
      priors.prime(
        recrawlOf,
        leases.map((lease) => lease.url),
      );
  }

  return { work, claimed };
}
