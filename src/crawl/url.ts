/**
 * URL normalisation, scope and include/exclude matching. Pure functions: no I/O, no throws on
 * bad input (they return null or false instead), because every href on a page is untrusted.
 */
import { domainToUnicode } from 'node:url';
import { getDomain } from 'tldts';
import type { CrawlScope } from '../core/types.js';
import { compileGlob } from './glob.js';

/** URLs longer than this (after normalisation) are not crawled. */
export const MAX_URL_LENGTH = 2048;

/**
 * Resolves `href` against `base` and normalises it: only http(s); lower-case scheme and host
 * (WHATWG parsing does both, and punycodes IDNs); default port, fragment, credentials and an empty
 * `?` dropped; dot segments resolved. Returns null for anything that is not a crawlable URL.
 */
export function normalizeUrl(href: string, base?: string | URL): string | null {
  const url = crawlableUrl(href, base);
  return url === null ? null : url.href;
}

/** {@link normalizeUrl}, returning the parsed URL object (for callers that inspect it further). */
export function crawlableUrl(href: string, base?: string | URL): URL | null {
  let url: URL;
  try {
    url = base === undefined ? new URL(href) : new URL(href, base);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.hostname === '') return null;
  // The setters re-serialise the URL, so only call them when there is something to drop.
  if (href.includes('@') && (url.username !== '' || url.password !== '')) {
    url.username = '';
    url.password = '';
  }
  if (href.includes('#')) url.hash = '';
  if (href.includes('?') && url.search === '') url.search = ''; // drops a bare '?'
  return url.href.length > MAX_URL_LENGTH ? null : url;
}

/** Parses an already-normalised URL; null when it cannot be parsed. */
function parse(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

/** Registrable domain (`example.co.uk` for `blog.example.co.uk`), or the host itself for IPs. */
export function registrableDomain(hostname: string): string {
  return getDomain(hostname, { allowPrivateDomains: false }) ?? hostname;
}

/** A predicate for "is this URL inside the job's scope", built once per job. */
export function scopeMatcher(startUrl: string, scope: CrawlScope): (url: URL) => boolean {
  const start = parse(startUrl);
  if (start === null) return () => false;
  switch (scope) {
    case 'any':
      return () => true;
    case 'same-origin':
      return (url) => url.origin === start.origin;
    case 'same-hostname':
      return (url) => url.hostname === start.hostname;
    case 'same-domain': {
      const domain = registrableDomain(start.hostname);
      return (url) => url.hostname === start.hostname || registrableDomain(url.hostname) === domain;
    }
  }
}

/** Builds the filter a job applies to every discovered link. */
export function linkFilter(options: { startUrl: string; scope: CrawlScope; include: readonly string[]; exclude: readonly string[] }): (url: URL) => boolean {
  const inScope = scopeMatcher(options.startUrl, options.scope);
  const include = options.include.map(compileGlob);
  const exclude = options.exclude.map(compileGlob);
  return (url) => {
    if (!inScope(url)) return false;
    if (include.length > 0 && !include.some((m) => m(url))) return false;
    return !exclude.some((m) => m(url));
  };
}

/** Cyrillic and Greek letters that look like Latin ones, with the Latin letter they imitate. */
const LOOKALIKES: Readonly<Record<string, string>> = {
  а: 'a',
  е: 'e',
  о: 'o',
  р: 'p',
  с: 'c',
  у: 'y',
  х: 'x',
  і: 'i',
  ј: 'j',
  ѕ: 's',
  ԁ: 'd',
  һ: 'h',
  ӏ: 'l',
  ԛ: 'q',
  ԝ: 'w',
  ү: 'y',
  к: 'k',
  ь: 'b',
  п: 'n',
  г: 'r',
  ο: 'o',
  α: 'a',
  ν: 'v',
  ι: 'i',
  κ: 'k',
  ρ: 'p',
  υ: 'u',
  χ: 'x',
  ε: 'e',
  τ: 't',
};
const SCRIPTS = [
  ['Latin', /\p{Script=Latin}/u],
  ['Cyrillic', /\p{Script=Cyrillic}/u],
  ['Greek', /\p{Script=Greek}/u],
] as const;

/**
 * Why a host name looks like a homograph of another one, or null. Like browsers' IDN display
 * policy: a label that mixes Latin, Cyrillic or Greek letters (`pаypal`, with a Cyrillic `а`), or a
 * label under an ASCII top-level domain written only in Cyrillic or Greek letters that all look
 * like Latin ones (`аррӏе.com`), is refused. Other internationalised names pass.
 */
export function homographReason(hostname: string): string | null {
  if (!hostname.includes('xn--')) return null;
  const unicode = domainToUnicode(hostname);
  const labels = unicode.split('.');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the whole ASCII range, NUL included
  const asciiTld = /^[\x00-\x7f]*$/.test(labels.at(-1) ?? '');
  for (const label of labels) {
    const scripts = SCRIPTS.filter(([, re]) => [...label].some((c) => re.test(c))).map(([name]) => name);
    if (scripts.length > 1)
      return `the host name ${JSON.stringify(unicode)} (${hostname}) mixes ${scripts.join(' and ')} letters, as look-alike (homograph) domains do`;
    const letters = [...label].filter((c) => /\p{L}/u.test(c));
    if (asciiTld && (scripts[0] === 'Cyrillic' || scripts[0] === 'Greek') && letters.length > 0 && letters.every((c) => c in LOOKALIKES)) {
      const imitated = [...label].map((c) => LOOKALIKES[c] ?? c).join('');
      return `the host name ${JSON.stringify(unicode)} (${hostname}) is written in ${scripts[0]} letters that look like the Latin ${JSON.stringify(imitated)}, as look-alike (homograph) domains are`;
    }
  }
  return null;
}
