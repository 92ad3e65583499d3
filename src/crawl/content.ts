/**
 * A result's content formats (`JobOptions.formats`): `html` (the page as fetched, decoded),
 * `text` and `markdown` (the main content only unless `onlyMainContent` is false), each capped at
 * {@link MAX_CONTENT_CHARS} characters with a line saying what was cut.
 *
 * The main-content and markdown libraries run in a worker thread (./main-content.ts), started on
 * first use; a page past {@link LIBRARY_LIMITS}, or one the worker fails on or takes too long
 * for, gets the sliced walk of ./page-text.ts instead (chrome skipped by tag, role and class
 * name), with a line saying so.
 */
import type { ResultFormat } from '../core/types.js';
import { MainContentError, mainContent } from './main-content.js';
import { ParseLimitError, parseHtml } from './parse.js';
import { measureTree, pageText } from './page-text.js';
import { truncate } from './text.js';

/** Most characters (UTF-16 code units) kept in each of `text`, `markdown` and `html`, the cut line included. */
export const MAX_CONTENT_CHARS = 1_000_000;
/** Room kept at the end of a cut field for the line saying so. */
const MARKER_ROOM = 64;

/**
 * The largest page handed to the libraries in the worker: past any of these the sliced fallback
 * is used instead. linkedom's parser has no nesting cap (each tag costs O(depth)), and
 * Readability's time grows faster than the page (docs/content-extraction.md: about 3.5 s of CPU
 * at 512 KB, 12 s at 1 MB), so a larger page would hold the worker, and the pages queued behind
 * it, for seconds.
 */
export const LIBRARY_LIMITS = { maxChars: 512 * 1024, maxNodes: 50_000, maxDepth: 256 };

/** The content fields of a result, only those asked for. */
export interface ContentFields {
  text?: string | null;
  markdown?: string | null;
  html?: string | null;
  /** Fields cut at {@link MAX_CONTENT_CHARS}. */
  truncated?: string[];
}

export interface ContentRequest {
  formats: readonly ResultFormat[];
  /** @default true */
  onlyMainContent?: boolean;
  /** The page's final URL (for resolving its links). */
  url: string;
  /**
   * Most ms the page may wait for the content worker to start on it (pages ahead of it in the
   * queue); past it the page gets the fallback. Unbounded by default.
   */
  maxWaitMs?: number;
}

/** Whether a job's formats ask for any content field (text, markdown or html). */
export function wantsContent(formats: readonly ResultFormat[] | undefined): boolean {
  return formats !== undefined && (formats.includes('text') || formats.includes('markdown') || formats.includes('html'));
}

/** `value` cut to {@link MAX_CONTENT_CHARS} at a code-point boundary, ending with a line saying how much was cut. */
export function capContent(value: string, max = MAX_CONTENT_CHARS): { value: string; cut: boolean } {
  if (value.length <= max) return { value, cut: false };
  const kept = truncate(value, max - MARKER_ROOM);
  return { value: `${kept}\n\n[crawl-engine: truncated, ${value.length - kept.length} more characters]`, cut: true };
}

/** The line ending text made by the fallback, for a page past {@link LIBRARY_LIMITS}. */
export function fallbackMarker(reason: string): string {
  return `[crawl-engine: ${reason}; simplified extraction]`;
}

/**
 * The content fields `request.formats` asks for, from the page's HTML and the document
 * {@link parseHtml} built from it (the pipeline's). Absent fields were not asked for.
 */
export async function pageContent(html: string, document: object, request: ContentRequest, limits = LIBRARY_LIMITS): Promise<ContentFields> {
  const { formats } = request;
  const onlyMain = request.onlyMainContent !== false;
  const wantText = formats.includes('text');
  const wantMarkdown = formats.includes('markdown');
  const fields: ContentFields = {};
  const truncated: string[] = [];
  const put = (name: 'text' | 'markdown' | 'html', value: string) => {
    const capped = capContent(value);
    fields[name] = capped.value;
    if (capped.cut) truncated.push(name);
  };

  if (wantText && !wantMarkdown && !onlyMain) {
    // The whole page's text needs no library.
    put('text', await pageText(document));
  } else if (wantText || wantMarkdown) {
    const size = await measureTree(document, limits.maxNodes, limits.maxDepth);
    let tooBig: string | null =
      html.length > limits.maxChars
        ? `page of ${html.length} characters, more than ${limits.maxChars}`
        : size.nodes > limits.maxNodes
          ? `page of more than ${limits.maxNodes} HTML nodes`
          : size.depth > limits.maxDepth
            ? `page nested more than ${limits.maxDepth} levels deep`
            : null;
    let done = false;
    if (tooBig === null) {
      try {
        const found = await mainContent(html, request.url, { main: onlyMain, markdown: wantMarkdown }, undefined, request.maxWaitMs);
        if (wantMarkdown) put('markdown', found.markdown ?? '');
        if (wantText) put('text', await pageText(found.mainHtml === null ? document : await parseHtml(found.mainHtml)));
        done = true;
      } catch (error) {
        if (!(error instanceof MainContentError || error instanceof ParseLimitError)) throw error;
        tooBig = error.message;
      }
    }
    if (!done) {
      const what = onlyMain ? `${tooBig}: main content found by page structure` : `${tooBig}: markdown simplified`;
      if (wantText) put('text', withLine(await pageText(document, { skipChrome: onlyMain }), onlyMain ? fallbackMarker(what) : null));
      if (wantMarkdown) put('markdown', withLine(await pageText(document, { skipChrome: onlyMain, markdown: true }), fallbackMarker(what)));
    }
  }
  if (formats.includes('html')) put('html', html);
  if (truncated.length > 0) fields.truncated = truncated;
  return fields;
}

function withLine(text: string, line: string | null): string {
  if (line === null) return text;
  return text === '' ? line : `${text}\n\n${line}`;
}
