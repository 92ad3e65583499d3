/**
 * Page extraction: title, description, canonical, links and word count in one walk over the
 * document that htmlparser2 builds — the same parser and DOM as cheerio's `cheerio/slim`, without
 * the cost of wrapping it in a `$` that only a custom `extract` function needs (it gets one built
 * on the same document). Both are imported on first use, like undici, so that job-creating and
 * progress-streaming code stays light.
 */
import { crawlableUrl, normalizeUrl } from './url.js';

export interface Extracted {
  title: string | null;
  description: string | null;
  canonical: string | null;
  /** Distinct, normalised http(s) links in document order. */
  links: URL[];
  wordCount: number;
}

type Cheerio = typeof import('cheerio/slim');
type HtmlParser = typeof import('htmlparser2');
let cheerioModule: Promise<Cheerio> | null = null;
let parserModule: Promise<HtmlParser> | null = null;
export const loadCheerio = (): Promise<Cheerio> => (cheerioModule ??= import('cheerio/slim'));
export const loadParser = (): Promise<HtmlParser> => (parserModule ??= import('htmlparser2'));

/** Parses HTML into the DOM that cheerio wraps (`load(document)` reuses it without re-parsing). */
export async function parseHtml(html: string): Promise<ReturnType<HtmlParser['parseDocument']>> {
  const { parseDocument } = await loadParser();
  return parseDocument(html);
}

/** The parts of a domhandler node the walk reads. */
interface DomNode {
  type: string;
  name?: string;
  data?: string;
  attribs?: Record<string, string>;
  children?: DomNode[];
}

/** Elements whose text is not page text. */
const SKIP_TEXT = new Set(['script', 'style', 'noscript', 'template', 'head', 'svg', 'iframe', 'object']);
/** Elements that separate words, so `<p>a</p><p>b</p>` counts two. */
const BLOCK = new Set([
  'address', 'article', 'aside', 'blockquote', 'br', 'dd', 'div', 'dl', 'dt', 'fieldset', 'figcaption',
  'figure', 'footer', 'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'li', 'main', 'nav',
  'ol', 'p', 'pre', 'section', 'table', 'td', 'th', 'tr', 'ul', 'option', 'button', 'label',
]);
const BLOCK_END: DomNode = { type: 'block-end' };
const SKIP_HREF = /^\s*(?:#|mailto:|javascript:|tel:|data:|about:|blob:|sms:|ftp:|file:)/i;

/** Counts words across text nodes; `inWord` carries over so `fo<b>ur</b>` is one word. */
class WordCounter {
  count = 0;
  inWord = false;

  add(text: string): void {
    let { count, inWord } = this;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      // ASCII whitespace, NBSP and the common Unicode spaces end a word.
      const space = c <= 32 || c === 160 || (c >= 0x2000 && c <= 0x200b) || c === 0x3000 || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0xfeff;
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

function clean(text: string | undefined, max = 1000): string | null {
  if (text === undefined) return null;
  const value = text.replace(/\s+/g, ' ').trim();
  return value === '' ? null : value.slice(0, max);
}

function textOf(node: DomNode): string {
  if (node.type === 'text') return node.data ?? '';
  let out = '';
  for (const child of node.children ?? []) out += textOf(child);
  return out;
}

/**
 * Extracts from a loaded document. Links are resolved against `<base href>` (when valid) or the
 * page URL; fragments-only, `mailto:`, `javascript:`, `tel:`, `data:` and malformed hrefs are
 * skipped; at most `maxLinks` distinct links are kept.
 */
export function extractPage(document: object, pageUrl: string, maxLinks = Infinity): Extracted {
  let title: string | null = null;
  let description: string | null = null;
  let canonicalHref: string | null = null;
  let baseHref: string | null = null;
  const hrefs: string[] = [];
  const rawCap = Number.isFinite(maxLinks) ? maxLinks * 10 + 100 : Infinity;
  const words = new WordCounter();

  const stack: DomNode[] = [document as DomNode];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (node.type === 'text') {
      if (node.data !== undefined) words.add(node.data);
      continue;
    }
    if (node === BLOCK_END) {
      words.break();
      continue;
    }
    if (node.type !== 'tag' && node.type !== 'root' && node.type !== 'script' && node.type !== 'style') continue;
    const name = node.name;
    const attribs = node.attribs;
    if (name !== undefined && attribs !== undefined) {
      switch (name) {
        case 'a':
        case 'area':
          // Raw hrefs are kept up to a multiple of the cap, so a page with 100,000 links stays cheap.
          if (attribs.href !== undefined && hrefs.length < rawCap) hrefs.push(attribs.href);
          break;
        case 'title':
          if (title === null) title = clean(textOf(node));
          continue;
        case 'meta':
          if (description === null && attribs.name?.toLowerCase() === 'description') description = clean(attribs.content);
          break;
        case 'link':
          if (canonicalHref === null && attribs.href !== undefined && /(?:^|\s)canonical(?:\s|$)/i.test(attribs.rel ?? '')) {
            canonicalHref = attribs.href;
          }
          break;
        case 'base':
          if (baseHref === null && attribs.href !== undefined) baseHref = attribs.href;
          break;
      }
      if (BLOCK.has(name)) {
        // Break before the element's text and, via the marker popped after its children, after it.
        words.break();
        stack.push(BLOCK_END);
      }
      if (SKIP_TEXT.has(name)) {
        // Still look inside <head> for title/meta/link/base, but not at its text.
        if (name === 'head') for (let i = (node.children?.length ?? 0) - 1; i >= 0; i--) {
          const child = node.children![i]!;
          if (child.type !== 'text') stack.push(child);
        }
        continue;
      }
    }
    const children = node.children;
    if (children !== undefined) for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }

  const base = (baseHref !== null && normalizeUrl(baseHref, pageUrl)) || pageUrl;
  const links: URL[] = [];
  const seen = new Set<string>();
  for (const href of hrefs) {
    if (links.length >= maxLinks) break;
    const trimmed = href.trim();
    if (trimmed === '' || SKIP_HREF.test(trimmed)) continue;
    const url = crawlableUrl(trimmed, base);
    if (url === null || seen.has(url.href)) continue;
    seen.add(url.href);
    links.push(url);
  }
  return {
    title,
    description,
    canonical: canonicalHref === null ? null : normalizeUrl(canonicalHref, base),
    links,
    wordCount: words.count,
  };
}
