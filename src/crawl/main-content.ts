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

interface Request {
  id: number;
  message: object;
  timeoutMs: number;
  resolve: (result: MainContentResult) => void;
  reject: (error: Error) => void;
  /** Set when the request waited longer than it may: it is skipped. */
  waited?: ReturnType<typeof setTimeout> | 'expired';
}

/**
 * A worker thread, the request it works on, the one sent after it and those waiting. At most two
 * requests are with the thread, so that it starts the next page as soon as it is done with one
 * rather than a round trip through this thread later (on a busy processor, a parse slice later:
 * half the markdown throughput); a page's timer starts when the page before it is answered, so its
 * timeout counts only its own work, never the time it waited behind a slow page, and a page that
 * times out stops the worker without failing the pages behind it (the one sent is sent again).
 */
interface ContentWorker {
  thread: Worker;
  current: (Request & { timer: ReturnType<typeof setTimeout> }) | null;
  /** Sent to the thread, which starts it once `current` is answered. */
  sent: Request | null;
  queue: Request[];
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
  const started: ContentWorker = { thread, current: null, sent: null, queue: [] };
  const failAll = (error: Error) => {
    if (worker === started) worker = null;
    const failed = [...(started.current === null ? [] : [started.current]), ...(started.sent === null ? [] : [started.sent]), ...started.queue.splice(0)];
    if (started.current !== null) clearTimeout(started.current.timer);
    started.current = null;
    started.sent = null;
    for (const request of failed) request.reject(error);
  };
  thread.on('message', (message: { id: number; error?: string } & MainContentResult) => {
    const request = started.current;
    if (request === null || request.id !== message.id) return;
    clearTimeout(request.timer);
    started.current = null;
    // The thread has started on the page sent after this one: its own time counts from now.
    const sent = started.sent;
    started.sent = null;
    if (sent !== null) begin(started, sent);
    if (message.error !== undefined) request.reject(new MainContentError(message.error));
    else request.resolve({ mainHtml: message.mainHtml, markdown: message.markdown });
    dispatch(started);
  });
  thread.on('error', (error) => failAll(new MainContentError(`content worker failed: ${error.message}`)));
  thread.on('exit', (code) => failAll(new MainContentError(`content worker exited (code ${code})`)));
  return started;
}

/** Makes `request`, already with the thread, the one it works on: its timer starts now. */
function begin(current: ContentWorker, request: Request): void {
  // Its wait is over. One sent behind a slow page may have given up waiting meanwhile (it fell
  // back); the thread works on it all the same, and its answer is dropped.
  if (request.waited !== undefined && request.waited !== 'expired') clearTimeout(request.waited);
  const timer = setTimeout(() => {
    if (current.current?.id !== request.id) return;
    current.current = null;
    if (worker === current) worker = null;
    // The pages waiting behind this one (the one sent included) go to a new worker.
    const waiting = [...(current.sent === null ? [] : [current.sent]), ...current.queue.splice(0)];
    current.sent = null;
    request.reject(new MainContentError(`main-content extraction took longer than ${request.timeoutMs} ms`));
    void current.thread.terminate();
    for (const next of waiting) if (next.waited !== 'expired') enqueue(next);
  }, request.timeoutMs);
  current.current = { ...request, timer };
}

/** The next waiting request that has not given up waiting. */
function takeNext(current: ContentWorker): Request | undefined {
  let next = current.queue.shift();
  while (next?.waited === 'expired') next = current.queue.shift();
  return next;
}

/**
 * Keeps the thread fed: a request to work on (its timer started) and one sent behind it; an idle
 * thread keeps no process alive.
 */
function dispatch(current: ContentWorker): void {
  if (current.current === null) {
    const next = takeNext(current);
    if (next === undefined) {
      current.thread.unref();
      return;
    }
    begin(current, next);
    // Referenced while it has work, so that a process waiting for it does not exit.
    current.thread.ref();
    current.thread.postMessage(next.message);
  }
  if (current.sent === null) {
    const next = takeNext(current);
    if (next === undefined) return;
    current.sent = next;
    current.thread.postMessage(next.message);
  }
}

function enqueue(request: Request): void {
  try {
    worker ??= startWorker();
  } catch (error) {
    // E.g. a bundle that left dist/content-worker.js behind: the page falls back.
    request.reject(new MainContentError(`content worker could not start: ${error instanceof Error ? error.message : String(error)}`));
    return;
  }
  worker.queue.push(request);
  dispatch(worker);
}

/**
 * The main content of `html` (with `main`) and its markdown (with `markdown`), worked out in the
 * content worker. Rejects with {@link MainContentError} when the worker fails or works on this
 * page longer than `timeoutMs` (the time spent waiting behind other pages does not count; the
 * worker is then stopped, and the pages waiting behind this one go to the next worker), or when
 * the worker has not started on it within `maxWaitMs` (a page queued behind slow ones must not
 * outlive its lease: it falls back instead).
 */
export function mainContent(
  html: string,
  url: string,
  need: { main: boolean; markdown: boolean },
  timeoutMs = WORKER_TIMEOUT_MS,
  maxWaitMs = Number.POSITIVE_INFINITY,
): Promise<MainContentResult> {
  const id = nextId++;
  return new Promise<MainContentResult>((resolve, reject) => {
    const request: Request = { id, message: { id, html, url, main: need.main, markdown: need.markdown, chrome: CHROME }, timeoutMs, resolve, reject };
    if (Number.isFinite(maxWaitMs))
      request.waited = setTimeout(
        () => {
          request.waited = 'expired';
          reject(new MainContentError(`waited more than ${Math.round(maxWaitMs)} ms for the content worker (pages ahead of it)`));
        },
        Math.max(0, maxWaitMs),
      );
    enqueue(request);
  });
}

/** Stops the content worker, if one runs (tests; an idle worker keeps no process alive). */
export async function stopContentWorker(): Promise<void> {
  const current = worker;
  worker = null;
  if (current !== null) await current.thread.terminate();
}
