/**
 * robots.txt (RFC 9309): parsing, group selection by product token, and Allow/Disallow matching
 * with `*` and `$` where the longest match wins and a tie goes to Allow.
 */

import { repairText } from './text.js';

/** One rule of the group that applies to us. */
export interface RobotsRule {
  allow: boolean;
  /** The path pattern, percent-encoding normalised. */
  pattern: string;
}

export interface RobotsRules {
  rules: RobotsRule[];
  /** `Crawl-delay` of the chosen group in milliseconds, or null. */
  crawlDelayMs: number | null;
}

/** RFC 9309 asks crawlers to parse at least 500 KiB; more is ignored. */
export const ROBOTS_MAX_BYTES = 500 * 1024;

/** The product token of a user agent: `crawl-engine` for `crawl-engine/0.1 (+https://…)`. */
export function productToken(userAgent: string): string {
  return (/^[A-Za-z0-9_-]+/.exec(userAgent.trim())?.[0] ?? userAgent).toLowerCase();
}

/** Upper-cases percent escapes and percent-encodes what is not ASCII, so both sides compare. */
function normalisePath(path: string): string {
  let out = path.replace(/%[0-9a-f]{2}/gi, (m) => m.toUpperCase());
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range, NUL included, on purpose
  if (/[^\x00-\x7f]/.test(out)) out = out.replace(/[^\x00-\x7f]+/g, (m) => encodeURIComponent(repairText(m)));
  // Control characters (NUL included, which Postgres cannot store) as a URL path carries them.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this escapes
  if (/[\x00-\x1f\x7f]/.test(out)) out = out.replace(/[\x00-\x1f\x7f]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  return out;
}

interface Group {
  agents: string[];
  rules: RobotsRule[];
  crawlDelayMs: number | null;
}

/**
 * A byte-order mark at the start: U+FEFF, or the U+FFFD a decoder makes of a cut-off one (bytes
 * `EF BB` or `EF`). Left in place it would hide the first line, often the only `User-agent`.
 */
const LEADING_BOM = /^[\ufeff\ufffd]+/;

/**
 * Parses robots.txt and keeps the rules of the group for `userAgent` (else `*`, else none).
 *
 * As in RFC 9309 §2.2.4 and Google's reference parser, a group is a run of `User-agent` lines
 * and the rules after it, and only an `Allow` or `Disallow` line ends the run: `Sitemap`,
 * `Crawl-delay` and unknown lines between two `User-agent` lines do not split the group (else
 * `User-agent: A`, `Sitemap: …`, `User-agent: *`, `Disallow: /` would leave A without rules).
 */
export function parseRobots(text: string, userAgent: string): RobotsRules {
  const token = productToken(userAgent);
  const groups: Group[] = [];
  let current: Group | null = null;
  let lastWasAgent = false;
  for (const raw of text
    .slice(0, ROBOTS_MAX_BYTES)
    .replace(LEADING_BOM, '')
    .split(/\r\n|\r|\n/)) {
    const line = raw.replace(/#.*$/, '').trim();
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'user-agent') {
      if (!lastWasAgent || current === null) {
        current = { agents: [], rules: [], crawlDelayMs: null };
        groups.push(current);
      }
      current.agents.push(value.toLowerCase());
      lastWasAgent = true;
      continue;
    }
    if (current === null) continue; // rules before any user-agent line belong to no group
    if (key === 'allow' || key === 'disallow') {
      lastWasAgent = false; // even when empty: the next User-agent line starts a new group
      if (value === '') continue; // an empty Disallow allows everything: no rule needed
      current.rules.push({ allow: key === 'allow', pattern: normalisePath(value) });
    } else if (key === 'crawl-delay') {
      const seconds = Number(value);
      if (Number.isFinite(seconds) && seconds >= 0) current.crawlDelayMs = Math.round(seconds * 1000);
    }
  }
  const agentToken = (agent: string) => productToken(agent);
  let chosen = groups.filter((g) => g.agents.some((a) => a !== '*' && agentToken(a) === token));
  if (chosen.length === 0) chosen = groups.filter((g) => g.agents.includes('*'));
  const delays = chosen.map((g) => g.crawlDelayMs).filter((d): d is number => d !== null);
  return {
    rules: chosen.flatMap((g) => g.rules),
    crawlDelayMs: delays.length === 0 ? null : Math.max(...delays),
  };
}

/**
 * A pattern cut at its `*`s, for matching without a regular expression: a backtracking engine
 * takes exponential time on `/*a*a*a…*b`, and robots.txt comes from the sites being crawled.
 */
interface CompiledPattern {
  /** What the path must start with. */
  head: string;
  /** The non-empty pieces between `*`s, in order. */
  middle: string[];
  /** The piece after the last `*` (null without any `*`). */
  tail: string | null;
  /** A trailing `$`: the pattern must match the whole path, not only a prefix. */
  anchored: boolean;
}

/**
 * Compiled patterns, by rule, and by pattern text for rules parsed anew (records read from storage):
 * a robots.txt may hold tens of thousands of rules, more than the cache by text keeps without
 * clearing itself on every URL checked (and recompiling them all); by rule it never needs to.
 */
const byRule = new WeakMap<RobotsRule, CompiledPattern>();
const byText = new Map<string, CompiledPattern>();

function compile(rule: RobotsRule): CompiledPattern {
  let found = byRule.get(rule);
  if (found !== undefined) return found;
  const { pattern } = rule;
  found = byText.get(pattern);
  if (found === undefined) {
    const anchored = pattern.endsWith('$');
    const parts = (anchored ? pattern.slice(0, -1) : pattern).split('*');
    found = {
      head: parts[0]!,
      middle: parts.slice(1, -1).filter((part) => part !== ''),
      tail: parts.length > 1 ? parts[parts.length - 1]! : null,
      anchored,
    };
    if (byText.size > 10_000) byText.clear();
    byText.set(pattern, found);
  }
  byRule.set(rule, found);
  return found;
}

/**
 * Whether `pattern` (`*` is any run of characters, a trailing `$` ends the path) matches `path`:
 * as a prefix, or the whole path when anchored. `*` matches anything, so taking each piece at its
 * leftmost place after the previous one is never worse than any other choice: one pass with
 * `indexOf`, linear in the length of the path and never retried.
 */
function patternMatches(rule: RobotsRule, path: string): boolean {
  const { head, middle, tail, anchored } = compile(rule);
  if (tail === null) return anchored ? path === head : path.startsWith(head);
  if (!path.startsWith(head)) return false;
  let at = head.length;
  for (const piece of middle) {
    const found = path.indexOf(piece, at);
    if (found < 0) return false;
    at = found + piece.length;
  }
  if (anchored) return path.length - tail.length >= at && path.endsWith(tail);
  return tail === '' || path.indexOf(tail, at) >= 0;
}

/**
 * Whether `pathAndQuery` (e.g. `/a/b?c=1`) may be fetched. The longest matching pattern wins;
 * on a tie Allow wins; no match allows. `/robots.txt` is always allowed.
 */
export function robotsAllows(rules: readonly RobotsRule[], pathAndQuery: string): { allowed: boolean; rule: RobotsRule | null } {
  if (pathAndQuery === '/robots.txt') return { allowed: true, rule: null };
  const path = normalisePath(pathAndQuery);
  let best: RobotsRule | null = null;
  for (const rule of rules) {
    if (!patternMatches(rule, path)) continue;
    if (best === null || rule.pattern.length > best.pattern.length || (rule.pattern.length === best.pattern.length && rule.allow && !best.allow)) {
      best = rule;
    }
  }
  return { allowed: best === null || best.allow, rule: best };
}
