/**
 * Recrawls (`engine.jobs.recrawl()`): how a recrawl's result compares with the job it crawls again
 * (`PageResult.change`), and the content an unchanged result leaves with the job that holds it
 * (`PageResult.contentFrom`), filled in by every read.
 */
import type { CrawlStorage } from './storage.js';
import type { PageResult, ResultChange, ResultFormat } from './types.js';

/** The result fields an unchanged page of a recrawl leaves in the result that holds them. */
export const HELD_FIELDS = ['outlinks', 'text', 'markdown', 'html'] as const;

/** Most URLs one `getResults` call asks for. */
export const GET_RESULTS_BATCH = 1000;

/** Whether a result carries (or points to) content of the formats it was stored with. */
export function holdsContent(result: PageResult): boolean {
  return result.contentFrom !== undefined || HELD_FIELDS.some((field) => result[field] !== undefined);
}

/**
 * How a recrawl's page compares with its result in the job crawled again (`prior`, null when that
 * job has none): see `PageResult.change`. `notModified`: the page answered the conditional request
 * with 304.
 */
export function changeOf(prior: PageResult | null, now: PageResult, notModified: boolean): ResultChange {
  if (prior === null) return 'new';
  if (notModified) return 'unchanged';
  if ((now.status === 404 || now.status === 410) && prior.ok) return 'gone';
  if (now.ok) return prior.ok && prior.contentHash != null && prior.contentHash === now.contentHash ? 'unchanged' : 'changed';
  return !prior.ok && prior.status === now.status && prior.error?.code === now.error?.code ? 'unchanged' : 'changed';
}

/**
 * The results with the content of their unchanged pages filled in from the results that hold it
 * (`contentFrom`): one `getResults` call per holding job and 1,000 URLs. A result whose holder has
 * no result for it any more (the storage lost it) gets the fields of `formats` empty (`outlinks`
 * `[]`, the others null), and keeps `contentFrom`.
 */
export async function fillContent(storage: CrawlStorage, formats: readonly ResultFormat[] | undefined, items: PageResult[]): Promise<PageResult[]> {
  const byHolder = new Map<string, number[]>();
  items.forEach((item, at) => {
    if (item.contentFrom === undefined) return;
    const list = byHolder.get(item.contentFrom);
    if (list === undefined) byHolder.set(item.contentFrom, [at]);
    else list.push(at);
  });
  if (byHolder.size === 0 || storage.getResults === undefined) return items;
  const filled = items.slice();
  for (const [holder, positions] of byHolder) {
    for (let from = 0; from < positions.length; from += GET_RESULTS_BATCH) {
      const batch = positions.slice(from, from + GET_RESULTS_BATCH);
      const found = await storage.getResults(
        holder,
        batch.map((at) => items[at]!.url),
      );
      batch.forEach((at, i) => {
        const source = found[i] ?? null;
        const item: PageResult = { ...items[at]! };
        if (source === null) {
          if (formats?.includes('links') === true) item.outlinks = [];
          for (const field of ['text', 'markdown', 'html'] as const) if (formats?.includes(field) === true) item[field] = null;
        } else {
          if (source.outlinks !== undefined) item.outlinks = source.outlinks;
          for (const field of ['text', 'markdown', 'html'] as const) if (source[field] !== undefined) item[field] = source[field];
        }
        filled[at] = item;
      });
    }
  }
  return filled;
}
