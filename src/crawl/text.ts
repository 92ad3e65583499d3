/**
 * Well-formed text. Everything crawl-engine stores must survive every adapter: Postgres `jsonb`
 * refuses lone UTF-16 surrogates and NUL characters, and a JSON encoder of another language may
 * choke on them too. Strings that come from pages are repaired (U+FFFD); strings that come from
 * callers are refused (see `core/jobs.ts`).
 */

/** A lone surrogate (a high one not followed by a low one, or a low one not after a high one). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what Postgres cannot store
const NUL = /\u0000/g;

/** True when `value` has no lone surrogate (what `String.prototype.isWellFormed` answers). */
export function isWellFormed(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}

/** Replaces lone surrogates and NUL characters with U+FFFD. */
export function repairText(value: string): string {
  let out = value;
  if (LONE_SURROGATE.test(out)) out = out.replace(LONE_SURROGATES, '\uFFFD');
  if (out.includes('\u0000')) out = out.replace(NUL, '\uFFFD');
  return out;
}

/**
 * The first `max` UTF-16 units of `value`, cut at a code-point boundary: a surrogate pair is never
 * split, so the result is at most `max` units long and as well-formed as the input.
 */
export function truncate(value: string, max: number): string {
  if (value.length <= max) return value;
  const last = value.charCodeAt(max - 1);
  return value.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/**
 * A copy of a JSON-like value with every string (keys included) repaired. Walks iteratively, so
 * no depth can overflow the stack; values JSON cannot carry (functions, symbols, undefined in
 * arrays) come out as JSON.stringify would treat them, and `toJSON` is honoured (Dates). Throws a
 * TypeError past `maxNodes` values (a circular value never ends, so it throws too).
 */
export function repairJson(value: unknown, maxNodes = 1_000_000): unknown {
  if (typeof value === 'string') return repairText(value);
  if (typeof value !== 'object' || value === null) return value;
  const root: { v: unknown } = { v: undefined };
  const stack: Array<{ from: unknown; into: Record<string, unknown> | unknown[]; key: string | number }> = [
    { from: value, into: root as unknown as Record<string, unknown>, key: 'v' },
  ];
  let nodes = 0;
  while (stack.length > 0) {
    if (++nodes > maxNodes) throw new TypeError(`more than ${maxNodes} values (or a circular reference)`);
    const { from, into, key } = stack.pop()!;
    let v = from;
    if (typeof v === 'object' && v !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function') v = (v as { toJSON(): unknown }).toJSON();
    let out: unknown;
    if (typeof v === 'string') out = repairText(v);
    else if (typeof v === 'number') out = Number.isFinite(v) ? v : null;
    else if (typeof v === 'boolean' || v === null) out = v;
    else if (typeof v === 'bigint') out = String(v);
    else if (typeof v === 'object') {
      // Count the children before allocating anything for them: a sparse array of 1e8 slots
      // must throw here, not exhaust the heap.
      const width = Array.isArray(v) ? v.length : 0;
      if (nodes + stack.length + width > maxNodes) throw new TypeError(`more than ${maxNodes} values (or a circular reference)`);
      if (Array.isArray(v)) {
        const arr: unknown[] = new Array<unknown>(v.length).fill(null);
        for (let i = v.length - 1; i >= 0; i--) stack.push({ from: v[i], into: arr, key: i });
        out = arr;
      } else {
        const obj: Record<string, unknown> = {};
        const entries = Object.entries(v as Record<string, unknown>);
        if (nodes + stack.length + entries.length > maxNodes) throw new TypeError(`more than ${maxNodes} values (or a circular reference)`);
        for (let i = entries.length - 1; i >= 0; i--) {
          const [k, item] = entries[i]!;
          if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
          stack.push({ from: item, into: obj, key: repairText(k) });
        }
        out = obj;
      }
    } else {
      out = Array.isArray(into) ? null : undefined;
    }
    if (out === undefined) continue;
    (into as Record<string | number, unknown>)[key] = out;
  }
  return root.v;
}

/** Where a caller's JSON value breaks the bounds of {@link jsonProblem}, or why. */
export interface JsonProblem {
  /** Path below the value, e.g. `a.0.b` (empty for the value itself). */
  path: string;
  message: string;
}

/**
 * Checks a caller's JSON value before anything recursive touches it: nesting at most `maxDepth`
 * levels, at most `maxKeys` object keys and array items in all, strings and keys well-formed
 * (no lone surrogates) and without NUL characters. Iterative, and stops at the first problem.
 */
export function jsonProblem(value: unknown, limits: { maxDepth: number; maxKeys: number }): JsonProblem | null {
  const stack: Array<{ v: unknown; depth: number; path: string }> = [{ v: value, depth: 0, path: '' }];
  const join = (path: string, key: string | number) => (path === '' ? String(key) : `${path}.${key}`);
  const badText = (text: string) =>
    text.includes('\u0000')
      ? 'expected no NUL (\\u0000) characters'
      : !isWellFormed(text)
        ? 'expected well-formed Unicode text (no lone surrogates such as \\ud800)'
        : null;
  let keys = 0;
  while (stack.length > 0) {
    const { v, depth, path } = stack.pop()!;
    if (typeof v === 'string') {
      const bad = badText(v);
      if (bad !== null) return { path, message: bad };
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= limits.maxDepth) return { path, message: `expected at most ${limits.maxDepth} levels of nesting` };
    const entries: Array<[string | number, unknown]> = Array.isArray(v) ? v.map((item, i) => [i, item]) : Object.entries(v);
    keys += entries.length;
    if (keys > limits.maxKeys) return { path, message: `expected at most ${limits.maxKeys} keys and array items in all` };
    for (const [key, item] of entries) {
      if (typeof key === 'string') {
        const bad = badText(key);
        // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is one of the characters replaced
        if (bad !== null) return { path: join(path, key.replace(/[\uD800-\uDFFF\u0000]/g, '\uFFFD')), message: `key: ${bad}` };
      }
      stack.push({ v: item, depth: depth + 1, path: join(path, key) });
    }
  }
  return null;
}
