/**
 * URL globs for a job's include and exclude lists, matched without a regular expression and
 * without backtracking (globs come from API callers, URLs from crawled pages).
 */
/**
 * Compiles a URL glob. `**` matches anything, `*` anything but `/`, `?` one character other
 * than `/`. A glob starting with `/` is matched against the path and query; any other glob
 * against the whole URL. The whole string must match.
 *
 * No regular expression: globs come from API callers and URLs from crawled pages, and a
 * backtracking engine takes exponential time on globs like `/**a**a**a…**b`. This matcher never
 * backtracks: it costs at most O(URL length × ⌈glob length / 32⌉) (see {@link GlobAutomaton}).
 */
export function compileGlob(glob: string): (url: URL) => boolean {
  const match = globMatcher(glob);
  return glob.startsWith('/') ? (url) => match(url.pathname + url.search) : (url) => match(url.href);
}

const SLASH = 0x2f;

/**
 * A whole-string matcher for a glob. The glob is cut at every `**` (a run of two or more stars:
 * `**` followed by `*` is still "anything") into segments without `**`. Since `**` matches
 * anything, taking the match of each middle segment that ends first is never worse than any
 * other, so one left-to-right pass decides: the first segment must match at the start, each
 * middle one is searched for from where the previous one ended, the last must end the string.
 */
function globMatcher(glob: string): (text: string) => boolean {
  const segments: GlobSegment[] = [];
  let tokens: number[] = [];
  let loops: boolean[] = [false];
  for (let i = 0; i < glob.length; i++) {
    const code = glob.charCodeAt(i);
    if (code === 0x2a /* * */) {
      let end = i + 1;
      while (glob.charCodeAt(end) === 0x2a) end++;
      if (end - i === 1) {
        loops[tokens.length] = true;
      } else {
        segments.push(new GlobSegment(tokens, loops));
        tokens = [];
        loops = [false];
      }
      i = end - 1;
    } else {
      tokens.push(code === 0x3f /* ? */ ? -1 : code);
      loops.push(false);
    }
  }
  segments.push(new GlobSegment(tokens, loops));

  const first = segments[0]!;
  const last = segments[segments.length - 1]!;
  if (segments.length === 1 && first.literal !== null) return (text) => text === first.literal;
  if (segments.length === 2 && first.literal !== null && last.size === 0) return (text) => text.startsWith(first.literal!);
  if (segments.length === 2 && first.size === 0 && last.literal !== null) return (text) => text.endsWith(last.literal!);
  const middle = segments.slice(1, -1);
  const minLength = segments.reduce((sum, s) => sum + s.size, 0);
  // The glob's runs of literal characters appear in the string in order wherever it matches, so
  // do its four longest: a check of four native `indexOf` calls that turns most strings away
  // before an automaton runs on them. It starts where the first segment ends, since that one is
  // settled first, at the start of the string.
  const rest = segments.length === 1 ? glob : glob.slice(glob.indexOf('**'));
  const runs = segments.every((s) => s.literal !== null) ? [] : (rest.match(/[^*?]+/g) ?? []);
  const longest = new Set([...runs.keys()].sort((a, b) => runs[b]!.length - runs[a]!.length).slice(0, 4));
  const chunks = runs.filter((_, i) => longest.has(i));
  const chunksFrom = (text: string, at: number): boolean => {
    for (let i = 0; i < chunks.length; i++) {
      const found = text.indexOf(chunks[i]!, at);
      if (found < 0) return false;
      at = found + chunks[i]!.length;
    }
    return true;
  };
  return (text) => {
    if (text.length < minLength) return false;
    if (segments.length === 1) return chunksFrom(text, 0) && first.matchWhole(text);
    let at = first.matchStart(text);
    if (at < 0 || !chunksFrom(text, at)) return false;
    for (let i = 0; i < middle.length && at >= 0; i++) at = middle[i]!.search(text, at);
    return at >= 0 && last.matchEnd(text, at);
  };
}

/** A glob without `**`: its tokens (literal characters and `?`) and where its `*`s are. */
class GlobSegment {
  /** Tokens, i.e. characters one match consumes when no `*` takes any. */
  readonly size: number;
  /** The tokens as a string when the segment has neither `*` nor `?`, else null. */
  readonly literal: string | null;
  /** No `*`: a match is exactly `size` characters long. */
  private readonly fixed: boolean;
  /** Char code of each token, -1 for `?`. */
  private readonly tokens: Int32Array;
  /** Null for a literal segment, which `startsWith`, `indexOf` and `endsWith` match. */
  private readonly automaton: GlobAutomaton | null;

  constructor(tokens: readonly number[], loops: readonly boolean[]) {
    this.size = tokens.length;
    this.tokens = Int32Array.from(tokens);
    this.fixed = !loops.includes(true);
    this.literal = this.fixed && !tokens.includes(-1) ? String.fromCharCode(...tokens) : null;
    this.automaton = this.literal === null ? new GlobAutomaton(tokens, loops) : null;
  }

  /** Whether the segment matches `text[at, at + size)` (fixed segments only). */
  private matchesAt(text: string, at: number): boolean {
    if (this.literal !== null) return text.startsWith(this.literal, at);
    for (let i = 0; i < this.size; i++) {
      const token = this.tokens[i]!;
      const code = text.charCodeAt(at + i);
      if (token === -1 ? code === SLASH : code !== token) return false;
    }
    return true;
  }

  /** Whether the segment matches all of `text`. */
  matchWhole(text: string): boolean {
    if (this.fixed) return text.length === this.size && this.matchesAt(text, 0);
    return this.automaton!.run(text, 0, true, false) >= 0;
  }

  /** The end of the shortest match at the start of `text`, or -1. */
  matchStart(text: string): number {
    if (this.fixed) return this.size <= text.length && this.matchesAt(text, 0) ? this.size : -1;
    return this.automaton!.run(text, 0, true, true);
  }

  /** The smallest end of a match starting at or after `from`, or -1. */
  search(text: string, from: number): number {
    if (this.literal !== null) {
      const at = text.indexOf(this.literal, from);
      return at < 0 ? -1 : at + this.size;
    }
    return this.automaton!.run(text, from, false, true);
  }

  /** Whether a match starting at or after `from` ends the string. */
  matchEnd(text: string, from: number): boolean {
    if (this.fixed) return text.length - this.size >= from && this.matchesAt(text, text.length - this.size);
    return this.automaton!.run(text, from, false, false) >= 0;
  }
}

/**
 * A bit-parallel (Shift-And) simulation of the NFA of a `**`-free glob: state `i` means "the
 * first `i` tokens matched" and is bit `i` of the state vector; a `*` between tokens `i` and
 * `i + 1` is a self-loop on state `i` for any character but `/`. A character costs O(words) word
 * operations, words = ⌈(tokens + 1) / 32⌉ (at most 32 for a 1000-character glob), and nothing is
 * ever retried, so a run is linear in the length of the string.
 */
class GlobAutomaton {
  private readonly size: number;
  /** 32-bit words per state vector. */
  private readonly words: number;
  /** Per row, `words` masks: the states a character of that row enters by a token. */
  private readonly rows: Int32Array;
  /** Row of each ASCII character; row 0 is every character but `/` that no token names. */
  private readonly asciiRows: Uint16Array;
  private readonly otherRows: Map<number, number>;
  /** The states with a `*` self-loop, then `words` zeros: the loops a `/` may take. */
  private readonly loops: Int32Array;
  /** Scratch state vector (matching is synchronous, so one per automaton suffices). */
  private readonly state: Int32Array;

  constructor(tokens: readonly number[], loops: readonly boolean[]) {
    this.size = tokens.length;
    const words = (this.size >>> 5) + 1;
    this.words = words;
    this.loops = new Int32Array(2 * words);
    loops.forEach((loop, i) => {
      if (loop) this.loops[i >>> 5]! |= 1 << (i & 31);
    });
    this.state = new Int32Array(words);
    const codes = [...new Set([SLASH, ...tokens.filter((t) => t >= 0)])];
    this.rows = new Int32Array((codes.length + 1) * words);
    this.asciiRows = new Uint16Array(128);
    this.otherRows = new Map();
    codes.forEach((code, i) => {
      if (code < 128) this.asciiRows[code] = i + 1;
      else this.otherRows.set(code, i + 1);
    });
    const any = new Int32Array(words); // the states `?` enters
    tokens.forEach((token, i) => {
      const word = (i + 1) >>> 5;
      const bit = 1 << ((i + 1) & 31);
      if (token >= 0) this.rows[this.rowOf(token) * words + word]! |= bit;
      else any[word]! |= bit;
    });
    const slashRow = this.rowOf(SLASH);
    for (let row = 0; row <= codes.length; row++) {
      if (row === slashRow) continue;
      for (let w = 0; w < words; w++) this.rows[row * words + w]! |= any[w]!;
    }
  }

  private rowOf(code: number): number {
    return code < 128 ? this.asciiRows[code]! : (this.otherRows.get(code) ?? 0);
  }

  /**
   * Runs the automaton over `text` from `from`. `anchored`: only matches starting at `from`; else
   * matches starting anywhere at or after it (state 0 is re-entered before every character). With
   * `first`, returns where the first match ends; without, `text.length` if a match ends there; -1
   * when there is none.
   */
  run(text: string, from: number, anchored: boolean, first: boolean): number {
    const n = text.length;
    const words = this.words;
    const finalWord = this.size >>> 5;
    const finalBit = 1 << (this.size & 31);
    const { rows, asciiRows, otherRows, loops } = this;
    const restart = anchored ? 0 : 1;
    if (words === 1) {
      let state = 1;
      if (first && (state & finalBit) !== 0) return from;
      for (let i = from; i < n; i++) {
        const code = text.charCodeAt(i);
        const row = code < 128 ? asciiRows[code]! : (otherRows.get(code) ?? 0);
        state |= restart;
        state = ((state << 1) & rows[row]!) | (state & loops[code === SLASH ? 1 : 0]!);
        if (state === 0 && anchored) return -1;
        if (first && (state & finalBit) !== 0) return i + 1;
      }
      return !first && (state & finalBit) !== 0 ? n : -1;
    }
    const state = this.state;
    state.fill(0);
    state[0] = 1;
    if (first && (state[finalWord]! & finalBit) !== 0) return from;
    // Only words `low` to `high` may be nonzero; a step carries at most one bit into the next word.
    let low = 0;
    let high = 0;
    for (let i = from; i < n; i++) {
      const code = text.charCodeAt(i);
      const base = (code < 128 ? asciiRows[code]! : (otherRows.get(code) ?? 0)) * words;
      const loopBase = code === SLASH ? words : 0;
      const end = high + 1 < words ? high + 1 : words - 1;
      if (restart !== 0) {
        state[0]! |= 1;
        low = 0;
      }
      let carry = 0;
      let any = 0;
      for (let w = low; w <= end; w++) {
        const word = state[w]!;
        const value = (((word << 1) | carry) & rows[base + w]!) | (word & loops[loopBase + w]!);
        carry = word >>> 31;
        state[w] = value;
        any |= value;
      }
      if (any === 0) {
        if (anchored) return -1;
        low = high = 0;
      } else {
        // Each step moves `high` up by at most one, so these loops are amortised O(1) a step.
        high = end;
        while (state[high] === 0) high--;
        while (state[low] === 0) low++;
      }
      if (first && (state[finalWord]! & finalBit) !== 0) return i + 1;
    }
    return !first && (state[finalWord]! & finalBit) !== 0 ? n : -1;
  }
}
