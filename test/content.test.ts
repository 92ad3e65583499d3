/**
 * The content formats (`formats: ['text', 'markdown', 'html']`, `onlyMainContent`): the fields a
 * result gets, their caps, the fallback past the library bounds, and crawls that store and return
 * them on every adapter.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { sqliteStorage } from '../adapters/sqlite/index.js';
import { CONTENT_RESULTS_PAGE } from '../src/core/jobs.js';
import { capContent, LIBRARY_LIMITS, MAX_CONTENT_CHARS, pageContent } from '../src/crawl/content.js';
import { mainContent, MainContentError, stopContentWorker } from '../src/crawl/main-content.js';
import { parseHtml } from '../src/crawl/parse.js';
import { isWellFormed } from '../src/crawl/text.js';
import { loadCorpus } from '../bench/content-score.mjs';
import { allResults, testEngine } from './helpers/engine.js';
import { expectNoStall, heartbeat } from './helpers/heartbeat.js';
import { closeAll } from './helpers/postgres.js';
import { html, serve } from './helpers/server.js';
import { closeRedis, everyStorage } from './helpers/storages.js';

afterAll(async () => {
  await closeRedis();
  await closeAll();
  await stopContentWorker();
});

const ARTICLE = `
<header class="site-header"><a href="/">Acme Docs</a><nav><a href="/a">Guides</a> <a href="/b">Reference</a></nav></header>
<aside class="sidebar"><h2>On this page</h2><ul><li><a href="#install">Install</a></li></ul></aside>
<main><article>
  <h1>Installing the widget</h1>
  <p>The widget installs with one command and needs no configuration for most projects that use it.</p>
  <h2 id="install">Install</h2>
  <p>Run the installer from the root of your project, then restart the development server so it picks the widget up.</p>
  <ul><li>Works offline once installed</li><li>Keeps its cache in the project folder</li></ul>
  <pre><code>npm install widget\nwidget init</code></pre>
  <p>Questions about the widget go to the issue tracker, where maintainers answer them within a few days.</p>
</article></main>
<footer class="site-footer"><p>Copyright Acme Corporation. All rights reserved.</p><a href="/privacy">Privacy</a></footer>
<div id="onetrust-consent-sdk"><p>We use cookies to improve your experience. Accept all cookies?</p><button>Accept</button></div>`;

const content = async (body: string, formats: Array<'text' | 'markdown' | 'html'>, onlyMainContent?: boolean, limits = LIBRARY_LIMITS) =>
  pageContent(body, await parseHtml(body), { formats, url: 'http://127.0.0.1/page', ...(onlyMainContent === undefined ? {} : { onlyMainContent }) }, limits);

describe('capContent()', () => {
  test('leaves a value within the cap alone', () => {
    expect(capContent('abc', 10)).toEqual({ value: 'abc', cut: false });
    expect(capContent('x'.repeat(MAX_CONTENT_CHARS)).cut).toBe(false);
  });

  test('cuts past the cap at a code-point boundary, within the cap, with a line saying how much was cut', () => {
    const value = `${'a'.repeat(MAX_CONTENT_CHARS - 65)}😀${'b'.repeat(500)}`;
    const { value: cut, cut: wasCut } = capContent(value);
    expect(wasCut).toBe(true);
    expect(cut.length).toBeLessThanOrEqual(MAX_CONTENT_CHARS);
    const [kept, line] = cut.split('\n\n[');
    // The emoji would straddle the cut: it is dropped whole, never halved.
    expect(kept).toBe('a'.repeat(MAX_CONTENT_CHARS - 65));
    expect(`[${line}`).toBe(`[crawl-engine: truncated, ${value.length - kept!.length} more characters]`);
    expect(isWellFormed(cut)).toBe(true);
  });
});

describe('pageContent()', () => {
  test('gives only the fields asked for', async () => {
    expect(Object.keys(await content(ARTICLE, ['html']))).toEqual(['html']);
    expect(Object.keys(await content(ARTICLE, ['text']))).toEqual(['text']);
    expect(Object.keys(await content(ARTICLE, ['markdown'])).sort()).toEqual(['markdown']);
    expect(Object.keys(await content(ARTICLE, ['text', 'markdown', 'html'])).sort()).toEqual(['html', 'markdown', 'text']);
  });

  test('html is the page as fetched; text and markdown keep the main content and drop the chrome', async () => {
    const fields = await content(ARTICLE, ['text', 'markdown', 'html']);
    expect(fields.html).toBe(ARTICLE);
    for (const value of [fields.text!, fields.markdown!]) {
      expect(value).toContain('Run the installer from the root of your project');
      expect(value).toContain('Questions about the widget go to the issue tracker');
      expect(value).toContain('npm install widget');
      for (const chrome of ['Guides', 'On this page', 'Copyright Acme', 'cookies', 'Accept']) expect(value).not.toContain(chrome);
    }
    expect(fields.markdown).toMatch(/^## Install$/m);
    // From the libraries, not the fallback.
    expect(`${fields.text}${fields.markdown}`).not.toContain('crawl-engine:');
    expect(fields.markdown).toMatch(/^[*-] +Works offline once installed$/m);
    // Paragraphs separated by blank lines.
    expect(fields.text).toContain('needs no configuration for most projects that use it.\n\nInstall\n\nRun the installer');
    expect(fields.truncated).toBeUndefined();
  });

  test('onlyMainContent: false keeps the whole page', async () => {
    const fields = await content(ARTICLE, ['text', 'markdown'], false);
    for (const value of [fields.text!, fields.markdown!]) {
      expect(value).toContain('Run the installer');
      expect(value).toContain('Guides');
      expect(value).toContain('Copyright Acme Corporation');
    }
    // Scripts and styles are not text.
    const scripted = await content(html('<p>shown</p><script>var hidden = 1;</script><style>p{}</style>'), ['text', 'markdown'], false);
    expect(scripted.text).toBe('shown');
    expect(scripted.markdown).toBe('shown');
  });

  test('a page past the library bounds gets the sliced walk, with a line saying so', async () => {
    const limits = { maxChars: 500, maxNodes: 1000, maxDepth: 20 };
    const fields = await content(ARTICLE, ['text', 'markdown'], true, limits);
    for (const value of [fields.text!, fields.markdown!]) {
      expect(value).toContain('Run the installer from the root of your project');
      expect(value).not.toContain('Copyright Acme');
      expect(value).not.toContain('cookies');
      expect(value).toMatch(/\n\n\[crawl-engine: page of \d+ characters, more than 500: main content found by page structure; simplified extraction\]$/);
    }
    expect(fields.markdown).toMatch(/^# Installing the widget$/m);
    expect(fields.markdown).toMatch(/^- Works offline once installed$/m);
    expect(fields.markdown).toContain('```\nnpm install widget\nwidget init\n```');
    // Deep nesting also goes to the walk.
    const deep = `${'<div>'.repeat(LIBRARY_LIMITS.maxDepth + 10)}<p>deep text</p>`;
    expect((await content(deep, ['text'])).text).toMatch(/^deep text\n\n\[crawl-engine: page nested more than 256 levels deep/);
    const many = `<p>${'<b>x</b>'.repeat(LIBRARY_LIMITS.maxNodes)}</p>`;
    expect((await content(many, ['markdown'])).markdown).toMatch(/\n\n\[crawl-engine: page of more than 50000 HTML nodes/);
  });

  test('fields past 1,000,000 characters are cut and named in truncated', async () => {
    const huge = html(`<main><p>${'word '.repeat(220_000)}</p></main>`);
    const fields = await content(huge, ['text', 'markdown', 'html'], false);
    expect(fields.truncated?.sort()).toEqual(['html', 'markdown', 'text']);
    for (const value of [fields.text!, fields.markdown!, fields.html!]) {
      expect(value.length).toBeLessThanOrEqual(MAX_CONTENT_CHARS);
      expect(value).toMatch(/\n\n\[crawl-engine: truncated, \d+ more characters\]$/);
    }
  });

  test('a large page within the bounds is worked on in the worker while the event loop stays free', { timeout: 120_000 }, async () => {
    // About 450 KB of real documentation (seconds of Readability on a shared machine).
    const page = loadCorpus().find((p) => p.file === 'python-sorting.html')!;
    const body = page.html.slice(page.html.indexOf('<body'), page.html.lastIndexOf('</body>'));
    const big = `<html><head><title>t</title></head><body>${`<section>${body}</section>`.repeat(10)}</body></html>`;
    expect(big.length).toBeGreaterThan(400_000);
    expect(big.length).toBeLessThan(LIBRARY_LIMITS.maxChars);
    const document = await parseHtml(big);
    const watched = await heartbeat(() => pageContent(big, document, { formats: ['text', 'markdown'], url: page.url }));
    expectNoStall(watched, 'a 450 KB page with text and markdown: ');
    expect(watched.value.markdown).toContain('Sorting HOW TO');
    expect(`${watched.value.text}${watched.value.markdown}`).not.toContain('crawl-engine:');
  });

  test('a page whose one element holds a million children gets the sliced walk without holding the event loop', { timeout: 120_000 }, async () => {
    // Past the parser's nesting cap, deeper tags become children of one element; a flat page of
    // paragraphs is the same shape. Visiting those children in place keeps each turn short (about
    // 10-20 ms here); copying them onto a stack first took 100 ms or more in one go.
    for (const page of ['<div>'.repeat(960_000), `<body>${'<p>x'.repeat(400_000)}`]) {
      const document = await parseHtml(page);
      const watched = await heartbeat(() => pageContent(page, document, { formats: ['text', 'markdown'], url: 'http://127.0.0.1/' }));
      const what = `${page.slice(0, 6)}… with text and markdown: longest gap less garbage collection ${Math.round(watched.stallMs)} ms (${Math.round(watched.gcInMaxGapMs)} ms of garbage collection in it)`;
      expect(watched.stallMs, what).toBeLessThan(60);
      // The flat page's markdown (1.2 million characters) is cut before its fallback line.
      expect(watched.value.markdown, what).toMatch(/\[crawl-engine: (page .*; simplified extraction|truncated, \d+ more characters)\]$/);
    }
  });

  test('a worker that takes too long is stopped and the page falls back; the next page gets a new worker', async () => {
    // A page of some hundred milliseconds' work: a warm worker answers a small one (ARTICLE) within
    // the millisecond a 0 ms timer takes to fire, and did once on CI.
    const para = (i: number) => `<div class="c${i % 7}"><p>Paragraph ${i} with some words, and more words, commas, here.</p><span>x</span></div>`;
    const long = `<!doctype html><html><body><article>${Array.from({ length: 500 }, (_, i) => para(i)).join('')}</article></body></html>`;
    await expect(mainContent(long, 'http://127.0.0.1/', { main: true, markdown: true }, 0)).rejects.toBeInstanceOf(MainContentError);
    const again = await mainContent(ARTICLE, 'http://127.0.0.1/', { main: true, markdown: true });
    expect(again.markdown).toContain('Run the installer');
  });

  test('markdown links and images are absolute, resolved against the page URL or its <base href>', async () => {
    const page = `<html><head><title>t</title></head><body><main><h1>Guide</h1>
      <p>Read <a href="/docs/intro">the intro</a>, then <a href="next">the next page</a> and <a href="#part">this part</a>.
      The widget installs with one command and needs no configuration for most projects that use it.</p>
      <p><img src="img/shot.png" alt="shot"> Run the installer from the root of your project, then restart the development server.</p>
      </main></body></html>`;
    for (const onlyMainContent of [true, false]) {
      const { markdown } = await content(page, ['markdown'], onlyMainContent);
      expect(markdown).toContain('[the intro](http://127.0.0.1/docs/intro)');
      expect(markdown).toContain('[the next page](http://127.0.0.1/next)');
      expect(markdown).toContain('(#part)');
      expect(markdown).toContain('![shot](http://127.0.0.1/img/shot.png)');
    }
    const based = page.replace('<title>t</title>', '<title>t</title><base href="https://cdn.example/base/">');
    expect((await content(based, ['markdown'])).markdown).toContain('[the next page](https://cdn.example/base/next)');
  });

  test('a page waiting behind a slow one is not timed out for the wait, and its timeout does not fail the pages behind it', { timeout: 120_000 }, async () => {
    // Seconds of Readability: the small pages queued behind it must not count that against their own time.
    const para = (i: number) => `<div class="c${i % 7}"><p>Paragraph ${i} with some words, and more words, commas, here.</p><span>x</span></div>`;
    const slow = `<!doctype html><html><body><article>${Array.from({ length: 3000 }, (_, i) => para(i)).join('')}</article></body></html>`;
    const start = performance.now();
    const first = mainContent(slow, 'http://127.0.0.1/', { main: true, markdown: true });
    const behind = mainContent(ARTICLE, 'http://127.0.0.1/', { main: true, markdown: true }, 1_000);
    expect((await behind).markdown).toContain('Run the installer');
    expect((await first).markdown).toContain('Paragraph 2999');
    expect(performance.now() - start).toBeGreaterThan(1_000); // the wait was longer than the small page's timeout
    // A page that times out (0 ms) stops the worker; the one queued behind it goes to the next.
    const stopped = mainContent(slow, 'http://127.0.0.1/', { main: true, markdown: false }, 0);
    const next = mainContent(ARTICLE, 'http://127.0.0.1/', { main: true, markdown: true });
    await expect(stopped).rejects.toThrow(/longer than 0 ms/);
    expect((await next).markdown).toContain('Run the installer');
  });

  test('a page that would wait behind slow ones longer than maxWaitMs falls back at once, without stopping the worker', { timeout: 120_000 }, async () => {
    const para = (i: number) => `<div class="c${i % 7}"><p>Paragraph ${i} with some words, and more words, commas, here.</p><span>x</span></div>`;
    const slow = `<!doctype html><html><body><article>${Array.from({ length: 3000 }, (_, i) => para(i)).join('')}</article></body></html>`;
    const first = mainContent(slow, 'http://127.0.0.1/', { main: true, markdown: true });
    const start = performance.now();
    await expect(mainContent(ARTICLE, 'http://127.0.0.1/', { main: true, markdown: true }, undefined, 300)).rejects.toThrow(/waited more than 300 ms/);
    expect(performance.now() - start).toBeLessThan(1_500);
    expect((await first).markdown).toContain('Paragraph 2999');
    // The page that gave up had been sent behind the slow one (the worker holds two): once the
    // worker is done with it, too, it is idle again.
    await mainContent(ARTICLE, 'http://127.0.0.1/', { main: true, markdown: true });
    // An idle worker takes a page at once, whatever its maxWaitMs.
    expect((await mainContent(ARTICLE, 'http://127.0.0.1/', { main: true, markdown: true }, undefined, 0)).markdown).toContain('Run the installer');
  });
});

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const hasNodeSqlite = major > 23 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13);
const sqliteDir = mkdtempSync(join(tmpdir(), 'crawl-content-'));
afterAll(() => rmSync(sqliteDir, { recursive: true, force: true }));
const storages = [
  ...everyStorage,
  ...(hasNodeSqlite ? [['sqlite', async () => sqliteStorage({ database: join(sqliteDir, 'content.db') })] as (typeof everyStorage)[number]] : []),
];

describe.each(storages)('a crawl with formats (%s)', (_name, makeStorage) => {
  test('stores text, markdown and html with each page and returns them; a metadata-only job has none', { timeout: 60_000 }, async () => {
    const site = await serve((req, res) => {
      if (req.url === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(ARTICLE.replace('<a href="/a">', '<a href="/bad">'));
      }
      if (req.url === '/bad') {
        // A NUL and a lone surrogate, which Postgres cannot store: repaired in every field.
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(html('<main><p>bad \u0000 text &#xD800; here and more words for the article body to keep</p></main>'));
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('gone');
    });
    try {
      const engine = testEngine({}, await makeStorage());
      const job = await engine.crawl({ url: site.url, maxDepth: 1, maxPages: 10, respectRobots: false, formats: ['metadata', 'text', 'markdown', 'html'] });
      expect(job.status).toBe('completed');
      const byPath = new Map((await allResults(engine, job.id)).map((r) => [new URL(r.url).pathname, r]));
      const home = byPath.get('/')!;
      expect(home.markdown).toContain('## Install');
      expect(home.text).toContain('Run the installer from the root of your project');
      expect(home.html).toContain('<div id="onetrust-consent-sdk">');
      expect(home.truncated).toBeUndefined();
      const bad = byPath.get('/bad')!;
      for (const value of [bad.text!, bad.markdown!, bad.html!]) {
        expect(value).toContain('bad \uFFFD text');
        expect(isWellFormed(value)).toBe(true);
      }
      // A page without HTML has the fields asked for, as null.
      const gone = byPath.get('/b')!;
      expect(gone.ok).toBe(false);
      expect([gone.text, gone.markdown, gone.html]).toEqual([null, null, null]);

      const plain = await engine.crawl({ url: site.url, maxDepth: 0, respectRobots: false });
      const [result] = await allResults(engine, plain.id);
      for (const field of ['text', 'markdown', 'html', 'truncated']) expect(result).not.toHaveProperty(field);
      await engine.close();
    } finally {
      await site.close();
    }
  });
});

describe('listing results of a job with content formats', () => {
  test('jobs.results pages hold at most 25 results whatever the limit, and nextCursor leads through all of them', { timeout: 60_000 }, async () => {
    const pages = 60;
    const site = await serve((req, res) => {
      const i = req.url === '/' ? 0 : Number(/^\/p\/(\d+)$/.exec(req.url ?? '')?.[1] ?? -1);
      if (i < 0 || i >= pages) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        return res.end('gone');
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      const links = i === 0 ? Array.from({ length: pages - 1 }, (_, j) => `<a href="/p/${j + 1}">${j + 1}</a>`).join(' ') : '';
      res.end(html(`<main><h1>Page ${i}</h1><p>Some words of page ${i} for its markdown.</p>${links}</main>`));
    });
    try {
      const engine = testEngine();
      const job = await engine.crawl({ url: site.url, maxDepth: 1, maxPages: pages, respectRobots: false, formats: ['markdown'] });
      expect(job.counts.succeeded).toBe(pages);
      const first = await engine.jobs.results(job.id, { limit: 1000 });
      expect(first.items).toHaveLength(CONTENT_RESULTS_PAGE);
      expect(first.nextCursor).not.toBeNull();
      const all = await allResults(engine, job.id);
      expect(new Set(all.map((r) => r.url)).size).toBe(pages);
      expect(all.every((r) => typeof r.markdown === 'string')).toBe(true);
      // A metadata-only job still gets the limit asked for.
      const plain = await engine.crawl({ url: site.url, maxDepth: 1, maxPages: pages, respectRobots: false });
      expect((await engine.jobs.results(plain.id, { limit: 1000 })).items).toHaveLength(pages);
      await engine.close();
    } finally {
      await site.close();
    }
  });
});

describe('the built package', () => {
  const fixture = fileURLToPath(new URL('./fixtures/content-child.mjs', import.meta.url));
  test.each(['esm', 'cjs'])('finds its content worker in dist/ (%s)', (format) => {
    const out = execFileSync(process.execPath, [fixture, format], { encoding: 'utf8', timeout: 60_000 });
    expect(out.trim()).toBe('CONTENT-OK');
  });
});
