/**
 * `engine.map(url)`: a site's URLs, fast, without a job: those its sitemaps list and those its start
 * page links to, in scope, each once, within a limit and a time. Nothing is stored. Fetches go
 * through the engine's guarded fetcher, as a crawl's do.
 */
import { z } from 'zod';
import type { Fetcher } from '../crawl/fetcher.js';
import { parseRobots, ROBOTS_MAX_BYTES, type RobotsRule, robotsAllows } from '../crawl/robots.js';
import { CRAWL_SCOPES, DEFAULT_SCOPE, SITEMAP_MODES } from './constants.js';
import { fieldErrors, invalid } from './errors.js';
import { jobInputSchema } from './jobs.js';
import type { ErrorInfo, SitemapSummary } from './types.js';
import { linkFilter, normalizeUrl } from '../crawl/url.js';
import { isWellFormed } from '../crawl/text.js';
import { sliceUsed, yieldToLoop } from '../crawl/slices.js';

/** Most URLs one map returns. */
export const MAP_MAX_LIMIT = 100_000;
/** Most characters of URLs one map returns (URLs of up to 2048 characters: 100,000 of them would be 200 MB). */
export const MAP_MAX_URL_CHARS = 16 * 1024 * 1024;

const glob = z
  .string()
  .min(1, 'expected a non-empty glob')
  .max(1000, 'expected at most 1000 characters')
  .refine((value) => !value.includes('\u0000'), 'expected no NUL (\\u0000) characters')
  .refine(isWellFormed, 'expected well-formed Unicode text');

/** The options of `engine.map()` (and the body of `POST /map`, with `url`). Unknown fields are refused. */
export const mapOptionsSchema = z.strictObject({
  /** Most URLs returned (1–100,000; default 5000). */
  limit: z.int().min(1).max(MAP_MAX_LIMIT).default(5000),
  /** Which URLs are listed, compared with the start URL, as for jobs (default `same-hostname`). */
  scope: z.enum(CRAWL_SCOPES).default(DEFAULT_SCOPE),
  include: z.array(glob).max(100).default([]),
  exclude: z.array(glob).max(100).default([]),
  /** Only URLs that contain this text (case-insensitive). */
  search: z.string().min(1).max(500).refine(isWellFormed, 'expected well-formed Unicode text').optional(),
  /** `include` (default): sitemaps and the start page's links; `only`: sitemaps; `skip`: the start page's links. */
  sitemap: z.enum(SITEMAP_MODES).default('include'),
  /** Leave out URLs the site's robots.txt disallows, and do not fetch a disallowed start page (default true). */
  respectRobots: z.boolean().default(true),
  /** Most time the map takes (1000–120,000 ms; default 30,000). */
  timeoutMs: z.int().min(1000).max(120_000).default(30_000),
});

const mapInputSchema = mapOptionsSchema.extend({ url: jobInputSchema.shape.url });

/** What `engine.map()` accepts besides the URL. */
export type MapOptions = z.input<typeof mapOptionsSchema>;

export interface MapUrl {
  url: string;
  /** The `<lastmod>` a sitemap gave. */
  lastmod?: string;
}

export interface MapResult {
  /** The start URL, normalised. */
  url: string;
  /** The start URL first (when it passes the filters), then sitemap URLs, then the start page's links; each once, at most `limit`. */
  urls: MapUrl[];
  /** True when more URLs were found than `limit` (or than fit in 16 Mi characters of URLs, or than were judged by `timeoutMs`). */
  truncated: boolean;
  /** What reading the sitemaps found; null with `sitemap: 'skip'`. */
  sitemaps: SitemapSummary | null;
  /**
   * The start page: its HTTP status, how many links it had, and its error (a fetch error, `robots`
   * when robots.txt disallows it, `timeout` past `timeoutMs`); null with `sitemap: 'only'`.
   */
  page: { status: number | null; links: number; error: ErrorInfo | null } | null;
}

export interface MapDeps {
  fetcher: () => Fetcher;
  userAgent: string;
  maxLinksPerPage: number;
  /** A refusal reason for the start URL's host, or null. */
  checkHost: (hostname: string) => string | null;
}

/** Parses `engine.map()`'s arguments, throwing `invalid_input` that names each bad field. */
export function parseMapInput(input: unknown): z.output<typeof mapInputSchema> {
  const parsed = mapInputSchema.safeParse(input);
  if (!parsed.success) throw invalid('invalid_input', 'map input', fieldErrors(parsed.error.issues));
  return parsed.data;
}

export async function mapSite(deps: MapDeps, url: string, options: MapOptions = {}): Promise<MapResult> {
  const input = parseMapInput(typeof options === 'object' && options !== null ? { ...options, url } : { url, options });
  const start = normalizeUrl(input.url)!;
  const startUrl = new URL(start);
  const refused = deps.checkHost(startUrl.hostname);
  if (refused !== null) throw invalid('invalid_input', 'map input', [{ path: 'url', message: `expected an address that may be fetched: ${refused}` }]);
  const deadline = Date.now() + input.timeoutMs;
  const fetcher = deps.fetcher();
  const filter = linkFilter({ startUrl: start, scope: input.scope, include: input.include, exclude: input.exclude });
  const needle = input.search?.toLowerCase();

  // At most half the time for robots.txt (a site that does not answer it has none).
  const { beforeDeadline, readSitemaps } = await import('../crawl/sitemap.js');
  const robotsBy = Date.now() + input.timeoutMs / 2;
  const robotsFetch = await beforeDeadline(
    fetcher.fetchText(`${startUrl.origin}/robots.txt`, ROBOTS_MAX_BYTES, { timeoutMs: robotsBy - Date.now() }),
    robotsBy,
  );
  const robotsTxt = robotsFetch?.error === null ? robotsFetch.html : null;
  const rules: RobotsRule[] = input.respectRobots && robotsTxt !== null ? parseRobots(robotsTxt, deps.userAgent).rules : [];
  const allowed = (u: URL) => rules.length === 0 || robotsAllows(rules, u.pathname + u.search).allowed;
  const accept = (u: URL) => filter(u) && allowed(u) && (needle === undefined || u.href.toLowerCase().includes(needle));

  const sitemaps = input.sitemap === 'skip' ? null : readSitemaps({ fetcher, startUrl: start, maxUrls: input.limit, deadline, accept, robotsTxt });
  const page = input.sitemap === 'only' ? null : startPage(deps, fetcher, startUrl, allowed(startUrl), deadline);
  const [reading, linked] = await Promise.all([sitemaps, page]);

  const urls: MapUrl[] = [];
  const seen = new Set<string>();
  let truncated = reading?.truncated ?? false;
  let chars = 0;
  const add = (entry: MapUrl) => {
    if (seen.has(entry.url)) return;
    if (urls.length >= input.limit || chars + entry.url.length > MAP_MAX_URL_CHARS) {
      truncated = true;
      return;
    }
    chars += entry.url.length;
    seen.add(entry.url);
    urls.push(entry);
  };
  if (accept(startUrl)) add({ url: start });
  for (const entry of reading?.urls ?? []) add(entry);
  // robots.txt rules come from the site (tens of thousands of them): the links are judged in slices,
  // and those left when time is up are left out (`truncated`).
  for (const link of linked?.links ?? []) {
    if (sliceUsed()) await yieldToLoop();
    if (Date.now() >= deadline) {
      truncated = true;
      break;
    }
    if (accept(link)) add({ url: link.href });
  }
  return {
    url: start,
    urls,
    truncated,
    sitemaps: reading === null ? null : { read: reading.read, urls: reading.urls.length, truncated: reading.truncated, errors: reading.errors },
    page: linked === null ? null : { status: linked.status, links: linked.links.length, error: linked.error },
  };
}

/** The start page's links, unless robots.txt disallows it; a fetch past the deadline ends with `timeout`. */
async function startPage(
  deps: MapDeps,
  fetcher: Fetcher,
  url: URL,
  allowed: boolean,
  deadline: number,
): Promise<{ status: number | null; links: URL[]; error: ErrorInfo | null }> {
  if (!allowed) return { status: null, links: [], error: { code: 'robots', message: 'disallowed by robots.txt; the start page was not fetched' } };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), Math.max(0, deadline - Date.now()));
  });
  const work = (async () => {
    const fetched = await fetcher.fetch(url.href, () => null, { timeoutMs: deadline - Date.now() });
    if (fetched.error !== null || fetched.html === null) {
      return { status: fetched.status, links: [], error: fetched.error === null ? null : { code: fetched.error.code, message: fetched.error.message } };
    }
    const [{ parseHtml, ParseLimitError }, { extractPageAsync }] = await Promise.all([import('../crawl/parse.js'), import('../crawl/extract.js')]);
    try {
      const document = await parseHtml(fetched.html);
      const extracted = await extractPageAsync(document, fetched.finalUrl, deps.maxLinksPerPage);
      return { status: fetched.status, links: extracted.links, error: null };
    } catch (error) {
      if (!(error instanceof ParseLimitError)) throw error;
      return { status: fetched.status, links: [], error: { code: error.code, message: error.message } };
    }
  })();
  work.catch(() => undefined); // past the deadline, its failure has no one to tell
  try {
    const done = await Promise.race([work, late]);
    return done ?? { status: null, links: [], error: { code: 'timeout', message: 'the start page was not fetched and parsed within timeoutMs' } };
  } finally {
    clearTimeout(timer);
  }
}
