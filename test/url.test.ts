import { domainToASCII } from 'node:url';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { compileGlob } from '../src/crawl/glob.js';
import { homographReason, linkFilter, normalizeUrl, registrableDomain, scopeMatcher } from '../src/crawl/url.js';

describe('normalizeUrl()', () => {
  test.each([
    ['HTTP://Example.COM:80/a/./b/../c?x=1#frag', 'http://example.com/a/c?x=1'],
    ['https://example.com:443/', 'https://example.com/'],
    ['https://example.com:8443', 'https://example.com:8443/'],
    ['http://user:pass@example.com/p', 'http://example.com/p'],
    ['http://example.com/p?', 'http://example.com/p'],
    ['http://bücher.example/', 'http://xn--bcher-kva.example/'],
    ['http://[::1]:8080/x', 'http://[::1]:8080/x'],
  ])('normalises %s', (input, expected) => {
    expect(normalizeUrl(input)).toBe(expected);
    expect(normalizeUrl(expected)).toBe(expected);
  });

  test('resolves relative forms against a base', () => {
    const base = 'http://example.com/dir/page.html';
    expect(normalizeUrl('other', base)).toBe('http://example.com/dir/other');
    expect(normalizeUrl('../up', base)).toBe('http://example.com/up');
    expect(normalizeUrl('//cdn.example.com/x', base)).toBe('http://cdn.example.com/x');
    expect(normalizeUrl('?q=1', base)).toBe('http://example.com/dir/page.html?q=1');
    expect(normalizeUrl('#top', base)).toBe('http://example.com/dir/page.html');
  });

  test.each(['mailto:a@b.c', 'javascript:alert(1)', 'ftp://example.com/', 'file:///etc/passwd', 'data:text/html,hi', 'not a url', '', 'http://'])(
    'refuses %j without throwing',
    (input) => {
      expect(normalizeUrl(input)).toBeNull();
    },
  );

  test('refuses URLs longer than the cap', () => {
    expect(normalizeUrl(`http://example.com/${'a'.repeat(3000)}`)).toBeNull();
  });
});

describe('scope', () => {
  const url = (s: string) => new URL(s);
  test('same-origin compares scheme, host and port', () => {
    const inScope = scopeMatcher('https://example.com/', 'same-origin');
    expect(inScope(url('https://example.com/a'))).toBe(true);
    expect(inScope(url('http://example.com/a'))).toBe(false);
    expect(inScope(url('https://example.com:8443/a'))).toBe(false);
  });

  test('same-hostname ignores scheme and port but not subdomains', () => {
    const inScope = scopeMatcher('https://example.com/', 'same-hostname');
    expect(inScope(url('http://example.com:8080/a'))).toBe(true);
    expect(inScope(url('https://www.example.com/a'))).toBe(false);
  });

  test('same-domain uses the registrable domain from the public suffix list', () => {
    const inScope = scopeMatcher('https://www.example.co.uk/', 'same-domain');
    expect(inScope(url('https://blog.example.co.uk/x'))).toBe(true);
    expect(inScope(url('https://other.co.uk/x'))).toBe(false);
    expect(registrableDomain('a.b.example.com')).toBe('example.com');
    expect(registrableDomain('127.0.0.1')).toBe('127.0.0.1');
  });

  test('any accepts every http(s) URL', () => {
    expect(scopeMatcher('https://example.com/', 'any')(url('https://elsewhere.org/'))).toBe(true);
  });
});

describe('globs', () => {
  test('* stays inside a path segment, ** crosses them, / globs match the path', () => {
    const u = (s: string) => new URL(s);
    expect(compileGlob('https://example.com/blog/*')(u('https://example.com/blog/post'))).toBe(true);
    expect(compileGlob('https://example.com/blog/*')(u('https://example.com/blog/a/b'))).toBe(false);
    expect(compileGlob('https://example.com/blog/**')(u('https://example.com/blog/a/b'))).toBe(true);
    expect(compileGlob('/docs/**')(u('https://any.host/docs/x/y?z=1'))).toBe(true);
    expect(compileGlob('/docs/?')(u('https://any.host/docs/a'))).toBe(true);
    expect(compileGlob('**.pdf')(u('https://any.host/a/b.pdf'))).toBe(true);
    expect(compileGlob('/a+b(c)')(u('https://x/a+b(c)'))).toBe(true);
  });

  test('linkFilter applies scope, then include, then exclude', () => {
    const follow = linkFilter({ startUrl: 'https://example.com/', scope: 'same-hostname', include: ['/docs/**'], exclude: ['**/private/**'] });
    const f = (s: string) => follow(new URL(s));
    expect(f('https://example.com/docs/a')).toBe(true);
    expect(f('https://example.com/blog/a')).toBe(false);
    expect(f('https://example.com/docs/private/a')).toBe(false);
    expect(f('https://other.com/docs/a')).toBe(false);
  });

  test('runs of stars: two or more are **, and ** next to * is still **', () => {
    const u = (s: string) => new URL(s);
    expect(compileGlob('/a***b')(u('https://x/a/c/b'))).toBe(true);
    expect(compileGlob('/a*b')(u('https://x/a/c/b'))).toBe(false);
    expect(compileGlob('*')(u('https://x/'))).toBe(false);
    expect(compileGlob('**')(u('https://x/'))).toBe(true);
    expect(compileGlob('/?*?')(u('https://x/ab'))).toBe(true);
    expect(compileGlob('/?*?')(u('https://x/a'))).toBe(false);
    expect(compileGlob('/?*?')(u('https://x/a/b'))).toBe(false);
    expect(compileGlob('/*?x=1')(u('https://x/ab?x=1'))).toBe(true);
    expect(compileGlob('/é')(u('https://x/é'))).toBe(false); // the path is percent-encoded
    expect(compileGlob('/%C3%A9')(u('https://x/é'))).toBe(true);
  });

  /** The RegExp translation compileGlob used to make (exponential on some globs): the reference. */
  function regexGlob(glob: string): RegExp {
    let source = '';
    for (let i = 0; i < glob.length; i++) {
      const ch = glob[i]!;
      if (ch === '*') {
        if (glob[i + 1] === '*') {
          source += '.*';
          i++;
        } else {
          source += '[^/]*';
        }
      } else if (ch === '?') {
        source += '[^/]';
      } else {
        source += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
    }
    return new RegExp(`^${source}$`);
  }
  const agreesWithRegex = (glob: string, url: URL) => {
    const text = glob.startsWith('/') ? url.pathname + url.search : url.href;
    expect(compileGlob(glob)(url), `${glob} against ${text}`).toBe(regexGlob(glob).test(text));
  };

  test('compileGlob matches exactly what the old RegExp translation matched (property)', () => {
    // Small globs and URLs, where the backtracking RegExp is still quick.
    const token = fc.constantFrom('a', 'b', '/', '.', '-', '?', '*', '*', '**', '***', '+', '(', '[', '$', '%41', 'é');
    const glob = fc
      .tuple(fc.constantFrom('/', '', 'https://h.test/', '**', 'http'), fc.array(token, { maxLength: 8 }))
      .map(([head, parts]) => head + parts.join(''));
    const path = fc.array(fc.constantFrom('a', 'b', '/', '.', '-', '?', '=', '&', '%41', '(', '+', 'é', '$'), { maxLength: 14 }).map((parts) => parts.join(''));
    const origin = fc.constantFrom('https://h.test/', 'http://h.test:8080/', 'https://a.b.h.test/');
    fc.assert(
      fc.property(glob, origin, path, (g, o, p) => agreesWithRegex(g, new URL(o + p))),
      { numRuns: 3000 },
    );
  });

  test('compileGlob matches exactly what the old RegExp translation matched, on URLs made to fit the glob (property)', () => {
    // Each token gives a piece of glob and a piece of path it matches; then maybe one character
    // of the path changes. Most cases match, and the near misses probe the edges. Up to 70
    // tokens (the automaton then needs more than one 32-bit word) but at most 4 of them stars,
    // which keeps the RegExp quick.
    type Piece = readonly [string, fc.Arbitrary<string>];
    const plain = fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom('a', 'b', '/', '-', '.').map((c): Piece => [c, fc.constant(c)]) },
      { weight: 2, arbitrary: fc.constant<Piece>(['?', fc.constantFrom('a', 'b', '-')]) },
    );
    const star = fc.constantFrom<Piece>(['*', fc.stringMatching(/^[ab-]{0,3}$/)], ['**', fc.stringMatching(/^[ab/-]{0,4}$/)]);
    const pair = fc
      .tuple(fc.array(plain, { minLength: 1, maxLength: 70, size: 'max' }), fc.array(fc.tuple(fc.nat(), star), { maxLength: 4 }))
      .map(([pieces, stars]) => stars.reduce((all, [at, s]) => all.toSpliced(at % (all.length + 1), 0, s), pieces))
      .chain((pieces) =>
        fc.tuple(
          fc.constant(pieces.map(([g]) => g).join('')),
          fc.tuple(...pieces.map(([, text]) => text)).map((texts) => texts.join('')),
        ),
      )
      .chain(([g, p]) =>
        fc.tuple(
          fc.constant(`/${g}`),
          fc.oneof(
            fc.constant(p),
            fc.tuple(fc.nat(p.length), fc.constantFrom('a', 'b', '/', '-')).map(([i, c]) => p.slice(0, i) + c + p.slice(i + 1)),
          ),
        ),
      );
    fc.assert(
      fc.property(pair, ([g, p]) => agreesWithRegex(g, new URL(`https://h.test/${p}`))),
      { numRuns: 3000 },
    );
  });
});

describe('homographReason()', () => {
  test.each([
    ['xn--pypal-4ve.com', /"pаypal\.com" \(xn--pypal-4ve\.com\) mixes Latin and Cyrillic letters/],
    ['xn--80ak6aa92e.com', /Cyrillic letters that look like the Latin "apple"/],
    ['www.xn--80ak6aa92e.com', /look like the Latin "apple"/],
    [domainToASCII('gοοgle.com'), /mixes Latin and Greek letters/],
    [domainToASCII('раураl.net'), /mixes Latin and Cyrillic|look like the Latin "paypal"/],
  ])('%s is refused', (host, message) => {
    expect(homographReason(host)).toMatch(message);
  });

  test.each([
    'example.com',
    'xn--bcher-kva.example',
    domainToASCII('пример.рф'),
    domainToASCII('ελληνικά.gr'),
    domainToASCII('例え.jp'),
    domainToASCII('münchen.de'),
    domainToASCII('москва.com'),
  ])('%s passes', (host) => {
    expect(homographReason(host)).toBeNull();
  });
});
