/**
 * `engine.jobs.links()`: the links of a job's pages (the `links` format), each joined with the
 * result of its target, and the broken ones (`broken: true`). Built over `storage.listResults`
 * alone, so it works on every adapter with no schema of its own, in two passes of bounded batches:
 * the first collects the outcome of every target (only failed ones for `broken: true`), the second
 * reads the pages from the cursor on and yields their links.
 */
import { z } from 'zod';
import { normalizeUrl } from '../crawl/url.js';
import { CrawlEngineError, fieldErrors, invalid } from './errors.js';
import { fillContent } from './recrawl.js';
import type { CrawlStorage } from './storage.js';
import { type ErrorInfo, type Job, type JobLink, type PageResult, type Paginated, SKIP_CODES } from './types.js';

export interface ListLinksOptions {
  /** Only links whose target's result failed: an HTTP 4xx/5xx, or no 2xx answer at all (see `isBrokenResult`). */
  broken?: boolean;
  /** @default 100 (at most 1000) */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string | null;
}

/** Results read from storage at once (a result with 5,000 links is about half a megabyte). */
const BATCH = 50;
/**
 * Results read at once for a job with `text`, `markdown` or `html`: each result may carry a
 * million characters of each, so 50 at once could take hundreds of MB.
 */
const CONTENT_BATCH = 5;

/** Results read at once for `job`. */
function batchOf(job: Job): number {
  return (job.options.formats ?? []).some((format) => format === 'text' || format === 'markdown' || format === 'html') ? CONTENT_BATCH : BATCH;
}
/** Cursor: `<result index in its batch>.<link index>.<listResults cursor of the batch>`. */
const CURSOR = /^(\d{1,4})\.(\d{1,5})\.([\s\S]{0,200})$/;

const listLinksSchema = z.strictObject({
  broken: z.boolean().default(false),
  limit: z.int().min(1).max(1000).default(100),
  cursor: z.string().max(220).nullable().optional(),
});

/**
 * Whether a result makes the links to it broken: it failed (any error but a robots.txt skip)
 * without a 2xx answer, i.e. with an HTTP error status (4xx, 5xx), a redirect that went wrong, or
 * no answer at all (network error, timeout, refused address, abandoned). A page that answered 2xx
 * but was not stored as HTML (`not_html`, `too_large`, `too_complex`, `extract_error`) is there:
 * links to it work.
 */
export function isBrokenResult(result: Pick<PageResult, 'status' | 'error'>): boolean {
  if (result.status !== null && result.status >= 400) return true;
  if (result.error === null || SKIP_CODES.has(result.error.code)) return false;
  return result.status === null || result.status < 200 || result.status > 299;
}

function badCursor(cursor: string): CrawlEngineError {
  return new CrawlEngineError('invalid_input', `invalid cursor ${JSON.stringify(cursor.slice(0, 100))}: expected a cursor returned by a previous page`, {
    errors: [{ path: 'cursor', message: 'expected a cursor returned by a previous page of links' }],
  });
}

interface Target {
  status: number | null;
  error: ErrorInfo | null;
}

/** Every result of the job, a batch at a time. */
async function* allResults(storage: CrawlStorage, jobId: string, batch: number): AsyncGenerator<PageResult> {
  let cursor: string | null = null;
  do {
    const page: Paginated<PageResult> = await storage.listResults(jobId, { limit: batch, cursor });
    yield* page.items;
    cursor = page.nextCursor;
  } while (cursor !== null);
}

/**
 * The outcome of each target the job has a result for, by URL (and by final URL, for a redirect's
 * target, where no result has that URL): of failed ones only when `brokenOnly`.
 */
async function targetsOf(storage: CrawlStorage, jobId: string, brokenOnly: boolean, batch: number): Promise<Map<string, Target>> {
  const byUrl = new Map<string, Target>();
  const byFinalUrl = new Map<string, Target>();
  for await (const result of allResults(storage, jobId, batch)) {
    if (brokenOnly && !isBrokenResult(result)) continue;
    const target: Target = { status: result.status, error: result.error === null ? null : { code: result.error.code, message: result.error.message } };
    byUrl.set(result.url, target);
    const final = result.finalUrl === result.url ? null : normalizeUrl(result.finalUrl);
    if (final !== null && final !== result.url && !byFinalUrl.has(final)) byFinalUrl.set(final, target);
  }
  for (const [url, target] of byFinalUrl) if (!byUrl.has(url)) byUrl.set(url, target);
  return byUrl;
}

/** Throws `invalid_input` naming `formats` for a job whose results carry no links. */
export function assertLinksFormat(job: Job): void {
  if ((job.options.formats ?? ['metadata']).includes('links')) return;
  throw new CrawlEngineError(
    'invalid_input',
    `job ${job.id} was crawled without the links format, so its results carry no links: create the job with formats: ['links'] (next to any others) to list them`,
    { errors: [{ path: 'formats', message: 'expected a job created with formats including "links"' }] },
  );
}

export type LinksQuery = z.output<typeof listLinksSchema>;

/** Validates the options of `jobs.links()`: `invalid_input` naming the field. */
export function parseLinksOptions(options: unknown): LinksQuery {
  const parsed = listLinksSchema.safeParse(options ?? {});
  if (!parsed.success) throw invalid('invalid_input', 'links options', fieldErrors(parsed.error.issues));
  return parsed.data;
}

/** See `JobsApi.links`. The job must exist (the caller checks). */
export async function listLinks(storage: CrawlStorage, job: Job, query: LinksQuery): Promise<Paginated<JobLink>> {
  const { broken, limit } = query;
  const batch = batchOf(job);
  let resultIndex = 0;
  let linkIndex = 0;
  let batchCursor: string | null = null;
  const cursor = query.cursor;
  if (cursor !== undefined && cursor !== null && cursor !== '') {
    const match = CURSOR.exec(cursor);
    if (match === null || Number(match[1]) >= BATCH) throw badCursor(cursor);
    resultIndex = Number(match[1]);
    linkIndex = Number(match[2]);
    batchCursor = match[3] === '' ? null : match[3]!;
  }
  assertLinksFormat(job);

  const targets = await targetsOf(storage, job.id, broken, batch);
  const items: JobLink[] = [];
  for (;;) {
    const page: Paginated<PageResult> = await storage.listResults(job.id, { limit: batch, cursor: batchCursor });
    // A recrawl's unchanged pages point to the job that holds their links.
    if (job.options.recrawlOf !== undefined) page.items = await fillContent(storage, job.options.formats, page.items);
    for (let r = resultIndex; r < page.items.length; r++) {
      const result = page.items[r]!;
      const links = result.outlinks ?? [];
      for (let l = r === resultIndex ? linkIndex : 0; l < links.length; l++) {
        const link = links[l]!;
        const target = targets.get(link.url);
        if (broken && target === undefined) continue;
        // One more than the page holds: where the next page starts.
        if (items.length === limit) return { items, nextCursor: `${r}.${l}.${batchCursor ?? ''}` };
        items.push({
          from: result.url,
          url: link.url,
          text: link.text,
          rel: link.rel,
          internal: link.internal,
          status: target?.status ?? null,
          error: target?.error ?? null,
        });
      }
    }
    if (page.nextCursor === null) return { items, nextCursor: null };
    batchCursor = page.nextCursor;
    resultIndex = 0;
    linkIndex = 0;
  }
}
