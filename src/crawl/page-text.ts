/**
 * A page's text as paragraphs, from the document {@link parseHtml} builds: one walk in slices that
 * yield to the event loop, so a page of any size the parser accepts costs no long stall. It gives
 * `text` whenever the whole page is asked for (`onlyMainContent: false`) and for the main content
 * the libraries found (./main-content.ts), and is the fallback past their bounds: there it can skip
 * the page's chrome (navigation, headers, footers, sidebars, forms, cookie banners, ads) by tag,
 * ARIA role and class names, and write simple markdown (headings, list items, code blocks).
 */
import { CHROME_CLASS, CHROME_IDS, CHROME_ROLES, CHROME_TAGS } from './chrome.js';
import { SLICE_MS, sliceUsed, yieldToLoop } from './slices.js';
import { type DomNode, LEFT, TreeCursor } from './tree.js';

type TextNode = DomNode;

export interface PageTextOptions {
  /** Write simple markdown (`#` headings, `-` list items, fenced code) rather than plain text. */
  markdown?: boolean;
  /** Skip the page's chrome, and keep only its `<main>` (or `[role=main]`, or first `<article>`) when it has one. */
  skipChrome?: boolean;
}

/** Elements whose text is not page text. */
const SKIP = new Set([
  'script',
  'style',
  'noscript',
  'template',
  'head',
  'svg',
  'math',
  'iframe',
  'object',
  'embed',
  'canvas',
  'select',
  'textarea',
  'input',
  'button',
  'audio',
  'video',
]);
/** Elements that start and end a paragraph. */
const BLOCK = new Set([
  'address',
  'article',
  'aside',
  'blockquote',
  'body',
  'caption',
  'dd',
  'details',
  'dialog',
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
  'html',
  'legend',
  'li',
  'main',
  'nav',
  'ol',
  'p',
  'pre',
  'section',
  'summary',
  'table',
  'tbody',
  'thead',
  'tfoot',
  'tr',
  'ul',
]);
/** The walk yields after about this much work (a node is 1, a text node 1 per 256 characters). */
const STEP = 2048;

function isChrome(node: TextNode, insideMain: boolean): boolean {
  const name = node.name!;
  if (CHROME_TAGS.has(name)) return true;
  // A header inside the main content is the article's own (its title); outside it is the site's.
  if (name === 'header' && !insideMain) return true;
  const attribs = node.attribs;
  if (attribs === undefined) return false;
  if (attribs.hidden !== undefined || attribs['aria-hidden'] === 'true' || attribs['aria-modal'] === 'true') return true;
  const role = attribs.role;
  if (role !== undefined && CHROME_ROLES.has(role.trim().toLowerCase())) return true;
  if (attribs.id !== undefined && CHROME_IDS.has(attribs.id)) return true;
  return attribs.class !== undefined && CHROME_CLASS.test(attribs.class.slice(0, 500));
}

/**
 * The page's main element, when it marks one: `<main>`, `[role=main]` or else the first `<article>`.
 * It visits children in place (an element with a million children is not copied onto a stack first).
 */
function* findMain(root: TextNode): Generator<void, TextNode | null> {
  let article: TextNode | null = null;
  const cursor = new TreeCursor<null>(root, null);
  let work = 0;
  for (let node = cursor.next(); node !== null; node = cursor.next()) {
    if (++work >= STEP) {
      work = 0;
      yield;
    }
    if (node === LEFT || (node.type !== 'tag' && node.type !== 'root')) continue;
    if (node.name === 'main' || node.attribs?.role === 'main') return node;
    if (node.name === 'article' && article === null) article = node;
    if (node.name !== undefined && SKIP.has(node.name)) continue;
    if (node.children !== undefined) cursor.descend(node, null);
  }
  return article;
}

/** Collects paragraphs; `pre` text is kept as it is, other text has its whitespace collapsed. */
class Paragraphs {
  readonly out: string[] = [];
  private line = '';
  private prefix = '';

  constructor(private readonly markdown: boolean) {}

  text(data: string, pre: boolean): void {
    this.line += pre ? data : data.replace(/\s+/g, ' ');
  }

  lineBreak(): void {
    this.line += '\n';
  }

  /** Ends the current paragraph; the next one starts with `prefix` (markdown only). */
  flush(prefix = ''): void {
    const text = this.line
      .split('\n')
      .map((l) => l.trim())
      .join('\n')
      .trim();
    if (text !== '') this.out.push(this.prefix + text);
    this.line = '';
    this.prefix = this.markdown ? prefix : '';
  }

  /** A code block: its text as it is, fenced in markdown. */
  code(text: string): void {
    this.flush();
    const body = text.replace(/^\n+|\s+$/g, '');
    if (body === '') return;
    this.out.push(this.markdown ? `\`\`\`\n${body}\n\`\`\`` : body);
  }
}

interface Frame {
  node: TextNode;
  next: number;
  insideMain: boolean;
}

/** The walk; yields (with nothing) every {@link STEP} units of work. */
function* walk(root: TextNode, options: PageTextOptions): Generator<void, string> {
  const markdown = options.markdown === true;
  let start = root;
  let insideMain = false;
  if (options.skipChrome === true) {
    const main = yield* findMain(root);
    if (main !== null) {
      start = main;
      insideMain = true;
    }
  }
  const out = new Paragraphs(markdown);
  const stack: Frame[] = [{ node: start, next: 0, insideMain }];
  /** The text of the `<pre>` being walked, or null outside one. */
  let pre: string | null = null;
  let preDepth = -1;
  let work = 0;
  while (stack.length > 0) {
    if (++work >= STEP) {
      work = 0;
      yield;
    }
    const frame = stack[stack.length - 1]!;
    const children = frame.node.children ?? [];
    if (frame.next >= children.length) {
      stack.pop();
      const name = frame.node.name;
      if (stack.length === preDepth) {
        out.code(pre ?? '');
        pre = null;
        preDepth = -1;
      } else if (name !== undefined && BLOCK.has(name)) out.flush();
      continue;
    }
    const node = children[frame.next++]!;
    if (node.type === 'text') {
      const data = node.data ?? '';
      work += data.length >> 8;
      if (pre !== null) pre += data;
      else out.text(data, false);
      continue;
    }
    if (node.type !== 'tag' || node.name === undefined) continue;
    const name = node.name;
    if (SKIP.has(name)) continue;
    if (options.skipChrome === true && pre === null && isChrome(node, frame.insideMain)) continue;
    if (name === 'br') {
      if (pre !== null) pre += '\n';
      else out.lineBreak();
      continue;
    }
    if (pre !== null) {
      stack.push({ node, next: 0, insideMain: frame.insideMain });
      continue;
    }
    if (name === 'pre') {
      out.flush();
      pre = '';
      preDepth = stack.length;
      stack.push({ node, next: 0, insideMain: frame.insideMain });
      continue;
    }
    if (BLOCK.has(name)) {
      const level = name.length === 2 && name[0] === 'h' ? Number(name[1]) : 0;
      out.flush(level > 0 ? `${'#'.repeat(level)} ` : name === 'li' ? '- ' : '');
    } else if (name === 'td' || name === 'th') out.text(' ', false);
    stack.push({ node, next: 0, insideMain: frame.insideMain || name === 'main' || name === 'article' });
  }
  out.flush();
  return out.out.join('\n\n');
}

/**
 * The text under `root` (a parsed document or element), paragraphs separated by blank lines; in
 * slices that yield to the event loop whenever `sliceMs` of work has passed.
 */
export async function pageText(root: object, options: PageTextOptions = {}, sliceMs = SLICE_MS): Promise<string> {
  const steps = walk(root as TextNode, options);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
    if (sliceUsed(sliceMs)) await yieldToLoop();
  }
}

/**
 * Counts `root`'s nodes and its deepest nesting, stopping (in slices) once either passes its bound;
 * children are visited in place, so one element with a million children costs no more up front.
 */
export async function measureTree(root: object, maxNodes: number, maxDepth: number, sliceMs = SLICE_MS): Promise<{ nodes: number; depth: number }> {
  const cursor = new TreeCursor<null>(root as TextNode, null);
  let nodes = 0;
  let deepest = 0;
  let work = 0;
  for (let node = cursor.next(); node !== null && nodes <= maxNodes && deepest <= maxDepth; node = cursor.next()) {
    if (++work >= STEP) {
      work = 0;
      if (sliceUsed(sliceMs)) await yieldToLoop();
    }
    if (node === LEFT) continue;
    nodes++;
    // The stand-in root above `root` is open, so `root` itself is at depth 0.
    const depth = cursor.depth - 1;
    if (depth > deepest) deepest = depth;
    if (node.children !== undefined) cursor.descend(node, null);
  }
  return { nodes, depth: deepest };
}
