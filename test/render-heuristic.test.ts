/**
 * `render: 'auto'` decides with `looksClientRendered`: fixtures modelled on what frameworks and
 * sites send, both ways (client-rendered shells are rendered; server-rendered and static pages are not).
 */
import { parseDocument } from 'htmlparser2';
import { describe, expect, it } from 'vitest';
import { looksClientRendered, SHELL_MOUNT_TEXT_CHARS, SHELL_TEXT_CHARS, shellSignals } from '../src/crawl/render.js';

const page = (head: string, body: string) => `<!doctype html><html lang="en"><head><meta charset="utf-8">${head}</head><body>${body}</body></html>`;
const prose = (chars: number) => 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(Math.ceil(chars / 57)).slice(0, chars);

const SHELLS: Record<string, string> = {
  'Create React App': page(
    '<title>React App</title><script defer="defer" src="/static/js/main.8c2f.js"></script><link href="/static/css/main.css" rel="stylesheet">',
    '<noscript>You need to enable JavaScript to run this app.</noscript><div id="root"></div>',
  ),
  Vite: page('<title>Vite + Vue</title><script type="module" crossorigin src="/assets/index-4f2a.js"></script>', '<div id="app"></div>'),
  Angular: page(
    '<title>MyApp</title><base href="/"><link rel="stylesheet" href="styles.css">',
    '<app-root></app-root><script src="runtime.js" type="module"></script><script src="polyfills.js" type="module"></script><script src="main.js" type="module"></script>',
  ),
  'Next.js, client-side only (empty #__next)': page(
    '<title></title><script src="/_next/static/chunks/main.js" defer></script>',
    '<div id="__next"></div><script id="__NEXT_DATA__" type="application/json">{"props":{"pageProps":{}},"page":"/"}</script>',
  ),
  'a loading spinner and an inline bootstrap': page(
    '<title>Dashboard</title>',
    '<div id="root"><div class="spinner" aria-label="Loading"></div></div><script>window.__BOOT__={};import("/app.js")</script>',
  ),
  'a server-rendered header and footer around an empty mount point': page(
    '<title>Shop</title><script type="module" src="/shop.js"></script>',
    `<header><nav>${prose(400)}</nav></header><div id="app"></div><footer>${prose(600)}</footer>`,
  ),
  'an in-browser Babel shell (text/babel only)': page(
    '<title>Demo</title>',
    '<div id="root"></div><script type="text/babel">ReactDOM.createRoot(document.getElementById("root")).render(<App />)</script>',
  ),
  'a shell with a long <noscript> and inline styles': page(
    `<title>App</title><style>${'body{margin:0}'.repeat(500)}</style>`,
    `<noscript>${prose(3000)}</noscript><div id="root"> <!-- mounted by app.js --> </div><script src="/app.js"></script>`,
  ),
};

const NOT_SHELLS: Record<string, string> = {
  'Next.js, server-rendered': page(
    '<title>Blog – Next</title><script src="/_next/static/chunks/webpack.js" defer></script><script src="/_next/static/chunks/main.js" defer></script>',
    `<div id="__next"><main><h1>Hello</h1><article>${prose(1500)}</article></main></div><script id="__NEXT_DATA__" type="application/json">{"props":{}}</script>`,
  ),
  'Nuxt, server-rendered': page(
    '<title>Docs</title><script type="module" src="/_nuxt/entry.js"></script>',
    `<div id="__nuxt"><div><h1>Getting started</h1><p>${prose(800)}</p></div></div>`,
  ),
  'a static blog post with analytics': page(
    '<title>A post</title><script async src="https://www.googletagmanager.com/gtag/js?id=G-X"></script><script>window.dataLayer=[];function gtag(){dataLayer.push(arguments)}gtag("js",new Date())</script>',
    `<article><h1>Why we moved off workers</h1>${`<p>${prose(400)}</p>`.repeat(6)}</article>`,
  ),
  'a short page without scripts': page('<title>404</title>', '<h1>Not found</h1>'),
  'an empty #root without scripts (nothing would fill it)': page('<title>Static</title>', '<div id="root"></div>'),
  'only JSON-LD and a template script': page(
    '<title>Product</title><script type="application/ld+json">{"@type":"Product"}</script>',
    '<h1>Widget</h1><script type="text/template"><p>{{name}}</p></script>',
  ),
  'a short article with analytics and an empty skip-link target (#main)': page(
    '<title>Note</title><script async src="https://www.googletagmanager.com/gtag/js?id=G-X"></script>',
    `<a href="#main">Skip to content</a><nav>Home · Blog</nav><div id="main"></div><article><h1>Release notes</h1><p>${prose(500)}</p></article>`,
  ),
  'a long page with an empty #main it does not need': page(
    '<title>Docs</title><script src="/search.js"></script>',
    `<div id="main"></div><article>${prose(SHELL_MOUNT_TEXT_CHARS + 200)}</article>`,
  ),
};

describe("looksClientRendered (render: 'auto')", () => {
  for (const [name, html] of Object.entries(SHELLS)) {
    it(`renders: ${name}`, () => {
      expect(looksClientRendered(parseDocument(html)), JSON.stringify(shellSignals(parseDocument(html)))).toBe(true);
    });
  }
  for (const [name, html] of Object.entries(NOT_SHELLS)) {
    it(`does not render: ${name}`, () => {
      expect(looksClientRendered(parseDocument(html)), JSON.stringify(shellSignals(parseDocument(html)))).toBe(false);
    });
  }

  it('reads the signals the rule is documented with', () => {
    expect(shellSignals(parseDocument(SHELLS['Create React App']!))).toEqual({ scripts: 1, textChars: 0, emptyMount: true });
    const header = shellSignals(parseDocument(SHELLS['a server-rendered header and footer around an empty mount point']!));
    expect(header).toMatchObject({ scripts: 1, emptyMount: true });
    expect(header.textChars).toBeGreaterThanOrEqual(SHELL_TEXT_CHARS);
    // Whitespace runs count once: indentation does not make a shell look like content.
    const indented = page('<script src="/a.js"></script>', `<div id="root">\n${' '.repeat(5000)}\n</div>`);
    expect(shellSignals(parseDocument(indented)).textChars).toBeLessThan(3);
    expect(looksClientRendered(parseDocument(indented))).toBe(true);
  });

  it('stays linear on hostile pages: deep nesting and megabytes of text', () => {
    const deep = `<script src="/a.js"></script>${'<div>'.repeat(50_000)}x${'</div>'.repeat(50_000)}`;
    expect(looksClientRendered(parseDocument(deep))).toBe(true);
    const big = page('<script src="/a.js"></script>', `<p>${prose(5_000_000)}</p>`);
    expect(looksClientRendered(parseDocument(big))).toBe(false);
    // Counting stops once the answer cannot change, within a text node too.
    expect(shellSignals(parseDocument(big)).textChars).toBe(SHELL_MOUNT_TEXT_CHARS);
  });
});
