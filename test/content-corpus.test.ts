/**
 * Main-content quality on the content corpus (test/fixtures/corpus, README there): for each page,
 * the share of its hand-marked main text recovered in `text` and `markdown` (recall) and the share
 * of their words that come from outside it (boilerplate). Over the corpus, recall ≥ 0.9 and
 * boilerplate ≤ 0.1; the per-page table is printed.
 */
import { describe, expect, test } from 'vitest';
import { loadCorpus, markdownText, score } from '../bench/content-score.mjs';
import { pageContent } from '../src/crawl/content.js';
import { parseHtml } from '../src/crawl/parse.js';
import { pageText } from '../src/crawl/page-text.js';

const corpus = loadCorpus();
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

describe('the content corpus', () => {
  test('has at least 6 pages of each kind asked for, each with hand-marked main text', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(6);
    for (const kind of ['documentation', 'blog post', 'news article', 'product page', 'page with a cookie banner']) {
      expect(
        corpus.some((page) => page.kind === kind),
        kind,
      ).toBe(true);
    }
    for (const page of corpus) expect(page.mainText.split(/\s+/).length, page.file).toBeGreaterThan(50);
  });

  /**
   * The pages as they are, where each marks its main content (`<main>` or role=main), so the marked
   * element is kept, chrome removed; and the same pages with that mark taken off (the element
   * renamed to a `<div>`), as older sites are, so Readability finds the article.
   */
  const variants = {
    'as published': (html: string) => html,
    'without a <main> mark (Readability)': (html: string) => html.replace(/<(\/?)main\b/gi, '<$1div').replace(/\srole=(["'])main\1/gi, ''),
  };
  for (const [variant, change] of Object.entries(variants)) {
    test(`main content (onlyMainContent), pages ${variant}: recall ≥ 0.9 and boilerplate ≤ 0.1 over the corpus, in text and markdown`, {
      timeout: 60_000,
    }, async () => {
      const rows: Array<{ file: string; text: ReturnType<typeof score>; markdown: ReturnType<typeof score>; ms: number }> = [];
      for (const page of corpus) {
        const html = change(page.html);
        const document = await parseHtml(html);
        const started = performance.now();
        const fields = await pageContent(html, document, { formats: ['text', 'markdown'], url: page.url });
        const ms = performance.now() - started;
        rows.push({ file: page.file, text: score(page.mainText, fields.text!), markdown: score(page.mainText, markdownText(fields.markdown!)), ms });
      }
      const table = [
        `| page (${variant}) | text recall | text boilerplate | markdown recall | markdown boilerplate | ms |`,
        '| --- | --- | --- | --- | --- | --- |',
        ...rows.map(
          (r) =>
            `| ${r.file} | ${pct(r.text.recall)} | ${pct(r.text.boilerplate)} | ${pct(r.markdown.recall)} | ${pct(r.markdown.boilerplate)} | ${r.ms.toFixed(1)} |`,
        ),
        `| mean | ${pct(mean(rows.map((r) => r.text.recall)))} | ${pct(mean(rows.map((r) => r.text.boilerplate)))} | ${pct(mean(rows.map((r) => r.markdown.recall)))} | ${pct(mean(rows.map((r) => r.markdown.boilerplate)))} | ${mean(rows.map((r) => r.ms)).toFixed(1)} |`,
      ].join('\n');
      console.log(table);
      for (const format of ['text', 'markdown'] as const) {
        expect(mean(rows.map((r) => r[format].recall)), `${format} recall\n${table}`).toBeGreaterThanOrEqual(0.9);
        expect(mean(rows.map((r) => r[format].boilerplate)), `${format} boilerplate\n${table}`).toBeLessThanOrEqual(0.1);
        // And no page is far off (the product page keeps its vendor, price, tax line, image
        // descriptions and delivery notes, which sit inside its product block: about a third).
        for (const r of rows) {
          expect(r[format].recall, `${r.file} ${format} recall\n${table}`).toBeGreaterThanOrEqual(0.8);
          expect(r[format].boilerplate, `${r.file} ${format} boilerplate\n${table}`).toBeLessThanOrEqual(0.35);
        }
      }
    });
  }

  test('the sliced fallback (pages past the library bounds) also keeps the main content and drops most chrome', async () => {
    const rows = [];
    for (const page of corpus) {
      const text = await pageText(await parseHtml(page.html), { skipChrome: true });
      rows.push({ file: page.file, ...score(page.mainText, text) });
    }
    console.log(rows.map((r) => `${r.file}: recall ${pct(r.recall)}, boilerplate ${pct(r.boilerplate)}`).join('\n'));
    expect(mean(rows.map((r) => r.recall))).toBeGreaterThanOrEqual(0.9);
    expect(mean(rows.map((r) => r.boilerplate))).toBeLessThanOrEqual(0.2);
  });
});
