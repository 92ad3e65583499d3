import { describe, expect, test } from 'vitest';
import { parseRobots, productToken, robotsAllows } from '../src/robots.js';

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
});
