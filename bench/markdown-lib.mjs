// HTML to markdown of the main content as a Crawlee user would write it in a `requestHandler`, with
// the libraries crawl-engine uses for `formats: ['markdown']` (docs/content-extraction.md):
// Mozilla's Readability over linkedom finds the main content, node-html-markdown writes markdown.
// Used by bench/crawlee/crawl.mjs (BENCH_MARKDOWN=1) for the markdown section of the bench.
import { Readability } from '@mozilla/readability';
import { parseHTML } from 'linkedom';
import { NodeHtmlMarkdown } from 'node-html-markdown';

const converter = new NodeHtmlMarkdown();

/** The main content of `html` (fetched from `url`) as markdown; the whole body when Readability finds none. */
export function toMarkdown(html, url) {
  const { document } = parseHTML(html);
  // Readability resolves relative links against the document's base.
  const base = document.createElement('base');
  base.setAttribute('href', url);
  document.head?.prepend(base);
  const article = new Readability(document).parse();
  return converter.translate(article?.content ?? document.body?.innerHTML ?? '');
}
