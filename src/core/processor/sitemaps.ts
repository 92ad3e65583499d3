/**
 * A job's sitemaps (`sitemap: 'include' | 'only'`): read once per job, by the processor that works
 * the start URL, and admitted with its outcome through the same `complete()` as its links (so a
 * processor killed mid-way leaves nothing half-admitted: the start URL's lease is retried and reads
 * them again; frontier dedup makes admitting the same URLs twice harmless).
 */
import type { SitemapReading } from '../../crawl/sitemap.js';
import type { Lease } from '../storage.js';
import type { Job, SitemapSummary } from '../types.js';
import type { ProcessorDeps } from './types.js';

/** Longest time one job's sitemaps are read (also bounded by the lease and the run). */
export const SITEMAP_BUDGET_MS = 30_000;
/**
 * Most sitemap URLs one job keeps: no more than it can use (`2 × maxPages`: its pages and as many
 * spares), and never more than this, so that the start URL's `complete()` stays one bounded call.
 */
export const SITEMAP_MAX_URLS = 50_000;
/** Readings kept for a start URL that is retried (its outcome not stored yet), per processor. */
const MAX_CACHED = 100;
const CACHE_MS = 10 * 60_000;

/** Whether this lease is the start URL of a job that reads sitemaps. */
export function readsSitemaps(lease: Lease, job: Job): boolean {
  const mode = job.options.sitemap ?? 'skip';
  return mode !== 'skip' && lease.depth === 0 && lease.url === job.url;
}

export function sitemapSummary(reading: SitemapReading): SitemapSummary {
  return { read: reading.read, urls: reading.urls.length, truncated: reading.truncated, errors: reading.errors };
}

export interface SitemapReader {
  /** The job's sitemaps, read (once per processor while the start URL's outcome is not stored) within the lease and run. */
  read(lease: Lease, follow: (url: URL) => boolean, job: Job, runDeadline: number): Promise<SitemapReading>;
  /** Forgets a job's reading once the start URL's outcome is stored. */
  done(jobId: string): void;
}

export function createSitemapReader(deps: Pick<ProcessorDeps, 'fetcher' | 'leaseMs' | 'now' | 'fetchTimeoutMs'>): SitemapReader {
  const cache = new Map<string, { at: number; reading: Promise<SitemapReading> }>();
  return {
    read(lease, follow, job, runDeadline) {
      const found = cache.get(job.id);
      if (found !== undefined && Date.now() - found.at < CACHE_MS) return found.reading;
      const start = Date.now();
      // Within the lease (a quarter of it left for the page and the store), and past the run's
      // deadline by no more than a fetch may run.
      const deadline = Math.min(
        start + SITEMAP_BUDGET_MS,
        start + (lease.expiresAt - deps.now()) - deps.leaseMs / 4,
        Math.max(start + (runDeadline - deps.now()), start + (deps.fetchTimeoutMs ?? 15_000)),
      );
      const reading = import('../../crawl/sitemap.js').then(({ readSitemaps }) =>
        readSitemaps({
          fetcher: deps.fetcher(),
          startUrl: job.url,
          maxUrls: Math.min(SITEMAP_MAX_URLS, 2 * job.options.maxPages),
          deadline,
          accept: follow,
        }),
      );
      cache.delete(job.id);
      cache.set(job.id, { at: start, reading });
      while (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value!);
      reading.catch(() => cache.delete(job.id));
      return reading;
    },
    done(jobId) {
      cache.delete(jobId);
    },
  };
}
