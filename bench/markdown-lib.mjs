// The main content as markdown as a Crawlee user would write it in a `requestHandler`, the way
// crawl-engine does for `formats: ['markdown']` (docs/content-extraction.md), with the same
// libraries: a page that marks its main content (one <main> or role=main) keeps that element
// without its chrome (taken from the `$` Crawlee has already parsed); any other page goes through
// Mozilla's Readability over linkedom; node-html-markdown writes markdown. Used by
// bench/crawlee/crawl.mjs (BENCH_MARKDOWN=1) for the markdown section of the bench.
import { Readability } from '@mozilla/readability';
import { parseHTML } from 'linkedom';
import { NodeHtmlMarkdown } from 'node-html-markdown';

const converter = new NodeHtmlMarkdown();
const CHROME =
  'nav, aside, footer, form, dialog, menu, header, [hidden], [aria-hidden="true"], [role="navigation"], [role="complementary"], [role="dialog"], [class*="cookie"], [class*="sidebar"], [class*="share"]';

/** The main content of `html` (fetched from `url`, parsed by Crawlee as `$`) as markdown. */
export function toMarkdown(html, url, $) {
  const marked = $('main, [role="main"]');
  if (marked.length === 1) {
    const main = marked.clone();
    main.find(CHROME).remove();
    return converter.translate(main.html() ?? '');
  }
  const { document } = parseHTML(html);
  // Readability resolves relative links against the document's base.
  const base = document.createElement('base');
  base.setAttribute('href', url);
  document.head?.prepend(base);
  const article = new Readability(document).parse();
  return converter.translate(article?.content ?? document.body?.innerHTML ?? '');
}
