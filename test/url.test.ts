import { domainToASCII } from 'node:url';
import { describe, expect, test } from 'vitest';
import { compileGlob, homographReason, linkFilter, normalizeUrl, registrableDomain, scopeMatcher } from '../src/url.js';

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

  test.each(['example.com', 'xn--bcher-kva.example', domainToASCII('пример.рф'), domainToASCII('ελληνικά.gr'), domainToASCII('例え.jp'), domainToASCII('münchen.de'), domainToASCII('москва.com')])(
    '%s passes',
    (host) => {
      expect(homographReason(host)).toBeNull();
    },
  );
});

