import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { parseRobots, productToken, robotsAllows } from '../src/crawl/robots.js';

const UA = 'crawl-engine/0.1 (+https://www.npmjs.com/package/crawl-engine)';
const allows = (text: string, path: string, ua = UA) => robotsAllows(parseRobots(text, ua).rules, path).allowed;

describe('robots.txt', () => {
  test('the product token is the user agent up to its first slash or space', () => {
    expect(productToken(UA)).toBe('crawl-engine');
    expect(productToken('MyBot')).toBe('mybot');
  });

  test('the group naming our product token wins over *, case-insensitively; groups for us are merged', () => {
    const text = `User-agent: *\nDisallow: /\n\nUser-agent: Crawl-Engine\nDisallow: /private\n\nUser-agent: other\nUser-agent: crawl-engine\nDisallow: /secret`;
    expect(allows(text, '/public')).toBe(true);
    expect(allows(text, '/private/x')).toBe(false);
    expect(allows(text, '/secret')).toBe(false);
    expect(allows(text, '/public', 'SomeoneElse/1.0')).toBe(false);
  });

  test('no matching group and no * group allows everything; an empty Disallow allows', () => {
    expect(allows('User-agent: other\nDisallow: /', '/x')).toBe(true);
    expect(allows('User-agent: *\nDisallow:', '/x')).toBe(true);
    expect(allows('', '/x')).toBe(true);
  });

  test('the longest match wins and a tie goes to Allow', () => {
    const text = 'User-agent: *\nDisallow: /shop\nAllow: /shop/public\nDisallow: /shop/public/secret\nAllow: /tie\nDisallow: /tie';
    expect(allows(text, '/shop/cart')).toBe(false);
    expect(allows(text, '/shop/public/item')).toBe(true);
    expect(allows(text, '/shop/public/secret/1')).toBe(false);
    expect(allows(text, '/tie')).toBe(true);
  });

  test('* matches any characters and $ anchors the end', () => {
    const text = 'User-agent: *\nDisallow: /*.pdf$\nDisallow: /search*q=\nAllow: /files/*.pdf$';
    expect(allows(text, '/docs/a.pdf')).toBe(false);
    expect(allows(text, '/docs/a.pdf?x=1')).toBe(true);
    expect(allows(text, '/files/a.pdf')).toBe(true);
    expect(allows(text, '/search?page=2&q=x')).toBe(false);
    expect(allows(text, '/searching')).toBe(true);
  });

  test('percent-encoding is compared normalised, and /robots.txt is always allowed', () => {
    const text = 'User-agent: *\nDisallow: /caf%c3%a9\nDisallow: /%7Euser\nDisallow: /robots.txt';
    expect(allows(text, '/caf%C3%A9/menu')).toBe(false);
    expect(allows(text, '/café/menu')).toBe(false);
    expect(allows(text, '/%7euser')).toBe(false);
    expect(allows(text, '/robots.txt')).toBe(true);
  });

  test('comments, odd spacing, CRLF and junk lines are tolerated; Crawl-delay is read in ms', () => {
    const text = '# hello\r\nUSER-AGENT :  *   # everyone\r\nDisallow:/a # no a\r\nnonsense line\r\nCrawl-delay: 1.5\r\nSitemap: https://x/s.xml';
    const parsed = parseRobots(text, UA);
    expect(parsed.crawlDelayMs).toBe(1500);
    expect(robotsAllows(parsed.rules, '/a/b').allowed).toBe(false);
    expect(parseRobots('User-agent: *\nCrawl-delay: soon', UA).crawlDelayMs).toBeNull();
  });

  test('rules before any User-agent line belong to no group', () => {
    expect(allows('Disallow: /\nUser-agent: *\nDisallow: /x', '/y')).toBe(true);
  });

  test('robots.txt groups: Sitemap, Crawl-delay and unknown lines between User-agent lines do not end the group (RFC 9309)', () => {
    for (const between of ['Sitemap: https://x/s.xml', 'Crawl-delay: 5', 'Foo: bar', 'Host: x', '# only a comment', 'not a rule']) {
      const text = `User-agent: BarBot\n${between}\nUser-agent: *\nDisallow: /`;
      expect(allows(text, '/x', 'BarBot/1.0'), between).toBe(false);
      expect(allows(text, '/x'), between).toBe(false);
    }
    // Our own product token, with the group named second
    expect(allows('User-agent: other\nSitemap: https://x/s.xml\nUser-agent: crawl-engine\nDisallow: /private', '/private/a')).toBe(false);
    // A Crawl-delay line among the User-agent lines applies to the whole group
    const delayed = parseRobots('User-agent: a\nCrawl-delay: 2\nUser-agent: b\nDisallow: /x', 'b/1.0');
    expect(delayed.crawlDelayMs).toBe(2000);
    expect(robotsAllows(delayed.rules, '/x').allowed).toBe(false);
  });

  test('robots.txt groups: an Allow or Disallow line, even an empty one, does end the run of User-agent lines', () => {
    expect(allows('User-agent: BarBot\nDisallow:\nUser-agent: *\nDisallow: /', '/x', 'BarBot/1.0')).toBe(true);
    expect(allows('User-agent: BarBot\nAllow: /\nUser-agent: *\nDisallow: /', '/x', 'BarBot/1.0')).toBe(true);
    expect(allows('User-agent: BarBot\nDisallow: /a\nSitemap: https://x/s.xml\nUser-agent: *\nDisallow: /', '/b', 'BarBot/1.0')).toBe(true);
  });

  test('robots.txt groups: a full or cut-off UTF-8 byte-order mark does not hide the first line', () => {
    const body = [...new TextEncoder().encode('User-agent: *\nDisallow: /')];
    for (const [name, bom] of [
      ['EF BB BF', [0xef, 0xbb, 0xbf]],
      ['EF BB', [0xef, 0xbb]],
      ['EF', [0xef]],
    ] as const) {
      const text = new TextDecoder().decode(Uint8Array.from([...bom, ...body]));
      expect(allows(text, '/x'), name).toBe(false);
      const kept = new TextDecoder('utf-8', { ignoreBOM: true }).decode(Uint8Array.from([...bom, ...body]));
      expect(allows(kept, '/x'), `${name}, kept by the decoder`).toBe(false);
    }
    expect(new TextDecoder().decode(Uint8Array.from([0xef, 0xbb, ...body])).startsWith('\ufffdUser-agent')).toBe(true);
    expect(allows('\ufeffUser-agent: *\nDisallow: /', '/x')).toBe(false);
    // Only at the very start: a U+FFFD elsewhere is left alone
    expect(allows('User-agent: *\n\ufffdDisallow: /', '/x')).toBe(true);
  });

  test('patterns match exactly what the old RegExp translation matched (property)', () => {
    /** The RegExp robots.txt patterns used to become (exponential on some patterns): the reference. */
    const regexOf = (pattern: string) => {
      const anchored = pattern.endsWith('$');
      const body = (anchored ? pattern.slice(0, -1) : pattern)
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*');
      return new RegExp(`^${body}${anchored ? '$' : ''}`);
    };
    const chars = ['a', 'b', '/', '.', '?', '=', '$', '(', '+'];
    const pattern = fc
      .tuple(fc.array(fc.constantFrom(...chars, '*', '*'), { maxLength: 10 }), fc.boolean())
      .map(([parts, anchored]) => `/${parts.join('')}${anchored ? '$' : ''}`);
    const path = fc.array(fc.constantFrom(...chars), { maxLength: 16 }).map((parts) => `/${parts.join('')}`);
    fc.assert(
      fc.property(pattern, path, (pat, p) => {
        const verdict = robotsAllows([{ allow: false, pattern: pat }], p);
        expect(verdict.allowed, `${pat} against ${p}`).toBe(p === '/robots.txt' || !regexOf(pat).test(p));
      }),
      { numRuns: 5000 },
    );
  });
});
