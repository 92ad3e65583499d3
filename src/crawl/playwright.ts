/**
 * The Playwright renderer: Chromium, launched here (`executablePath`) or reached over a WebSocket
 * (`connect`), through `playwright-core` (an optional peer dependency, imported on the first render).
 *
 * The browser never talks to the network by itself:
 * - every HTTP request of every frame is intercepted (`context.route`): the page's own document is
 *   served from what the engine's fetcher fetched, and anything else is either aborted (images,
 *   fonts and media by default, navigations away, popups, requests past the page's cap) or made by
 *   the engine's guarded fetcher (`RenderRequest.load`) and handed back;
 * - WebSockets are refused (`context.routeWebSocket`) and service workers blocked;
 * - a Chromium launched here also has a proxy that refuses every connection and a host resolver
 *   that resolves nothing, so whatever Chromium might open outside interception (a
 *   `<link rel=preconnect>`, WebRTC) reaches nothing; `escapes` counts those attempts.
 *
 * Bounds: one browser context per page, closed on every path (which closes its popups); the whole
 * render within `timeoutMs`, the wait within `waitMs`; at most `maxRequests` requests per page; the
 * rendered HTML at most `maxHtmlBytes`; at most `concurrency` pages at once; a V8 heap cap per page;
 * the browser restarted after `restartAfterPages` pages, on a crash or disconnect, and closed when
 * idle for `idleCloseMs`.
 */
import { createServer, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Page, Request as PlaywrightRequest, Route } from 'playwright-core';
import { type Renderer, RenderError, type RenderRequest, type RenderResult } from './render.js';

export interface PlaywrightRendererOptions {
  /** A local Chromium's executable (Debian's `/usr/bin/chromium`, `@sparticuz/chromium`'s path…). */
  executablePath?: string;
  /** More Chromium flags (after the engine's own). */
  args?: string[];
  /** A remote browser instead: its WebSocket endpoint, over CDP (`connectOverCDP`, default) or Playwright's protocol (`connect`). */
  connect?: { wsEndpoint: string; protocol?: 'cdp' | 'playwright'; headers?: Record<string, string> };
  userAgent: string;
  concurrency: number;
  timeoutMs: number;
  waitMs: number;
  maxHtmlBytes: number;
  maxRequests: number;
  /** Bytes of body all of a page's requests may bring in together (requests past it are refused). @default 4 × maxHtmlBytes */
  maxPageBytes?: number;
  block: readonly string[];
  restartAfterPages: number;
  idleCloseMs: number;
  /** V8 heap cap of a page's renderer process (local Chromium only); a page past it crashes alone. */
  maxHeapMb: number;
}

/** What a Playwright renderer has done, for tests and diagnostics. */
export interface PlaywrightRendererStats {
  /** Browsers launched or connected to. */
  launches: number;
  /** Pages rendered (or tried). */
  renders: number;
  /** Connections Chromium tried to open outside interception, refused by the renderer's proxy. */
  escapes: number;
  /** Pages rendering now. */
  active: number;
}

export interface PlaywrightRenderer extends Renderer {
  stats(): PlaywrightRendererStats;
}

/** Flags that keep a Chromium quiet: no GPU, no QUIC, no first-run, background, update or sync traffic (the test helpers use them too). */
export const QUIET_CHROMIUM_ARGS: readonly string[] = [
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Flags of a Chromium launched for rendering: quiet (no background traffic), headless, small. */
const BASE_ARGS = [
  ...QUIET_CHROMIUM_ARGS,
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-dev-shm-usage',
  '--mute-audio',
  '--no-pings',
  '--disable-domain-reliability',
  '--disable-breakpad',
  '--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,InterestFeedContentSuggestions,NetworkPrediction,Prerender2',
  '--force-webrtc-ip-handling-policy=disable_non_proxied_udp',
  '--webrtc-ip-handling-policy=disable_non_proxied_udp',
  '--host-resolver-rules=MAP * ~NOTFOUND',
  '--proxy-bypass-list=<-loopback>',
];

/** Run in every frame before its scripts: no WebRTC (its connections are not HTTP requests to intercept). */
const NO_WEBRTC = `for (const name of ['RTCPeerConnection', 'webkitRTCPeerConnection', 'RTCDataChannel', 'RTCIceTransport', 'RTCSctpTransport']) {
  try { Object.defineProperty(globalThis, name, { value: undefined, writable: false, configurable: false }); } catch {}
}`;

/** Requests of one page made through the fetcher at once (as a browser's six connections per host). */
/** After `load`, how long the page's requests must have been quiet before it is read. */
export const LOAD_QUIET_MS = 200;
/** The most the quiet wait adds after `load` (a page that keeps fetching is read when it ends). */
export const LOAD_QUIET_CAP_MS = 2000;
const QUIET_POLL_MS = 20;
const PAGE_LOADS_AT_ONCE = 6;
/** Longest wait for a browser context to close; past it the browser is retired (it is not answering). */
const CLOSE_WAIT_MS = 5000;
/**
 * Where a browser context sends whatever it would open outside interception when the engine did
 * not launch the browser (a remote one): a proxy nobody runs, so those connections fail on the
 * browser's own machine. A launched Chromium uses the renderer's refusing proxy instead.
 */
const NOWHERE_PROXY = 'http://127.0.0.1:1';

/** The origin of a URL (`null` for one without, such as about:blank). */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'null';
  }
}

/** A remote browser's endpoint without its credentials (a token in the query or the user info), for messages. */
function endpointName(wsEndpoint: string): string {
  try {
    const url = new URL(wsEndpoint);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return 'the remote browser';
  }
}

type PlaywrightModule = typeof import('playwright-core');
let playwrightModule: Promise<PlaywrightModule> | null = null;
async function loadPlaywright(): Promise<PlaywrightModule> {
  playwrightModule ??= import('playwright-core').catch((cause: unknown) => {
    playwrightModule = null;
    throw new RenderError('render_failed', `rendering needs the playwright-core package (npm install playwright-core): ${(cause as Error).message}`, false);
  });
  return playwrightModule;
}

interface BrowserHandle {
  browser: Promise<Browser>;
  /** Pages started on it. */
  pages: number;
  /** Pages rendering on it now. */
  active: number;
  /** No new pages: closed once its last page ends. */
  retired: boolean;
}

export function createPlaywrightRenderer(options: PlaywrightRendererOptions): PlaywrightRenderer {
  const stats: PlaywrightRendererStats = { launches: 0, renders: 0, escapes: 0, active: 0 };
  let current: BrowserHandle | null = null;
  let proxy: Promise<{ server: Server; port: number }> | null = null;
  let idleTimer: NodeJS.Timeout | null = null;
  const block = new Set(options.block);
  let slots = options.concurrency;
  const waiting: Array<() => void> = [];

  /** The proxy every connection a launched Chromium opens outside interception goes to: it refuses them all. */
  function refusingProxy(): Promise<{ server: Server; port: number }> {
    proxy ??= new Promise((resolve, reject) => {
      const server = createServer((socket) => {
        stats.escapes++;
        socket.destroy();
      });
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
    });
    return proxy;
  }

  async function open(): Promise<Browser> {
    const { chromium } = await loadPlaywright();
    stats.launches++;
    try {
      if (options.connect !== undefined) {
        const { wsEndpoint, protocol = 'cdp', headers } = options.connect;
        return protocol === 'cdp'
          ? await chromium.connectOverCDP(wsEndpoint, { timeout: options.timeoutMs, ...(headers === undefined ? {} : { headers }) })
          : await chromium.connect(wsEndpoint, { timeout: options.timeoutMs, ...(headers === undefined ? {} : { headers }) });
      }
      const { port } = await refusingProxy();
      return await chromium.launch({
        headless: true,
        timeout: options.timeoutMs,
        ...(options.executablePath === undefined ? {} : { executablePath: options.executablePath }),
        args: [...BASE_ARGS, `--proxy-server=http://127.0.0.1:${port}`, `--js-flags=--max-old-space-size=${options.maxHeapMb}`, ...(options.args ?? [])],
      });
    } catch (cause) {
      if (cause instanceof RenderError) throw cause;
      const text = (cause as Error).message.split('\n', 1)[0];
      throw new RenderError(
        'render_failed',
        `could not ${options.connect === undefined ? 'launch Chromium' : `connect to ${endpointName(options.connect.wsEndpoint)}`}: ${text}`,
        true,
      );
    }
  }

  /** The browser for one more page: a new one when there is none, the last one crashed or it served `restartAfterPages`. */
  function acquire(): BrowserHandle {
    if (current !== null && current.pages >= options.restartAfterPages) retire(current);
    if (current === null) {
      const handle: BrowserHandle = { browser: open(), pages: 0, active: 0, retired: false };
      handle.browser.then(
        (browser) =>
          browser.on('disconnected', () => {
            if (current === handle) current = null;
            handle.retired = true;
          }),
        () => {
          if (current === handle) current = null;
        },
      );
      current = handle;
    }
    current.pages++;
    current.active++;
    return current;
  }

  function retire(handle: BrowserHandle): void {
    handle.retired = true;
    if (current === handle) current = null;
    if (spare?.handle === handle) discardSpare();
    if (handle.active === 0) void handle.browser.then((b) => b.close()).catch(() => undefined);
  }

  function releaseBrowser(handle: BrowserHandle): void {
    handle.active--;
    if (handle.retired && handle.active === 0) void handle.browser.then((b) => b.close()).catch(() => undefined);
    if (stats.active === 0 && options.idleCloseMs > 0) {
      idleTimer ??= setTimeout(() => {
        idleTimer = null;
        if (stats.active === 0 && current !== null) retire(current);
      }, options.idleCloseMs);
      idleTimer.unref();
    }
  }

  /** Why the caller stopped a render: the message of the RenderError it gave as the reason. */
  const stopReason = (signal: AbortSignal): string => (signal.reason instanceof RenderError ? signal.reason.message : 'the render was stopped by its caller');

  async function slot(signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new RenderError('render_failed', `${stopReason(signal)} (before it started)`, true, true);
    if (slots > 0) {
      slots--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const go = () => {
        signal.removeEventListener('abort', stop);
        resolve();
      };
      const stop = () => {
        const at = waiting.indexOf(go);
        if (at >= 0) waiting.splice(at, 1);
        reject(
          new RenderError(
            'render_failed',
            `no render slot came free in time (${stopReason(signal)}; raise render.concurrency, or lower the crawl concurrency)`,
            true,
            true,
          ),
        );
      };
      waiting.push(go);
      signal.addEventListener('abort', stop, { once: true });
    });
  }

  function freeSlot(): void {
    const next = waiting.shift();
    if (next !== undefined) next();
    else slots++;
  }

  /** What one render's route handler answers with; null while its context waits as the spare. */
  interface PageState {
    request: RenderRequest;
    finished: boolean;
    served: boolean;
    requests: number;
    loading: number;
    /** Bytes the page's requests may still bring in. */
    budget: number;
    /** Requests of the page waiting for one of its PAGE_LOADS_AT_ONCE places. */
    queued: Array<() => void>;
  }

  /** A browser context with its page, set up (init script, WebSocket refusal, interception), waiting for a render. */
  interface Prepared {
    context: BrowserContext;
    page: Page;
    bind(state: PageState): void;
  }

  /**
   * The next render's context, made while the current one renders (a new context and page cost a
   * renderer process start, 0.3–0.6 s): one at a time, on the current browser, closed with it.
   */
  let spare: { handle: BrowserHandle; prepared: Promise<Prepared> } | null = null;

  function discardSpare(): void {
    const old = spare;
    spare = null;
    void old?.prepared.then((p) => p.context.close()).catch(() => undefined);
  }

  async function prepare(browser: Browser): Promise<Prepared> {
    // What the context would open outside interception goes to a proxy that refuses it.
    const proxyServer = options.connect === undefined ? `http://127.0.0.1:${(await refusingProxy()).port}` : NOWHERE_PROXY;
    const context = await browser.newContext({
      userAgent: options.userAgent,
      serviceWorkers: 'block',
      acceptDownloads: false,
      viewport: { width: 1280, height: 800 },
      proxy: { server: proxyServer, bypass: '<-loopback>' },
    });
    try {
      let state: PageState | null = null;
      const page = await context.newPage();
      // Popups (window.open, target=_blank clicks) are closed as they open; their requests are refused below.
      context.on('page', (other) => {
        if (other !== page) void other.close().catch(() => undefined);
      });
      page.on('dialog', (dialog) => void dialog.dismiss().catch(() => undefined));
      // WebRTC opens UDP (STUN, TURN) outside any interception: it is removed from every frame.
      await context.addInitScript(NO_WEBRTC);
      await context.routeWebSocket(/.*/, (ws) => ws.close({ code: 1008, reason: 'crawl-engine does not open WebSockets' }));
      await context.route('**/*', async (route: Route, pwRequest: PlaywrightRequest) => {
        const at = state;
        let counted = false;
        try {
          if (at === null || at.finished) return await route.abort('aborted');
          const url = pwRequest.url();
          let frame: ReturnType<PlaywrightRequest['frame']> | null = null;
          try {
            frame = pwRequest.frame();
          } catch {
            // A service worker's request has no frame; service workers are blocked anyway.
          }
          if (frame === null || frame.page() !== page) return await route.abort('blockedbyclient');
          if (pwRequest.isNavigationRequest() && frame === page.mainFrame()) {
            // The page itself, as the fetcher fetched it. Navigating away (a script's location
            // change, a form, a meta refresh) is answered 204, which leaves the page where it is
            // (an abort would replace it with an error page).
            if (at.served) return await route.fulfill({ status: 204, body: '' });
            at.served = true;
            return await route.fulfill({
              status: at.request.document.status,
              contentType: 'text/html; charset=utf-8',
              body: at.request.document.html,
            });
          }
          if (block.has(pwRequest.resourceType())) return await route.abort('blockedbyclient');
          if (++at.requests > options.maxRequests) return await route.abort('blockedbyclient');
          // A few at a time through the fetcher, within the page's byte budget: a page that asks for
          // hundreds of large answers at once holds a few of them, not all.
          if (at.loading >= PAGE_LOADS_AT_ONCE) await new Promise<void>((resolve) => at.queued.push(resolve));
          at.loading++;
          counted = true;
          if (at.finished) return await route.abort('aborted');
          if (at.budget <= 0) return await route.abort('blockedbyclient');
          const answer = await at.request.load({
            url,
            method: pwRequest.method(),
            headers: await pwRequest.allHeaders(),
            body: pwRequest.postDataBuffer(),
            kind: pwRequest.isNavigationRequest() ? 'document' : 'resource',
            maxBytes: Math.min(at.budget, options.maxHtmlBytes),
          });
          at.budget -= answer.body?.length ?? 0;
          if (at.finished) return await route.abort('aborted');
          if (answer.error !== null || answer.status === null) {
            return await route.abort(answer.error?.code === 'timeout' ? 'timedout' : answer.error?.code === 'blocked' ? 'blockedbyclient' : 'failed');
          }
          return await route.fulfill({ status: answer.status, headers: answer.headers, body: answer.body ?? Buffer.alloc(0) });
        } catch {
          // The context closed meanwhile (the render ended): nothing is left to answer.
          await route.abort('aborted').catch(() => undefined);
        } finally {
          if (counted && at !== null) {
            at.loading--;
            at.queued.shift()?.();
          }
        }
      });
      return {
        context,
        page,
        bind: (next) => {
          state = next;
        },
      };
    } catch (cause) {
      await context.close().catch(() => undefined);
      throw cause;
    }
  }

  /** A context for a render on `browser`: the spare when it was made there, else a new one; and the next spare started. */
  function takeContext(handle: BrowserHandle, browser: Browser): Promise<Prepared> {
    let taken: Promise<Prepared>;
    if (spare !== null && spare.handle === handle) {
      taken = spare.prepared.catch(() => prepare(browser));
      spare = null;
    } else {
      discardSpare();
      taken = prepare(browser);
    }
    // The next one, unless this browser is about to be restarted.
    if (!handle.retired && handle.pages < options.restartAfterPages) {
      const prepared = prepare(browser);
      prepared.catch(() => undefined);
      spare = { handle, prepared };
    }
    return taken;
  }

  async function render(request: RenderRequest): Promise<RenderResult> {
    await slot(request.signal);
    if (idleTimer !== null) {
      clearTimeout(idleTimer);
      idleTimer = null;
    }
    stats.active++;
    stats.renders++;
    const handle = acquire();
    let context: BrowserContext | null = null;
    let browserOf: Browser | null = null;
    let onGone: (() => void) | null = null;
    let timer: NodeJS.Timeout | undefined;
    const state: PageState = {
      request,
      finished: false,
      served: false,
      requests: 0,
      loading: 0,
      budget: options.maxPageBytes ?? 4 * options.maxHtmlBytes,
      queued: [],
    };
    const ended = new Promise<never>((_, reject) => {
      const stop = (why: string) => reject(new RenderError('render_failed', why, true));
      timer = setTimeout(() => stop(`the render took longer than render.timeoutMs (${options.timeoutMs} ms)`), options.timeoutMs);
      request.signal.addEventListener('abort', () => stop(stopReason(request.signal)), { once: true });
    });
    ended.catch(() => undefined);
    /** Every call to the browser ends when the render does, answered or not (a browser may hang). */
    const within = <T>(promise: Promise<T>): Promise<T> => {
      promise.catch(() => undefined);
      return Promise.race([promise, ended]);
    };
    try {
      const browser = await within(handle.browser);
      browserOf = browser;
      const taking = takeContext(handle, browser);
      // A context that arrives after the render ended is closed at once.
      taking.then(
        (late) => (state.finished ? late.context.close().catch(() => undefined) : undefined),
        () => undefined,
      );
      const prepared = await within(taking);
      context = prepared.context;
      const { page } = prepared;
      prepared.bind(state);
      const crashed = new Promise<never>((_, reject) => {
        page.on('crash', () => reject(new RenderError('render_failed', 'the page crashed the renderer (out of memory, or a browser bug)', true)));
        onGone = () => reject(new RenderError('render_failed', 'the browser went away during the render', true));
        browser.on('disconnected', onGone);
      });
      crashed.catch(() => undefined);
      const work = (async (): Promise<RenderResult> => {
        await page.goto(request.url, { waitUntil: 'commit', timeout: options.timeoutMs });
        await settle(page, request, state);
        // The size is asked first, in the page: a huge DOM is refused without being sent over.
        const size = await page.evaluate(() => (document.documentElement ? document.documentElement.outerHTML.length : 0));
        if (size > options.maxHtmlBytes) {
          throw new RenderError('too_large', `the rendered HTML is larger than render.maxHtmlBytes (${size} > ${options.maxHtmlBytes} characters)`, false);
        }
        const html = await page.content();
        // Still the document it was given: a page the browser showed by other means (a prefetch or
        // prerender a remote browser made on its own) is not read as this one.
        const shown = page.url();
        if (originOf(shown) !== originOf(request.url)) {
          throw new RenderError(
            'render_failed',
            `the page navigated away to ${originOf(shown)}, which was not fetched through the engine; it is not read`,
            false,
          );
        }
        return { html, url: shown };
      })();
      work.catch(() => undefined);
      return await Promise.race([work, crashed, ended]);
    } catch (cause) {
      if (cause instanceof RenderError) throw cause;
      const text = (cause as Error).message.split('\n', 1)[0];
      throw new RenderError('render_failed', `render failed: ${text}`, true);
    } finally {
      state.finished = true;
      for (const go of state.queued.splice(0)) go();
      clearTimeout(timer);
      if (onGone !== null) browserOf?.off('disconnected', onGone);
      // Closing the context closes its pages (popups too), also a page stuck in a script. A browser
      // that does not answer within CLOSE_WAIT_MS is retired: the next page gets a new one.
      if (context !== null) {
        const closed = await Promise.race([
          context.close().then(
            () => true,
            () => true,
          ),
          sleep(CLOSE_WAIT_MS, false, { ref: false }),
        ]);
        if (!closed) retire(handle);
      }
      stats.active--;
      releaseBrowser(handle);
      freeSlot();
    }
  }

  /**
   * The wait after the document arrived: its strategy, within `waitMs`; past it the page is taken
   * as it stands. After `load`, also until the page's requests have been quiet for
   * {@link LOAD_QUIET_MS} (at most {@link LOAD_QUIET_CAP_MS} more): an app that fetches its data
   * from a module script (top-level await) or on DOMContentLoaded often gets it after `load`.
   */
  async function settle(page: Page, request: RenderRequest, state: PageState): Promise<void> {
    const until = Date.now() + options.waitMs;
    const left = () => Math.max(1, until - Date.now());
    await page.waitForLoadState(request.waitUntil === 'networkidle' ? 'networkidle' : 'load', { timeout: left() }).catch(() => undefined);
    if (request.waitUntil !== 'networkidle') await quiet(state, Math.min(left(), LOAD_QUIET_CAP_MS));
    if (request.selector !== undefined) {
      await page.waitForSelector(request.selector, { state: 'attached', timeout: left() }).catch((cause: unknown) => {
        const text = (cause as Error).message ?? '';
        // Past the cap the page is read as it stands; a selector Playwright cannot read fails the page.
        if (/not a valid selector|while parsing selector|Unexpected token|Unknown engine/i.test(text)) {
          throw new RenderError('render_failed', `renderSelector ${JSON.stringify(request.selector)} is not a selector: ${text.split('\n', 1)[0]}`, false);
        }
      });
    }
  }

  /** Resolves once none of the page's requests has been loading for LOAD_QUIET_MS, or after `capMs`. */
  async function quiet(state: PageState, capMs: number): Promise<void> {
    const started = Date.now();
    let busyAt = started;
    for (;;) {
      const now = Date.now();
      if (state.loading > 0 || state.queued.length > 0) busyAt = now;
      if (state.finished || now - busyAt >= LOAD_QUIET_MS || now - started >= capMs) return;
      await new Promise((resolve) => setTimeout(resolve, QUIET_POLL_MS));
    }
  }

  return {
    render,
    stats: () => ({ ...stats }),
    async close() {
      if (idleTimer !== null) clearTimeout(idleTimer);
      idleTimer = null;
      const handle = current;
      current = null;
      discardSpare();
      if (handle !== null) {
        handle.retired = true;
        await handle.browser.then((b) => b.close()).catch(() => undefined);
      }
      const open = proxy;
      proxy = null;
      if (open !== null) await open.then(({ server }) => new Promise((resolve) => server.close(resolve))).catch(() => undefined);
    },
  };
}
