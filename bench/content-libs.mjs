// Main-content extractors and HTML → markdown converters, measured on the content corpus
// (test/fixtures/corpus): quality (recall of the hand-marked main text, share of boilerplate),
// time per page and memory. `node bench/content-libs.mjs` prints markdown tables (docs/content-extraction.md).
// Each combination runs in its own process, so its memory is its own:
// `node bench/content-libs.mjs --child <extractor> <converter>` prints one JSON line.
// `node bench/content-libs.mjs --sizes` times the chosen pipeline on pages of growing size;
// `--steps` times each of its steps on each corpus page (CPU time, best of 8).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadCorpus, markdownText, score } from './content-score.mjs';

const ROUNDS = Number(process.env.ROUNDS ?? 20);

/** Main-content extractors: HTML in, the main content's HTML out. */
const extractors = {
  /** The whole page: no main-content detection. */
  none: async () => (html, _url) => html,
  readability: async () => {
    const { parseHTML } = await import('linkedom');
    const { Readability } = await import('@mozilla/readability');
    return (html, _url) => {
      const { document } = parseHTML(html);
      return new Readability(document).parse()?.content ?? '';
    };
  },
  defuddle: async () => {
    const { parseHTML } = await import('linkedom');
    const { Defuddle } = await import('defuddle/node');
    return async (html, url) => {
      const { document } = parseHTML(html);
      // useAsync: false, so nothing is fetched from third parties.
      return (await Defuddle(document, url, { useAsync: false })).content ?? '';
    };
  },
};

/** HTML → markdown converters. */
const converters = {
  'node-html-markdown': async () => {
    const { NodeHtmlMarkdown } = await import('node-html-markdown');
    const nhm = new NodeHtmlMarkdown();
    return (html, _url) => nhm.translate(html);
  },
  turndown: async () => {
    const { default: TurndownService } = await import('turndown');
    const service = new TurndownService({ headingStyle: 'atx', codeBlockStyle: 'fenced' });
    service.remove(['script', 'style', 'noscript', 'template']);
    return (html, _url) => service.turndown(html);
  },
  mdream: async () => {
    const { htmlToMarkdown } = await import('@mdream/js');
    return (html, _url) => htmlToMarkdown(html);
  },
  /** mdream's own main-content isolation (its `minimal` preset), on the whole page. */
  'mdream-minimal': async () => {
    const { htmlToMarkdown, withMinimalPreset } = await import('@mdream/js');
    return (html, url) => htmlToMarkdown(html, withMinimalPreset({ origin: new URL(url).origin }));
  },
};

async function child(extractorName, converterName) {
  const rssBefore = process.memoryUsage().rss;
  const loadStart = performance.now();
  const extract = await extractors[extractorName]();
  /** @type {(html: string, url: string) => string} */
  const convert = await converters[converterName]();
  const loadMs = performance.now() - loadStart;
  const pages = loadCorpus();
  const perPage = pages.map(() => ({ extractMs: [], convertMs: [] }));
  const quality = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, page] of pages.entries()) {
      const t0 = performance.now();
      const main = await extract(page.html, page.url);
      const t1 = performance.now();
      const markdown = convert(main, page.url);
      const t2 = performance.now();
      perPage[i].extractMs.push(t1 - t0);
      perPage[i].convertMs.push(t2 - t1);
      if (round === 0) quality.push({ file: page.file, ...score(page.mainText, markdownText(markdown)), markdownChars: markdown.length });
    }
  }
  const median = (values) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const sum = (values) => values.reduce((a, b) => a + b, 0);
  console.log(
    JSON.stringify({
      extractor: extractorName,
      converter: converterName,
      loadMs,
      // Per page, the median over rounds (the first rounds warm the JIT up); summed over the corpus, divided by its size.
      extractMsPerPage: sum(perPage.map((p) => median(p.extractMs))) / pages.length,
      convertMsPerPage: sum(perPage.map((p) => median(p.convertMs))) / pages.length,
      maxRssMb: process.resourceUsage().maxRSS / 1024,
      rssGrowthMb: (process.memoryUsage().rss - rssBefore) / 1024 / 1024,
      quality,
    }),
  );
}

/** Times the pipeline the crawler uses (readability over linkedom, node-html-markdown) on pages of growing size. */
async function sizes() {
  const extract = await extractors.readability();
  const convert = await converters['node-html-markdown']();
  const page = loadCorpus().find((p) => p.file === 'python-sorting.html');
  const body = page.html.slice(page.html.indexOf('<body'), page.html.lastIndexOf('</body>'));
  for (const kb of [50, 100, 250, 500, 1000, 2000]) {
    const copies = Math.max(1, Math.round((kb * 1024) / body.length));
    const html = `<html><head><title>t</title></head><body>${Array.from({ length: copies }, () => `<section>${body}</section>`).join('')}</body></html>`;
    // CPU time, not wall time: the machine may be shared.
    const cpuMs = () => {
      const used = process.cpuUsage();
      return (used.user + used.system) / 1000;
    };
    const times = [];
    for (let i = 0; i < 3; i++) {
      const t0 = cpuMs();
      convert(await extract(html, page.url), page.url);
      times.push(cpuMs() - t0);
    }
    const nodes = (html.match(/<[a-z]/gi) ?? []).length;
    console.log(`| ${Math.round(html.length / 1024)} KB | ${nodes} elements | ${Math.round(Math.min(...times))} ms of CPU |`);
  }
}

/** CPU time of each step of the chosen pipeline (linkedom parse, Readability, node-html-markdown), per corpus page, best of 8. */
async function steps() {
  const { parseHTML } = await import('linkedom');
  const { Readability } = await import('@mozilla/readability');
  const { NodeHtmlMarkdown } = await import('node-html-markdown');
  const nhm = new NodeHtmlMarkdown();
  const cpuMs = () => {
    const used = process.cpuUsage();
    return (used.user + used.system) / 1000;
  };
  console.log('| page | KB | elements | linkedom parse | Readability | node-html-markdown |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const page of loadCorpus()) {
    const best = [Infinity, Infinity, Infinity];
    let elements = 0;
    for (let i = 0; i < 8; i++) {
      const c0 = cpuMs();
      const { document } = parseHTML(page.html);
      const c1 = cpuMs();
      elements = document.querySelectorAll('*').length;
      const c2 = cpuMs();
      const article = new Readability(document).parse();
      const c3 = cpuMs();
      nhm.translate(article?.content ?? '');
      const c4 = cpuMs();
      best[0] = Math.min(best[0], c1 - c0);
      best[1] = Math.min(best[1], c3 - c2);
      best[2] = Math.min(best[2], c4 - c3);
    }
    console.log(`| ${page.file} | ${Math.round(page.html.length / 1024)} | ${elements} | ${best.map((ms) => `${ms.toFixed(1)} ms`).join(' | ')} |`);
  }
}

const pct = (x) => `${(x * 100).toFixed(1)}%`;

async function main() {
  const self = fileURLToPath(import.meta.url);
  const combos = [
    ['none', 'node-html-markdown'],
    ['readability', 'node-html-markdown'],
    ['readability', 'turndown'],
    ['readability', 'mdream'],
    ['defuddle', 'node-html-markdown'],
    ['defuddle', 'turndown'],
    ['defuddle', 'mdream'],
    ['none', 'turndown'],
    ['none', 'mdream'],
    ['none', 'mdream-minimal'],
  ];
  const runs = combos.map(([e, c]) => JSON.parse(execFileSync(process.execPath, [self, '--child', e, c], { encoding: 'utf8' }).trim().split('\n').pop()));
  console.log(`Node ${process.version}, ${ROUNDS} rounds over the corpus; ms per page = median per page over the rounds, averaged over the pages.\n`);
  console.log('| main content | markdown | recall (min / mean) | boilerplate (max / mean) | extract ms/page | convert ms/page | import ms | max RSS MB |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const run of runs) {
    const r = run.quality.map((q) => q.recall);
    const b = run.quality.map((q) => q.boilerplate);
    const mean = (v) => v.reduce((a, x) => a + x, 0) / v.length;
    console.log(
      `| ${run.extractor} | ${run.converter} | ${pct(Math.min(...r))} / ${pct(mean(r))} | ${pct(Math.max(...b))} / ${pct(mean(b))} | ${run.extractMsPerPage.toFixed(2)} | ${run.convertMsPerPage.toFixed(2)} | ${Math.round(run.loadMs)} | ${Math.round(run.maxRssMb)} |`,
    );
  }
  console.log('\nPer page (markdown, link targets dropped):\n');
  console.log(`| page | ${runs.map((r) => `${r.extractor} + ${r.converter}`).join(' | ')} |`);
  console.log(`| --- | ${runs.map(() => '---').join(' | ')} |`);
  for (const [i, q] of runs[0].quality.entries()) {
    console.log(`| ${q.file} | ${runs.map((r) => `${pct(r.quality[i].recall)} / ${pct(r.quality[i].boilerplate)}`).join(' | ')} |`);
  }
}

const [mode, a, b] = process.argv.slice(2);
if (mode === '--child') await child(a, b);
else if (mode === '--sizes') await sizes();
else if (mode === '--steps') await steps();
else await main();
