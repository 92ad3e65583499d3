/**
 * The processor: claims URLs, fetches them with bounded concurrency inside a time budget,
 * stores each outcome through the storage's fenced `complete`, retries transient failures
 * with exponential backoff and jitter, and releases whatever it claimed but did not start.
 * It keeps no state between runs, so any number of processes may run it at once.
 */
import { sliceUsed, yieldToLoop } from '../crawl/slices.js';
import type { CheerioAPI } from 'cheerio/slim';
import { type extractPage, extractPageAsync, loadCheerio, ParseLimitError, parseHtml } from '../crawl/extract.js';
import type { Fetcher } from '../crawl/fetcher.js';
import { parseRobots, robotsAllows, ROBOTS_MAX_BYTES } from '../crawl/robots.js';
import type { CrawlStorage, FrontierLink, Lease, RobotsRecord, SkippedLink } from './storage.js';
import type { ErrorInfo, Job, PageResult, ProgressEvent, RunReport } from './types.js';
import { TERMINAL_STATUSES } from './types.js';
import { repairJson, repairText } from '../crawl/text.js';
import { linkFilter, scopeMatcher } from '../crawl/url.js';

/** What a custom `extract` function receives for every HTML page. */
export interface ExtractContext {
  url: string;
  finalUrl: string;
  depth: number;
  status: number;
  headers: Record<string, string>;
  html: string;
  /** The parsed document (cheerio, htmlparser2 build). */
  $: CheerioAPI;
  job: Job;
}

export type ExtractFunction = (page: ExtractContext) => unknown;

export interface RunOptions {
  /**
   * Time after which no new fetch starts; fetches in flight then finish within one fetch
   * timeout, so a run returns within `budgetMs + fetch.timeoutMs` (plus a final store).
   * @default 50000
   */
  budgetMs?: number;
  /**
   * Fetches in flight at once.
   * @default 20
   */
  concurrency?: number;
  /** Work only on this job. */
  jobId?: string;
  /** Stops starting new fetches; the run then releases what it holds and returns. */
  signal?: AbortSignal;
}

export interface StartOptions {
  /** @default 20 */
  concurrency?: number;
  /**
   * Wait between runs that found nothing to do.
   * @default 1000
   */
  idleMs?: number;
  /**
   * Budget of each run inside the loop.
   * @default 30000
   */
  budgetMs?: number;
  /** Called with each run's report (e.g. to log storage errors). */
  onRun?: (report: RunReport) => void;
}

export interface Worker {
  /** Stops starting fetches and resolves when the current run has released and returned. */
  stop(): Promise<void>;
}

export interface Processor {
  run(options?: RunOptions): Promise<RunReport>;
  start(options?: StartOptions): Worker;
}

export interface ProcessorDeps {
  storage: CrawlStorage;
  userAgent: string;
  fetcher: () => Fetcher;
  /** Hands stored events to in-process listeners (isolated: it never throws). */
  emit: (events: readonly ProgressEvent[]) => void;
  leaseMs: number;
  retry: { baseDelayMs: number; maxDelayMs: number };
  maxLinksPerPage: number;
  extract: ExtractFunction | undefined;
  now: () => number;
}

interface RunState {
  report: RunReport;
  deadline: number;
  /** robots.txt records looked up in this run, per job and origin. */
  robots: Map<string, Promise<{ record: RobotsRecord; fetchedBy: string | null }>>;
  /**
   * Stored robots.txt records of the origins of links, per job and origin, looked up to judge
   * links; never fetched for that.
   */
  linkRobots: Map<string, StoredRobots>;
}

interface StoredRobots {
  at: number;
  record: Promise<RobotsRecord | null>;
  /** Resolved to null: no processor had stored the origin's robots.txt yet. */
  missing: boolean;
}

interface JobContext {
  job: Job;
  follow: (url: URL) => boolean;
  inScope: (url: string) => boolean;
}

/** How long a robots.txt record is trusted before it is fetched again. */
const ROBOTS_TTL_MS = 24 * 60 * 60 * 1000;
/** A host whose robots.txt could not be fetched is disallowed this long, then asked again. */
const ROBOTS_UNREACHABLE_TTL_MS = 30_000;
/** Longest `Crawl-delay` honoured; longer ones are cut to this. */
export const MAX_CRAWL_DELAY_MS = 60_000;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** Exponential backoff with jitter: base * 2^(attempt-1), capped, then scaled by 0.5–1. */
export function backoffMs(attempt: number, baseDelayMs: number, maxDelayMs: number): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * (0.5 + Math.random() * 0.5));
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Most time spent judging one page's links against the job's globs and robots.txt rules; links
 * past it are dropped.
 */
export const LINK_FILTER_BUDGET_MS = 2000;
/** Most wall time judging one page's links may take, waits for the event loop included. */
export const LINK_FILTER_WALL_MS = 10_000;
/**
 * Most origins of one page's links whose stored robots.txt is looked up; links to the others are
 * admitted with their robots.txt unknown.
 */
const MAX_LINK_ORIGINS = 8;
/** An origin whose robots.txt was not stored yet is looked up again after this long. */
const LINK_ROBOTS_RECHECK_MS = 2000;
/**
 * Longest wait for a robots.txt this run is fetching for a lease before judging links to its origin
 * (past it, they are admitted as unknown), so that a slow robots.txt cannot hold a page's store.
 */
const LINK_ROBOTS_WAIT_MS = 2000;
/**
 * Pages parsed at once by one processor. Parsing is CPU work on this thread, so more at once only
 * interleaves them, and multiplies the memory their documents hold (up to ~200 MB each for a page
 * at the node cap).
 */
const MAX_PARSING = 2;

export function createProcessor(deps: ProcessorDeps): Processor {
  const { storage, emit, now } = deps;

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

  function jobContext(job: Job): JobContext {
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
      inScope: (href) => {
        try {
          return scope(new URL(href));
        } catch {
          return false;
        }
      },
    };
  }

  /** Fetches robots.txt of an origin and turns the answer into a record (never throws). */
  async function fetchRobots(origin: string): Promise<RobotsRecord> {
    const fetched = await deps.fetcher().fetchText(`${origin}/robots.txt`, ROBOTS_MAX_BYTES);
    const at = now();
    const base = { origin, httpStatus: fetched.status, fetchedAt: new Date(at).toISOString() };
    if (fetched.error === null && fetched.html !== null) {
      const parsed = parseRobots(fetched.html, deps.userAgent);
      const crawlDelayMs = parsed.crawlDelayMs === null ? null : Math.min(parsed.crawlDelayMs, MAX_CRAWL_DELAY_MS);
      return { ...base, status: 'ok', rules: parsed.rules, crawlDelayMs, expiresAt: at + ROBOTS_TTL_MS };
    }
    // 5xx, timeouts and network errors make the host unreachable: disallowed for now. Anything
    // else (4xx, redirect trouble, a refused address) means there are no rules: allowed, and the
    // page fetch itself then meets whatever stopped the robots.txt fetch.
    if (fetched.error?.transient === true) {
      return { ...base, status: 'unreachable', rules: [], crawlDelayMs: null, expiresAt: at + ROBOTS_UNREACHABLE_TTL_MS };
    }
    return { ...base, status: 'unavailable', rules: [], crawlDelayMs: null, expiresAt: at + ROBOTS_TTL_MS };
  }

  /** Fetches, parses and stores one URL; `fetched()` is called once the network part is over. */
  async function work(lease: Lease, ctx: JobContext, run: RunState, fetchDone: () => void): Promise<void> {
    const { job } = ctx;
    const { report } = run;
    const startedAt = now();
    let hopDelayMs = job.options.perHostDelayMs;

    // Every claim counts an attempt. A lease whose earlier attempts ended without a result (their
    // processor was killed, or lost its lease) and that is past 1 + maxRetries is not fetched
    // again: the URL fails, so no page is requested more than 1 + maxRetries times.
    if (lease.attempts > job.options.maxRetries + 1) {
      fetchDone();
      const error = {
        code: 'abandoned',
        message: `not fetched again: ${lease.attempts - 1} earlier attempts ended without a result (processor stopped or lease expired) and maxRetries is ${job.options.maxRetries}`,
      };
      await finish(lease, ctx, run, { ...emptyResult(lease, startedAt), error }, []);
      return;
    }

    if (job.options.respectRobots) {
      const verdict = await robotsVerdict(lease, run);
      if (verdict.kind === 'release') {
        if (await storage.release([lease])) report.released++;
        return;
      }
      if (verdict.kind === 'skip' || verdict.kind === 'unreachable') {
        fetchDone();
        const error = { code: 'robots', message: verdict.message };
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
        await finish(lease, ctx, run, { ...emptyResult(lease, startedAt), error }, []);
        return;
      }
      hopDelayMs = Math.max(hopDelayMs, verdict.crawlDelayMs);
    }

    const fetched = await deps
      .fetcher()
      .fetch(lease.url, (hop) => (ctx.inScope(hop) ? null : `outside the job's scope (${job.options.scope})`), { hopDelayMs });
    fetchDone();
    let error: (ErrorInfo & { transient?: boolean; retryAfterMs?: number | null }) | null = fetched.error;
    let extracted: ReturnType<typeof extractPage> | null = null;
    let data: unknown = null;
    if (error === null && fetched.html !== null) {
      // Parsing and the walk yield to the event loop as they go; a page past a parse bound is
      // stored as failed (`too_complex`, not transient) rather than thrown, which would retry it.
      const body = fetched.html;
      const parsed = await withParseSlot(async () => {
        const document = await parseHtml(body).catch((cause: unknown) => {
          if (!(cause instanceof ParseLimitError)) throw cause;
          error = { code: cause.code, message: cause.message };
          return null;
        });
        return document === null ? null : { document, extracted: await extractPageAsync(document, fetched.finalUrl, deps.maxLinksPerPage) };
      });
      const document = parsed?.document ?? null;
      extracted = parsed?.extracted ?? null;
      if (document !== null && deps.extract !== undefined) {
        try {
          const $ = (await loadCheerio()).load(document);
          data = await deps.extract({
            url: lease.url,
            finalUrl: fetched.finalUrl,
            depth: lease.depth,
            status: fetched.status!,
            headers: fetched.headers,
            html: fetched.html,
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
      ...emptyResult(lease, startedAt),
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
    };
    const links: FrontierLink[] = [];
    const skipped: SkippedLink[] = [];
    if (error === null && extracted !== null && lease.depth < job.options.maxDepth) {
      const depth = lease.depth + 1;
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
      for (const url of extracted.links) {
        if (!(await withinBudget())) break;
        if (ctx.follow(url)) followed.push(url);
      }
      // Links robots.txt disallows, by the rules of their origin this processor knows, are
      // recorded as skipped rather than admitted, so that they take no place under maxPages.
      const rules = job.options.respectRobots ? await linkRobots(job.id, followed, run) : null;
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
    }
    await finish(lease, ctx, run, result, links, skipped);
  }

  /**
   * The robots.txt records this run knows for the origins of `urls`: looked up for a lease (and
   * fetched if need be) in this run, waited for at most LINK_ROBOTS_WAIT_MS, or else as stored
   * (looked up once per run, again after a while when none was stored yet, never fetched here).
   * Origins past MAX_LINK_ORIGINS, and any whose lookup fails, have none.
   */
  async function linkRobots(jobId: string, urls: readonly URL[], run: RunState): Promise<Map<string, RobotsRecord | null>> {
    const origins = [...new Set(urls.map((url) => url.origin))].slice(0, MAX_LINK_ORIGINS);
    const records = await Promise.all(
      origins.map((origin) => {
        const key = `${jobId} ${origin}`;
        const known = run.robots.get(key);
        if (known !== undefined) {
          return new Promise<RobotsRecord | null>((resolve) => {
            const timer = setTimeout(() => resolve(null), LINK_ROBOTS_WAIT_MS);
            known
              .then(
                (entry) => resolve(entry.record),
                () => resolve(null),
              )
              .finally(() => clearTimeout(timer));
          });
        }
        let stored = run.linkRobots.get(key);
        if (stored === undefined || (stored.missing && now() - stored.at >= LINK_ROBOTS_RECHECK_MS)) {
          const entry: StoredRobots = { at: now(), record: storage.getRobots(jobId, origin).catch(() => null), missing: false };
          void entry.record.then((record) => {
            entry.missing = record === null;
          });
          run.linkRobots.set(key, entry);
          stored = entry;
        }
        return stored.record;
      }),
    );
    return new Map(origins.map((origin, i) => [origin, records[i]!]));
  }

  /**
   * A link against the robots.txt record of its origin: `disallowed` only by fresh rules that
   * disallow it; `unknown` without a fresh record, or while the host's robots.txt is unreachable.
   */
  function judgeLink(url: URL, record: RobotsRecord | null, at: number): { robots: 'allowed' | 'unknown' } | { robots: 'disallowed'; message: string } {
    if (record === null || record.expiresAt <= at || record.status === 'unreachable') return { robots: 'unknown' };
    const verdict = robotsAllows(record.rules, url.pathname + url.search);
    if (verdict.allowed) return { robots: 'allowed' };
    return { robots: 'disallowed', message: `disallowed by robots.txt (Disallow: ${verdict.rule!.pattern})` };
  }

  function skippedResult(link: FrontierLink, message: string, at: number): PageResult {
    return {
      url: link.url,
      finalUrl: link.url,
      depth: link.depth,
      status: null,
      ok: false,
      contentType: null,
      title: null,
      description: null,
      canonical: null,
      links: 0,
      wordCount: 0,
      error: { code: 'robots', message },
      attempts: 0,
      durationMs: 0,
      fetchedAt: new Date(at).toISOString(),
      data: null,
    };
  }

  function emptyResult(lease: Lease, startedAt: number): PageResult {
    return {
      url: lease.url,
      finalUrl: lease.url,
      depth: lease.depth,
      status: null,
      ok: false,
      contentType: null,
      title: null,
      description: null,
      canonical: null,
      links: 0,
      wordCount: 0,
      error: null,
      attempts: lease.attempts,
      durationMs: now() - startedAt,
      fetchedAt: new Date(startedAt).toISOString(),
      data: null,
    };
  }

  async function finish(lease: Lease, _ctx: JobContext, run: RunState, page: PageResult, found: FrontierLink[], disallowed: SkippedLink[] = []): Promise<void> {
    const { result, links, skipped } = storable(page, found, disallowed);
    const stored = await storage.complete(lease, { result, links, ...(skipped.length > 0 ? { skipped } : {}), now: now() });
    if (!stored.ok) return;
    if (result.ok) run.report.succeeded++;
    else if (result.error?.code !== 'robots') run.report.failed++;
    // The page itself when robots.txt disallowed it, and the disallowed links recorded with it.
    run.report.skipped += stored.events.filter((event) => event.type === 'page:skipped').length;
    emit(stored.events);
  }

  /**
   * The result as every adapter can store it: strings from the page well-formed (a lone surrogate
   * or a NUL becomes U+FFFD; Postgres jsonb refuses both), and `data` from a custom `extract`
   * plain JSON. Data that cannot be stored fails the page with `extract_error` rather than
   * failing the store, which would strand the lease and lose the page.
   */
  function storable(result: PageResult, links: FrontierLink[], skipped: SkippedLink[]): { result: PageResult; links: FrontierLink[]; skipped: SkippedLink[] } {
    const text = (value: string | null) => (value === null ? null : repairText(value));
    const repaired: PageResult = {
      ...result,
      url: repairText(result.url),
      finalUrl: repairText(result.finalUrl),
      contentType: text(result.contentType),
      title: text(result.title),
      description: text(result.description),
      canonical: text(result.canonical),
      error: result.error === null ? null : { code: result.error.code, message: repairText(result.error.message) },
    };
    if (result.data === null || result.data === undefined) return { result: { ...repaired, data: null }, links, skipped };
    try {
      return { result: { ...repaired, data: repairJson(result.data) ?? null }, links, skipped };
    } catch (error) {
      const failed = { code: 'extract_error', message: `extract() returned a value that cannot be stored as JSON: ${message(error)}` };
      return { result: { ...repaired, ok: false, data: null, error: repaired.error ?? failed }, links: [], skipped: [] };
    }
  }

  type RobotsVerdict =
    | { kind: 'allow'; crawlDelayMs: number }
    | { kind: 'release' }
    | { kind: 'skip'; message: string }
    | { kind: 'unreachable'; message: string; retryAt: number };

  /**
   * Decides a lease against its origin's robots.txt, fetching it (once per run and origin, and
   * stored for other processors) when the stored record is missing or stale. When the fetch
   * reveals a `Crawl-delay`, the lease that fetched it waits out the delay before its own request
   * and the other leases on that host are released, so the host sees the delay from the start.
   */
  async function robotsVerdict(lease: Lease, run: RunState): Promise<RobotsVerdict> {
    const url = new URL(lease.url);
    if (url.pathname === '/robots.txt') return { kind: 'allow', crawlDelayMs: 0 };
    const key = `${lease.jobId} ${url.origin}`;
    let entry = run.robots.get(key);
    if (entry === undefined) {
      const owner = lease.token;
      const record = (async () => {
        const stored = await storage.getRobots(lease.jobId, url.origin);
        if (stored !== null && stored.expiresAt > now()) return { record: stored, fetchedBy: null };
        const fresh = await fetchRobots(url.origin);
        await storage.putRobots(lease.jobId, fresh);
        return { record: fresh, fetchedBy: owner };
      })();
      entry = record;
      run.robots.set(key, entry);
      record.catch(() => run.robots.delete(key));
    }
    const { record, fetchedBy } = await entry;
    if (record.status === 'unreachable') {
      return {
        kind: 'unreachable',
        retryAt: record.expiresAt,
        message: `robots.txt of ${url.origin} could not be fetched (${record.httpStatus === null ? 'no answer' : `HTTP ${record.httpStatus}`}); the host is disallowed until it can be`,
      };
    }
    const verdict = robotsAllows(record.rules, url.pathname + url.search);
    if (!verdict.allowed) return { kind: 'skip', message: `disallowed by robots.txt (Disallow: ${verdict.rule!.pattern})` };
    const delay = record.crawlDelayMs ?? 0;
    if (delay > 0 && fetchedBy !== null) {
      if (fetchedBy === lease.token) {
        // This lease's robots.txt request was the host's last one: keep the gap before the page.
        if (now() + delay >= run.deadline) return { kind: 'release' };
        await sleep(delay);
      } else if (lease.expiresAt - deps.leaseMs <= Date.parse(record.fetchedAt)) {
        // Claimed before the delay was known: hand it back so that storage spaces it out.
        return { kind: 'release' };
      }
    }
    return { kind: 'allow', crawlDelayMs: delay };
  }

  async function run(options: RunOptions = {}): Promise<RunReport> {
    const budgetMs = options.budgetMs ?? 50_000;
    const concurrency = options.concurrency ?? 20;
    if (!Number.isFinite(budgetMs) || budgetMs < 0) throw new RangeError(`[crawl-engine] run(): budgetMs: expected a number >= 0, got ${String(budgetMs)}`);
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new RangeError(`[crawl-engine] run(): concurrency: expected an integer >= 1, got ${String(concurrency)}`);
    const started = now();
    const deadline = started + budgetMs;
    const { signal } = options;
    const report: RunReport = { claimed: 0, succeeded: 0, failed: 0, skipped: 0, retried: 0, released: 0, durationMs: 0, jobsTouched: [], errors: [] };
    const touched = new Set<string>();
    const state: RunState = { report, deadline, robots: new Map(), linkRobots: new Map() };
    const contexts = new Map<string, Promise<JobContext | null>>();
    const buffer: Lease[] = [];
    // `concurrency` bounds fetches in flight. A page's parse and store run after its fetch slot is
    // freed, so the next fetch overlaps them; `tasks` (fetching or processing) is capped at twice
    // the concurrency so that parsing cannot fall behind without bound.
    let fetching = 0;
    const tasks = new Set<Promise<void>>();
    const maxTasks = concurrency * 2;
    let broken = false;
    // One waiter at a time (the loop); tasks wake it when a fetch slot frees or a task ends.
    // Cheaper than Promise.race over every task on each turn.
    let wake: (() => void) | null = null;
    let version = 0;
    const notify = () => {
      version++;
      const resolve = wake;
      wake = null;
      resolve?.();
    };
    const changed = () => new Promise<void>((resolve) => (wake = resolve));

    const contextFor = (jobId: string) => {
      let found = contexts.get(jobId);
      if (found === undefined) {
        found = storage.getJob(jobId).then((job) => (job === null || TERMINAL_STATUSES.has(job.status) ? null : jobContext(job)));
        contexts.set(jobId, found);
      }
      return found;
    };

    const launch = (lease: Lease) => {
      let slotFree = false;
      const freeSlot = () => {
        if (slotFree) return;
        slotFree = true;
        fetching--;
        notify();
      };
      fetching++;
      const task = (async () => {
        try {
          const ctx = await contextFor(lease.jobId);
          if (ctx !== null) await work(lease, ctx, state, freeSlot);
        } catch (error) {
          // The lease is left to expire, so the URL is retried by a later claim.
          report.errors.push(`${lease.url}: ${message(error)}`);
        } finally {
          freeSlot();
        }
      })();
      tasks.add(task);
      void task.then(() => {
        tasks.delete(task);
        notify();
      });
    };

    const open = () => !broken && !signal?.aborted && now() < deadline;
    const room = () => fetching < concurrency && tasks.size < maxTasks;

    while (open()) {
      if (buffer.length === 0 && room()) {
        let leases: Lease[];
        let readyAt: number | null = null;
        const before = version;
        try {
          // Claim at least a quarter of the concurrency at a time: fewer round trips to shared
          // storage; what is claimed but not started when the run ends is released.
          const claimed = await storage.claim({
            limit: Math.max(concurrency - fetching, Math.ceil(concurrency / 4)),
            leaseMs: deps.leaseMs,
            now: now(),
            ...(options.jobId === undefined ? {} : { jobId: options.jobId }),
          });
          leases = claimed.leases;
          readyAt = claimed.nextReadyAt ?? null;
          emit(claimed.events);
        } catch (error) {
          report.errors.push(`claim: ${message(error)}`);
          broken = true;
          break;
        }
        report.claimed += leases.length;
        for (const lease of leases) touched.add(lease.jobId);
        buffer.push(...leases);
        if (leases.length === 0) {
          // Nothing ready now; a page still in flight may add links. A task that ended while
          // the claim was running may already have added some: then claim again at once.
          if (version !== before) continue;
          if (tasks.size === 0) {
            // URLs waiting out a backoff or a host delay that ends inside the budget: wait for them.
            if (readyAt === null || readyAt >= deadline) break;
            await sleep(Math.max(1, readyAt - now()), signal);
            continue;
          }
          await changed();
          continue;
        }
      }
      while (buffer.length > 0 && room() && open()) launch(buffer.shift()!);
      if (!room()) await changed();
    }

    if (buffer.length > 0) {
      try {
        report.released += await storage.release(buffer.splice(0));
      } catch (error) {
        report.errors.push(`release: ${message(error)}`);
      }
    }
    await Promise.all(tasks);
    report.jobsTouched = [...touched];
    report.durationMs = now() - started;
    return report;
  }

  function start(options: StartOptions = {}): Worker {
    const controller = new AbortController();
    const idleMs = options.idleMs ?? 1000;
    const loop = (async () => {
      while (!controller.signal.aborted) {
        const report = await run({
          budgetMs: options.budgetMs ?? 30_000,
          concurrency: options.concurrency ?? 20,
          signal: controller.signal,
        }).catch(
          (error: unknown): RunReport => ({
            claimed: 0,
            succeeded: 0,
            failed: 0,
            skipped: 0,
            retried: 0,
            released: 0,
            durationMs: 0,
            jobsTouched: [],
            errors: [message(error)],
          }),
        );
        options.onRun?.(report);
        if (report.claimed === 0 || report.errors.length > 0) await sleep(idleMs, controller.signal);
      }
    })();
    return {
      async stop() {
        controller.abort();
        await loop;
      },
    };
  }

  return { run, start };
}
