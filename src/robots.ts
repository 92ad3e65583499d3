/**
 * robots.txt (RFC 9309): parsing, group selection by product token, and Allow/Disallow matching
 * with `*` and `$` where the longest match wins and a tie goes to Allow.
 */

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
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(out)) out = out.replace(/[^\x00-\x7f]+/g, (m) => encodeURIComponent(m));
  return out;
}

interface Group {
  agents: string[];
  rules: RobotsRule[];
  crawlDelayMs: number | null;
}

/** Parses robots.txt and keeps the rules of the group for `userAgent` (else `*`, else none). */
export function parseRobots(text: string, userAgent: string): RobotsRules {
  const token = productToken(userAgent);
  const groups: Group[] = [];
  let current: Group | null = null;
  let lastWasAgent = false;
  for (const raw of text.slice(0, ROBOTS_MAX_BYTES).split(/\r\n|\r|\n/)) {
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
    lastWasAgent = false;
    if (current === null) continue; // rules before any user-agent line belong to no group
    if (key === 'allow' || key === 'disallow') {
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

const compiled = new Map<string, RegExp>();

function matcher(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (re === undefined) {
    const anchored = pattern.endsWith('$');
    const body = (anchored ? pattern.slice(0, -1) : pattern)
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    re = new RegExp(`^${body}${anchored ? '$' : ''}`);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
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
    if (!matcher(rule.pattern).test(path)) continue;
    if (best === null || rule.pattern.length > best.pattern.length || (rule.pattern.length === best.pattern.length && rule.allow && !best.allow)) {
      best = rule;
    }
  }
  return { allowed: best === null || best.allow, rule: best };
}
