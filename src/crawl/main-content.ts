/**
 * The libraries behind `text` and `markdown`, chosen by measurement on the content corpus
 * (docs/content-extraction.md). The page's chrome is removed by tag, ARIA role and class name
 * (./chrome.ts); a page that marks its main content (exactly one `<main>` or role=main) keeps
 * that element, as Firecrawl's onlyMainContent does, and any other page the article Mozilla's
 * Readability (over linkedom) finds; node-html-markdown writes markdown. They cannot yield to the
 * event loop (Readability alone took 86-108 ms of CPU on 45-59 KB documentation pages), so they
 * run in a worker thread (./content-worker.js), started on first use and shared by the process: a
 * process that never asks for these formats never loads them (test/lazy-load.test.ts), and a page
 * that takes too long holds only the worker, which is then stopped.
 */
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { CHROME_CLASS, CHROME_IDS, CHROME_ROLES, CHROME_TAGS } from './chrome.js';

/** Longest one page may take in the worker; past it the worker is stopped and the page falls back. */
export const WORKER_TIMEOUT_MS = 15_000;
/** The worker's heap limit: a page that needs more ends its worker, and falls back. */
const WORKER_HEAP_MB = 512;

export interface MainContentResult {
  /** The main content as HTML (when asked). */
  mainHtml: string | null;
  /** The main content (or, without `main`, the whole page) as markdown (when asked). */
  markdown: string | null;
}

/** The worker failed (would not start, threw, ran out of memory or time): the page falls back. */
export class MainContentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MainContentError';
  }
}

const CHROME = {
  selector: [
    ...CHROME_TAGS,
    '[hidden]',
    '[aria-hidden="true"]',
    '[aria-modal="true"]',
    ...[...CHROME_ROLES].map((role) => `[role="${role}"]`),
    ...[...CHROME_IDS].map((id) => `[id="${id}"]`),
  ].join(','),
  className: CHROME_CLASS.source,
  tags: [...CHROME_TAGS],
  roles: [...CHROME_ROLES],
  ids: [...CHROME_IDS],
};

interface Pending {
  resolve: (result: MainContentResult) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** A worker thread and the requests it has not answered yet. */
interface ContentWorker {
  thread: Worker;
  pending: Map<number, Pending>;
}

let worker: ContentWorker | null = null;
let nextId = 0;

/** Where the worker's script is: beside this module in src/ (tests) and in dist/ (this module's chunk is in dist/ too). */
function workerUrl(): URL {
  // The CommonJS build has no import.meta; its __filename is in dist/ as well.
  const here = typeof __filename === 'string' ? pathToFileURL(__filename).href : import.meta.url;
  return new URL('./content-worker.js', here);
}

function startWorker(): ContentWorker {
  const thread = new Worker(workerUrl(), { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
  const started: ContentWorker = { thread, pending: new Map() };
  const failAll = (error: Error) => {
    if (worker === started) worker = null;
    for (const request of started.pending.values()) {
      clearTimeout(request.timer);
      request.reject(error);
    }
    started.pending.clear();
  };
  thread.on('message', (message: { id: number; error?: string } & MainContentResult) => {
    const request = started.pending.get(message.id);
    if (request === undefined) return;
    clearTimeout(request.timer);
    started.pending.delete(message.id);
    if (started.pending.size === 0) thread.unref();
    if (message.error !== undefined) request.reject(new MainContentError(message.error));
    else request.resolve({ mainHtml: message.mainHtml, markdown: message.markdown });
  });
  thread.on('error', (error) => failAll(new MainContentError(`content worker failed: ${error.message}`)));
  thread.on('exit', (code) => failAll(new MainContentError(`content worker exited (code ${code})`)));
  return started;
}

/**
 * The main content of `html` (with `main`) and its markdown (with `markdown`), worked out in the
 * content worker. Rejects with {@link MainContentError} when the worker fails or takes longer than
 * `timeoutMs` (the worker is then stopped, failing what it still had; the next call starts another).
 */
export function mainContent(html: string, url: string, need: { main: boolean; markdown: boolean }, timeoutMs = WORKER_TIMEOUT_MS): Promise<MainContentResult> {
  try {
    worker ??= startWorker();
  } catch (error) {
    // E.g. a bundle that left dist/content-worker.js behind: the page falls back.
    return Promise.reject(new MainContentError(`content worker could not start: ${error instanceof Error ? error.message : String(error)}`));
  }
  const current = worker;
  const id = nextId++;
  return new Promise<MainContentResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      if (worker === current) worker = null;
      current.pending.delete(id);
      reject(new MainContentError(`main-content extraction took longer than ${timeoutMs} ms`));
      void current.thread.terminate();
    }, timeoutMs);
    current.pending.set(id, { resolve, reject, timer });
    // Referenced while it has work, so that a process waiting for it does not exit; idle, it keeps nothing alive.
    current.thread.ref();
    current.thread.postMessage({ id, html, url, main: need.main, markdown: need.markdown, chrome: CHROME });
  });
}

/** Stops the content worker, if one runs (tests; an idle worker keeps no process alive). */
export async function stopContentWorker(): Promise<void> {
  const current = worker;
  worker = null;
  if (current !== null) await current.thread.terminate();
}
