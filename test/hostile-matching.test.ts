import { describe, expect, test } from 'vitest';
import { parseRobots, robotsAllows } from '../src/crawl/robots.js';
import { compileGlob } from '../src/crawl/glob.js';
import { linkFilter } from '../src/crawl/url.js';

/**
 * Globs and robots.txt patterns from hostile hands. A backtracking matcher takes exponential time
 * on these inputs and blocks the event loop for minutes or more, and a blocked test cannot be
 * timed out. So each test first grows its input (the pattern and the string together) from tiny
 * to full size in steps small enough that a backtracking matcher fails at a step that still
 * returns, within a second or so, instead of hanging the run at the full size.
 */

const UA = 'crawl-engine/0.1 (+https://www.npmjs.com/package/crawl-engine)';

/** The fastest of `rounds` timings of `calls` calls of `fn`, in ms per call (the least disturbed by other load). */
function msPerCall(fn: () => unknown, calls = 1, rounds = 3): number {
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    for (let i = 0; i < calls; i++) fn();
    best = Math.min(best, (performance.now() - started) / calls);
  }
  return best;
}

/** Runs `call(size)` for each size in turn and fails at the first one slower than `budgetMs`. */
function expectEachUnder(budgetMs: number, sizes: readonly number[], call: (size: number) => unknown): void {
  for (const size of sizes) {
    const ms = msPerCall(() => call(size));
    expect({ size, slow: ms > budgetMs }).toEqual({ size, slow: false });
  }
}

/** 1 to 12 one by one (a backtracking matcher on these inputs gets about 10× slower a step), then about ×1.5 a step up to `full`. */
function ramp(full: number): number[] {
  const sizes: number[] = [];
  for (let size = 1; size < full; size = size < 12 ? size + 1 : Math.ceil(size * 1.5)) sizes.push(size);
  return [...sizes, full];
}

describe('glob backtracking', () => {
  const hostileGlob = (stars: number) => `/${'**a'.repeat(stars)}**b`;
  const url = (path: string) => new URL(`https://example.com${path}`);
  /** `/` and then a: the path of the report is 60 characters long. */
  const pathOf = (length: number) => `/${'a'.repeat(length - 1)}`;

  test('glob backtracking: include /**a**a…**b (10 stars) against a 60-character path of a returns at once', () => {
    const follow = linkFilter({ startUrl: 'https://example.com/', scope: 'same-hostname', include: [hostileGlob(10)], exclude: [] });
    // The old RegExp takes some 50 ms at 26 characters, and about twice as long for each 2 more.
    expectEachUnder(50, [10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 35, 40, 50, 60], (length) => follow(url(pathOf(length))));
    expect(follow(url(pathOf(60)))).toBe(false);
    expect(follow(url(`${pathOf(59)}b`))).toBe(true);
    expect(follow(url(`${pathOf(59)}/b`))).toBe(true);
    expect(follow(url(`/${'a'.repeat(9)}b`))).toBe(false);
  });

  test('glob backtracking: 10× the stars and 10× the path costs no more than about 10× the time', () => {
    expectEachUnder(50, ramp(100), (stars) => compileGlob(hostileGlob(stars))(url(pathOf(6 * stars))));
    const small = compileGlob(hostileGlob(10));
    const large = compileGlob(hostileGlob(100));
    const smallUrl = url(pathOf(60));
    const largeUrl = url(pathOf(600));
    const smallMs = msPerCall(() => small(smallUrl), 2000, 5);
    const largeMs = msPerCall(() => large(largeUrl), 200, 5);
    console.log(
      `glob /**a…**b: ${(smallMs * 1000).toFixed(1)} µs (10 stars, 60 chars), ${(largeMs * 1000).toFixed(1)} µs (100 stars, 600 chars), ×${(largeMs / smallMs).toFixed(1)}`,
    );
    // Linear growth is ×10 and quadratic ×100; a backtracking matcher never gets this far.
    expect(largeMs / smallMs).toBeLessThan(40);
  });

  test('glob backtracking: the costliest 1000-character globs found stay under a few ms against a 2048-character URL', () => {
    const base = 'https://xy.test/';
    const fill = 2048 - base.length;
    const a = (n: number) => 'a'.repeat(Math.max(0, n));
    // Each keeps every literal run of its glob in the URL (so that no quick check turns it away)
    // and keeps as many automaton states alive as it can for the whole URL. `repeat` units make
    // the 1000 characters; a smaller `r` makes a smaller glob with a proportionally shorter path.
    const cases: [number, (r: number, fill: number) => [string, string]][] = [
      [497, (r, n) => [`/**${'a?'.repeat(r)}b**`, `${a(n - 2)}/b`]],
      [497, (r, n) => [`/**${'a*'.repeat(r)}b**`, `${a(n - 2)}/b`]],
      [499, (r, n) => [`/${'*a'.repeat(r)}b`, `${a(n - 2)}ba`]],
      [499, (r, n) => [`/${'?*'.repeat(r)}b`, `${a(n - 2)}/b`]],
      [332, (r, n) => [`/**${'a?*'.repeat(r)}b**`, `${a(n - 2)}/b`]],
      [332, (r, n) => [`**${'a?*'.repeat(r)}b`, `${a(n - 2)}ba`]],
      [492, (r, n) => [`${base}${'*a'.repeat(r)}b`, `${a(n - 2)}ba`]],
      [200, (r, n) => [`/${'**a*a'.repeat(r)}`, a(n)]],
      [332, (r, n) => [`/**${'a/*'.repeat(r)}b`, `${'a/'.repeat(Math.max(0, n / 2 - 1))}ba`]],
    ];
    let worst = 0;
    for (const [full, make] of cases) {
      const at = (r: number) => {
        const [glob, path] = make(r, 2 * Math.round((fill * r) / full / 2));
        return [compileGlob(glob), new URL(base + path)] as const;
      };
      expectEachUnder(50, ramp(full), (r) => {
        const [match, u] = at(r);
        return match(u);
      });
      const [match, u] = at(full);
      expect(make(full, fill)[0].length).toBeGreaterThanOrEqual(999);
      expect(u.href.length).toBe(2048);
      worst = Math.max(
        worst,
        msPerCall(() => match(u), 20, 5),
      );
    }
    console.log(`glob worst case found: ${(worst * 1000).toFixed(0)} µs for one 1000-character glob against one 2048-character URL`);
    expect(worst).toBeLessThan(5);
  });

  test('glob backtracking: 100 include globs of 1000 characters against 1000 URLs of 2048 characters take well under a few seconds', () => {
    let seed = 42;
    const random = () => {
      // mulberry32: a fixed sequence, so that the figure is comparable from run to run
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(weighted: readonly (readonly [T, number])[]): T => {
      let r = random() * weighted.reduce((sum, [, weight]) => sum + weight, 0);
      for (const [value, weight] of weighted) {
        r -= weight;
        if (r < 0) return value;
      }
      return weighted[weighted.length - 1]![0];
    };
    // Globs of wildcards and the URLs' most common characters, so that most literal runs occur.
    const globs = Array.from({ length: 100 }, () => {
      let glob = '/';
      while (glob.length < 1000)
        glob += pick([
          ['a', 30],
          ['?', 20],
          ['*', 20],
          ['**', 10],
          ['b', 10],
          ['/', 5],
          ['-', 5],
        ] as const);
      return glob.slice(0, 1000);
    });
    const base = 'https://example.com/';
    const paths = Array.from({ length: 1000 }, () => {
      let path = '';
      while (path.length < 2048 - base.length)
        path += pick([
          ['a', 60],
          ['b', 20],
          ['/', 10],
          ['-', 10],
        ] as const);
      return path;
    });
    // Cut-down globs against cut-down URLs first, so that a slow matcher fails early.
    expectEachUnder(
      200,
      ramp(1000).map((size) => Math.max(size, 4)),
      (size) => {
        const matchers = globs.map((glob) => compileGlob(glob.slice(0, size)));
        for (const path of paths.slice(0, 10)) {
          const u = new URL(base + path.slice(0, 2 * size));
          for (const match of matchers) match(u);
        }
      },
    );

    const urls = paths.map((path) => new URL(base + path));
    expect(urls.every((u) => u.href.length === 2048)).toBe(true);
    const matchers = globs.map(compileGlob);
    const started = performance.now();
    let matched = 0;
    for (const u of urls) for (const match of matchers) if (match(u)) matched++;
    const pairsMs = performance.now() - started;
    const follow = linkFilter({ startUrl: base, scope: 'same-hostname', include: globs, exclude: globs });
    const filterStarted = performance.now();
    const followed = urls.filter(follow).length;
    const filterMs = performance.now() - filterStarted;
    console.log(
      `glob throughput: 100 globs × 1000 URLs = 100000 pairs in ${pairsMs.toFixed(0)} ms (${matched} matched); linkFilter over the 1000 URLs with 100 include + 100 exclude globs: ${filterMs.toFixed(0)} ms (${followed} followed)`,
    );
    expect(pairsMs).toBeLessThan(3000);
    expect(filterMs).toBeLessThan(3000);
  });
});

describe('robots.txt backtracking', () => {
  const hostileRule = (stars: number, end = '') => `User-agent: *\nDisallow: /${'*a'.repeat(stars)}*b${end}`;
  const rulesOf = (stars: number, end = '') => parseRobots(hostileRule(stars, end), UA).rules;
  const pathOf = (length: number) => `/${'a'.repeat(length - 1)}`;

  test('robots.txt backtracking: Disallow: /*a*a*a*a*a*a*a*a*a*a*b against a 60-character path of a returns at once', () => {
    const rules = rulesOf(10);
    expect(rules[0]!.pattern).toBe('/*a*a*a*a*a*a*a*a*a*a*b');
    // The old RegExp takes some 50 ms at 26 characters, and about twice as long for each 2 more.
    expectEachUnder(50, [10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 35, 40, 50, 60], (length) => robotsAllows(rules, pathOf(length)));
    expect(robotsAllows(rules, pathOf(60)).allowed).toBe(true);
    expect(robotsAllows(rules, `${pathOf(60)}b`).allowed).toBe(false);
    expect(robotsAllows(rulesOf(10, '$'), `${pathOf(60)}b`).allowed).toBe(false);
    expect(robotsAllows(rulesOf(10, '$'), `${pathOf(60)}bc`).allowed).toBe(true);
  });

  test('robots.txt backtracking: 10× the stars and 10× the path costs no more than about 10× the time', () => {
    expectEachUnder(50, ramp(100), (stars) => robotsAllows(rulesOf(stars), pathOf(6 * stars)));
    const small = rulesOf(10);
    const large = rulesOf(100);
    const smallPath = pathOf(60);
    const largePath = pathOf(600);
    const smallMs = msPerCall(() => robotsAllows(small, smallPath), 2000, 5);
    const largeMs = msPerCall(() => robotsAllows(large, largePath), 200, 5);
    console.log(
      `robots.txt /*a…*b: ${(smallMs * 1000).toFixed(1)} µs (10 stars, 60 chars), ${(largeMs * 1000).toFixed(1)} µs (100 stars, 600 chars), ×${(largeMs / smallMs).toFixed(1)}`,
    );
    expect(largeMs / smallMs).toBeLessThan(40);
  });

  test('robots.txt backtracking: a 500 KiB rule of stars costs at most linear time in a 2048-character path', () => {
    const full = 250_000;
    expect(hostileRule(full).length).toBeGreaterThan(500_000);
    expectEachUnder(50, ramp(full), (stars) => {
      const length = Math.min(2048, 6 * stars);
      robotsAllows(rulesOf(stars), pathOf(length));
      robotsAllows(rulesOf(stars, '$'), `${pathOf(length - 1)}b`);
    });
    const rules = rulesOf(full);
    const anchored = rulesOf(full, '$');
    const path = pathOf(2048);
    const ms = msPerCall(() => [robotsAllows(rules, path), robotsAllows(anchored, path)], 20, 5);
    console.log(`robots.txt 500 KiB rules: ${(ms * 1000).toFixed(0)} µs for two of them against a 2048-character path`);
    expect(robotsAllows(rules, `${pathOf(2047)}b`).allowed).toBe(true); // 250 000 a's do not fit in it
    expect(ms).toBeLessThan(5);
  });
});
