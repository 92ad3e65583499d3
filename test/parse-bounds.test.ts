/**
 * Hostile markup must neither stall the process nor run without bound: htmlparser2 keeps its open
 * elements in an array that it `unshift`s and searches, so each tag used to cost O(depth), and a
 * megabyte of `<div>` held the event loop for tens of seconds. Each test here parses with a
 * heartbeat timer running and asserts the longest gap between beats; on the old code the parse is
 * one synchronous call, so the gap is the whole parse (and the test timeout only fires after it).
 * Over 300 lines in one file: the tests share parseWatched(), measure() and the ordinary and hostile pages built here.
 */
import { DomUtils, parseDocument } from 'htmlparser2';
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { extractPage, extractPageAsync } from '../src/crawl/extract.js';
import { loadCheerio, MAX_ATTRIBUTES, MAX_NESTING, MAX_NODES, nestingCapped, ParseLimitError, parseHtml } from '../src/crawl/parse.js';
import { yieldToLoop } from '../src/crawl/slices.js';
import { allResults, testEngine } from './helpers/engine.js';
import { expectNoStall, heartbeat, type Watched } from './helpers/heartbeat.js';
import { serve, type TestServer } from './helpers/server.js';

type Doc = Awaited<ReturnType<typeof parseHtml>>;
interface Node {
  type: string;
  name?: string;
  data?: string;
  attribs?: Record<string, string>;
  children?: Node[];
}

const HOSTILE_TIMEOUT_MS = 60_000;
const PAGE = 'http://example.com/dir/page';

/** Parses with a heartbeat; the document, or the ParseLimitError it failed with. */
async function parseWatched(html: string): Promise<Omit<Watched<unknown>, 'value'> & { doc: Doc | null; error: ParseLimitError | null }> {
  const { value, ...watched } = await heartbeat(async () => {
    try {
      return { doc: await parseHtml(html), error: null };
    } catch (error) {
      if (error instanceof ParseLimitError) return { doc: null, error };
      throw error;
    }
  });
  return { ...value, ...watched };
}

/** Deepest element nesting and the number of elements, without recursion. */
function measure(doc: Doc): { depth: number; elements: number } {
  let depth = 0;
  let elements = 0;
  const stack: Array<[Node, number]> = [[doc as unknown as Node, 0]];
  while (stack.length > 0) {
    const [node, level] = stack.pop()!;
    if (node.type === 'tag' || node.type === 'script' || node.type === 'style') {
      elements++;
      depth = Math.max(depth, level);
    }
    const next = node.type === 'root' ? level : level + 1;
    for (const child of node.children ?? []) stack.push([child, next]);
  }
  return { depth, elements };
}

/** Everything domhandler stores that a walk or a serializer reads, as one comparable string. */
function shape(node: Node): string[] {
  const parts: string[] = [];
  const stack: Node[] = [node];
  while (stack.length > 0) {
    const next = stack.pop()!;
    parts.push(JSON.stringify([next.type, next.name, next.attribs, next.data, next.children?.length]));
    for (let i = (next.children?.length ?? 0) - 1; i >= 0; i--) stack.push(next.children![i]!);
  }
  return parts;
}

const article = `<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Notes on   parsing &amp; crawling — a blog</title>
<meta name="description" content="How we   parse HTML.">
<link rel="canonical" href="https://blog.example.com/posts/parsing">
<link rel="stylesheet" href="/css/site.css?v=3">
<script type="application/ld+json">{"@context":"https://schema.org","@type":"BlogPosting","headline":"Notes <on> parsing"}</script>
<script>window.dataLayer = window.dataLayer || []; if (a < b && c > d) { document.write("<p>x</p>"); }</script>
<style>body > main { margin: 0 auto; } a[href^="http"]::after { content: "↗"; }</style>
</head>
<body class="post">
<!-- header -->
<header><nav aria-label="Main"><ul>
  <li><a href="/">Home</a></li><li><a href="/posts/">Posts</a></li><li><a href="/about" title='About "us"'>About</a></li>
</ul></nav></header>
<main><article>
<h1>Notes on parsing</h1>
<p class="lede">Parsers are <em>everywhere</em>; this one keeps an <code>open-element stack</code>.
<p>Unclosed paragraph, then a figure:
<figure><img src="/img/a.png" alt="A diagram &lt;stack&gt;" width=640 height=480><figcaption>The stack</figcaption></figure>
<pre><code>const x = a &lt; b ? 1 : 2;
if (x &amp;&amp; y) { return "&quot;"; }</code></pre>
<p>Inline SVG icon: <svg width="16" height="16" viewBox="0 0 16 16"><path d="M0 0h16v16H0z"/><title>icon</title><foreignObject><div>html in svg</div></foreignObject></svg> and maths
<math><mi>x</mi><mo>=</mo><mn>2</mn></math>.</p>
<blockquote cite="https://example.org/q">Quoted <a href="https://example.org/q#frag">source</a></blockquote>
<p>Entities: caf&eacute; &copy 2024 &#169; &#x1F600; &nbsp;nbsp &notit; &amp &lt;tag&gt; 😀 日本語 עברית</p>
</article>
<aside><h2>Related</h2><ol><li><a href="/posts/one">One<li><a href="/posts/two">Two</ol></aside>
</main>
<footer><p>&copy; Example<br>All rights reserved.<br/>
<a href="mailto:hi@example.com">Mail</a> <a href="javascript:void(0)">JS</a></footer>
<script src="/js/app.js" async defer></script>
</body></html>`;

const tables = `<html><head><TITLE>Report</TITLE><base href="https://cdn.example.com/r/"></head><BODY BGCOLOR=white>
<TABLE border=1 cellpadding=2>
<caption>Q1</caption>
<thead><tr><th>Name<th>Value<tbody>
<tr><td>a<td>1
<tr><td>b<td><table><tr><td>nested</table>
<tr><td colspan=2><a href=rel/1>rel</a> <A HREF="../up">up</A>
</TABLE>
<form action="/search" method=get><label>Q <input name=q value="a&amp;b"></label>
<select name=s><option value=1 selected>One<option value=2>Two<optgroup label=g><option>Three</select>
<textarea name=t>Some <b>raw</b> &amp; text</textarea><button type=submit>Go</button></form>
<dl><dt>Term<dd>Def<dt>Term 2<dd>Def 2</dl>
<p>Stray closers </p></p></div></span> and </br> and <p/> self-closing-looking p
<ul><li>one<li>two<ul><li>nested</ul><li>three</ul>
<iframe src="/frame"><p>fallback</p></iframe><noscript><img src="/pixel.gif"></noscript>
<template><p>template content</p></template>
<![CDATA[ not really cdata ]]> <?php echo 1; ?>
<!--[if IE]><p>old IE</p><![endif]-->
</BODY></html>`;

const messy = `<!doctype html><title>Unclosed <b>title</title><p>${'<span>'.repeat(40)}deep-ish${'</span>'.repeat(40)}
<div><p>a<div>b</p>c</div><h2>H<h3>I</h3></h2><svg><circle r=1 /><g><rect/></g></svg><math><mtext><b>t</b></mtext></math>
<a href="/x">one<a href="/y">two</a></a><table><td>cell<p>in cell</table><select><option>a<option>b</select>
<ruby>漢<rt>kan<rp>(</rp></ruby><video><source src=a.mp4><track kind=captions></video><br><hr><wbr>
<script>var s = "</scr" + "ipt>";</script><style></style><xmp>x</xmp><plaintext>`;

const pages: Record<string, string> = { article, tables, messy };

beforeAll(async () => {
  // Load the parser and cheerio once, so that no test measures module loading.
  await parseHtml('<p>warm up</p>');
  await loadCheerio();
});

describe('parseHtml()', () => {
  test('caps nesting through htmlparser2 10 internals that are still there', async () => {
    expect(MAX_NESTING).toBe(512);
    expect(await nestingCapped()).toBe(true);
  });

  test('builds the same document as parseDocument for ordinary pages, whatever the chunk size', async () => {
    const { load } = await loadCheerio();
    for (const [name, html] of Object.entries(pages)) {
      // Shape first: dom-serializer renames SVG elements in place (foreignobject → foreignObject).
      const expectedShape = shape(parseDocument(html) as unknown as Node);
      const expectedHtml = DomUtils.getOuterHTML(parseDocument(html));
      for (const chunkChars of [1, 7, 100, undefined]) {
        const doc = await parseHtml(html, chunkChars === undefined ? {} : { chunkChars });
        expect(shape(doc as unknown as Node), `${name}, chunks of ${chunkChars ?? 'default'}`).toEqual(expectedShape);
        expect(DomUtils.getOuterHTML(doc)).toBe(expectedHtml);
      }
      const expected = parseDocument(html);
      // cheerio wraps it as it wraps its own parse (the processor hands `$` to a custom extract).
      const $ = load(await parseHtml(html));
      const $expected = load(expected);
      expect($.html()).toBe($expected.html());
      expect(
        $('a')
          .map((_, a) => $(a).attr('href'))
          .get(),
      ).toEqual(
        $expected('a')
          .map((_, a) => $expected(a).attr('href'))
          .get(),
      );
      expect($('title').text()).toBe($expected('title').text());
    }
  });

  test('keeps elements past 512 levels as siblings, like browsers, and loses none', async () => {
    const html = `${'<div>'.repeat(1000)}deep <a href="/end">end</a>`;
    const doc = await parseHtml(html);
    expect(measure(doc)).toEqual({ depth: MAX_NESTING - 1, elements: 1001 });
    expect(extractPage(doc, PAGE)).toMatchObject({ wordCount: 2, links: [new URL('http://example.com/end')] });
    // Below the cap nothing changes.
    const shallow = `${'<div>'.repeat(MAX_NESTING - 1)}<p>x</p>`;
    expect(shape((await parseHtml(shallow)) as unknown as Node)).toEqual(shape(parseDocument(shallow) as unknown as Node));
  });

  test("'<div>' × 200,000 (1 MB) parses without holding the event loop for 100 ms", { timeout: HOSTILE_TIMEOUT_MS }, async () => {
    const watched = await parseWatched('<div>'.repeat(200_000));
    expectNoStall(watched);
    expect(watched.error).toBeNull();
    expect(measure(watched.doc!)).toEqual({ depth: MAX_NESTING - 1, elements: 200_000 });
  });

  test("'<div>' × 960,000 (4.8 MB) parses without holding the event loop for 100 ms", { timeout: HOSTILE_TIMEOUT_MS }, async () => {
    const watched = await parseWatched('<div>'.repeat(960_000));
    expectNoStall(watched);
    expect(watched.error).toBeNull();
    expect(measure(watched.doc!)).toEqual({ depth: MAX_NESTING - 1, elements: 960_000 });
  });

  test("'<a>' × 1,000,000 (3 MB) parses and extracts without holding the event loop for 100 ms", { timeout: HOSTILE_TIMEOUT_MS }, async () => {
    const watched = await parseWatched('<a>'.repeat(1_000_000));
    expectNoStall(watched);
    expect(watched.error).toBeNull();
    expect(measure(watched.doc!).depth).toBe(MAX_NESTING - 1);
    const walked = await heartbeat(() => extractPageAsync(watched.doc!, PAGE));
    expect(walked.value).toMatchObject({ links: [], wordCount: 0 });
    expectNoStall(walked, 'walk: ');
  });

  test('nested <svg> and <math> (and svg closed implicitly) parse without holding the event loop for 100 ms', { timeout: HOSTILE_TIMEOUT_MS }, async () => {
    for (const html of ['<svg>'.repeat(200_000), '<math>'.repeat(160_000), '<svg><math><mi>'.repeat(70_000), '<div><svg></div>'.repeat(60_000)]) {
      const watched = await parseWatched(html);
      expectNoStall(watched, `${html.slice(0, 16)}…: `);
      expect(watched.error).toBeNull();
      expect(measure(watched.doc!).depth).toBeLessThan(MAX_NESTING);
    }
  });

  test('200,000 unmatched close tags after 100,000 open ones parse without holding the event loop for 100 ms', { timeout: HOSTILE_TIMEOUT_MS }, async () => {
    const watched = await parseWatched('<b>'.repeat(100_000) + '</x>'.repeat(200_000));
    expectNoStall(watched);
    expect(watched.error).toBeNull();
    expect(measure(watched.doc!)).toEqual({ depth: MAX_NESTING - 1, elements: 100_000 });
  });

  test('a normal 5 MB page parses and extracts in slices, with the same title, links and word count as before', { timeout: HOSTILE_TIMEOUT_MS }, async () => {
    const html = normalPage(5 * 1024 * 1024);
    // What the old code (one synchronous parseDocument and walk) gives, computed before the heartbeat.
    const before = extractPage(parseDocument(html), PAGE);
    expect(before.links.length).toBeGreaterThan(10_000);
    const watched = await heartbeat(async () => extractPageAsync(await parseHtml(html), PAGE));
    expectNoStall(watched);
    expect(watched.value.title).toBe('A big normal page');
    expect(watched.value).toEqual(before);
  });

  test('5 MB of <a> fails with too_complex past 1,000,000 nodes instead of growing without bound', { timeout: HOSTILE_TIMEOUT_MS }, async () => {
    expect(MAX_NODES).toBe(1_000_000);
    const watched = await parseWatched('<a>'.repeat(Math.floor((5 * 1024 * 1024) / 3)));
    expectNoStall(watched);
    expect(watched.doc).toBeNull();
    expect(watched.error).toBeInstanceOf(ParseLimitError);
    expect(watched.error!.code).toBe('too_complex');
    expect(watched.error!.message).toMatch(/more than 1000000 HTML nodes/);
  });

  test('a parse past its time bound fails with too_complex naming the bound', async () => {
    // (Not the document itself when it parses: printing a 2 MB DOM in a failure message overflows.)
    const error = await parseHtml(normalPage(2 * 1024 * 1024), { maxParseMs: 20, sliceMs: 5 }).then(
      () => 'parsed to the end',
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ParseLimitError);
    expect(error).toMatchObject({
      code: 'too_complex',
      message: expect.stringMatching(/^parsing took longer than 20 ms; stopped after \d+ of \d+ characters$/),
    });
    await expect(parseHtml('<p>x</p>'.repeat(10), { maxNodes: 5 }).then(() => 'parsed to the end')).rejects.toMatchObject({
      code: 'too_complex',
      message: expect.stringMatching(/more than 5 HTML nodes/),
    });
  });
});

describe('end to end through the processor', () => {
  let server: TestServer | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  test('a crawl meeting a 4.8 MB deep page and a 5 MB <a> page finishes, records both, and never holds the event loop for 100 ms', {
    timeout: 120_000,
  }, async () => {
    // Encoded once here: the test server shares the crawler's event loop, and encoding a 5 MB string
    // on every request (`res.end(string)`) holds that loop for 60-100 ms in the server, not the crawler.
    const deep = Buffer.from(`<!doctype html><title>Deep</title>${'<div>'.repeat(960_000)}<a href="/after-deep">after</a>`);
    const many = Buffer.from('<a>'.repeat(1_600_000)); // 4.8 MB, 1.6M elements: past the node bound
    const nested = `${'<div>'.repeat(1000)}<a href="/z">z</a>`;
    server = await serve((req, res) => {
      const body =
        req.url === '/'
          ? '<a href="/deep">d</a><a href="/many">m</a><a href="/nested">n</a>'
          : req.url === '/deep'
            ? deep
            : req.url === '/many'
              ? many
              : req.url === '/nested'
                ? nested
                : req.url === '/robots.txt'
                  ? null
                  : '<p>small</p>';
      if (body === null) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(body);
    });
    const engine = testEngine({
      fetch: { timeoutMs: 30_000 },
      // A custom extract gets cheerio's $ on the capped document (the deep pages are left alone:
      // selecting over a million elements is the caller's cost, not the parser's).
      extract: ({ url, $ }) => (url.endsWith('/nested') ? { divs: $('div').length, links: $('a').length } : null),
    });
    // A first crawl loads undici and the rest once, so that module loading is not measured.
    expect((await engine.crawl({ url: `${server.origin}/warm-up`, maxDepth: 0 })).status).toBe('completed');
    const watched = await heartbeat(() => engine.crawl({ url: server!.url, maxDepth: 2 }));
    await engine.close();
    expectNoStall(watched);
    const job = watched.value;
    expect(job.status).toBe('completed');
    const byPath = new Map((await allResults(engine, job.id)).map((r) => [new URL(r.url).pathname, r]));
    expect(byPath.get('/deep')).toMatchObject({ ok: true, title: 'Deep', links: 1, error: null });
    expect(byPath.get('/after-deep')).toMatchObject({ ok: true });
    expect(byPath.get('/many')).toMatchObject({
      ok: false,
      attempts: 1,
      status: 200,
      error: { code: 'too_complex', message: expect.stringMatching(/more than 1000000 HTML nodes/) },
    });
    expect(byPath.get('/nested')).toMatchObject({ ok: true, links: 1, data: { divs: 1000, links: 1 } });
    expect(byPath.get('/z')).toMatchObject({ ok: true });
    expect(job.counts).toMatchObject({ succeeded: 5, failed: 1 });
  });
});

/** A dense but ordinary page: sections of headings, paragraphs, links, lists and images. */
function normalPage(targetChars: number): string {
  const parts = [
    '<!doctype html><html><head><meta charset="utf-8"><title>A  big   normal page</title><meta name="description" content="lots of text"><link rel="canonical" href="/big"></head><body><header><nav><ul>',
  ];
  for (let i = 0; i < 20; i++) parts.push(`<li><a href="/nav/${i}">Nav ${i}</a></li>`);
  parts.push('</ul></nav></header><main>');
  let size = parts.join('').length;
  for (let i = 0; size < targetChars - 600; i++) {
    const section = `<section id="s${i}"><h2>Section ${i}</h2><p>Lorem ipsum dolor sit amet, <b>consectetur</b> adipiscing elit, sed do <a href="/page/${i}?q=${i % 7}">eiusmod tempor</a> incididunt ut labore et dolore magna aliqua &amp; more.</p><p>Ut enim ad minim veniam, quis <em>nostrud</em> exercitation <a href="https://other.example/${i}">ullamco</a> laboris.</p><ul><li>one</li><li>two <img src="/i${i}.png" alt="x"></li></ul></section>\n`;
    parts.push(section);
    size += section.length;
  }
  parts.push('</main><footer>bye</footer></body></html>');
  return parts.join('');
}

describe('review findings', () => {
  test('one element with 880,000 unique attributes keeps 1,000 of them and does not hold the event loop for 100 ms', {
    timeout: HOSTILE_TIMEOUT_MS,
  }, async () => {
    let attrs = '';
    for (let i = 0; attrs.length < 5 * 1024 * 1024 - 16; i++) attrs += ` a${i}`;
    const page = `<a${attrs} href="/x">x</a>`;
    const watched = await heartbeat(() => parseHtml(page));
    expectNoStall(watched, 'attributes: ');
    const a = DomUtils.getElementsByTagName('a', watched.value.children, true)[0]!;
    expect(Object.keys(a.attribs)).toHaveLength(MAX_ATTRIBUTES);
  });

  test('an abrupt comment (<!-->) at a chunk boundary parses as parseDocument parses it', async () => {
    for (const comment of ['<!-->', '<!--->', '<!---->']) {
      for (let pad = 4085; pad <= 4100; pad++) {
        const page = `${'x'.repeat(pad)}${comment}<a href="/next">next</a><title>T</title>`;
        expect(DomUtils.getOuterHTML((await parseHtml(page)).children), `${comment} at ${pad}`).toBe(DomUtils.getOuterHTML(parseDocument(page).children));
      }
    }
  });
});

describe('shared time slices', () => {
  test('several pages parsed at once resume one per turn of the event loop, so their slices do not add up into one stall', {
    timeout: HOSTILE_TIMEOUT_MS,
  }, async () => {
    // Each parse alone holds the loop for at most one slice. Resumed together in one turn (each
    // waiter on its own setImmediate), six of them held it for six slices at a time.
    const pages = Array.from({ length: 6 }, () => '<div>'.repeat(60_000));
    const watched = await heartbeat(() => Promise.all(pages.map((page) => parseHtml(page, { sliceMs: 40 }))));
    expect(watched.value).toHaveLength(6);
    // One 40 ms slice per turn; six at once would be 240 ms or more (a busy machine adds to the
    // first, hence the margin).
    expect(watched.stallMs).toBeLessThan(150);
  });

  test('a yield made while a test fakes the timers still resumes, and does not strand the yields after it', async () => {
    vi.useFakeTimers();
    const early = yieldToLoop();
    vi.useRealTimers();
    const late = yieldToLoop();
    const outcome = await Promise.race([Promise.all([early, late]).then(() => 'resumed'), new Promise((resolve) => setTimeout(resolve, 1000, 'stuck'))]);
    expect(outcome).toBe('resumed');
  });
});
