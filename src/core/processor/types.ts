/**
 * The processor's public option and interface types, and the dependencies the engine hands it.
 * Kept apart from `index.ts` so that the parts can import them without an import cycle.
 */
import type { CheerioAPI } from 'cheerio/slim';
import type { Fetcher } from '../../crawl/fetcher.js';
import type { Renderer } from '../../crawl/render.js';
import type { CrawlStorage } from '../storage.js';
import type { EngineWebhookSettings } from '../webhooks/options.js';
import type { Job, ProgressEvent, RunReport } from '../types.js';

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
   * timeout, and renders are cut off `render.timeoutMs` after it (plus up to 5 s to close their
   * browser page), so a run returns within `budgetMs` plus the longer of `fetch.timeoutMs` and
   * `render.timeoutMs` + 5 s (plus parsing and a final store).
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
  /**
   * Group commit: pages' outcomes are stored with one `storage.completeMany()` call per job and
   * batch (when the storage has it; else one `complete()` per page). A batch goes when it holds
   * `maxItems` (1 to 1000), when every page the run is working on has queued its outcome, or
   * `lingerMs` (0 to 1000; at most a tenth of the engine's `leaseMs` is used) after its first
   * outcome; the run returns once all are stored.
   * `false`: one `complete()` per page.
   * @default { maxItems: 16, lingerMs: 5 }
   */
  batch?: BatchOptions | false;
}

/** See `RunOptions.batch`. */
export interface BatchOptions {
  /** @default 16 */
  maxItems?: number;
  /** @default 5 */
  lingerMs?: number;
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
  /** Group commit of each run; see `RunOptions.batch`. @default { maxItems: 16, lingerMs: 5 } */
  batch?: BatchOptions | false;
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
  /**
   * Renders pages of jobs with `render: 'always' | 'auto'`, with its settings (the engine's
   * `render` option); undefined: this engine has none, and such a page fails with `render_failed`.
   */
  render?: { renderer: () => Renderer; timeoutMs: number; maxBytes: number };
  /** The engine's `fetch.timeoutMs`: how far past a run's deadline a start URL's sitemaps may be read. */
  fetchTimeoutMs?: number;
  /** Hands stored events to in-process listeners (isolated: it never throws). */
  emit: (events: readonly ProgressEvent[]) => void;
  leaseMs: number;
  retry: { baseDelayMs: number; maxDelayMs: number };
  maxLinksPerPage: number;
  /** Passed with every claim across jobs (`ClaimQuery.maxActiveJobs`). */
  maxActiveJobs: number;
  extract: ExtractFunction | undefined;
  now: () => number;
  /** The engine's `retention` option, with defaults applied; undefined: finished jobs are kept. */
  retention?: RetentionSettings;
  /**
   * The storage's outbox, when it has one: webhook settings (the engine's `webhooks` option with
   * defaults applied), whether this engine posts webhooks (made with that option), and how a
   * schedule's recrawl is started. Undefined: nothing is delivered nor scheduled.
   */
  outbox?: {
    settings: EngineWebhookSettings;
    posts: boolean;
    recrawlScheduled: (entry: { id: string; jobId: string }) => Promise<'started' | 'gone'>;
  };
}

/** See `CrawlEngineOptions.retention`. */
export interface RetentionSettings {
  finishedJobsMaxAgeMs: number;
  batchSize: number;
  intervalMs: number;
}
