import { parseDocument } from 'htmlparser2';
import { describe, expect, test } from 'vitest';
import { extractPage } from '../src/extract.js';

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
