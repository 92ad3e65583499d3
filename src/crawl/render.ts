/**
 * Rendering pages that need JavaScript: the renderer interface (the Playwright one is in
 * ./playwright.ts; any other can be plugged in with the engine's `render.renderer`), and the
 * heuristic `render: 'auto'` decides with.
 *
 * A renderer never fetches anything itself. It is handed the document the engine's guarded
 * fetcher already fetched (robots.txt, scope, redirects and the private-network guard applied),
 * and every request the page then makes goes through `load()`, which is the same fetcher again.
 */
import type { PageErrorCode } from '../core/types.js';
import type { ResourceResult } from './fetcher.js';

/** How long a render waits after the document arrived: `load`, `networkidle`, or until a selector is in the page. */
export type RenderWaitUntil = 'load' | 'networkidle';

/** A browser's request, handed to {@link RenderRequest.load}. */
export interface RenderLoad {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Buffer | null;
  /** `document`: a frame's page (robots.txt applies); `resource`: anything else. */
  kind: 'document' | 'resource';
  /** Most bytes of (decoded) body to read: what is left of the page's budget, when less than the engine's cap. */
  maxBytes?: number;
}

export interface RenderRequest {
  /** The page's URL, after the fetcher's redirects: the browser is shown this URL. */
  url: string;
  /** The page as the fetcher fetched it: served to the browser as its document, not fetched again. */
  document: { status: number; contentType: string | null; html: string };
  waitUntil: RenderWaitUntil;
  /** When set, also wait until an element matches it (within the wait's cap). */
  selector?: string;
  /**
   * Makes a request for the browser through the engine's guarded fetcher (the private-network
   * guard, timeouts and byte caps of pages; robots.txt for frames' documents). A renderer must not
   * let the browser reach the network any other way.
   */
  load(request: RenderLoad): Promise<ResourceResult>;
  /** Aborted when the render must end (the processor stops, its lease would not hold, or the run's budget ended `render.timeoutMs` ago); its `reason`, a {@link RenderError}, says which. */
  signal: AbortSignal;
}

export interface RenderResult {
  /** The rendered page's HTML (`document.documentElement.outerHTML` with its doctype). */
  html: string;
  /** The URL the page shows when rendered (a script may change it with `history.pushState`). */
  url: string;
}

/** A render that failed: stored as the page's error (retried first when `transient`). */
export class RenderError extends Error {
  constructor(
    readonly code: PageErrorCode,
    message: string,
    readonly transient: boolean,
    /** The render never started (no renderer slot came free in time): the page is given back to the queue without using an attempt. */
    readonly unstarted = false,
  ) {
    super(message);
    this.name = 'RenderError';
  }
}

/** Renders pages in a browser. `close()` ends whatever it started; `render` may be called again after it. */
export interface Renderer {
  render(request: RenderRequest): Promise<RenderResult>;
  close(): Promise<void>;
}

/**
 * Ids (and tags) single-page-app frameworks mount into: React, Vue, Next.js, Nuxt, Gatsby, Svelte,
 * Angular, Ember, Quasar. Not `main`: an empty `#main` is most often a skip link's target.
 */
const MOUNT_IDS = new Set(['root', 'app', '__next', '__nuxt', '___gatsby', 'svelte', 'app-root', 'ember-application', 'q-app']);
const MOUNT_TAGS = new Set(['app-root']);
/** Elements whose text a reader does not see before scripts run. */
const INVISIBLE = new Set(['script', 'style', 'noscript', 'template', 'head', 'title', 'svg']);
/** Script types that run (a JSON or template `<script>` does not); `text/babel` and `text/jsx` run through Babel in the page. */
const RUNS = /^(?:|text\/javascript|application\/javascript|module|text\/ecmascript|application\/ecmascript|text\/babel|text\/jsx)$/i;
/** Below this much visible text a page with a script is a shell, whatever its markup. */
export const SHELL_TEXT_CHARS = 200;
/** Below this much visible text a page with a script and an empty mount point is a shell. */
export const SHELL_MOUNT_TEXT_CHARS = 2000;

interface DomNode {
  type: string;
  name?: string;
  data?: string;
  attribs?: Record<string, string>;
  children?: DomNode[];
}

/** What {@link looksClientRendered} read off a page. */
export interface ShellSignals {
  /** `<script>` elements that run (external, or inline JavaScript). */
  scripts: number;
  /** Characters of visible text in `<body>` (whitespace runs counted once; scripts, styles, `<noscript>` and `<template>` left out). */
  textChars: number;
  /** An empty element a framework mounts into (`#root`, `#app`, `#__next`, `<app-root>`…). */
  emptyMount: boolean;
}

/**
 * Whether a fetched page looks like a client-rendered shell, for `render: 'auto'`. The rule:
 *
 * 1. A page without a `<script>` that runs is never a shell.
 * 2. With one, it is a shell when its body shows less than {@link SHELL_TEXT_CHARS} (200) characters
 *    of text, or
 * 3. when it has an empty mount point (an element with id `root`, `app`, `__next`, `__nuxt`,
 *    `___gatsby`, `svelte`, `app-root`, `ember-application` or `q-app`, or an `<app-root>`,
 *    holding no text and no element) and less than {@link SHELL_MOUNT_TEXT_CHARS} (2,000) characters of
 *    text: a server-rendered header and footer around a client-rendered middle.
 *
 * Server-rendered pages of those frameworks (Next.js, Nuxt, SvelteKit with SSR) have their text in
 * the HTML and are not rendered again.
 */
export function looksClientRendered(document: unknown): boolean {
  const signals = shellSignals(document);
  if (signals.scripts === 0) return false;
  return signals.textChars < SHELL_TEXT_CHARS || (signals.emptyMount && signals.textChars < SHELL_MOUNT_TEXT_CHARS);
}

/** The signals of {@link looksClientRendered}, read in one walk of a parsed page (htmlparser2's DOM). */
export function shellSignals(document: unknown): ShellSignals {
  let scripts = 0;
  let textChars = 0;
  let emptyMount = false;
  // Depth-first with an explicit stack (nesting is capped by the parser, but no recursion is needed).
  // htmlparser2 adds no implied <html>/<body>: text counts wherever it is, but inside <head>,
  // <title> and the elements a reader does not see.
  const stack: Array<{ node: DomNode; visible: boolean }> = [];
  const root = document as DomNode;
  for (const child of [...(root.children ?? [])].reverse()) stack.push({ node: child, visible: true });
  let lastWasSpace = true;
  while (stack.length > 0) {
    const { node, visible } = stack.pop()!;
    if (node.type === 'text') {
      if (!visible) continue;
      // Counted with whitespace runs as one character, stopping once the answer cannot change.
      if (textChars >= SHELL_MOUNT_TEXT_CHARS) continue;
      for (const char of node.data ?? '') {
        const space = char === ' ' || char === '\n' || char === '\t' || char === '\r' || char === '\f';
        if (space && lastWasSpace) continue;
        lastWasSpace = space;
        if (++textChars >= SHELL_MOUNT_TEXT_CHARS) break;
      }
      continue;
    }
    const name = node.name?.toLowerCase();
    if (name === undefined) continue;
    if (name === 'script') {
      const attribs = node.attribs ?? {};
      if (RUNS.test((attribs.type ?? '').trim()) && (attribs.src !== undefined || (node.children ?? []).some((c) => (c.data ?? '').trim() !== ''))) scripts++;
    }
    const id = node.attribs?.id;
    if (!emptyMount && ((id !== undefined && MOUNT_IDS.has(id)) || MOUNT_TAGS.has(name) || node.attribs?.['ng-app'] !== undefined)) {
      emptyMount = (node.children ?? []).every((c) => c.type === 'comment' || (c.type === 'text' && (c.data ?? '').trim() === ''));
    }
    const children = node.children ?? [];
    const childVisible = visible && !INVISIBLE.has(name);
    for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i]!, visible: childVisible });
  }
  return { scripts, textChars, emptyMount };
}
