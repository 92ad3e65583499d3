/**
 * The processor's side of recrawls: each page's result in the job crawled again (looked up by URL
 * through `storage.getResults`, batched across the pages a processor starts in one turn), the
 * result of a page that answered 304, and the recrawl's frontier seeded with the earlier job's URLs.
 */
import { validator } from '../../crawl/fetcher.js';
import { GET_RESULTS_BATCH, holdsContent } from '../recrawl.js';
import type { CrawlStorage, FrontierLink } from '../storage.js';
import type { Job, PageResult } from '../types.js';
import { ROBOTS_SKIP_CODE } from './robots-policy.js';

/** Looks up results of an earlier job by URL, one `getResults` call per job for the lookups of a turn. */
export interface PriorLoader {
  get(jobId: string, url: string): Promise<PageResult | null>;
  /**
   * Looks up these URLs now, in one call, for the `get`s to come (the leases a claim gave): each
   * `get` of one of them takes its answer instead of a round trip of its own.
   */
  prime(jobId: string, urls: string[]): void;
  /** Several at once, in order (any number: split into calls of 1,000). */
  getMany(jobId: string, urls: string[]): Promise<Array<PageResult | null>>;
}

interface Waiting {
  url: string;
  resolve: (result: PageResult | null) => void;
  reject: (error: unknown) => void;
}

/** Most primed lookups kept waiting for their `get` (those of leases released unworked are dropped past it). */
const MAX_PRIMED = 10_000;

/**
 * The loader of one processor: lookups asked for in one turn go in one `getResults` call per job,
 * and those primed at claim time (`prime`) are answered from that call.
 */
export function createPriorLoader(storage: CrawlStorage): PriorLoader {
  let queued: Map<string, Waiting[]> | null = null;
  const primed = new Map<string, Promise<PageResult | null>>();
  const primeKey = (jobId: string, url: string) => `${jobId} ${url}`;

  async function getMany(jobId: string, urls: string[]): Promise<Array<PageResult | null>> {
    if (storage.getResults === undefined) return urls.map(() => null);
    const out: Array<PageResult | null> = [];
    for (let from = 0; from < urls.length; from += GET_RESULTS_BATCH) {
      out.push(...(await storage.getResults(jobId, urls.slice(from, from + GET_RESULTS_BATCH))));
    }
    return out;
  }

  function flush(batch: Map<string, Waiting[]>): void {
    for (const [jobId, waiting] of batch) {
      getMany(
        jobId,
        waiting.map((w) => w.url),
      ).then(
        (found) => {
          for (const [i, w] of waiting.entries()) w.resolve(found[i] ?? null);
        },
        (error: unknown) => {
          for (const w of waiting) w.reject(error);
        },
      );
    }
  }

  return {
    prime(jobId, urls) {
      if (storage.getResults === undefined || urls.length === 0) return;
      if (primed.size + urls.length > MAX_PRIMED) primed.clear();
      const all = getMany(jobId, urls);
      // A failed lookup is asked again by the page's own get.
      all.catch(() => {
        for (const url of urls) primed.delete(primeKey(jobId, url));
      });
      urls.forEach((url, i) => {
        primed.set(
          primeKey(jobId, url),
          all.then((found) => found[i] ?? null),
        );
      });
    },
    get(jobId, url) {
      const early = primed.get(primeKey(jobId, url));
      if (early !== undefined) {
        primed.delete(primeKey(jobId, url));
        return early;
      }
      return new Promise((resolve, reject) => {
        if (queued === null) {
          const batch = new Map<string, Waiting[]>();
          queued = batch;
          // Lookups asked for in the same turn (the pages a run starts together) go in one call.
          setImmediate(() => {
            queued = null;
            flush(batch);
          });
        }
        const list = queued.get(jobId);
        if (list === undefined) queued.set(jobId, [{ url, resolve, reject }]);
        else list.push({ url, resolve, reject });
      });
    },
    getMany,
  };
}

/**
 * A recrawl's result for a page that answered 304: the earlier result's metadata, hash and
 * custom data, the validators of the new answer (else the earlier ones), and, when the earlier
 * result holds content (`links`, `text`, `markdown`, `html`), a pointer to the job that stores it.
 */
export function notModifiedResult(
  base: PageResult,
  prior: PageResult,
  recrawlOf: string,
  headers: Record<string, string>,
  /** Keep a copy of the content instead of the pointer (an engine with `retention`); `prior` has it filled in. */
  copy = false,
): PageResult {
  const result: PageResult = {
    ...base,
    ok: true,
    error: null,
    contentType: prior.contentType,
    title: prior.title,
    description: prior.description,
    canonical: prior.canonical,
    links: prior.links,
    wordCount: prior.wordCount,
    data: prior.data ?? null,
    etag: validator(headers.etag) ?? prior.etag ?? null,
    lastModified: validator(headers['last-modified']) ?? prior.lastModified ?? null,
    contentHash: prior.contentHash ?? null,
    change: 'unchanged',
  };
  if (prior.truncated !== undefined) result.truncated = prior.truncated;
  if (!holdsContent(prior)) return result;
  if (!copy) {
    result.contentFrom = prior.contentFrom ?? recrawlOf;
    return result;
  }
  if (prior.outlinks !== undefined) result.outlinks = prior.outlinks;
  for (const field of ['text', 'markdown', 'html'] as const) if (prior[field] !== undefined) result[field] = prior[field];
  return result;
}

/**
 * An unchanged page's result that was fetched whole (same hash): its content fields are dropped in
 * favour of a pointer to the job holding the earlier, equal, content, so it is stored once.
 */
export function referToPrior(result: PageResult, prior: PageResult, recrawlOf: string): PageResult {
  if (!holdsContent(prior) || !holdsContent(result)) return result;
  const { outlinks: _o, text: _t, markdown: _m, html: _h, truncated: _c, ...rest } = result;
  const referred: PageResult = { ...rest, contentFrom: prior.contentFrom ?? recrawlOf };
  if (prior.truncated !== undefined) referred.truncated = prior.truncated;
  return referred;
}

/** Results of the earlier job read at once while seeding (fewer for jobs whose results carry content). */
const SEED_PAGE = 1000;
const SEED_CONTENT_PAGE = 25;

/**
 * The frontier of a recrawl beyond its start URL: every URL the earlier job fetched (not those
 * robots.txt skipped, which are found again if still linked), at its depth there, within the
 * recrawl's scope, globs and `maxDepth`, and at most `maxPages - 1` of them (the start URL holds
 * one charge). Read in pages of 1,000 results (25 for jobs with content formats), then stored with
 * the start URL's result, so a page that answers 304, and has no links to give, loses none.
 */
export async function seedLinks(storage: CrawlStorage, job: Job, recrawlOf: string, follow: (url: URL) => boolean): Promise<FrontierLink[]> {
  const content = (job.options.formats ?? []).some((f) => f !== 'metadata');
  const limit = content ? SEED_CONTENT_PAGE : SEED_PAGE;
  const room = job.options.maxPages - 1;
  const seen = new Set<string>([job.url]);
  const links: FrontierLink[] = [];
  let cursor: string | null = null;
  do {
    const page = await storage.listResults(recrawlOf, { limit, cursor });
    for (const result of page.items) {
      if (links.length >= room) return links;
      if (result.error?.code === ROBOTS_SKIP_CODE || result.depth > job.options.maxDepth || seen.has(result.url)) continue;
      seen.add(result.url);
      let url: URL;
      try {
        url = new URL(result.url);
      } catch {
        continue;
      }
      if (!follow(url)) continue;
      links.push({ url: result.url, key: result.url, depth: result.depth, host: url.hostname, robots: job.options.respectRobots ? 'unknown' : 'allowed' });
    }
    cursor = page.nextCursor;
  } while (cursor !== null && links.length < room);
  return links;
}
