/**
 * The fetcher: undici with a whole-request timeout, a byte cap enforced while streaming (and on
 * the decoded size of compressed bodies), redirects followed by hand with every hop checked,
 * and charset-aware decoding. undici is imported on first use so that code which only creates
 * jobs or streams progress never loads it.
 */
import { pipeline, Readable } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { Agent, Dispatcher } from 'undici';
import { BLOCKED_CODE, createAddressGuard, type PrivateNetworkAllowance } from './netguard.js';
import type { PageErrorCode } from '../core/types.js';
import { normalizeUrl } from './url.js';
import { decodeHtmlSliced, headOf } from './charset.js';
import { sliceUsed, yieldToLoop } from './slices.js';

export interface FetcherOptions {
  userAgent: string;
  timeoutMs: number;
  maxBytes: number;
  maxRedirects: number;
  /** Longest `Retry-After` honoured; longer ones are cut to this. */
  maxRetryAfterMs: number;
  allowPrivateNetwork: PrivateNetworkAllowance;
}

export interface FetchResult {
  finalUrl: string;
  status: number | null;
  contentType: string | null;
  headers: Record<string, string>;
  /** Decoded HTML; null for errors and for responses that are not HTML. */
  html: string | null;
  error: { code: PageErrorCode; message: string; transient: boolean; retryAfterMs: number | null } | null;
  /**
   * True for a 304 answer to a conditional request (`FetchOptions.conditional`): the page did not
   * change, and there is no body (`html` null, `error` null).
   */
  notModified?: boolean;
}

/** Validators of an earlier fetch, sent as a conditional request (a recrawl). */
export interface ConditionalRequest {
  /** The URL they belong to (the earlier fetch's final URL): only a request to it carries them. */
  url: string;
  /** Sent as `If-None-Match`. */
  etag?: string | null;
  /** Sent as `If-Modified-Since`. */
  lastModified?: string | null;
}

/** Options of one page fetch. */
export interface FetchOptions {
  /** Pause before a redirect to the same host (the host's delay). */
  hopDelayMs?: number;
  /** Shortens the engine's timeout for this request. */
  timeoutMs?: number;
  /** Validators to send: a 304 answer then ends the fetch with `notModified`. */
  conditional?: ConditionalRequest;
}

/** Longest validator sent or kept (`ETag` and `Last-Modified`); a longer one is ignored. */
export const MAX_VALIDATOR_LENGTH = 512;

/** The validators of a header value worth keeping: printable ASCII (header-safe), bounded; else null. */
export function validator(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const trimmed = value.trim();
  if (trimmed === '' || trimmed.length > MAX_VALIDATOR_LENGTH || !/^[\x20-\x7e]+$/.test(trimmed)) return null;
  return trimmed;
}

type Undici = typeof import('undici');
let undiciModule: Promise<Undici> | null = null;
const loadUndici = (): Promise<Undici> => (undiciModule ??= import('undici'));

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const TRANSIENT_STATUS = new Set([408, 425, 429]);
const PERMANENT_NETWORK = new Set(['ENOTFOUND', 'ERR_INVALID_URL', 'UND_ERR_INVALID_ARG']);

const inflate = {
  gzip: promisify(zlib.gunzip),
  'x-gzip': promisify(zlib.gunzip),
  deflate: promisify(zlib.inflate),
  br: promisify(zlib.brotliDecompress),
} as const;

function header(headers: Record<string, string | string[] | undefined>, name: string): string | null {
  const value = headers[name];
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

function flatHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

export function isHtmlType(contentType: string | null): boolean {
  if (contentType === null) return false;
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return type === 'text/html' || type === 'application/xhtml+xml';
}

/** `Retry-After` as milliseconds from now (seconds or an HTTP date), or null. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/** Drops a body we will not read; its abort error has no other listener. */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

class FetchFailure extends Error {
  constructor(
    readonly code: PageErrorCode,
    message: string,
    readonly transient = false,
  ) {
    super(message);
  }
}

/** Reads a body as the chunks it arrived in, failing with `too_large` past `maxBytes` (or, with `truncate`, keeping the first `maxBytes`). */
async function readChunks(body: Dispatcher.ResponseData['body'], maxBytes: number, truncate = false): Promise<{ chunks: Buffer[]; size: number }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (size + chunk.length > maxBytes) {
      discard(body);
      if (!truncate) throw new FetchFailure('too_large', `body is larger than maxBytes (${maxBytes} bytes)`);
      chunks.push(chunk.subarray(0, maxBytes - size));
      size = maxBytes;
      break;
    }
    size += chunk.length;
    chunks.push(chunk);
  }
  return { chunks, size };
}

/** One buffer of {@link readChunks}' chunks. */
async function joined({ chunks, size }: { chunks: Buffer[]; size: number }): Promise<Buffer> {
  if (chunks.length === 1) return chunks[0]!;
  // Copying megabytes takes milliseconds: several pages that arrive in one turn copy (and then
  // decode) in turns of their own, not one after another in one long turn.
  if (sliceUsed()) await yieldToLoop();
  return Buffer.concat(chunks, size);
}

async function readCapped(body: Dispatcher.ResponseData['body'], maxBytes: number, truncate = false): Promise<Buffer> {
  return joined(await readChunks(body, maxBytes, truncate));
}

/** Whether a content-encoding leaves the bytes as they are. */
function isIdentity(encoding: string | null): boolean {
  const name = encoding?.trim().toLowerCase();
  return !name || name === 'identity';
}

async function decompress(raw: Buffer, encoding: string | null, maxBytes: number): Promise<Buffer> {
  const name = encoding?.trim().toLowerCase();
  if (!name || name === 'identity') return raw;
  const fn = inflate[name as keyof typeof inflate];
  if (fn === undefined) throw new FetchFailure('http_error', `unsupported content-encoding ${JSON.stringify(encoding)}`);
  try {
    return await fn(raw, { maxOutputLength: maxBytes });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) {
      throw new FetchFailure('too_large', `decoded body is larger than maxBytes (${maxBytes} bytes)`);
    }
    throw new FetchFailure('http_error', `invalid ${name} body: ${(error as Error).message}`);
  }
}

const decoders = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
} as const;

/** Whether bytes start with the gzip magic number. */
export const isGzip = (bytes: Uint8Array): boolean => bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;

/** Bytes of `source` through a decompressor, streamed; errors of either side end the iteration. */
function inflateStream(source: AsyncIterable<Buffer>, make: () => NodeJS.ReadWriteStream, what: string): AsyncIterable<Buffer> {
  const decoder = make();
  const out = pipeline(Readable.from(source), decoder, () => undefined) as unknown as AsyncIterable<Buffer>;
  return (async function* () {
    try {
      for await (const chunk of out) yield chunk;
    } catch (error) {
      if (error instanceof FetchFailure) throw error;
      throw new FetchFailure('http_error', `invalid ${what} body: ${(error as Error).message}`);
    }
  })();
}

/** Counts bytes going through, failing with `too_large` past `maxBytes`. */
async function* capped(source: AsyncIterable<Buffer>, maxBytes: number, what: string): AsyncIterable<Buffer> {
  let size = 0;
  for await (const chunk of source) {
    size += chunk.length;
    if (size > maxBytes) throw new FetchFailure('too_large', `${what} is larger than ${maxBytes} bytes`);
    yield chunk;
  }
}

/**
 * A body streamed through its content-encoding and, with `sniffGzip`, through gunzip when what
 * arrives starts with the gzip magic number (a `.gz` file served as is): at most `maxBytes`
 * arrive, and at most `maxBytes` come out of each decompressor, so a compression bomb ends with
 * `too_large` after that many bytes, never holding more than a chunk.
 */
async function* decodeBody(body: AsyncIterable<Buffer>, encoding: string | null, maxBytes: number, sniffGzip: boolean): AsyncIterable<Buffer> {
  const name = encoding?.trim().toLowerCase();
  let stream = capped(body, maxBytes, 'body');
  if (name && name !== 'identity') {
    const make = decoders[name as keyof typeof decoders];
    if (make === undefined) throw new FetchFailure('http_error', `unsupported content-encoding ${JSON.stringify(encoding)}`);
    stream = capped(inflateStream(stream, make, name), maxBytes, 'decoded body');
  }
  if (!sniffGzip) {
    yield* stream;
    return;
  }
  const it = stream[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done === true) return;
  const rest = (async function* () {
    yield first.value;
    for (let next = await it.next(); next.done !== true; next = await it.next()) yield next.value;
  })();
  if (!isGzip(first.value)) yield* rest;
  else yield* capped(inflateStream(rest, decoders.gzip, 'gzip'), maxBytes, 'gunzipped body');
}

/** What a streamed body's consumer returns: `stop` ends the download early (not an error). */
export type SinkAnswer = undefined | 'stop';

function classifyNetworkError(error: unknown): FetchFailure {
  if (error instanceof FetchFailure) return error;
  const err = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err.code ?? err.cause?.code ?? 'ERR';
  const message = err.cause?.message ?? err.message ?? String(error);
  if (code === BLOCKED_CODE || err.cause?.code === BLOCKED_CODE) return new FetchFailure('blocked', message);
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new FetchFailure('timeout', `${code}: ${message}`, true);
  }
  return new FetchFailure('network', `${code}: ${message}`, !PERMANENT_NETWORK.has(code));
}

export interface Fetcher {
  /**
   * Fetches one page. Never throws: every failure is a result with an error code.
   * `allowHop` is asked about each redirect target; a refusal ends with `blocked`.
   */
  fetch(url: string, allowHop: (url: string) => string | null, options?: FetchOptions): Promise<FetchResult>;
  /**
   * Fetches a text resource of any content type (robots.txt), keeping at most `maxBytes` of it;
   * `html` then holds the text. Redirects are followed like pages.
   */
  fetchText(url: string, maxBytes: number, options?: { timeoutMs?: number }): Promise<FetchResult>;
  /**
   * Streams a resource of any content type (sitemaps) to `sink`, chunk by chunk (each awaited),
   * decoded from its content-encoding and, with `sniffGzip`, gunzipped when it is gzip data. More
   * than `maxBytes` arriving, or coming out of a decompressor, fails with `too_large`; the sink
   * returning `stop` ends the download without error. `timeoutMs` shortens the whole request's
   * timeout; redirects are followed like pages. `html` is null in the result.
   */
  stream(url: string, options: StreamOptions): Promise<FetchResult>;
  /**
   * Posts `body` (webhooks): the same private-network guard and connection pool as pages,
   * redirects not followed (a 3xx is the answer), at most `maxResponseBytes` of the answer read
   * (and dropped), the whole exchange within `timeoutMs`. Never throws.
   */
  post(url: string, body: string, headers: Record<string, string>, options: PostOptions): Promise<PostResult>;
  /**
   * A request a rendering browser makes (a page's scripts, styles, `fetch`/XHR, frames), made for
   * it: any method, the same private-network guard and connection pool as pages, redirects followed
   * by hand with every hop checked and asked of `allowHop`, at most `maxBytes` of (decoded) body,
   * the whole exchange within `timeoutMs`. Any status is an answer; never throws.
   */
  resource(request: ResourceRequest, options: ResourceOptions): Promise<ResourceResult>;
  close(): Promise<void>;
}

/** A browser's request, as {@link Fetcher.resource} makes it. */
export interface ResourceRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: Buffer | null;
}

export interface ResourceOptions {
  maxBytes: number;
  timeoutMs: number;
  /** Asked about each redirect target: a reason refuses it (the resource then fails with `blocked`). */
  allowHop?: (url: string) => string | null | Promise<string | null>;
  signal?: AbortSignal;
}

/** How a {@link Fetcher.resource} ended: the answer (decoded body, headers without framing ones), or an error. */
export interface ResourceResult {
  /** The URL answered (after redirects). */
  url: string;
  status: number | null;
  headers: Record<string, string>;
  body: Buffer | null;
  error: { code: PageErrorCode | 'aborted'; message: string } | null;
}

/** Request headers a browser's request is not forwarded with (framing, hop-by-hop, set by the fetcher). */
const UNFORWARDED_REQUEST = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'content-length',
  'accept-encoding',
  'user-agent',
  'expect',
]);
/** Answer headers not handed back to the browser: the body is handed over whole and decoded. */
/** Framing headers, and Speculation-Rules (prefetches and prerenders the browser would make outside interception). */
const UNFORWARDED_RESPONSE = new Set(['content-encoding', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'trailer', 'speculation-rules']);

export interface PostOptions {
  /** Headers, body and whole-request timeout. */
  timeoutMs: number;
  /** Most bytes of the answer read (the rest is dropped). */
  maxResponseBytes: number;
  /** Aborts the post (its result's error is then `aborted`). */
  signal?: AbortSignal;
}

/**
 * How a {@link Fetcher.post} ended: the receiver's status, or an error (`blocked`, `timeout`,
 * `network`, `aborted`); `retryAfterMs`, the wait its `Retry-After` header asked for (null without one).
 */
export interface PostResult {
  status: number | null;
  error: { code: PageErrorCode | 'aborted'; message: string } | null;
  retryAfterMs: number | null;
}

export interface StreamOptions {
  maxBytes: number;
  sink: (chunk: Buffer) => SinkAnswer | Promise<SinkAnswer>;
  sniffGzip?: boolean;
  timeoutMs?: number;
}

export function createFetcher(options: FetcherOptions): Fetcher {
  let agent: Agent | null = null;
  const guard = createAddressGuard(options.allowPrivateNetwork);
  const requestHeaders = {
    'user-agent': options.userAgent,
    accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.5',
    'accept-encoding': 'gzip, deflate, br',
  };

  /** The one agent of this fetcher (keep-alive, the pages' timeouts, the guard's DNS lookup). */
  async function agentFor(): Promise<{ undici: Awaited<ReturnType<typeof loadUndici>>; dispatcher: Agent }> {
    const undici = await loadUndici();
    agent ??= new undici.Agent({
      keepAliveTimeout: 10_000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      ...(guard.lookup === undefined ? {} : { connect: { lookup: guard.lookup } }),
    });
    return { undici, dispatcher: agent };
  }

  async function get(
    startUrl: string,
    allowHop: (url: string) => string | null,
    text: { maxBytes: number } | null,
    hopDelayMs = 0,
    streamTo: StreamOptions | null = null,
    /** Shortens the engine's timeout for this request. */
    shorterTimeoutMs: number = Number.POSITIVE_INFINITY,
    conditional: ConditionalRequest | null = null,
  ): Promise<FetchResult> {
    const { undici, dispatcher } = await agentFor();
    // A plain timer, cleared when done: AbortSignal.timeout() keeps signals alive for the GC.
    // It is paused while a redirect waits out the host's delay, which is not request time.
    const controller = new AbortController();
    const { signal } = controller;
    const timeoutMs = Math.max(1, Math.min(options.timeoutMs, streamTo?.timeoutMs ?? Number.POSITIVE_INFINITY, shorterTimeoutMs));
    let remaining = timeoutMs;
    let armedAt = Date.now();
    let timer = setTimeout(() => controller.abort(), remaining);
    const pauseFor = async (ms: number) => {
      clearTimeout(timer);
      remaining -= Date.now() - armedAt;
      await new Promise((resolve) => setTimeout(resolve, ms));
      armedAt = Date.now();
      timer = setTimeout(() => controller.abort(), Math.max(0, remaining));
    };
    const seen = new Set<string>([startUrl]);
    /** The body being streamed to `streamTo.sink`, dropped when streaming fails. */
    let streaming: Dispatcher.ResponseData['body'] | null = null;
    let url = startUrl;
    let status: number | null = null;
    let contentType: string | null = null;
    let headers: Record<string, string> = {};
    const fail = (code: PageErrorCode, message: string, transient = false, retryAfterMs: number | null = null): FetchResult => ({
      finalUrl: url,
      status,
      contentType,
      headers,
      html: null,
      error: { code, message, transient, retryAfterMs },
    });
    try {
      for (let hop = 0; ; hop++) {
        const refused = guard.checkHost(new URL(url).hostname);
        if (refused !== null) return fail('blocked', `refused to connect: ${refused}`);
        // Validators go only to the URL they came from (a redirect's other hops get none).
        const etag = conditional?.url === url ? validator(conditional.etag) : null;
        const since = conditional?.url === url ? validator(conditional.lastModified) : null;
        const conditionalSent = etag !== null || since !== null;
        const response = await undici.request(url, {
          dispatcher,
          method: 'GET',
          headers: conditionalSent
            ? { ...requestHeaders, ...(etag === null ? {} : { 'if-none-match': etag }), ...(since === null ? {} : { 'if-modified-since': since }) }
            : requestHeaders,
          signal,
        });
        status = response.statusCode;
        contentType = header(response.headers, 'content-type');
        headers = flatHeaders(response.headers);

        if (status === 304 && conditionalSent) {
          await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
          return { finalUrl: url, status, contentType, headers, html: null, error: null, notModified: true };
        }

        if (REDIRECTS.has(status)) {
          await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
          const location = header(response.headers, 'location');
          const next = location === null ? null : normalizeUrl(location, url);
          if (next === null) {
            return fail(
              'bad_redirect',
              `HTTP ${status} with ${location === null ? 'no' : 'an invalid'} Location header${location === null ? '' : ` ${JSON.stringify(location.slice(0, 200))}`}`,
            );
          }
          if (seen.has(next)) return fail('redirect_loop', `redirect loop: ${url} -> ${next} was already visited`);
          if (hop + 1 > options.maxRedirects) {
            return fail('too_many_redirects', `more than maxRedirects (${options.maxRedirects}) redirects`);
          }
          const refusal = allowHop(next);
          if (refusal !== null) return fail('blocked', `redirect to ${next} refused: ${refusal}`);
          seen.add(next);
          if (hopDelayMs > 0 && new URL(next).hostname === new URL(url).hostname) await pauseFor(hopDelayMs);
          url = next;
          continue;
        }

        if (status < 200 || status > 299) {
          await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
          const transient = TRANSIENT_STATUS.has(status) || status >= 500;
          const retryAfter = transient ? parseRetryAfter(header(response.headers, 'retry-after')) : null;
          return fail('http_error', `HTTP ${status}`, transient, retryAfter === null ? null : Math.min(retryAfter, options.maxRetryAfterMs));
        }

        const declared = Number(header(response.headers, 'content-length') ?? NaN);
        const encoding = header(response.headers, 'content-encoding');
        if (streamTo !== null) {
          streaming = response.body;
          for await (const chunk of decodeBody(response.body as AsyncIterable<Buffer>, encoding, streamTo.maxBytes, streamTo.sniffGzip === true)) {
            if ((await streamTo.sink(chunk)) === 'stop') break;
          }
          discard(response.body);
          return { finalUrl: url, status, contentType, headers, html: null, error: null };
        }
        if (text !== null) {
          const bytes = await decompress(await readCapped(response.body, text.maxBytes, true), encoding, options.maxBytes);
          return { finalUrl: url, status, contentType, headers, html: bytes.subarray(0, text.maxBytes).toString('utf8'), error: null };
        }
        if (contentType !== null && !isHtmlType(contentType)) {
          discard(response.body);
          return fail('not_html', `content-type ${contentType.split(';', 1)[0]} is not HTML; body not parsed`);
        }
        if (declared > options.maxBytes) {
          discard(response.body);
          return fail('too_large', `content-length ${declared} is larger than maxBytes (${options.maxBytes} bytes)`);
        }
        // An unencoded body is decoded from the chunks it arrived in, never copied into one buffer.
        const read = await readChunks(response.body, options.maxBytes);
        const chunks = isIdentity(encoding) ? read.chunks : [await decompress(await joined(read), encoding, options.maxBytes)];
        if (sliceUsed()) await yieldToLoop();
        if (contentType === null && !/^\s*</.test(Buffer.from(headOf(chunks, 256)).toString('latin1'))) {
          return fail('not_html', 'no content-type and the body does not look like HTML');
        }
        return { finalUrl: url, status, contentType, headers, html: await decodeHtmlSliced(chunks, contentType), error: null };
      }
    } catch (error) {
      if (signal.aborted) return fail('timeout', `no complete response within timeoutMs (${timeoutMs} ms)`, true);
      if (streaming !== null) discard(streaming);
      const failure = classifyNetworkError(error);
      return fail(failure.code, failure.message, failure.transient);
    } finally {
      clearTimeout(timer);
    }
  }

  async function post(url: string, body: string, headers: Record<string, string>, postOptions: PostOptions): Promise<PostResult> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), postOptions.timeoutMs);
    const { signal: outer } = postOptions;
    const stop = () => controller.abort();
    outer?.addEventListener('abort', stop, { once: true });
    let status: number | null = null;
    try {
      if (outer?.aborted) return { status, error: { code: 'aborted', message: 'stopped before it was posted' }, retryAfterMs: null };
      const refused = guard.checkHost(new URL(url).hostname);
      if (refused !== null) return { status, error: { code: 'blocked', message: `refused to connect: ${refused}` }, retryAfterMs: null };
      const { undici, dispatcher } = await agentFor();
      const response = await undici.request(url, {
        dispatcher,
        method: 'POST',
        headers: { 'user-agent': options.userAgent, ...headers },
        body,
        signal: controller.signal,
        // The post's own bounds, not the agent's (which are the pages' fetch.timeoutMs).
        headersTimeout: postOptions.timeoutMs,
        bodyTimeout: postOptions.timeoutMs,
      });
      status = response.statusCode;
      const retryAfterMs = parseRetryAfter(header(response.headers, 'retry-after'));
      // Read up to the cap and dropped; a larger answer ends the connection, not the delivery.
      await response.body.dump({ limit: postOptions.maxResponseBytes }).catch(() => undefined);
      return { status, error: null, retryAfterMs };
    } catch (error) {
      if (outer?.aborted) return { status, error: { code: 'aborted', message: 'stopped while posting (the processor was stopped)' }, retryAfterMs: null };
      if (controller.signal.aborted) return { status, error: { code: 'timeout', message: `no answer within ${postOptions.timeoutMs} ms` }, retryAfterMs: null };
      const failure = classifyNetworkError(error);
      return { status, error: { code: failure.code, message: failure.message }, retryAfterMs: null };
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', stop);
    }
  }

  async function resource(request: ResourceRequest, resourceOptions: ResourceOptions): Promise<ResourceResult> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), resourceOptions.timeoutMs);
    const { signal: outer } = resourceOptions;
    const stop = () => controller.abort();
    outer?.addEventListener('abort', stop, { once: true });
    let url = request.url;
    let method = request.method.toUpperCase();
    let body = request.body ?? null;
    let status: number | null = null;
    let headers: Record<string, string> = {};
    const fail = (code: PageErrorCode | 'aborted', message: string): ResourceResult => ({ url, status, headers, body: null, error: { code, message } });
    const forwarded: Record<string, string> = { 'user-agent': options.userAgent, 'accept-encoding': 'gzip, deflate, br' };
    for (const [name, value] of Object.entries(request.headers)) {
      const lower = name.toLowerCase();
      if (!UNFORWARDED_REQUEST.has(lower) && !lower.startsWith(':')) forwarded[lower] = value;
    }
    try {
      if (outer?.aborted) return fail('aborted', 'the render ended before the request was made');
      const { undici, dispatcher } = await agentFor();
      const seen = new Set<string>([url]);
      for (let hop = 0; ; hop++) {
        let parsed: URL;
        try {
          parsed = new URL(url);
        } catch {
          return fail('bad_redirect', `not a URL: ${JSON.stringify(url.slice(0, 200))}`);
        }
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return fail('blocked', `refused to fetch ${parsed.protocol} URL`);
        const refused = guard.checkHost(parsed.hostname);
        if (refused !== null) return fail('blocked', `refused to connect: ${refused}`);
        const response = await undici.request(url, {
          dispatcher,
          method: method as Dispatcher.HttpMethod,
          headers: forwarded,
          body,
          signal: controller.signal,
          headersTimeout: resourceOptions.timeoutMs,
          bodyTimeout: resourceOptions.timeoutMs,
        });
        status = response.statusCode;
        headers = {};
        for (const [name, value] of Object.entries(response.headers)) {
          if (value === undefined || UNFORWARDED_RESPONSE.has(name)) continue;
          // Playwright splits Set-Cookie on new lines (a comma can be inside a cookie's Expires).
          headers[name] = Array.isArray(value) ? value.join(name === 'set-cookie' ? '\n' : ', ') : value;
        }
        const location = header(response.headers, 'location');
        if (REDIRECTS.has(status) && location !== null) {
          await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
          const next = normalizeUrl(location, url);
          if (next === null) return fail('bad_redirect', `HTTP ${status} with an invalid Location header`);
          if (seen.has(next)) return fail('redirect_loop', `redirect loop: ${url} -> ${next} was already visited`);
          if (hop + 1 > options.maxRedirects) return fail('too_many_redirects', `more than maxRedirects (${options.maxRedirects}) redirects`);
          const refusal = (await resourceOptions.allowHop?.(next)) ?? null;
          if (refusal !== null) return fail('blocked', `redirect to ${next} refused: ${refusal}`);
          seen.add(next);
          // As browsers do: 303, and 301/302 of a POST, go on as a GET without a body.
          if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
            if (method !== 'HEAD') method = 'GET';
            body = null;
            delete forwarded['content-type'];
          }
          url = next;
          continue;
        }
        const declared = Number(header(response.headers, 'content-length') ?? NaN);
        if (declared > resourceOptions.maxBytes) {
          discard(response.body);
          return fail('too_large', `content-length ${declared} is larger than ${resourceOptions.maxBytes} bytes`);
        }
        const raw = await readCapped(response.body, resourceOptions.maxBytes);
        const decoded = await decompress(raw, header(response.headers, 'content-encoding'), resourceOptions.maxBytes);
        return { url, status, headers, body: decoded, error: null };
      }
    } catch (error) {
      if (outer?.aborted) return fail('aborted', 'the render ended while the request was made');
      if (controller.signal.aborted) return fail('timeout', `no complete answer within ${resourceOptions.timeoutMs} ms`);
      const failure = classifyNetworkError(error);
      return fail(failure.code, failure.message);
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', stop);
    }
  }

  return {
    post,
    resource,
    fetch: (url, allowHop, fetchOptions) =>
      get(url, allowHop, null, fetchOptions?.hopDelayMs, null, fetchOptions?.timeoutMs, fetchOptions?.conditional ?? null),
    fetchText: (url, maxBytes, textOptions) => get(url, () => null, { maxBytes }, 0, null, textOptions?.timeoutMs),
    stream: (url, streamOptions) => get(url, () => null, null, 0, streamOptions),

    async close() {
      const current = agent;
      agent = null;
      await current?.close();
    },
  };
}
