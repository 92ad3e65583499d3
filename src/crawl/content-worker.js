// The worker thread behind `text` and `markdown` (see ./main-content.ts): Mozilla's Readability
// over linkedom finds a page's main content, after the page's chrome is removed, and
// node-html-markdown writes markdown. These libraries cannot yield to the event loop, so they run
// here, where a slow page holds only this thread (and is stopped by its timeout), never the
// processor's. Plain JavaScript, so that Node runs it as it is from src/ and from dist/.
//
// Messages in: { id, html, url, main, markdown, chrome: { selector, className, tags, roles, ids } };
// out: { id, mainHtml: string | null, markdown: string | null } or { id, error }.
import { parentPort } from 'node:worker_threads';

let libraries = null;
async function load() {
  libraries ??= Promise.all([import('linkedom'), import('@mozilla/readability'), import('node-html-markdown'), import('htmlparser2')]);
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

/**
 * The element a page marks as its main content (exactly one `<main>` or role=main outside the
 * chrome), with the chrome inside it removed and its links and images absolute, or null. htmlparser2's tree, walked once without
 * recursion: about a third of linkedom's parse and no selector compiled per page.
 */
function markedMain(html, url, chrome, htmlparser2) {
  const document = htmlparser2.parseDocument(html);
  // Links and images are made absolute as absolutize() does, against <base href> or the page's URL.
  let base = url;
  const declared = htmlparser2.DomUtils.findOne((element) => element.name === 'base' && element.attribs.href !== undefined, document.children)?.attribs.href;
  if (declared) {
    try {
      base = new URL(declared, url).href;
    } catch {}
  }
  const className = new RegExp(chrome.className, 'i');
  const tags = new Set(chrome.tags);
  const roles = new Set(chrome.roles);
  const ids = new Set(chrome.ids);
  const marks = [];
  const removals = [];
  const stack = [[document, false]];
  while (stack.length > 0) {
    const [node, inArticle] = stack.pop();
    for (const child of node.children ?? []) {
      if (child.type !== 'tag') continue;
      const { name, attribs } = child;
      const role = attribs.role;
      const isChrome =
        tags.has(name) ||
        attribs.hidden !== undefined ||
        attribs['aria-hidden'] === 'true' ||
        attribs['aria-modal'] === 'true' ||
        (role !== undefined && roles.has(role)) ||
        (attribs.id !== undefined && ids.has(attribs.id)) ||
        // A header inside the main content is the article's own (its title); outside it is the site's.
        (name === 'header' && !inArticle) ||
        (attribs.class !== undefined && className.test(attribs.class.slice(0, 500)));
      if (isChrome) {
        removals.push(child);
        continue;
      }
      const linkName = name === 'a' ? 'href' : name === 'img' ? 'src' : null;
      const link = linkName === null ? undefined : attribs[linkName]?.trim();
      if (link && !link.startsWith('#')) {
        try {
          attribs[linkName] = new URL(link, base).href;
        } catch {}
      }
      const isMain = name === 'main' || role === 'main';
      if (isMain) marks.push(child);
      stack.push([child, inArticle || isMain || name === 'article']);
    }
  }
  if (marks.length !== 1) return null;
  for (const element of removals) htmlparser2.DomUtils.removeElement(element);
  return htmlparser2.DomUtils.getInnerHTML(marks[0]);
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

parentPort.on('message', async (request) => {
  try {
    const [linkedom, readability, nhm, htmlparser2] = await load();
    converter ??= new nhm.NodeHtmlMarkdown({ ignore: IGNORED, maxConsecutiveNewlines: 2 });
    let mainHtml = null;
    if (request.main) {
      // A page that marks its main content (exactly one <main> or role=main) keeps that element,
      // chrome removed, as Firecrawl's onlyMainContent does. Readability, the costliest step (about
      // half of a page's time), would keep less of it at best: it drops sections whose ids or
      // classes look like chrome (a section with the id `custom-headers` is a "header" to it).
      mainHtml = markedMain(request.html, request.url, request.chrome, htmlparser2);
      if (mainHtml === null) {
        // Other pages keep the article Readability finds, or what is left of their body.
        const document = parsePage(linkedom, request.html, request.url);
        removeChrome(document, request.chrome);
        mainHtml = new readability.Readability(document).parse()?.content ?? document.body?.innerHTML ?? '';
      }
    }
    const markdown = request.markdown ? converter.translate(mainHtml ?? parsePage(linkedom, request.html, request.url).documentElement.outerHTML).trim() : null;
    parentPort.postMessage({ id: request.id, mainHtml, markdown });
  } catch (error) {
    parentPort.postMessage({ id: request.id, error: error instanceof Error ? error.message : String(error) });
  }
});
