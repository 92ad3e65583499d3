// Over 300 lines because the chart specs, the font width table and the Markdown adapter belong together.
// The bench throughput figures as SVG charts (vega-lite → vega's SVG renderer, no canvas, no native deps).
// vega and vega-lite live in bench/charts/node_modules, installed on demand (ensureChartDeps), so the
// library's own `npm ci` stays light.
//
//   node bench/charts/render.mjs <figures.json> [outDir]         render a figures file (outDir: docs/bench)
//   node bench/charts/render.mjs --from-markdown <BENCHMARKS.md>  print the figures of its throughput table
//
// From bench/run.mjs, after the throughput table is printed into `lines`:
//   print(...(await (await import('./charts/render.mjs')).chartsFromBench(lines, here('../docs/bench'), here('..'))));
//
// Input, a figures object (JSON):
//   { "throughput": [ { "siteLatencyMs": 20, "storageRttMs": 0, "processors": 1, "crawler": "postgres",
//                       "pagesPerSecond": 406, "roundTripsPerPage": 2.1 }, … ] }
// crawler is one of bare, crawlee, memory, postgres, kv, rest; storageRttMs 0 = storage reached
// directly; roundTripsPerPage (storage round trips, or REST requests, per stored page) is optional.
// Output, in outDir: throughput-by-site-latency.svg, throughput-by-storage-rtt.svg, throughput-scaling.svg.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * @typedef {'bare' | 'crawlee' | 'memory' | 'postgres' | 'kv' | 'rest'} Crawler
 * @typedef {{ siteLatencyMs: number, storageRttMs: number, processors: number, crawler: Crawler, pagesPerSecond: number, roundTripsPerPage?: number }} ThroughputFigure
 * @typedef {{ throughput: ThroughputFigure[] }} Figures
 * @typedef {{ file: string, name: string, title: string }} Chart
 */

/** Display names, in the order the bars are drawn. */
export const CRAWLERS = /** @type {const} */ ({
  bare: 'bare undici + cheerio',
  crawlee: 'Crawlee 3.x',
  memory: 'memory',
  postgres: 'Postgres',
  kv: 'KV (ioredis)',
  rest: 'KV (REST)',
});
/** The adapters whose storage is reached over a network, hence the ones a storage RTT applies to. */
const SHARED = ['postgres', 'kv', 'rest'];
/** The throughput table's columns (bench/run.mjs) → crawler; and its round-trip columns. */
const TRIP_COLUMNS = { postgres: 'Postgres round trips / page', kv: 'KV (ioredis) round trips / page', rest: 'KV (REST) requests / page' };

const WIDTH = 520;
const FONT = 'Helvetica, Arial, sans-serif';
/**
 * Helvetica/Arial advance widths (1/1000 em) of the printable ASCII characters from space on. Vega
 * measures text with a canvas, which this renderer goes without; its fallback guesses 0.8 em a
 * character, which pads every chart with whitespace. Others count as 0.6 em; bold as 7 % wider.
 */
const ADVANCE = [
  278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584,
  556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278,
  469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260,
  334, 584,
];
/** vega's textMetrics.width: the text's width in pixels at the item's font size and weight. */
function textWidth(/** @type {any} */ item, /** @type {unknown} */ text) {
  const value = text == null ? '' : String(text).trim();
  const size = item.fontSize != null ? Number(item.fontSize) || 0 : 11;
  let em = 0;
  for (const ch of value) em += ADVANCE[(ch.codePointAt(0) ?? 0) - 32] ?? 600;
  const bold = item.fontWeight === 'bold' || Number(item.fontWeight) >= 600;
  return ((em * size) / 1000) * (bold ? 1.07 : 1) * 1.03; // 3 % to spare: fonts differ a little
}

/** Checks a figures object, with errors naming the bad field; returns it. @param {unknown} figures @returns {Figures} */
export function validateFigures(figures) {
  const f = /** @type {any} */ (figures);
  if (f === null || typeof f !== 'object' || !Array.isArray(f.throughput)) throw new TypeError('figures.throughput must be an array');
  f.throughput.forEach((/** @type {any} */ t, /** @type {number} */ i) => {
    const at = `figures.throughput[${i}]`;
    if (t === null || typeof t !== 'object') throw new TypeError(`${at} must be an object`);
    if (!Object.hasOwn(CRAWLERS, t.crawler))
      throw new TypeError(`${at}.crawler must be one of ${Object.keys(CRAWLERS).join(', ')}, got ${JSON.stringify(t.crawler)}`);
    for (const key of ['siteLatencyMs', 'storageRttMs', 'pagesPerSecond'])
      if (typeof t[key] !== 'number' || !Number.isFinite(t[key]) || t[key] < 0)
        throw new TypeError(`${at}.${key} must be a number ≥ 0, got ${JSON.stringify(t[key])}`);
    if (!Number.isInteger(t.processors) || t.processors < 1)
      throw new TypeError(`${at}.processors must be an integer ≥ 1, got ${JSON.stringify(t.processors)}`);
    if (t.roundTripsPerPage !== undefined && (typeof t.roundTripsPerPage !== 'number' || !Number.isFinite(t.roundTripsPerPage) || t.roundTripsPerPage < 0))
      throw new TypeError(`${at}.roundTripsPerPage must be a number ≥ 0 when present, got ${JSON.stringify(t.roundTripsPerPage)}`);
  });
  return f;
}

/**
 * The figures of the throughput table that bench/run.mjs prints (its printed lines, or the text of
 * BENCHMARKS.md): one figure per measured cell; '—' cells are skipped, a missing `storage RTT` column is 0 ms.
 * @param {string | string[]} markdown
 * @returns {Figures}
 */
export function figuresFromMarkdown(markdown) {
  const rows = (Array.isArray(markdown) ? markdown : markdown.split('\n')).map((line) => line.trim());
  const start = rows.findIndex((line) => /^\|\s*server latency\s*\|/.test(line));
  if (start < 0) throw new Error('no throughput table (a row starting with "| server latency |") in the bench output');
  const cells = (/** @type {string} */ line) =>
    line
      .slice(1, -1)
      .split('|')
      .map((c) => c.trim());
  const header = cells(rows[start]);
  const column = (/** @type {string} */ name) => header.indexOf(name);
  const number = (/** @type {string | undefined} */ cell) => {
    // `1,234`, `20 ms`, and `2 ms (3.8 measured)` (the storage RTT set, then the one measured).
    const n = Number(
      String(cell ?? '')
        .replace(/,/g, '')
        .replace(/\s*\([^)]*\)$/, '')
        .replace(/\s*ms$/, ''),
    );
    return cell === undefined || cell === '—' || cell === '' || !Number.isFinite(n) ? undefined : n;
  };
  /** @type {ThroughputFigure[]} */
  const throughput = [];
  for (const line of rows.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const row = cells(line);
    const siteLatencyMs = number(row[column('server latency')]);
    const storageRttMs = column('storage RTT') < 0 ? 0 : number(row[column('storage RTT')]);
    const processors = number(row[column('processors')]);
    if (siteLatencyMs === undefined || storageRttMs === undefined || processors === undefined)
      throw new Error(`throughput row without latency, RTT or processors: ${line}`);
    for (const [crawler, label] of Object.entries(CRAWLERS)) {
      const pagesPerSecond = number(row[column(label)]);
      if (column(label) < 0 || pagesPerSecond === undefined) continue;
      const trips = crawler in TRIP_COLUMNS && column(TRIP_COLUMNS[crawler]) >= 0 ? number(row[column(TRIP_COLUMNS[crawler])]) : undefined;
      throughput.push({
        siteLatencyMs,
        storageRttMs,
        processors,
        crawler: /** @type {Crawler} */ (crawler),
        pagesPerSecond,
        ...(trips === undefined ? {} : { roundTripsPerPage: trips }),
      });
    }
  }
  return validateFigures({ throughput });
}

/** Installs vega and vega-lite into bench/charts/node_modules (npm ci against its lock file) when they are missing. */
export function ensureChartDeps() {
  if (existsSync(join(here, 'node_modules', 'vega-lite', 'package.json'))) return;
  console.error('installing the chart renderer (npm ci --prefix bench/charts)…');
  execFileSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['ci', '--prefix', here, '--no-audit', '--no-fund'], { stdio: ['ignore', 2, 2] });
}

const xml = (/** @type {string} */ text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (/** @type {number} */ n) => Math.round(n).toLocaleString('en-US');
const order = Object.values(CRAWLERS);

/** A horizontal grouped bar chart: one bar per figure, the value (and `label`) printed at its end. */
function barSpec({ title, subtitle, description, data, group, groupBy, groupTitle, facet, facetBy }) {
  // Groups and panels in numeric order (0 ms before 20 ms; 1 processor before 4), as explicit lists.
  const numeric = (field, by) => [...new Map(data.map((d) => [d[field], d[by]]))].sort((a, b) => a[1] - b[1]).map(([label]) => label);
  const groups = numeric(group, groupBy);
  const layer = {
    width: WIDTH,
    height: { step: 18 },
    encoding: {
      y: { field: 'crawler', type: 'nominal', sort: order, title: null, axis: { labelLimit: 320, labelFontSize: 12 } },
      yOffset: { field: group, type: 'ordinal', sort: groups },
      x: {
        field: 'pagesPerSecond',
        type: 'quantitative',
        title: 'pages per second (higher is better)',
        axis: { tickCount: 7, labelSeparation: 6 },
        scale: { nice: true, zero: true },
      },
    },
    layer: [
      {
        mark: { type: 'bar', height: { band: 0.9 } },
        encoding: {
          color: { field: group, type: 'ordinal', sort: groups, title: groupTitle, scale: { scheme: 'tableau10' } },
          tooltip: [{ field: 'label', type: 'nominal' }],
        },
      },
      {
        mark: { type: 'text', align: 'left', baseline: 'middle', dx: 4, fontSize: 11, color: '#222' },
        encoding: {
          text: { field: 'label', type: 'nominal' },
          // Text sits at the start of its offset band by default: centre it on its bar.
          yOffset: { field: group, type: 'ordinal', sort: groups, band: 0.5 },
        },
      },
    ],
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    description,
    background: 'white',
    padding: 12,
    title: { text: title, subtitle, anchor: 'start', fontSize: 15, subtitleFontSize: 12, subtitleColor: '#444' },
    data: { values: data },
    config: {
      font: FONT,
      axis: { labelFontSize: 11, titleFontSize: 12, labelColor: '#222', titleColor: '#222' },
      legend: { labelFontSize: 11, titleFontSize: 12, orient: 'bottom', direction: 'horizontal' },
      header: { labelFontSize: 12, titleFontSize: 12 },
      view: { stroke: null },
    },
    ...(facet
      ? {
          facet: {
            row: {
              field: facet,
              type: 'ordinal',
              sort: numeric(facet, facetBy),
              title: null,
              header: { labelAngle: 0, labelOrient: 'top', labelAnchor: 'start', labelFontWeight: 'bold', labelPadding: 6 },
            },
          },
          spec: layer,
        }
      : layer),
  };
}

/** The vega-lite specs of the three charts, by file name (without .svg). @param {Figures} figures */
export function chartSpecs(figures) {
  const { throughput } = validateFigures(figures);
  const row = (/** @type {ThroughputFigure} */ t, /** @type {object} */ extra) => ({ ...t, crawler: CRAWLERS[t.crawler], ...extra });
  const ms = (/** @type {number} */ n) => `${n} ms`;
  const direct = throughput.filter((t) => t.storageRttMs === 0);
  // The RTT rows' site latency (bench/run.mjs: 20 ms); without RTT rows, the slowest site measured directly.
  const withRtt = throughput.filter((t) => t.storageRttMs > 0);
  const rttSite = Math.max(0, ...(withRtt.length > 0 ? withRtt : throughput).map((t) => t.siteLatencyMs));
  /** @type {Record<string, object>} */
  const specs = {
    'throughput-by-site-latency': barSpec({
      title: 'Throughput by crawler and site latency',
      subtitle: 'One processor, storage reached directly (no added round trip). Bars: pages per second.',
      description: 'Horizontal bar chart: pages per second of each crawler, one bar per site latency.',
      data: direct.filter((t) => t.processors === 1).map((t) => row(t, { latency: ms(t.siteLatencyMs), label: fmt(t.pagesPerSecond) })),
      group: 'latency',
      groupBy: 'siteLatencyMs',
      groupTitle: 'site latency',
    }),
    'throughput-by-storage-rtt': barSpec({
      title: 'Throughput of the shared adapters by storage round-trip time',
      subtitle: `Site latency ${rttSite} ms. Bars: pages per second, labelled with storage round trips (REST: requests) per page.`,
      description: 'Horizontal bar chart: pages per second of Postgres, KV on ioredis and KV over REST at each added storage RTT, for 1 and 4 processors.',
      data: throughput
        .filter((t) => SHARED.includes(t.crawler) && t.siteLatencyMs === rttSite)
        .map((t) =>
          row(t, {
            rtt: ms(t.storageRttMs),
            procs: t.processors === 1 ? '1 processor' : `${t.processors} processors`,
            label: `${fmt(t.pagesPerSecond)}${t.roundTripsPerPage === undefined ? '' : ` · ${t.roundTripsPerPage.toFixed(2)} trips/page`}`,
          }),
        ),
      group: 'rtt',
      groupBy: 'storageRttMs',
      groupTitle: 'storage RTT',
      facet: 'procs',
      facetBy: 'processors',
    }),
    'throughput-scaling': barSpec({
      title: 'Scaling: one processor vs four on the same job',
      subtitle: 'Storage reached directly. Four processors: four processes on shared storage (memory: four loops in one process).',
      description: 'Horizontal bar chart: pages per second of each storage adapter with 1 and with 4 processors, one panel per site latency.',
      data: direct
        .filter((t) => t.crawler !== 'bare' && t.crawler !== 'crawlee')
        .map((t) => row(t, { procs: String(t.processors), latency: `site latency ${t.siteLatencyMs} ms`, label: fmt(t.pagesPerSecond) })),
      group: 'procs',
      groupBy: 'processors',
      groupTitle: 'processors',
      facet: 'latency',
      facetBy: 'siteLatencyMs',
    }),
  };
  return specs;
}

/**
 * Renders the charts of `figures` as SVG files into `outDir` (created if needed); same figures, same bytes.
 * Needs bench/charts/node_modules (ensureChartDeps).
 * @param {Figures} figures
 * @param {string} outDir
 * @returns {Promise<Chart[]>}
 */
export async function renderCharts(figures, outDir) {
  // Specifiers held in variables: the type check of bench/ must not depend on these optional installs.
  const vegaName = 'vega';
  const liteName = 'vega-lite';
  const vega = await import(vegaName);
  const { compile } = await import(liteName);
  vega.textMetrics.width = textWidth;
  mkdirSync(outDir, { recursive: true });
  /** @type {Chart[]} */
  const charts = [];
  for (const [name, spec] of Object.entries(chartSpecs(figures))) {
    vega.resetSVGDefIds(); // clip path ids restart per chart: a chart's bytes do not depend on what rendered before it
    const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
    const svg = await view.toSVG();
    view.finalize();
    const { title, description } = /** @type {any} */ (spec);
    // <title> and <desc> first: what screen readers and image viewers announce for the file.
    const named = svg.replace(/^<svg [^>]*>/, (open) => `${open}<title>${xml(title.text)}</title><desc>${xml(description)}</desc>`);
    const file = join(outDir, `${name}.svg`);
    writeFileSync(file, `${named}\n`);
    charts.push({ file, name, title: title.text });
  }
  return charts;
}

/**
 * For bench/run.mjs: installs the renderer if needed, renders the throughput table found in the printed
 * `lines` into `outDir`, and returns the Markdown image lines (paths relative to `markdownDir`) to print.
 * @param {string[]} lines
 * @param {string} outDir
 * @param {string} markdownDir the directory of the Markdown file the lines go into
 * @returns {Promise<string[]>}
 */
export async function chartsFromBench(lines, outDir, markdownDir) {
  ensureChartDeps();
  const charts = await renderCharts(figuresFromMarkdown(lines), outDir);
  return charts.flatMap((c) => [`![${c.title}](${relative(markdownDir, c.file).split('\\').join('/')})`, '']);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [first, second] = process.argv.slice(2);
  if (first === '--from-markdown' && second) {
    console.log(JSON.stringify(figuresFromMarkdown(readFileSync(second, 'utf8')), null, 2));
  } else if (first && !first.startsWith('-')) {
    ensureChartDeps();
    const outDir = second ?? fileURLToPath(new URL('../../docs/bench/', import.meta.url));
    for (const chart of await renderCharts(JSON.parse(readFileSync(first, 'utf8')), outDir)) console.log(chart.file);
  } else {
    console.error('usage: node bench/charts/render.mjs <figures.json> [outDir]\n       node bench/charts/render.mjs --from-markdown <BENCHMARKS.md>');
    process.exit(2);
  }
}
