import { parseDocument } from 'htmlparser2';
import { describe, expect, test } from 'vitest';
import { extractPage, extractPageAsync } from '../src/crawl/extract.js';

const page = 'http://example.com/dir/page';
const extract = (html: string, url = page, max?: number) => {
  const got = extractPage(parseDocument(html), url, max);
  return { ...got, links: got.links.map((l) => l.href) };
};

describe('extractPage()', () => {
  test('reads title, description, canonical and word count', () => {
    const got = extract(`<!doctype html><html><head><title>  Hello
      World </title><meta name="Description" content=" A  page "><link rel="canonical" href="/canon"></head>
      <body><h1>One two</h1><p>three <b>fo</b>ur</p><script>var not = 'words here';</script><style>.x{}</style><p>five</p></body></html>`);
    expect(got.title).toBe('Hello World');
    expect(got.description).toBe('A page');
    expect(got.canonical).toBe('http://example.com/canon');
    expect(got.wordCount).toBe(5);
  });

  test('resolves links against <base href>, normalises and deduplicates them', () => {
    const got = extract(`<html><head><base href="https://cdn.example.com/root/"></head><body>
      <a href="a">a</a><a href="/b#x">b</a><a href="/b">b again</a><a href="HTTPS://CDN.example.com:443/root/a">a again</a>
      <area href="c"></body></html>`);
    expect(got.links).toEqual(['https://cdn.example.com/root/a', 'https://cdn.example.com/b', 'https://cdn.example.com/root/c']);
  });

  test('skips fragments, mailto:, javascript:, tel:, data:, empty and malformed hrefs without errors', () => {
    const got = extract(`<a href="#top">t</a><a href="mailto:x@y.z">m</a><a href="JavaScript:void(0)">j</a><a href="tel:1">t</a>
      <a href="data:text/html,x">d</a><a href="">e</a><a href="   ">s</a><a href="http://[bad">b</a><a>no href</a><a href="ok">ok</a>`);
    expect(got.links).toEqual(['http://example.com/dir/ok']);
  });

  test('ignores an invalid <base href> and uses the page URL', () => {
    expect(extract('<base href="http://[x"><a href="y">y</a>').links).toEqual(['http://example.com/dir/y']);
  });

  test('caps the links taken from one page', () => {
    const many = Array.from({ length: 50 }, (_, i) => `<a href="/l${i}">x</a>`).join('');
    expect(extract(many, page, 10).links).toHaveLength(10);
  });

  test('survives malformed HTML and empty documents', () => {
    expect(extract('<html><body><p>unclosed <div><a href="/z">z</a><b><i></b>')).toMatchObject({ links: ['http://example.com/z'], title: null });
    expect(extract('')).toEqual({ title: null, description: null, canonical: null, links: [], wordCount: 0 });
  });
});

describe('word count', () => {
  test('inline tags join a word, block tags split words on both sides', () => {
    expect(extract('<p>fo<b>ur</b> five</p>').wordCount).toBe(2);
    expect(extract('<div>a</div>b<p>c</p>d').wordCount).toBe(4);
    expect(extract('<p>x&nbsp;y\u2003z</p>').wordCount).toBe(3);
  });
});

describe('extractPageAsync()', () => {
  test('gives exactly what extractPage gives', async () => {
    const docs = [
      `<!doctype html><html><head><title> T </title><meta name="description" content="d"><link rel="canonical" href="/c"><base href="/b/"></head>
        <body><h1>One two</h1><p>three <b>fo</b>ur<a href="x">x</a></p><svg><title>not</title><a href="/svg">s</a></svg><p>five</p></body></html>`,
      '<head>head text<title>t</title><div>div in head</div></head><p>a</p>b<br>c<area href="/area">',
      `${'<div>'.repeat(600)}deep <a href="/deep">d</a>`,
      '',
    ];
    for (const html of docs) {
      const document = parseDocument(html);
      for (const max of [undefined, 1]) expect(await extractPageAsync(document, page, max)).toEqual(extractPage(document, page, max));
    }
  });

  test('counts words in a text of 20 million characters in slices, yielding to the event loop', async () => {
    const document = parseDocument(`<p>${'word '.repeat(4_000_000)}</p>`);
    let beats = 0;
    const timer = setInterval(() => beats++, 1);
    const got = await extractPageAsync(document, page, Infinity, 1);
    clearInterval(timer);
    expect(got.wordCount).toBe(4_000_000);
    expect(beats).toBeGreaterThan(0);
  });
});

describe('bounded values', () => {
  test('reads at most 64k characters of a title or description and skips hrefs longer than that', () => {
    const long = 'x'.repeat(70_000);
    const got = extract(
      `<title>${' '.repeat(65_536)}late</title><meta name="description" content="${'d '.repeat(40_000)}"><a href="/${long}">l</a><a href="/ok">ok</a><link rel="canonical" href="/${long}">`,
    );
    expect(got.title).toBeNull();
    expect(got.description).toBe('d '.repeat(500)); // kept to 1000 characters
    expect(got.links).toEqual(['http://example.com/ok']);
    expect(got.canonical).toBeNull();
  });
});

describe('outlinks (the links format)', () => {
  const sameHost = (url: URL) => url.hostname === 'example.com';
  const outlinks = (html: string) => extractPage(parseDocument(html), page, Infinity, { outlinks: sameHost });

  test('each link with its absolute URL, collapsed anchor text, rel and whether it is internal, in document order', () => {
    const got = outlinks(`<nav><a href="/">  Home
      page </a></nav><p>Read <a href="https://other.example/x#frag" rel=" nofollow  noopener ">the <b>other</b><div>site</div></a>.</p>
      <a href="rel/path"><img src="logo.png" alt="Logo"></a><map><area href="/area" alt=" An  area "></map><a href="mailto:a@b.c">mail</a><a href="#top">top</a>`);
    expect(got.outlinks).toEqual([
      { url: 'http://example.com/', text: 'Home page', rel: null, internal: true },
      { url: 'https://other.example/x', text: 'the other site', rel: 'nofollow noopener', internal: false },
      { url: 'http://example.com/dir/rel/path', text: 'Logo', rel: null, internal: true },
      { url: 'http://example.com/area', text: 'An area', rel: null, internal: true },
    ]);
    expect(got.outlinksTruncated).toBeUndefined();
    // The metadata is what it is without outlinks.
    const { outlinks: _o, ...rest } = got;
    expect(rest).toEqual(
      extractPage(
        parseDocument(`<nav><a href="/">  Home
      page </a></nav><p>Read <a href="https://other.example/x#frag" rel=" nofollow  noopener ">the <b>other</b><div>site</div></a>.</p>
      <a href="rel/path"><img src="logo.png" alt="Logo"></a><map><area href="/area" alt=" An  area "></map><a href="mailto:a@b.c">mail</a><a href="#top">top</a>`),
        page,
      ),
    );
  });

  test('keeps links to one URL with other text, drops exact repeats, and nothing is collected when not asked', () => {
    const html = '<a href="/a">A</a><a href="/a">A</a><a href="/a">again</a><a href="/a" rel="nofollow">A</a><a href="/b"></a>';
    expect(outlinks(html).outlinks?.map((l) => [l.url, l.text, l.rel])).toEqual([
      ['http://example.com/a', 'A', null],
      ['http://example.com/a', 'again', null],
      ['http://example.com/a', 'A', 'nofollow'],
      ['http://example.com/b', '', null],
    ]);
    expect(extractPage(parseDocument(html), page)).not.toHaveProperty('outlinks');
  });

  test('cuts anchor text at 500 characters and a page at 5,000 links, saying so', () => {
    const long = outlinks(`<a href="/long">${'word '.repeat(1000)}</a>`).outlinks![0]!;
    expect(long.text.length).toBeLessThanOrEqual(500);
    expect(long.text.startsWith('word word')).toBe(true);
    expect(long.text.endsWith(' ')).toBe(false);
    const many = outlinks(Array.from({ length: 6000 }, (_, i) => `<a href="/l${i}">${i}</a>`).join(''));
    expect(many.outlinks).toHaveLength(5000);
    expect(many.outlinks![4999]!.url).toBe('http://example.com/l4999');
    expect(many.outlinksTruncated).toBe(true);
    expect(many.links).toHaveLength(6000);
  });

  test('repairs text a database cannot store and gives the same in slices', async () => {
    const html = '<a href="/x">bad \ud800 and \u0000 text</a>';
    expect(outlinks(html).outlinks![0]!.text).toBe('bad \ufffd and \ufffd text');
    const document = parseDocument(`${'<div>'.repeat(300)}<a href="/deep">deep <i>text</i></a>${'<p><a href="/p">p</a></p>'.repeat(3000)}`);
    expect(await extractPageAsync(document, page, Infinity, 1, { outlinks: sameHost })).toEqual(extractPage(document, page, Infinity, { outlinks: sameHost }));
  });
});

test('outlinks of a page with 200,000 links are collected in slices, cut at 5,000', async () => {
  const document = parseDocument(Array.from({ length: 200_000 }, (_, i) => `<a href="/x${i}" rel="r">text ${i}</a>`).join(''));
  let beats = 0;
  const timer = setInterval(() => beats++, 1);
  const got = await extractPageAsync(document, page, 1000, 1, { outlinks: () => true });
  clearInterval(timer);
  expect(got.outlinks).toHaveLength(5000);
  expect(got.outlinks![4999]).toEqual({ url: 'http://example.com/x4999', text: 'text 4999', rel: 'r', internal: true });
  expect(got.outlinksTruncated).toBe(true);
  expect(got.links).toHaveLength(1000);
  expect(beats).toBeGreaterThan(0);
});
