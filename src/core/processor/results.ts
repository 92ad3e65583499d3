/**
 * The `PageResult`s the pipeline stores: a lease's starting point, a link robots.txt disallowed,
 * and any result made storable by every adapter.
 */
import { repairJson, repairText, truncate } from '../../crawl/text.js';
import { LASTMOD_MAX_LENGTH } from '../constants.js';
import type { FrontierLink, Lease, SkippedLink } from '../storage.js';
import type { PageResult } from '../types.js';
import { ROBOTS_SKIP_CODE } from './robots-policy.js';
import { message } from './shared.js';

/** A lease's result before anything is known of the page: not ok, no error yet. */
export function emptyResult(lease: Lease, startedAt: number, now: () => number): PageResult {
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

/** The result recorded for a link robots.txt disallows: skipped, never fetched. */
export function skippedResult(link: FrontierLink, reason: string, at: number): PageResult {
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
    error: { code: ROBOTS_SKIP_CODE, message: reason },
    attempts: 0,
    durationMs: 0,
    fetchedAt: new Date(at).toISOString(),
    data: null,
  };
}

/**
 * The link as every adapter can store it: its sitemap `<lastmod>` cut to `LASTMOD_MAX_LENGTH`
 * units (never inside a surrogate pair) and well-formed, or left out when it is empty.
 */
export function storableLink(link: FrontierLink): FrontierLink {
  const { lastmod } = link;
  if (lastmod === undefined) return link;
  const bounded = repairText(truncate(String(lastmod), LASTMOD_MAX_LENGTH));
  if (bounded === lastmod && bounded !== '') return link;
  const { lastmod: _dropped, ...rest } = link;
  return bounded === '' ? rest : { ...rest, lastmod: bounded };
}

const storableLinks = (links: FrontierLink[]): FrontierLink[] => (links.some((l) => l.lastmod !== undefined) ? links.map(storableLink) : links);
const storableSkipped = (skipped: SkippedLink[]): SkippedLink[] =>
  skipped.some((s) => s.link.lastmod !== undefined) ? skipped.map((s) => ({ ...s, link: storableLink(s.link) })) : skipped;

/**
 * The result as every adapter can store it: strings from the page well-formed (a lone surrogate
 * or a NUL becomes U+FFFD; Postgres jsonb refuses both), and `data` from a custom `extract`
 * plain JSON, and links' `lastmod` bounded (see `storableLink`). Data that cannot be stored fails the page with `extract_error` rather than
 * failing the store, which would strand the lease and lose the page.
 */
export function storable(
  result: PageResult,
  found: FrontierLink[],
  disallowed: SkippedLink[],
): { result: PageResult; links: FrontierLink[]; skipped: SkippedLink[] } {
  const links = storableLinks(found);
  const skipped = storableSkipped(disallowed);
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
