/**
 * Browser (and Node) client of the crawl API: `watchJob` follows a job's events over
 * `EventSource` (resume after a dropped connection is automatic: the browser sends
 * `Last-Event-ID`), and `createCrawlClient` wraps the JSON routes. No dependencies.
 *
 * @module crawl-engine/client
 */
// Only types and the dependency-free constants module: nothing else of the library reaches the browser.
import { PROGRESS_EVENT_TYPES, TERMINAL_EVENT_LIST } from '../core/constants.js';
import type { JobInput, RecrawlOverrides } from '../core/jobs.js';
import type { MapOptions, MapResult } from '../core/map.js';
import type { WebhookDelivery } from '../core/storage.js';
import type { Job, JobLink, JobStatus, Paginated, PageResult, ProgressEvent, ProgressEventType } from '../core/types.js';

const TERMINAL: ReadonlySet<ProgressEventType> = new Set(TERMINAL_EVENT_LIST);

/** The EventSource constructor to use (the browser's, or e.g. the `eventsource` package in Node). */
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSource;

export interface WatchJobOptions {
  /** Called with every event, in order, each once (repeats after a reconnect are dropped). */
  onEvent: (event: ProgressEvent) => void;
  /** Connection trouble; EventSource keeps retrying by itself until `signal` aborts. */
  onError?: (event: Event) => void;
  /** Stops watching. */
  signal?: AbortSignal;
  /** @default globalThis.EventSource */
  EventSource?: EventSourceConstructor;
  withCredentials?: boolean;
}

/**
 * Follows a job's event stream (`/api/crawl/jobs/:id/events`). Resolves with the terminal event,
 * or null when `signal` aborts or the server says there is nothing more (204).
 */
export function watchJob(url: string, options: WatchJobOptions): Promise<ProgressEvent | null> {
  const Source = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
  if (Source === undefined) throw new TypeError('[crawl-engine] watchJob: no EventSource here; pass one (e.g. from the eventsource package)');
  return new Promise((resolve) => {
    if (options.signal?.aborted) return resolve(null);
    const source = new Source(url, { withCredentials: options.withCredentials ?? false });
    let last = 0;
    const finish = (value: ProgressEvent | null) => {
      source.close();
      options.signal?.removeEventListener('abort', onAbort);
      resolve(value);
    };
    const onAbort = () => finish(null);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const onMessage = (message: MessageEvent<string>) => {
      const event = JSON.parse(message.data) as ProgressEvent;
      const id = Number(event.id);
      if (id <= last && event.type !== 'progress') return;
      last = Math.max(last, id);
      options.onEvent(event);
      if (TERMINAL.has(event.type)) finish(event);
    };
    for (const type of PROGRESS_EVENT_TYPES) source.addEventListener(type, onMessage as EventListener);
    source.addEventListener('error', (event) => {
      // CLOSED after an error means the server refused to go on (204, 404): stop.
      if (source.readyState === 2) finish(null);
      else options.onError?.(event);
    });
  });
}

/** A problem+json answer of the API, thrown by the client. */
export class CrawlClientError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly errors?: Array<{ path: string; message: string }>,
  ) {
    super(message);
    this.name = this.constructor.name;
  }
}

export interface CrawlClientOptions {
  /** @default '/api/crawl' */
  baseUrl?: string;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Extra headers on every request (auth). */
  headers?: Record<string, string>;
  /** For `watch`. @default globalThis.EventSource */
  EventSource?: EventSourceConstructor;
}

export interface CrawlClient {
  createJob(input: JobInput): Promise<Job>;
  getJob(id: string): Promise<Job>;
  /**
   * A new job that crawls the finished job `id` again with conditional requests (`POST
   * …/jobs/:id/recrawl`), with the same options but `overrides`; see `engine.jobs.recrawl`.
   */
  recrawlJob(id: string, overrides?: RecrawlOverrides): Promise<Job>;
  cancelJob(id: string): Promise<Job>;
  /** Deletes the job and everything stored with it (`DELETE …?purge=true`), cancelling it first when active. */
  deleteJob(id: string): Promise<{ id: string; deleted: boolean }>;
  listJobs(query?: { status?: JobStatus; limit?: number; cursor?: string | null }): Promise<Paginated<Job>>;
  results(id: string, query?: { limit?: number; cursor?: string | null }): Promise<Paginated<PageResult>>;
  /** The links of the job's pages with their targets' outcomes (`GET …/links`); `broken: true` keeps the broken ones. */
  links(id: string, query?: { broken?: boolean; limit?: number; cursor?: string | null }): Promise<Paginated<JobLink>>;
  /** The job's webhook deliveries with their state, attempts and last error (`GET …/webhooks`). */
  deliveries(id: string, query?: { limit?: number; cursor?: string | null }): Promise<Paginated<WebhookDelivery>>;
  /** The URL of a job's results as one streamed file (`results.jsonl` or `results.csv`), for a link or `fetch`. */
  exportUrl(id: string, format: 'jsonl' | 'csv'): string;
  /** A site's URLs from its sitemaps and start page, without a job (`POST /map`). */
  map(url: string, options?: MapOptions): Promise<MapResult>;
  /** The events URL of a job, for your own EventSource. */
  eventsUrl(id: string): string;
  watch(id: string, options: Omit<WatchJobOptions, 'EventSource'>): Promise<ProgressEvent | null>;
}

export function createCrawlClient(options: CrawlClientOptions = {}): CrawlClient {
  const base = (options.baseUrl ?? '/api/crawl').replace(/\/+$/, '');
  const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  const query = (q: Record<string, string | number | null | undefined>) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null) params.set(k, String(v));
    const s = params.toString();
    return s === '' ? '' : `?${s}`;
  };
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await doFetch(`${base}${path}`, {
      method,
      headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    const data = text === '' ? null : (JSON.parse(text) as unknown);
    if (!res.ok) {
      const p = (data ?? {}) as { code?: string; detail?: string; errors?: Array<{ path: string; message: string }> };
      throw new CrawlClientError(res.status, p.code ?? 'http_error', p.detail ?? `HTTP ${res.status}`, p.errors);
    }
    return data as T;
  }
  const job = (id: string) => `/jobs/${encodeURIComponent(id)}`;
  return {
    createJob: (input) => call('POST', '/jobs', input),
    getJob: (id) => call('GET', job(id)),
    recrawlJob: (id, overrides = {}) => call('POST', `${job(id)}/recrawl`, overrides),
    cancelJob: (id) => call('DELETE', job(id)),
    deleteJob: (id) => call('DELETE', `${job(id)}?purge=true`),
    listJobs: (q = {}) => call('GET', `/jobs${query(q)}`),
    results: (id, q = {}) => call('GET', `${job(id)}/results${query(q)}`),
    deliveries: (id, q = {}) => call('GET', `${job(id)}/webhooks${query(q)}`),
    links: (id, q = {}) => call('GET', `${job(id)}/links${query({ ...q, broken: q.broken === true ? 'true' : undefined })}`),
    exportUrl: (id, format) => `${base}${job(id)}/results.${format === 'csv' ? 'csv' : 'jsonl'}`,
    map: (url, mapOptions = {}) => call('POST', '/map', { ...mapOptions, url }),
    eventsUrl: (id) => `${base}${job(id)}/events`,
    watch: (id, watchOptions) =>
      watchJob(`${base}${job(id)}/events`, { ...watchOptions, ...(options.EventSource ? { EventSource: options.EventSource } : {}) }),
  };
}
