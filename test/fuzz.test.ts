import fc from 'fast-check';
import { parseDocument } from 'htmlparser2';
import { describe, expect, test } from 'vitest';
import { extractPage } from '../src/crawl/extract.js';
import { parseRobots, robotsAllows } from '../src/crawl/robots.js';
import { normalizeUrl } from '../src/crawl/url.js';

const RUNS = { numRuns: 500 };

/** Strings that look like URLs and hrefs: schemes, hosts, ports, paths, dots, escapes, junk. */
const urlish = fc
  .tuple(
    fc.constantFrom('http://', 'https://', 'HTTP://', 'ftp://', 'mailto:', 'javascript:', '//', '', 'data:', 'http:/', 'https:///'),
    fc.constantFrom('example.com', 'EXAMPLE.com', 'bücher.de', '127.0.0.1', '[::1]', 'a.b.c', 'user:pw@host', '', 'xn--bcher-kva.de', '%41.com'),
    fc.constantFrom('', ':80', ':443', ':8080', ':0', ':99999', ':'),
    fc.array(fc.constantFrom('/', 'a', '..', '.', '%2F', '%zz', ' ', '#', '?', '&', '=', 'é', '\\', '//', '\u0000', '\t'), { maxLength: 12 }),
  )
  .map(([scheme, host, port, path]) => `${scheme}${host}${port}${path.join('')}`);
const anyHref = fc.oneof(urlish, fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 40 }));

describe('URL normalisation (property)', () => {
  test('never throws, yields only http(s) URLs, and is idempotent', () => {
    fc.assert(
      fc.property(anyHref, fc.constantFrom(undefined, 'http://example.com/dir/page', 'https://x.test:8443/a?b#c'), (href, base) => {
        const out = normalizeUrl(href, base);
        if (out === null) return;
        const parsed = new URL(out);
        expect(['http:', 'https:']).toContain(parsed.protocol);
        expect(parsed.hash).toBe('');
        expect(parsed.username + parsed.password).toBe('');
        expect(out.length).toBeLessThanOrEqual(2048);
        expect(normalizeUrl(out)).toBe(out);
      }),
      RUNS,
    );
  });
});

describe('robots.txt matcher (property)', () => {
  const segment = fc.constantFrom('a', 'b', 'shop', 'x.pdf', '%7E', 'é', '', '?', '=', '$');
  const path = fc.array(segment, { maxLength: 6 }).map((parts) => `/${parts.join('/')}`);
  const pattern = fc
    .array(fc.oneof(segment, fc.constant('*')), { minLength: 1, maxLength: 5 })
    .chain((parts) => fc.boolean().map((anchored) => `/${parts.join('/')}${anchored ? '$' : ''}`));

  test('never throws on arbitrary robots.txt text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), path, (text, p) => {
        const parsed = parseRobots(text, 'crawl-engine/1');
        expect(typeof robotsAllows(parsed.rules, p).allowed).toBe('boolean');
      }),
      RUNS,
    );
  });

  test('a lone Disallow blocks exactly what it matches, and adding an equal Allow always allows', () => {
    fc.assert(
      fc.property(pattern, path, (pat, p) => {
        const disallowOnly = parseRobots(`User-agent: *\nDisallow: ${pat}`, 'x');
        const matches = robotsAllows(disallowOnly.rules, p);
        expect(matches.allowed).toBe(matches.rule === null);
        const both = parseRobots(`User-agent: *\nDisallow: ${pat}\nAllow: ${pat}`, 'x');
        expect(robotsAllows(both.rules, p).allowed).toBe(true);
      }),
      RUNS,
    );
  });

  test('a longer matching rule always wins over a shorter one', () => {
    // Paths without the pattern metacharacters, so that a path used as a pattern matches itself.
    const literal = path.filter((p) => !p.includes('$') && !p.includes('*'));
    fc.assert(
      fc.property(literal, fc.boolean(), (p, allowLonger) => {
        const shorter = '/';
        const longer = p.length > 1 ? p : '/a';
        const text = `User-agent: *\n${allowLonger ? 'Disallow' : 'Allow'}: ${shorter}\n${allowLonger ? 'Allow' : 'Disallow'}: ${longer}`;
        const verdict = robotsAllows(parseRobots(text, 'x').rules, longer);
        expect(verdict.allowed).toBe(allowLonger);
      }),
      RUNS,
    );
  });
});

describe('HTML extractor (property)', () => {
  const tag = fc.constantFrom(
    '<a href="',
    '">',
    '<a href=',
    '</a>',
    '<base href="',
    '<title>',
    '</title>',
    '<p>',
    '</p>',
    '<meta name="description" content="',
    '<link rel="canonical" href="',
    '<script>',
    '</script>',
    '<!--',
    '-->',
    '<',
    '>',
    '"',
    "'",
    '&amp;',
    '&#x0;',
    '<svg>',
    '<![CDATA[',
  );
  const html = fc.array(fc.oneof(tag, anyHref, fc.string({ maxLength: 10 })), { maxLength: 60 }).map((parts) => parts.join(''));

  test('never throws; links are distinct http(s) URLs within the cap; counts are sane', () => {
    fc.assert(
      fc.property(html, fc.integer({ min: 1, max: 20 }), (doc, cap) => {
        const got = extractPage(parseDocument(doc), 'http://example.com/dir/page', cap);
        const hrefs = got.links.map((l) => l.href);
        expect(new Set(hrefs).size).toBe(hrefs.length);
        expect(hrefs.length).toBeLessThanOrEqual(cap);
        for (const href of hrefs) expect(['http:', 'https:']).toContain(new URL(href).protocol);
        expect(Number.isInteger(got.wordCount) && got.wordCount >= 0).toBe(true);
        if (got.canonical !== null) expect(normalizeUrl(got.canonical)).toBe(got.canonical);
      }),
      RUNS,
    );
  });
});
