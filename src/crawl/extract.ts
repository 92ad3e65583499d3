/**
 * Page extraction: title, description, canonical, links and word count in one walk over the
 * document that {@link parseHtml} builds (./parse.ts), without the cost of wrapping it in a
 * cheerio `$` that only a custom `extract` function needs. The walk runs in slices that yield to
 * the event loop, so a document with a million nodes or a huge text does not hold the process.
 *
 * Over 300 lines because the walk, its word counter and its element tables change together.
 */
import { createHash, type Hash } from 'node:crypto';
import type { PageLink } from '../core/types.js';
import { SLICE_MS, sliceUsed, yieldToLoop } from './slices.js';
import { type DomNode, LEFT, TreeCursor } from './tree.js';
import { repairText, truncate } from './text.js';
import { crawlableUrl, normalizeUrl } from './url.js';

export interface Extracted {
  title: string | null;
  description: string | null;
  canonical: string | null;
  /** Distinct, normalised http(s) links in document order. */
  links: URL[];
  wordCount: number;
  /** The page's links with their anchor text and `rel`, when asked for (`ExtractOptions.outlinks`). */
  outlinks?: PageLink[];
  /** True when `outlinks` was cut at {@link MAX_OUTLINKS}. */
  outlinksTruncated?: boolean;
  /** SHA-256 (hex) of the title, description, text and links (`ExtractOptions.hash`). */
  contentHash?: string;
}

export interface ExtractOptions {
  /**
   * Collect the page's links as `PageLink`s (anchor text, `rel`), each `internal` when this
   * predicate says so (the job's scope). Absent: nothing more is collected, at no cost.
   */
  outlinks?: (url: URL) => boolean;
  /**
   * Also hash what the page says (`Extracted.contentHash`): the text the word count reads, with a
   * space at each block boundary, then the title, description and links. The text goes to the
   * hash in pieces of at least 64 kB, so it costs one native call per piece, not per text node.
   */
  hash?: boolean;
}

/** Collects text for a SHA-256 in large pieces (one native call per {@link HASH_PIECE} characters). */
class TextHash {
  private readonly hash: Hash = createHash('sha256');
  private pending = '';

  add(text: string): void {
    this.pending += text;
    if (this.pending.length >= HASH_PIECE) this.flush();
  }

  flush(): void {
    if (this.pending.length === 0) return;
    this.hash.update(this.pending);
    this.pending = '';
  }

  digest(): string {
    this.flush();
    return this.hash.digest('hex');
  }
}
const HASH_PIECE = 65_536;

/** Most `outlinks` kept from one page; the rest are cut (`truncated: ['outlinks']`). */
export const MAX_OUTLINKS = 5000;
/** Longest anchor text kept (after collapsing whitespace). */
export const MAX_ANCHOR_TEXT = 500;

/** An `<a>` or `<area>` with an href, while the walk collects its text. */
interface Anchor {
  href: string;
  rel: string | undefined;
  /** Its text so far, whitespace collapsed piece by piece, kept to a little over MAX_ANCHOR_TEXT. */
  text: string;
}

/** Elements whose text is not page text. */
const SKIP_TEXT = new Set(['script', 'style', 'noscript', 'template', 'head', 'svg', 'iframe', 'object']);
/** Elements that separate words, so `<p>a</p><p>b</p>` counts two. */
const BLOCK = new Set([
  'address',
  'article',
  'aside',
  'blockquote',
  'br',
  'dd',
  'div',
  'dl',
  'dt',
  'fieldset',
  'figcaption',
  'figure',
  'footer',
  'form',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'header',
  'hr',
  'li',
  'main',
  'nav',
  'ol',
  'p',
  'pre',
  'section',
  'table',
  'td',
  'th',
  'tr',
  'ul',
  'option',
  'button',
  'label',
]);
const BLOCK_FLAG = 1;
const HEAD_FLAG = 2;
/** An `<a>` whose text is being collected (only when outlinks are asked for). */
const ANCHOR_FLAG = 4;
const SKIP_HREF = /^\s*(?:#|mailto:|javascript:|tel:|data:|about:|blob:|sms:|ftp:|file:)/i;

/** Counts words across text nodes; `inWord` carries over so `fo<b>ur</b>` is one word. */
class WordCounter {
  count = 0;
  inWord = false;

  add(text: string, from = 0, to = text.length): void {
    let { count, inWord } = this;
    for (let i = from; i < to; i++) {
      const c = text.charCodeAt(i);
      // ASCII whitespace, NBSP and the common Unicode spaces end a word.
      const space =
        c <= 32 || c === 160 || (c >= 0x2000 && c <= 0x200b) || c === 0x3000 || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0xfeff;
      if (space) inWord = false;
      else if (!inWord) {
        inWord = true;
        count++;
      }
    }
    this.count = count;
    this.inWord = inWord;
  }

  /** A block boundary ends the current word. */
  break(): void {
    this.inWord = false;
  }
}

/**
 * The walk yields after about this much work (a node is 1, a text node 1 per 256 characters), so
 * a caller can hand the event loop a turn; longer texts are counted this many characters at a time.
 */
const STEP = 4096;
const TEXT_PIECE = 256 * STEP;
/** Longest title text or attribute read: past it, the rest cannot change a value kept to 1000 characters or a URL kept to 2048. */
const MAX_VALUE_CHARS = 64 * 1024;

function clean(text: string | undefined, max = 1000): string | null {
  if (text === undefined) return null;
  const value = truncate(text, MAX_VALUE_CHARS).replace(/\s+/g, ' ').trim();
  // Cut at a code-point boundary: half a surrogate pair is not text (and Postgres refuses it).
  return value === '' ? null : truncate(value, max);
}

/** Characters of one text node looked at for an anchor's text, in pieces of {@link ANCHOR_PIECE}. */
const ANCHOR_PIECE = 4096;

/** Adds `data` to the anchor's text, whitespace collapsed, until it holds more than MAX_ANCHOR_TEXT characters. */
function addAnchorText(anchor: Anchor, data: string): void {
  for (let at = 0; at < data.length && at < MAX_VALUE_CHARS && anchor.text.length <= MAX_ANCHOR_TEXT; at += ANCHOR_PIECE) {
    const piece = data.slice(at, at + ANCHOR_PIECE).replace(/\s+/g, ' ');
    anchor.text += anchor.text.endsWith(' ') && piece.startsWith(' ') ? piece.slice(1) : piece;
  }
}

/** The text under `node` (the first {@link MAX_VALUE_CHARS} characters of it), in document order. */
function* textOf(node: DomNode): Generator<void, string> {
  let out = '';
  let work = 0;
  const cursor = new TreeCursor<null>(node, null);
  for (let child = cursor.next(); child !== null && out.length < MAX_VALUE_CHARS; child = cursor.next()) {
    if (++work >= STEP) {
      work = 0;
      yield;
    }
    if (child === LEFT) continue;
    if (child.type === 'text') {
      const data = child.data ?? '';
      if (out.length + data.length > MAX_VALUE_CHARS) return out + truncate(data, MAX_VALUE_CHARS - out.length);
      out += data;
    } else if (child.children !== undefined) cursor.descend(child, null);
  }
  return out;
}

/**
 * Extracts from a loaded document. Links are resolved against `<base href>` (when valid) or the
 * page URL; fragments-only, `mailto:`, `javascript:`, `tel:`, `data:`, malformed and absurdly long
 * hrefs are skipped; at most `maxLinks` distinct links are kept. Runs to the end at once: see
 * {@link extractPageAsync} for huge documents.
 */
export function extractPage(document: object, pageUrl: string, maxLinks = Infinity, options: ExtractOptions = {}): Extracted {
  const steps = walk(document as DomNode, pageUrl, maxLinks, options);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/**
 * {@link extractPage} in slices: yields to the event loop whenever `sliceMs` of work has passed, so
 * that the walk over a document with a million nodes or a huge text does not hold the process.
 */
export async function extractPageAsync(
  document: object,
  pageUrl: string,
  maxLinks = Infinity,
  sliceMs = SLICE_MS,
  options: ExtractOptions = {},
): Promise<Extracted> {
  const steps = walk(document as DomNode, pageUrl, maxLinks, options);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
    if (sliceUsed(sliceMs)) await yieldToLoop();
  }
}

/** The extraction walk; it yields (with nothing) every {@link STEP} units of work. */
function* walk(document: DomNode, pageUrl: string, maxLinks: number, options: ExtractOptions): Generator<void, Extracted> {
  let title: string | null = null;
  let description: string | null = null;
  let canonicalHref: string | null = null;
  let baseHref: string | null = null;
  const hrefs: string[] = [];
  const rawCap = Number.isFinite(maxLinks) ? maxLinks * 10 + 100 : Infinity;
  const words = new WordCounter();
  const hash = options.hash === true ? new TextHash() : null;
  let work = 0;
  // Only with outlinks asked for: every anchor (up to a multiple of the cap), and those open now.
  const anchors: Anchor[] | null = options.outlinks === undefined ? null : [];
  const open: Anchor[] = [];
  const anchorCap = MAX_OUTLINKS * 4 + 100;
  let anchorsDropped = false;

  // Each open element's frame says whether it is a block (a word break after its children) or
  // <head> (whose own text is not page text). The document itself is visited like any other node.
  const cursor = new TreeCursor<number>(document, 0);
  for (let node = cursor.next(); node !== null; node = cursor.next()) {
    if (++work >= STEP) {
      work = 0;
      yield;
    }
    if (node === LEFT) {
      const left = cursor.left!;
      if ((left & BLOCK_FLAG) !== 0) {
        words.break();
        hash?.add(' ');
        if (open.length > 0) addAnchorText(open[open.length - 1]!, ' ');
      }
      if ((left & ANCHOR_FLAG) !== 0) open.pop();
      continue;
    }
    if (node.type === 'text') {
      const data = node.data;
      if (data === undefined || (cursor.frame & HEAD_FLAG) !== 0) continue;
      if (open.length > 0) addAnchorText(open[open.length - 1]!, data);
      if (data.length <= TEXT_PIECE) {
        hash?.add(data);
        words.add(data);
        work += data.length >> 8;
      } else {
        for (let at = 0; at < data.length; at += TEXT_PIECE) {
          words.add(data, at, Math.min(data.length, at + TEXT_PIECE));
          hash?.add(data.slice(at, at + TEXT_PIECE));
          yield;
        }
      }
      continue;
    }
    if (node.type !== 'tag' && node.type !== 'root' && node.type !== 'script' && node.type !== 'style') continue;
    const name = node.name;
    const attribs = node.attribs;
    let flag = 0;
    if (name !== undefined && attribs !== undefined) {
      switch (name) {
        case 'a':
        case 'area':
          // Raw hrefs are kept up to a multiple of the cap, so a page with 100,000 links stays cheap.
          if (attribs.href !== undefined && hrefs.length < rawCap && attribs.href.length <= MAX_VALUE_CHARS) hrefs.push(attribs.href);
          if (anchors !== null && attribs.href !== undefined && attribs.href.length <= MAX_VALUE_CHARS && !SKIP_HREF.test(attribs.href)) {
            if (anchors.length >= anchorCap) anchorsDropped = true;
            else {
              const anchor: Anchor = { href: attribs.href, rel: attribs.rel, text: '' };
              anchors.push(anchor);
              // An <area>'s text is its alt; an <a>'s, the text inside it.
              if (name === 'area') addAnchorText(anchor, attribs.alt ?? '');
              else if (node.children !== undefined) {
                open.push(anchor);
                flag = ANCHOR_FLAG;
              }
            }
          }
          break;
        case 'img':
          // An image inside a link speaks for it with its alt text, as screen readers read it.
          if (open.length > 0 && attribs.alt !== undefined) addAnchorText(open[open.length - 1]!, ` ${attribs.alt} `);
          break;
        case 'title':
          if (title === null) title = clean(yield* textOf(node));
          continue;
        case 'meta':
          if (description === null && attribs.name?.length === 11 && attribs.name.toLowerCase() === 'description') description = clean(attribs.content);
          break;
        case 'link':
          if (
            canonicalHref === null &&
            attribs.href !== undefined &&
            attribs.href.length <= MAX_VALUE_CHARS &&
            /(?:^|\s)canonical(?:\s|$)/i.test((attribs.rel ?? '').slice(0, MAX_VALUE_CHARS))
          ) {
            canonicalHref = attribs.href;
          }
          break;
        case 'base':
          if (baseHref === null && attribs.href !== undefined && attribs.href.length <= MAX_VALUE_CHARS) baseHref = attribs.href;
          break;
      }
      if (BLOCK.has(name)) {
        // Break before the element's text and, when its children are done, after it.
        words.break();
        if (open.length > 0) addAnchorText(open[open.length - 1]!, ' ');
        flag |= BLOCK_FLAG;
      }
      // Still look inside <head> for title/meta/link/base, but not at its text.
      if (name === 'head') flag |= HEAD_FLAG;
      else if (SKIP_TEXT.has(name)) {
        if (flag !== 0) words.break();
        continue;
      }
    }
    if (node.children !== undefined) cursor.descend(node, flag);
    else if ((flag & BLOCK_FLAG) !== 0) words.break();
  }

  const base = (baseHref !== null && normalizeUrl(baseHref, pageUrl)) || pageUrl;
  const links: URL[] = [];
  const seen = new Set<string>();
  for (const href of hrefs) {
    if (links.length >= maxLinks) break;
    work += 16 + (href.length >> 6);
    if (work >= STEP) {
      work = 0;
      yield;
    }
    const trimmed = href.trim();
    if (trimmed === '' || SKIP_HREF.test(trimmed)) continue;
    const url = crawlableUrl(trimmed, base);
    if (url === null || seen.has(url.href)) continue;
    seen.add(url.href);
    links.push(url);
  }
  const extracted: Extracted = {
    title,
    description,
    canonical: canonicalHref === null ? null : normalizeUrl(canonicalHref, base),
    links,
    wordCount: words.count,
  };
  if (hash !== null) {
    // Separated by NULs, which no parsed text holds as such, so fields cannot run into each other.
    hash.add(`\u0000${title ?? ''}\u0000${description ?? ''}\u0000`);
    for (const link of links) hash.add(`${link.href}\n`);
    extracted.contentHash = hash.digest();
  }
  if (anchors === null || options.outlinks === undefined) return extracted;

  // Every link, in document order; an anchor that repeats an earlier one's URL, text and rel adds nothing.
  const outlinks: PageLink[] = [];
  const kept = new Set<string>();
  let truncated = anchorsDropped;
  for (const anchor of anchors) {
    work += 16 + (anchor.href.length >> 6);
    if (work >= STEP) {
      work = 0;
      yield;
    }
    const trimmed = anchor.href.trim();
    if (trimmed === '' || SKIP_HREF.test(trimmed)) continue;
    const url = crawlableUrl(trimmed, base);
    if (url === null) continue;
    const text = repairText(truncate(anchor.text.trim(), MAX_ANCHOR_TEXT).trimEnd());
    const rel = anchor.rel === undefined ? null : clean(anchor.rel, MAX_ANCHOR_TEXT);
    const key = `${url.href} ${text} ${rel ?? ''}`;
    if (kept.has(key)) continue;
    if (outlinks.length >= MAX_OUTLINKS) {
      truncated = true;
      break;
    }
    kept.add(key);
    outlinks.push({ url: url.href, text, rel: rel === null ? null : repairText(rel), internal: options.outlinks(url) });
  }
  extracted.outlinks = outlinks;
  if (truncated) extracted.outlinksTruncated = true;
  return extracted;
}
