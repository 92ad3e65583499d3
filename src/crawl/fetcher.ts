/**
 * The fetcher: undici with a whole-request timeout, a byte cap enforced while streaming (and on
 * the decoded size of compressed bodies), redirects followed by hand with every hop checked,
 * and charset-aware decoding. undici is imported on first use so that code which only creates
 * jobs or streams progress never loads it.
 */
import { promisify, TextDecoder } from 'node:util';
import zlib from 'node:zlib';
import type { Agent, Dispatcher } from 'undici';
import { BLOCKED_CODE, createAddressGuard, type PrivateNetworkAllowance } from './netguard.js';
import type { PageErrorCode } from '../core/types.js';
import { normalizeUrl } from './url.js';

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
}

type Undici = typeof import('undici');
let undiciModule: Promise<Undici> | null = null;
const loadUndici = (): Promise<Undici> => (undiciModule ??= import('undici'));

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const TRANSIENT_STATUS = new Set([408, 425, 429]);
const PERMANENT_NETWORK = new Set(['ENOTFOUND', 'ERR_INVALID_URL', 'UND_ERR_INVALID_ARG']);
const decoders = new Map<string, TextDecoder>();

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

/** Code points of bytes 0x80–0x9F in windows-1252 (Node decodes them as C1 controls). */
const CP1252 = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d,
  0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];
/** WHATWG labels of windows-1252 (latin1 and ASCII included, as browsers do). */
const WINDOWS_1252 = new Set([
  'windows-1252',
  'cp1252',
  'x-cp1252',
  'latin1',
  'l1',
  'iso-8859-1',
  'iso8859-1',
  'iso88591',
  'iso_8859-1',
  'iso_8859-1:1987',
  'iso-ir-100',
  'ibm819',
  'cp819',
  'csisolatin1',
  'ascii',
  'us-ascii',
  'ansi_x3.4-1968',
]);

function decodeWindows1252(bytes: Uint8Array): string {
  let out = '';
  for (let start = 0; start < bytes.length; start += 8192) {
    const end = Math.min(start + 8192, bytes.length);
    const codes = new Array<number>(end - start);
    for (let i = start; i < end; i++) {
      const b = bytes[i]!;
      codes[i - start] = b >= 0x80 && b <= 0x9f ? CP1252[b - 0x80]! : b;
    }
    out += String.fromCharCode(...codes);
  }
  return out;
}

function decoder(label: string): TextDecoder {
  let found = decoders.get(label);
  if (found === undefined) {
    try {
      found = new TextDecoder(label);
    } catch {
      found = decoders.get('utf-8') ?? new TextDecoder('utf-8');
    }
    decoders.set(label, found);
  }
  return found;
}

/** Decodes with the header's charset, else a `<meta charset>` in the first 1 kB, else UTF-8. */
export function decodeHtml(bytes: Uint8Array, contentType: string | null): string {
  let charset = contentType ? /charset\s*=\s*"?([\w.:-]+)/i.exec(contentType)?.[1] : undefined;
  if (charset === undefined) {
    const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 1024)).toString('latin1');
    charset = /<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)/i.exec(head)?.[1];
  }
  const label = (charset ?? 'utf-8').toLowerCase();
  return WINDOWS_1252.has(label) ? decodeWindows1252(bytes) : decoder(label).decode(bytes);
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

async function readCapped(body: Dispatcher.ResponseData['body'], maxBytes: number, truncate = false): Promise<Buffer> {
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
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
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
  fetch(url: string, allowHop: (url: string) => string | null, options?: { hopDelayMs?: number }): Promise<FetchResult>;
  /**
   * Fetches a text resource of any content type (robots.txt), keeping at most `maxBytes` of it;
   * `html` then holds the text. Redirects are followed like pages.
   */
  fetchText(url: string, maxBytes: number): Promise<FetchResult>;
  close(): Promise<void>;
}

export function createFetcher(options: FetcherOptions): Fetcher {
  let agent: Agent | null = null;
  const guard = createAddressGuard(options.allowPrivateNetwork);
  const requestHeaders = {
    'user-agent': options.userAgent,
    accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.5',
    'accept-encoding': 'gzip, deflate, br',
  };

  async function get(startUrl: string, allowHop: (url: string) => string | null, text: { maxBytes: number } | null, hopDelayMs = 0): Promise<FetchResult> {
    const undici = await loadUndici();
    agent ??= new undici.Agent({
      keepAliveTimeout: 10_000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      ...(guard.lookup === undefined ? {} : { connect: { lookup: guard.lookup } }),
    });
    // A plain timer, cleared when done: AbortSignal.timeout() keeps signals alive for the GC.
    // It is paused while a redirect waits out the host's delay, which is not request time.
    const controller = new AbortController();
    const { signal } = controller;
    let remaining = options.timeoutMs;
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
        const response = await undici.request(url, {
          dispatcher: agent,
          method: 'GET',
          headers: requestHeaders,
          signal,
        });
        status = response.statusCode;
        contentType = header(response.headers, 'content-type');
        headers = flatHeaders(response.headers);

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
        const bytes = await decompress(await readCapped(response.body, options.maxBytes), encoding, options.maxBytes);
        if (contentType === null && !/^\s*</.test(bytes.subarray(0, 256).toString('latin1'))) {
          return fail('not_html', 'no content-type and the body does not look like HTML');
        }
        return { finalUrl: url, status, contentType, headers, html: decodeHtml(bytes, contentType), error: null };
      }
    } catch (error) {
      if (signal.aborted) return fail('timeout', `no complete response within timeoutMs (${options.timeoutMs} ms)`, true);
      const failure = classifyNetworkError(error);
      return fail(failure.code, failure.message, failure.transient);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    fetch: (url, allowHop, fetchOptions) => get(url, allowHop, null, fetchOptions?.hopDelayMs),
    fetchText: (url, maxBytes) => get(url, () => null, { maxBytes }),

    async close() {
      const current = agent;
      agent = null;
      await current?.close();
    },
  };
}
