/**
 * Exports of a job's results as JSON Lines and CSV, one page of results at a time, for the HTTP
 * API (`GET /jobs/:id/results.jsonl`, `.csv`) and the CLI (`--format jsonl|csv`): no whole job is
 * ever held in memory.
 */
import type { JobsApi } from './jobs.js';
import type { Job, PageResult } from './types.js';

/** The export formats of results. */
export type ExportFormat = 'jsonl' | 'csv';

/** The CSV columns, in order: the scalar fields of a result (`error` as two columns). */
export const CSV_COLUMNS = [
  'url',
  'finalUrl',
  'depth',
  'status',
  'ok',
  'contentType',
  'title',
  'description',
  'canonical',
  'links',
  'wordCount',
  'errorCode',
  'errorMessage',
  'attempts',
  'durationMs',
  'fetchedAt',
  'lastmod',
  'etag',
  'lastModified',
  'contentHash',
  'change',
] as const;

/** Characters that make a spreadsheet read a cell as a formula (OWASP's CSV injection list). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, a quote, CR or LF, quotes doubled. Text
 * that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR) gets a
 * leading `'`, so that it shows as the text it is.
 */
export function csvField(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value !== 'string') return String(value);
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The header row of the CSV export, with its CRLF. */
export function csvHeader(): string {
  return `${CSV_COLUMNS.join(',')}\r\n`;
}

/** One result as a CSV row, with its CRLF. */
export function csvRow(result: PageResult): string {
  const cells = [
    result.url,
    result.finalUrl,
    result.depth,
    result.status,
    result.ok,
    result.contentType,
    result.title,
    result.description,
    result.canonical,
    result.links,
    result.wordCount,
    result.error?.code ?? null,
    result.error?.message ?? null,
    result.attempts,
    result.durationMs,
    result.fetchedAt,
    result.lastmod ?? null,
    result.etag ?? null,
    result.lastModified ?? null,
    result.contentHash ?? null,
    result.change ?? null,
  ];
  return `${cells.map(csvField).join(',')}\r\n`;
}

/** One result as a JSON line, with its LF. */
export function jsonLine(result: PageResult): string {
  return `${JSON.stringify(result)}\n`;
}

/**
 * Results read at once: fewer when results carry page text (`text`, `markdown`, `html`: up to
 * a million characters each), so one batch stays within tens of megabytes.
 */
export function exportBatchSize(job: Pick<Job, 'options'>): number {
  const formats = job.options.formats ?? [];
  return formats.some((format) => format === 'text' || format === 'markdown' || format === 'html') ? 10 : 100;
}

/**
 * The export of a job's results as text chunks (the CSV header first), one chunk per batch of
 * results read from storage; the next batch is read only when the consumer asks for it.
 */
export async function* exportChunks(
  jobs: Pick<JobsApi, 'results'>,
  job: Pick<Job, 'id' | 'options'>,
  format: ExportFormat,
  map: (result: PageResult) => PageResult = (result) => result,
): AsyncGenerator<string> {
  if (format === 'csv') yield csvHeader();
  const limit = exportBatchSize(job);
  let cursor: string | null = null;
  do {
    const page: { items: PageResult[]; nextCursor: string | null } = await jobs.results(job.id, { limit, cursor });
    let chunk = '';
    for (const result of page.items) chunk += format === 'csv' ? csvRow(map(result)) : jsonLine(map(result));
    if (chunk !== '') yield chunk;
    cursor = page.nextCursor;
  } while (cursor !== null);
}
