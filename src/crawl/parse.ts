/**
 * HTML parsing with bounds: the same parser and DOM as cheerio's `cheerio/slim` (htmlparser2 and
 * domhandler), imported on first use like undici, so that job-creating and progress-streaming
 * code stays light.
 *
 * Hostile markup is bounded: nesting stops at {@link MAX_NESTING} levels as in browsers (htmlparser2
 * keeps its open elements in an array it `unshift`s and searches, so each tag costs O(depth) and a
 * megabyte of `<div>` took tens of seconds); parsing runs in slices that yield to the event loop;
 * and a page past {@link MAX_NODES} nodes or {@link MAX_PARSE_MS} of parsing fails with
 * `too_complex` instead of holding the process.
 */
import { SLICE_MS, sliceUsed, yieldToLoop } from './slices.js';

type Cheerio = typeof import('cheerio/slim');
type HtmlParser = typeof import('htmlparser2');
type HtmlDocument = ReturnType<HtmlParser['parseDocument']>;
type ChildNode = HtmlDocument['children'][number];
let cheerioModule: Promise<Cheerio> | null = null;
let parserModule: Promise<HtmlParser> | null = null;
export const loadCheerio = (): Promise<Cheerio> => (cheerioModule ??= import('cheerio/slim'));
export const loadParser = (): Promise<HtmlParser> => (parserModule ??= import('htmlparser2'));

/**
 * Deepest element nesting kept, as in Chromium's HTML parser: an element opened at this depth
 * closes the deepest open element first, so it becomes its sibling instead of its child.
 */
export const MAX_NESTING = 512;
/** Attributes kept per element; further ones are dropped (a 5 MB tag of unique names stalls). */
export const MAX_ATTRIBUTES = 1000;
/** Most DOM nodes (elements, text runs, comments, ...) one page may have. */
export const MAX_NODES = 1_000_000;
/** Most time spent parsing one page, summed over its slices (time spent on other work between slices does not count). */
export const MAX_PARSE_MS = 10_000;
/** Characters handed to the parser at a time; a chunk of the worst markup parses in a few ms. */
const CHUNK_CHARS = 4 * 1024;

/** A page past a parse bound: stored as a failed page with this code, not retried. */
export class ParseLimitError extends Error {
  readonly code = 'too_complex' as const;

  constructor(message: string) {
    super(message);
    this.name = 'ParseLimitError';
  }
}

export interface ParseLimits {
  /** @default MAX_NODES */
  maxNodes?: number;
  /** @default MAX_PARSE_MS */
  maxParseMs?: number;
  /** Parsing yields to the event loop after this long. @default 10 */
  sliceMs?: number;
  /** @internal chunk size handed to the parser (tests use tiny ones). */
  chunkChars?: number;
}

/** The parser's private state that the nesting cap touches (htmlparser2 10.x; checked on load). */
interface ParserInternals {
  stack: string[];
  attribs: Record<string, string> | null;
  attribvalue: string;
  endIndex: number;
  /** Ours: attributes seen on the element being opened. */
  attributeCount: number;
  onattribend(quote: unknown, endIndex: number): void;
  foreignContext: boolean[];
  cbs: { onclosetag?: (name: string, isImplied: boolean) => void };
  emitOpenTag(name: string): void;
  isVoidElement(name: string): boolean;
}
/** Elements whose open and close tags move htmlparser2's foreign-content flag (its own lists). */
const FOREIGN_FLAG = new Set(['math', 'svg', 'mi', 'mo', 'mn', 'ms', 'mtext', 'annotation-xml', 'foreignobject', 'desc', 'title']);

interface Builders {
  Parser: HtmlParser['Parser'];
  Handler: new () => InstanceType<HtmlParser['DomHandler']> & { nodes: number };
  /** Whether the nesting cap is in place (false only if htmlparser2's internals changed). */
  capped: boolean;
}
let builders: Builders | null = null;

function makeBuilders(mod: HtmlParser): Builders {
  class CountingHandler extends mod.DomHandler {
    nodes = 0;

    constructor() {
      // The same handler `parseDocument(html)` builds: no callback, default options.
      super(undefined, undefined);
    }

    protected override addNode(node: ChildNode): void {
      this.nodes++;
      super.addNode(node);
    }
  }

  const base = mod.Parser.prototype as unknown as ParserInternals;
  const emitOpenTag = base.emitOpenTag;
  const onattribend = base.onattribend;
  const probe = new mod.Parser(null) as unknown as Partial<ParserInternals>;
  const capped = typeof emitOpenTag === 'function' && typeof onattribend === 'function' && Array.isArray(probe.stack) && Array.isArray(probe.foreignContext);
  class BoundedParser extends mod.Parser {}
  if (capped) {
    // `emitOpenTag` is private in htmlparser2's types, so it is replaced on the prototype.
    (BoundedParser.prototype as unknown as ParserInternals).emitOpenTag = function (this: ParserInternals, name: string) {
      const { stack } = this;
      if (stack.length >= MAX_NESTING && !this.isVoidElement(name)) {
        const deepest = stack.shift()!;
        // What its close tag would do to the flag, so the flag stays in step with the stack.
        if (FOREIGN_FLAG.has(deepest)) this.foreignContext.shift();
        this.cbs.onclosetag?.(deepest, true);
      }
      emitOpenTag.call(this, name);
      this.attributeCount = 0;
      // The flag also grows when a foreign element is closed implicitly (`<div><svg></div>`):
      // forget the oldest entries, which only a run of as many close tags could reach.
      const flags = this.foreignContext;
      while (flags.length > MAX_NESTING + 1) flags.pop();
    };
    (BoundedParser.prototype as unknown as ParserInternals).onattribend = function (this: ParserInternals, quote: unknown, endIndex: number) {
      if (this.attribs !== null && this.attributeCount >= MAX_ATTRIBUTES) {
        this.endIndex = endIndex;
        this.attribvalue = '';
        return;
      }
      this.attributeCount++;
      onattribend.call(this, quote, endIndex);
    };
  }
  return { Parser: BoundedParser, Handler: CountingHandler, capped };
}

/** Whether htmlparser2's internals are as expected, so nesting is capped (tests assert it). */
export async function nestingCapped(): Promise<boolean> {
  builders ??= makeBuilders(await loadParser());
  return builders.capped;
}

/**
 * Parses HTML into the DOM that cheerio wraps (`load(document)` reuses it without re-parsing):
 * the same document as htmlparser2's `parseDocument(html)`, except that nesting stops at
 * {@link MAX_NESTING}. Feeds the parser in chunks and yields to the event loop every few
 * milliseconds. Throws {@link ParseLimitError} for a page past a bound.
 */
export async function parseHtml(html: string, limits: ParseLimits = {}): Promise<HtmlDocument> {
  builders ??= makeBuilders(await loadParser());
  const { maxNodes = MAX_NODES, maxParseMs = MAX_PARSE_MS, sliceMs = SLICE_MS, chunkChars = CHUNK_CHARS } = limits;
  const handler = new builders.Handler();
  const parser = new builders.Parser(handler);
  // This page's own parsing time, summed over its slices, for maxParseMs.
  let spent = 0;
  let ownStart = performance.now();
  for (let at = 0; at < html.length; ) {
    let end = Math.min(html.length, at + chunkChars);
    // Cut just after a '>' when one is near: htmlparser2 misreads an abrupt comment (`<!-->`)
    // split across two writes, and a tag boundary never splits one.
    if (end < html.length) {
      const close = html.indexOf('>', end - 1);
      if (close !== -1 && close - end < chunkChars) end = close + 1;
    }
    parser.write(html.slice(at, end));
    at = end;
    if (handler.nodes > maxNodes) {
      throw new ParseLimitError(
        `page has more than ${maxNodes} HTML nodes (elements, text runs, comments); parsing stopped after ${at} of ${html.length} characters`,
      );
    }
    if (at < html.length && sliceUsed(sliceMs)) {
      spent += performance.now() - ownStart;
      if (spent > maxParseMs) {
        throw new ParseLimitError(`parsing took longer than ${maxParseMs} ms; stopped after ${at} of ${html.length} characters`);
      }
      await yieldToLoop();
      ownStart = performance.now();
    }
  }
  parser.end();
  return handler.root;
}
