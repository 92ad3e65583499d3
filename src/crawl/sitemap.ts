/**
 * Sitemaps (sitemaps.org protocol): discovery (robots.txt `Sitemap:` lines, else `/sitemap.xml`),
 * `<urlset>` and `<sitemapindex>` XML, gzip, and text sitemaps (one URL per line).
 *
 * Everything a site sends is streamed through the engine's guarded fetcher (private-network
 * guard, timeouts, redirects checked hop by hop) and parsed as it arrives, in slices that yield to
 * the event loop: no file is ever held whole. htmlparser2's XML mode is the parser: it never
 * expands entities other than XML's five and numeric ones, nor reads external ones, so
 * billion-laughs files cannot grow; a file that declares entities (`<!ENTITY`) is refused.
 * Bounds: files per reading, bytes per file (arriving and decompressed), URLs per file, URLs kept,
 * index nesting, and a deadline; indexes that list each other are read once.
 */
import type { Parser as XmlParser } from 'htmlparser2';
import type { Fetcher, SinkAnswer } from './fetcher.js';
import { loadParser } from './parse.js';
import { ROBOTS_MAX_BYTES } from './robots.js';
import { sliceUsed, yieldToLoop } from './slices.js';
import { crawlableUrl } from './url.js';

/** A URL a sitemap lists, with the `<lastmod>` it gave (W3C datetime, at most 64 characters). */
export interface SitemapUrl {
  url: string;
  lastmod?: string;
}

/** Something that went wrong with one sitemap (or with the reading as a whole: `url` is then the start URL). */
export interface SitemapProblem {
  url: string;
  code: SitemapErrorCode | (string & {});
  message: string;
}

export type SitemapErrorCode =
  /** More sitemap files than `maxFiles`; the others are not read. */
  | 'too_many_sitemaps'
  /** An index deeper than `maxNesting` levels; what it lists is not read. */
  | 'too_deep'
  /** An index lists a sitemap already read (a loop between indexes). */
  | 'sitemap_loop'
  /** A file listing more than `maxUrlsPerFile` URLs; the rest are ignored. */
  | 'too_many_urls'
  /** Not a sitemap: no `<urlset>` or `<sitemapindex>` root, entity declarations, or no URL at all. */
  | 'invalid_sitemap'
  /** The reading ran out of time; sitemaps not read by then are left out. */
  | 'timeout'
  /** Fetch errors as pages have them: `too_large`, `http_error`, `blocked`, `network`… */
  | 'too_large'
  | 'http_error'
  | 'blocked'
  | 'network';

export interface SitemapReading {
  /** URLs kept, in the order listed, each once. */
  urls: SitemapUrl[];
  /** Sitemap files read (fetched without error), in order. */
  read: string[];
  /** At most `maxErrors` problems. */
  errors: SitemapProblem[];
  /** True when `maxUrls` or `maxUrlChars` stopped the reading (more URLs were listed than kept). */
  truncated: boolean;
}

export interface SitemapLimits {
  /** Sitemap files fetched at most (robots.txt not included). @default 50 */
  maxFiles: number;
  /** Bytes of one file, arriving and after each decompression (the protocol's 50 MB). @default 52428800 */
  maxBytes: number;
  /** URLs one file may list (the protocol's 50,000); past it the file's other URLs are ignored. @default 50000 */
  maxUrlsPerFile: number;
  /** Index levels followed: a sitemap listed by an index is one level deeper. @default 3 */
  maxNesting: number;
  /** Problems kept. @default 50 */
  maxErrors: number;
  /**
   * Characters of the URLs kept, in all: past it reading stops (`truncated`), so that URLs of up to
   * 2048 characters cannot make a reading of hundreds of megabytes. @default 16777216
   */
  maxUrlChars: number;
}

export const SITEMAP_LIMITS: Readonly<SitemapLimits> = {
  maxFiles: 50,
  maxBytes: 50 * 1024 * 1024,
  maxUrlsPerFile: 50_000,
  maxNesting: 3,
  maxErrors: 50,
  maxUrlChars: 16 * 1024 * 1024,
};

export interface ReadSitemapsOptions {
  fetcher: Fetcher;
  /** The site's start URL: its origin's robots.txt and `/sitemap.xml` are where sitemaps are found. */
  startUrl: string;
  /** URLs kept at most; reading stops once that many are kept (`truncated`). */
  maxUrls: number;
  /** Epoch ms (`Date.now()`): no file is started after it, and a file in flight is cut at it. */
  deadline: number;
  /** Whether a listed URL is kept (scope, globs, search); all are by default. */
  accept?: (url: URL) => boolean;
  /**
   * The origin's robots.txt text when the caller has it (null: it has none), so that it is not
   * fetched again; else it is fetched.
   */
  robotsTxt?: string | null;
  limits?: Partial<SitemapLimits>;
}

/** `promise`'s value, or null once `deadline` (epoch ms) has passed; the promise's failure is null too. */
export async function beforeDeadline<T>(promise: Promise<T>, deadline: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([promise.catch(() => null), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** `Sitemap:` lines of a robots.txt (they belong to no group), as absolute URLs, each once. */
export function sitemapsInRobots(text: string, base: string): string[] {
  const found = new Set<string>();
  for (const line of text.slice(0, ROBOTS_MAX_BYTES).split(/\r\n|\r|\n/)) {
    const match = /^\s*sitemap\s*:\s*(\S+)/i.exec(line);
    if (match === null) continue;
    const url = crawlableUrl(match[1]!, base);
    if (url !== null) found.add(url.href);
  }
  return [...found];
}

/** W3C datetime as sitemaps use it: a year, year-month, a date, or a date and time with zone. */
const LASTMOD = /^\d{4}(-\d{2}(-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?)?$/;

/** The `<lastmod>` as kept: trimmed, a W3C datetime of at most 64 characters, or undefined. */
export function cleanLastmod(value: string): string | undefined {
  const trimmed = value.trim();
  return trimmed.length <= 64 && LASTMOD.test(trimmed) ? trimmed : undefined;
}

/** The longest `<loc>` or text line looked at; a longer one is no crawlable URL (2048 at most). */
const MAX_LOC_CHARS = 4096;

/** What parsing one file found, fed to the reader as it goes. */
interface FileSink {
  url(loc: string, lastmod: string | undefined): 'stop' | undefined;
  sitemap(loc: string): void;
}

interface FileParser {
  write(text: string): void;
  end(): void;
  /** Set when the file is refused (not a sitemap, entity declarations). */
  problem: SitemapProblem | null;
  /** `<loc>` entries seen (URLs and sitemaps). */
  entries: number;
}

const localName = (name: string) => name.slice(name.lastIndexOf(':') + 1).toLowerCase();

/** An XML sitemap or index, parsed as it streams in. */
function xmlParser(Parser: typeof XmlParser, fileUrl: string, sink: FileSink, onStop: () => void): FileParser {
  // Only the names of open elements are kept (bounded: past 16 levels they are only counted).
  const stack: string[] = [];
  let depth = 0;
  let root: string | null = null;
  let capture: 'loc' | 'lastmod' | null = null;
  let buffer = '';
  let loc: string | null = null;
  let lastmod: string | undefined;
  let stopped = false;
  const state: FileParser = {
    problem: null,
    entries: 0,
    write: (text) => parser.write(text),
    end: () => parser.end(),
  };
  const stop = (problem: SitemapProblem | null) => {
    if (stopped) return;
    stopped = true;
    if (problem !== null) state.problem = problem;
    onStop();
  };
  const parser = new Parser(
    {
      onprocessinginstruction(name, data) {
        // A DOCTYPE is harmless on its own (nothing reads it); an entity declaration never belongs
        // in a sitemap and is how billion-laughs and external-entity files start.
        if (/^!entity/i.test(name) || (/^!doctype/i.test(name) && /<!entity/i.test(data))) {
          stop({
            url: fileUrl,
            code: 'invalid_sitemap',
            message: `sitemap ${fileUrl} declares XML entities (<!ENTITY>); refused (entities are never expanded)`,
          });
        }
      },
      onopentag(rawName) {
        if (stopped) return;
        const name = localName(rawName);
        depth++;
        if (depth <= 16) stack.push(name);
        if (root === null) {
          root = name;
          if (name !== 'urlset' && name !== 'sitemapindex') {
            stop({
              url: fileUrl,
              code: 'invalid_sitemap',
              message: `${fileUrl} is not a sitemap: its root element is <${rawName.slice(0, 40)}>, not <urlset> or <sitemapindex>`,
            });
          }
          return;
        }
        const parent = depth <= 17 ? stack[depth - 2] : undefined;
        if (depth === 2 && (name === 'url' || name === 'sitemap')) {
          loc = null;
          lastmod = undefined;
        } else if (depth === 3 && (parent === 'url' || parent === 'sitemap') && (name === 'loc' || name === 'lastmod')) {
          capture = name;
          buffer = '';
        }
      },
      ontext(text) {
        if (capture === null || stopped) return;
        if (buffer.length + text.length > MAX_LOC_CHARS) buffer = `${buffer}${text}`.slice(0, MAX_LOC_CHARS + 1);
        else buffer += text;
      },
      onclosetag(rawName) {
        if (stopped) return;
        const name = localName(rawName);
        if (capture !== null && depth === 3) {
          if (capture === 'loc') loc = buffer.length > MAX_LOC_CHARS ? null : buffer.trim();
          else lastmod = cleanLastmod(buffer);
          capture = null;
          buffer = '';
        } else if (depth === 2 && loc !== null && (name === 'url' || name === 'sitemap')) {
          state.entries++;
          if (root === 'sitemapindex') sink.sitemap(loc);
          else if (sink.url(loc, lastmod) === 'stop') stop(null);
          loc = null;
        }
        if (depth <= 16) stack.pop();
        depth = Math.max(0, depth - 1);
      },
    },
    { xmlMode: true, decodeEntities: true },
  );
  return state;
}

/** A text sitemap: one absolute URL per line. */
function textParser(sink: FileSink, onStop: () => void): FileParser {
  let line = '';
  let overlong = false;
  let stopped = false;
  const take = (raw: string) => {
    const value = raw.trim();
    if (value === '' || stopped) return;
    state.entries++;
    if (sink.url(value, undefined) === 'stop') {
      stopped = true;
      onStop();
    }
  };
  const state: FileParser = {
    problem: null,
    entries: 0,
    write(text) {
      let start = 0;
      for (let nl = text.indexOf('\n', start); nl >= 0 && !stopped; nl = text.indexOf('\n', start)) {
        const piece = text.slice(start, nl);
        if (!overlong && line.length + piece.length <= MAX_LOC_CHARS) take(line + piece);
        line = '';
        overlong = false;
        start = nl + 1;
      }
      const tail = text.slice(start);
      if (line.length + tail.length > MAX_LOC_CHARS) {
        overlong = true;
        line = '';
      } else if (!overlong) line += tail;
    },
    end() {
      if (!overlong) take(line);
    },
  };
  return state;
}

/**
 * Reads a site's sitemaps: those robots.txt lists (else `/sitemap.xml`), the indexes among them
 * followed to `maxNesting` levels, one file at a time. Never throws for anything the site does:
 * problems are in `errors`, and what was read before them is kept.
 */
export async function readSitemaps(options: ReadSitemapsOptions): Promise<SitemapReading> {
  const limits = { ...SITEMAP_LIMITS, ...options.limits };
  const { fetcher, deadline, maxUrls } = options;
  const accept = options.accept ?? (() => true);
  const reading: SitemapReading = { urls: [], read: [], errors: [], truncated: false };
  const problem = (p: SitemapProblem) => {
    if (reading.errors.length < limits.maxErrors) reading.errors.push(p);
  };
  const origin = new URL(options.startUrl).origin;
  const kept = new Set<string>();
  let keptChars = 0;

  let robotsTxt = options.robotsTxt;
  if (robotsTxt === undefined) {
    const fetched = await beforeDeadline(fetcher.fetchText(`${origin}/robots.txt`, ROBOTS_MAX_BYTES, { timeoutMs: deadline - Date.now() }), deadline);
    robotsTxt = fetched?.error === null ? fetched.html : null;
  }
  const listed = robotsTxt === null ? [] : sitemapsInRobots(robotsTxt, `${origin}/`);
  const queue: Array<{ url: string; level: number }> = (listed.length > 0 ? listed : [`${origin}/sitemap.xml`]).map((url) => ({ url, level: 0 }));
  const seen = new Set(queue.map((entry) => entry.url));
  if (queue.length > limits.maxFiles) {
    problem({ url: options.startUrl, code: 'too_many_sitemaps', message: `robots.txt lists ${queue.length} sitemaps; the first ${limits.maxFiles} are read` });
    queue.length = limits.maxFiles;
  }
  let files = 0;
  let tooMany = false;
  const { Parser } = await loadParser();

  while (queue.length > 0 && !reading.truncated) {
    const { url: fileUrl, level } = queue.shift()!;
    const left = deadline - Date.now();
    if (left <= 0) {
      problem({
        url: fileUrl,
        code: 'timeout',
        message: `out of time before reading ${fileUrl}${queue.length > 0 ? ` and ${queue.length} more sitemaps` : ''}; they are left out`,
      });
      break;
    }
    files++;
    let urlsInFile = 0;
    let stopReason: SitemapProblem | null = null;
    const pending: Array<{ loc: string; lastmod: string | undefined }> = [];
    let outOfTime = false;
    const sink: FileSink = { url: () => undefined, sitemap: () => undefined };
    sink.url = (loc, lastmod) => {
      urlsInFile++;
      if (urlsInFile > limits.maxUrlsPerFile) {
        stopReason = {
          url: fileUrl,
          code: 'too_many_urls',
          message: `sitemap ${fileUrl} lists more than ${limits.maxUrlsPerFile} URLs (the protocol's limit); the rest are ignored`,
        };
        return 'stop';
      }
      // Judged later, in slices (`drain`): `accept` may be slow (globs, robots.txt rules from the site).
      pending.push({ loc, lastmod });
      return undefined;
    };
    /** The URLs parsed so far, judged and kept, yielding to the event loop between them; false once reading stops. */
    const drain = async (): Promise<boolean> => {
      for (let i = 0; i < pending.length; i++) {
        if (sliceUsed()) await yieldToLoop();
        if (Date.now() >= deadline) {
          outOfTime = true;
          break;
        }
        const { loc, lastmod } = pending[i]!;
        const url = crawlableUrl(loc);
        if (url === null || kept.has(url.href) || !accept(url)) continue;
        keptChars += url.href.length;
        if (keptChars > limits.maxUrlChars) {
          reading.truncated = true;
          break;
        }
        kept.add(url.href);
        reading.urls.push(lastmod === undefined ? { url: url.href } : { url: url.href, lastmod });
        if (reading.urls.length >= maxUrls) {
          reading.truncated = true;
          break;
        }
      }
      pending.length = 0;
      if (outOfTime || reading.truncated) stopped = true;
      return !stopped;
    };
    sink.sitemap = (loc) => {
      const url = crawlableUrl(loc);
      if (url === null) return;
      if (seen.has(url.href)) {
        problem({
          url: fileUrl,
          code: 'sitemap_loop',
          message: `sitemap index ${fileUrl} lists ${url.href}, which was already read or queued (a loop between indexes); read once`,
        });
        return;
      }
      if (level + 1 > limits.maxNesting) {
        problem({
          url: url.href,
          code: 'too_deep',
          message: `sitemap ${url.href} is listed ${level + 1} indexes deep (at most ${limits.maxNesting} are followed); not read`,
        });
        return;
      }
      if (files + queue.length >= limits.maxFiles) {
        if (!tooMany) {
          tooMany = true;
          problem({
            url: fileUrl,
            code: 'too_many_sitemaps',
            message: `more than ${limits.maxFiles} sitemap files; ${url.href} and those after it are not read`,
          });
        }
        return;
      }
      seen.add(url.href);
      queue.push({ url: url.href, level: level + 1 });
    };

    let parser: FileParser | null = null;
    let stopped = false;
    const decoder = new TextDecoder('utf-8');
    const write = (text: string) => {
      if (parser === null) {
        const start = text.replace(/^[\ufeff\s]+/, '');
        if (start === '') return;
        parser = start.startsWith('<') ? xmlParser(Parser, fileUrl, sink, () => (stopped = true)) : textParser(sink, () => (stopped = true));
      }
      parser.write(text);
    };
    const fetched = await fetcher.stream(fileUrl, {
      maxBytes: limits.maxBytes,
      sniffGzip: true,
      timeoutMs: left,
      sink: async (chunk): Promise<SinkAnswer> => {
        // At most 64 kB at a time: parsing that is a slice of a few ms.
        for (let at = 0; at < chunk.length && !stopped; at += 65_536) {
          write(decoder.decode(chunk.subarray(at, at + 65_536), { stream: true }));
          await drain();
          if (sliceUsed()) await yieldToLoop();
        }
        return stopped ? 'stop' : undefined;
      },
    });
    if (!stopped && fetched.error === null) {
      write(decoder.decode());
      (parser as FileParser | null)?.end();
      await drain();
    }
    const parsed = parser as FileParser | null;
    if (outOfTime) {
      problem({ url: fileUrl, code: 'timeout', message: `out of time while reading ${fileUrl}; the URLs it lists after that are left out` });
      break;
    }
    if (fetched.error !== null) {
      problem({ url: fileUrl, code: fetched.error.code, message: `sitemap ${fileUrl}: ${fetched.error.message}` });
      if (fetched.error.code === 'timeout' && Date.now() >= deadline) break;
      continue;
    }
    if (parsed?.problem) problem(parsed.problem);
    else if (stopReason !== null) problem(stopReason);
    else if (parsed === null || parsed.entries === 0) {
      problem({
        url: fileUrl,
        code: 'invalid_sitemap',
        message: `sitemap ${fileUrl} lists no URL (${parsed === null ? 'it is empty' : 'no <loc> in <url> or <sitemap>'})`,
      });
    }
    if (!parsed?.problem) reading.read.push(fetched.finalUrl);
  }
  return reading;
}
