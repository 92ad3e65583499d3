/**
 * The robots.txt policy: fetching and caching each origin's record (stored for other processors
 * too), the verdict on a lease, the TTLs of a record, `Crawl-delay`, and what a page's links are
 * judged by.
 */
import { parseRobots, robotsAllows, ROBOTS_MAX_BYTES } from '../../crawl/robots.js';
import type { SKIP_CODE_LIST } from '../constants.js';
import type { Lease, RobotsRecord } from '../storage.js';
import { sleep } from './shared.js';
import type { ProcessorDeps } from './types.js';

/** The error code of a page robots.txt keeps the processor from fetching: a skip, not a failure. */
export const ROBOTS_SKIP_CODE = 'robots' satisfies (typeof SKIP_CODE_LIST)[number];

/** How long a robots.txt record is trusted before it is fetched again. */
const ROBOTS_TTL_MS = 24 * 60 * 60 * 1000;
/** A host whose robots.txt could not be fetched is disallowed this long, then asked again. */
const ROBOTS_UNREACHABLE_TTL_MS = 30_000;
/** Longest `Crawl-delay` honoured; longer ones are cut to this. */
export const MAX_CRAWL_DELAY_MS = 60_000;
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

interface StoredRobots {
  at: number;
  record: Promise<RobotsRecord | null>;
  /** Resolved to null: no processor had stored the origin's robots.txt yet. */
  missing: boolean;
}

/** The robots.txt records one run has looked up, per job and origin. */
export interface RobotsRunCache {
  /** Looked up (and fetched if need be) for leases. */
  leases: Map<string, Promise<{ record: RobotsRecord; fetchedBy: string | null }>>;
  /** Stored records of the origins of links, looked up to judge links; never fetched for that. */
  links: Map<string, StoredRobots>;
}

export const newRobotsRunCache = (): RobotsRunCache => ({ leases: new Map(), links: new Map() });

export type RobotsVerdict =
  | { kind: 'allow'; crawlDelayMs: number }
  | { kind: 'release' }
  | { kind: 'skip'; message: string }
  | { kind: 'unreachable'; message: string; retryAt: number };

export type LinkVerdict = { robots: 'allowed' | 'unknown' } | { robots: 'disallowed'; message: string };

export interface RobotsPolicy {
  /**
   * Decides a lease against its origin's robots.txt, fetching it (once per run and origin, and
   * stored for other processors) when the stored record is missing or stale. When the fetch
   * reveals a `Crawl-delay`, the lease that fetched it waits out the delay before its own request
   * and the other leases on that host are released, so the host sees the delay from the start.
   * `deadline` is the run's: a wait that would pass it releases the lease instead.
   */
  verdict(lease: Lease, cache: RobotsRunCache, deadline: number): Promise<RobotsVerdict>;
  /**
   * The robots.txt records this run knows for the origins of `urls`: looked up for a lease (and
   * fetched if need be) in this run, waited for at most LINK_ROBOTS_WAIT_MS, or else as stored
   * (looked up once per run, again after a while when none was stored yet, never fetched here).
   * Origins past MAX_LINK_ORIGINS, and any whose lookup fails, have none.
   */
  linkRecords(jobId: string, urls: readonly URL[], cache: RobotsRunCache): Promise<Map<string, RobotsRecord | null>>;
}

export function createRobotsPolicy(deps: Pick<ProcessorDeps, 'storage' | 'fetcher' | 'userAgent' | 'leaseMs' | 'now'>): RobotsPolicy {
  const { storage, now } = deps;

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

  async function verdict(lease: Lease, cache: RobotsRunCache, deadline: number): Promise<RobotsVerdict> {
    const url = new URL(lease.url);
    if (url.pathname === '/robots.txt') return { kind: 'allow', crawlDelayMs: 0 };
    const key = `${lease.jobId} ${url.origin}`;
    let entry = cache.leases.get(key);
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
      cache.leases.set(key, entry);
      record.catch(() => cache.leases.delete(key));
    }
    const { record, fetchedBy } = await entry;
    if (record.status === 'unreachable') {
      return {
        kind: 'unreachable',
        retryAt: record.expiresAt,
        message: `robots.txt of ${url.origin} could not be fetched (${record.httpStatus === null ? 'no answer' : `HTTP ${record.httpStatus}`}); the host is disallowed until it can be`,
      };
    }
    const allows = robotsAllows(record.rules, url.pathname + url.search);
    if (!allows.allowed) return { kind: 'skip', message: `disallowed by robots.txt (Disallow: ${allows.rule!.pattern})` };
    const delay = record.crawlDelayMs ?? 0;
    if (delay > 0 && fetchedBy !== null) {
      if (fetchedBy === lease.token) {
        // This lease's robots.txt request was the host's last one: keep the gap before the page.
        if (now() + delay >= deadline) return { kind: 'release' };
        await sleep(delay);
      } else if (lease.expiresAt - deps.leaseMs <= Date.parse(record.fetchedAt)) {
        // Claimed before the delay was known: hand it back so that storage spaces it out.
        return { kind: 'release' };
      }
    }
    return { kind: 'allow', crawlDelayMs: delay };
  }

  async function linkRecords(jobId: string, urls: readonly URL[], cache: RobotsRunCache): Promise<Map<string, RobotsRecord | null>> {
    const origins = [...new Set(urls.map((url) => url.origin))].slice(0, MAX_LINK_ORIGINS);
    const records = await Promise.all(
      origins.map((origin) => {
        const key = `${jobId} ${origin}`;
        const known = cache.leases.get(key);
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
        let stored = cache.links.get(key);
        if (stored === undefined || (stored.missing && now() - stored.at >= LINK_ROBOTS_RECHECK_MS)) {
          const entry: StoredRobots = { at: now(), record: storage.getRobots(jobId, origin).catch(() => null), missing: false };
          void entry.record.then((record) => {
            entry.missing = record === null;
          });
          cache.links.set(key, entry);
          stored = entry;
        }
        return stored.record;
      }),
    );
    return new Map(origins.map((origin, i) => [origin, records[i]!]));
  }

  return { verdict, linkRecords };
}

/**
 * A link against the robots.txt record of its origin: `disallowed` only by fresh rules that
 * disallow it; `unknown` without a fresh record, or while the host's robots.txt is unreachable.
 */
export function judgeLink(url: URL, record: RobotsRecord | null, at: number): LinkVerdict {
  if (record === null || record.expiresAt <= at || record.status === 'unreachable') return { robots: 'unknown' };
  const verdict = robotsAllows(record.rules, url.pathname + url.search);
  if (verdict.allowed) return { robots: 'allowed' };
  return { robots: 'disallowed', message: `disallowed by robots.txt (Disallow: ${verdict.rule!.pattern})` };
}
