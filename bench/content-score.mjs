// The content corpus (test/fixtures/corpus) and its scorer, shared by bench/content-libs.mjs and
// test/content-corpus.test.ts. Each page's main content is marked by hand as CSS selectors in
// corpus.json; the scorer compares word tokens (bags of words, counts kept):
// - recall: share of the hand-marked main text's tokens found in the output;
// - boilerplate: share of the output's tokens that are not main-text tokens (what is left once
//   the output's tokens are matched against the main text's).
import { readFileSync } from 'node:fs';
import { load } from 'cheerio';

const dir = new URL('../test/fixtures/corpus/', import.meta.url);

/**
 * @typedef {{ file: string, kind: string, url: string, main: string[], exclude: string[] }} CorpusEntry
 * @typedef {CorpusEntry & { html: string, mainText: string }} CorpusPage
 */

/** @returns {CorpusPage[]} every page of the corpus, with its HTML and hand-marked main text. */
export function loadCorpus() {
  /** @type {{ pages: CorpusEntry[] }} */
  const manifest = JSON.parse(readFileSync(new URL('corpus.json', dir), 'utf8'));
  return manifest.pages.map((page) => {
    const html = readFileSync(new URL(page.file, dir), 'utf8');
    return { ...page, html, mainText: markedText(html, page) };
  });
}

/** The text of the elements a page's `main` selectors mark, less its `exclude` ones. */
export function markedText(html, page) {
  const $ = load(html);
  $('script, style, noscript, template').remove();
  for (const selector of page.exclude) $(selector).remove();
  const parts = [];
  for (const selector of page.main) {
    const found = $(selector);
    if (found.length === 0) throw new Error(`${page.file}: main selector ${selector} matches nothing`);
    found.each((_, element) => {
      parts.push($(element).text());
    });
  }
  return parts.join('\n');
}

/** Lower-case word tokens (runs of letters and digits). */
export function tokens(text) {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** Markdown as the text a reader sees: link and image targets dropped, so URLs are not counted as words. */
export function markdownText(markdown) {
  return markdown
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/^\s*\[[^\]]+\]:\s*\S+.*$/gm, '')
    .replace(/<https?:[^>]*>/g, '');
}

/**
 * Recall and boilerplate of `output` against the hand-marked `main` text.
 * @returns {{ recall: number, boilerplate: number, mainTokens: number, outputTokens: number }}
 */
export function score(main, output) {
  const want = new Map();
  const mainTokens = tokens(main);
  for (const t of mainTokens) want.set(t, (want.get(t) ?? 0) + 1);
  const outputTokens = tokens(output);
  let matched = 0;
  for (const t of outputTokens) {
    const left = want.get(t) ?? 0;
    if (left > 0) {
      matched++;
      want.set(t, left - 1);
    }
  }
  return {
    recall: mainTokens.length === 0 ? 1 : matched / mainTokens.length,
    boilerplate: outputTokens.length === 0 ? 0 : (outputTokens.length - matched) / outputTokens.length,
    mainTokens: mainTokens.length,
    outputTokens: outputTokens.length,
  };
}
