// The worker thread behind `text` and `markdown` (see ./main-content.ts): Mozilla's Readability
// over linkedom finds a page's main content, after the page's chrome is removed, and
// node-html-markdown writes markdown. These libraries cannot yield to the event loop, so they run
// here, where a slow page holds only this thread (and is stopped by its timeout), never the
// processor's. Plain JavaScript, so that Node runs it as it is from src/ and from dist/.
//
// Messages in: { id, html, url, main, markdown, chrome: { selector, className } };
// out: { id, mainHtml: string | null, markdown: string | null } or { id, error }.
import { parentPort } from 'node:worker_threads';

let libraries = null;
async function load() {
  libraries ??= Promise.all([import('linkedom'), import('@mozilla/readability'), import('node-html-markdown')]);
  return libraries;
}

/** Elements the markdown converter drops with their content. */
const IGNORED = ['script', 'style', 'noscript', 'template', 'head', 'svg', 'iframe', 'object', 'canvas', 'select', 'button', 'input', 'textarea'];

/** Removes the page's chrome (./chrome.ts): what no reader view shows. */
function removeChrome(document, chrome) {
  for (const element of document.querySelectorAll(chrome.selector)) element.remove();
  // A header inside the main content is the article's own (its title); outside it is the site's.
  for (const element of document.querySelectorAll('header')) if (element.closest('main, article, [role="main"]') === null) element.remove();
  const className = new RegExp(chrome.className, 'i');
  for (const element of document.querySelectorAll('[class]')) {
    if (className.test((element.getAttribute('class') ?? '').slice(0, 500))) element.remove();
  }
}

let converter = null;

/**
 * Makes the page's links and images absolute, against its `<base href>` (when valid) or its URL,
 * as ./extract.ts resolves them: markdown read away from the page keeps working links.
 * In-page links (`#…`) stay as they are.
 */
function absolutize(document, url) {
  let base = url;
  const declared = document.querySelector('base[href]')?.getAttribute('href');
  if (declared) {
    try {
      base = new URL(declared, url).href;
    } catch {}
  }
  for (const [selector, name] of [
    ['a[href]', 'href'],
    ['img[src]', 'src'],
  ]) {
    for (const element of document.querySelectorAll(selector)) {
      const value = (element.getAttribute(name) ?? '').trim();
      if (value === '' || value.startsWith('#')) continue;
      try {
        element.setAttribute(name, new URL(value, base).href);
      } catch {}
    }
  }
}

/** The page parsed by linkedom (a fragment as a page's body), its links made absolute. */
function parsePage(linkedom, html, url) {
  let { document } = linkedom.parseHTML(html);
  // linkedom makes a fragment's first element the root (no <html>, no body): parse it as a page's body.
  if (document.documentElement?.localName !== 'html') ({ document } = linkedom.parseHTML(`<!doctype html><html><head></head><body>${html}</body></html>`));
  absolutize(document, url);
  return document;
}

/** The share of a page's marked main content Readability must keep for its choice to stand. */
const KEPT_SHARE = 0.9;
/** Characters of text other than whitespace. */
const letters = (text) => (text ?? '').replace(/\s+/g, '').length;

parentPort.on('message', async (request) => {
  try {
    const [linkedom, readability, nhm] = await load();
    converter ??= new nhm.NodeHtmlMarkdown({ ignore: IGNORED, maxConsecutiveNewlines: 2 });
    let mainHtml = null;
    if (request.main) {
      const document = parsePage(linkedom, request.html, request.url);
      removeChrome(document, request.chrome);
      const body = document.body?.innerHTML ?? '';
      // The page's own mark of its main content, when it has exactly one (Readability changes the document: read it first).
      const marks = document.querySelectorAll('main, [role="main"]');
      const marked = marks.length === 1 ? { html: marks[0].innerHTML, chars: letters(marks[0].textContent) } : null;
      // Readability keeps the article; a page it finds none in keeps what is left of its body.
      const article = new readability.Readability(document).parse();
      mainHtml = article?.content ?? body;
      // Readability drops blocks it takes for chrome by their ids and classes (a section with the id
      // `custom-headers` is a "header" to it): when it kept less than KEPT_SHARE of what the page
      // marks as its main content (chrome already removed), the marked element is kept instead.
      if (article !== null && marked !== null && letters(article.textContent) < KEPT_SHARE * marked.chars) mainHtml = marked.html;
    }
    const markdown = request.markdown ? converter.translate(mainHtml ?? parsePage(linkedom, request.html, request.url).documentElement.outerHTML).trim() : null;
    parentPort.postMessage({ id: request.id, mainHtml, markdown });
  } catch (error) {
    parentPort.postMessage({ id: request.id, error: error instanceof Error ? error.message : String(error) });
  }
});
