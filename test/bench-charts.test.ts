/**
 * The bench charts (bench/charts/render.mjs): the throughput table bench/run.mjs prints becomes
 * figures, bad figures are refused by field, and — when bench/charts/node_modules is installed
 * (`npm ci --prefix bench/charts`; CI does not) — the sample renders as well-formed SVG with its
 * title and one bar and one value label per figure, byte for byte the same twice.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { chartSpecs, type Figures, figuresFromMarkdown, renderCharts, validateFigures } from '../bench/charts/render.mjs';

const chartsDir = fileURLToPath(new URL('../bench/charts/', import.meta.url));
const installed = existsSync(join(chartsDir, 'node_modules', 'vega-lite', 'package.json'));
const sample: Figures = JSON.parse(readFileSync(join(chartsDir, 'sample-figures.json'), 'utf8'));

/** The throughput table as bench/run.mjs prints it, storage-RTT rows (with the RTT measured) and round-trip columns included. */
const TABLE = [
  'Some text before.',
  '',
  '| server latency | storage RTT | processors | bare undici + cheerio | Crawlee 3.x | memory | Postgres | KV (ioredis) | KV (REST) | memory / bare | Postgres / bare | KV (ioredis) / bare | KV (REST) / bare | memory / Crawlee | Postgres / Crawlee | Postgres round trips / page | KV (ioredis) round trips / page | KV (REST) requests / page |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  '| 0 ms | 0 ms | 1 | 2,292 | 1,100 | 2,350 | 427 | 1,940 | 687 | 103 % | 19 % | 85 % | 30 % | 214 % | 39 % | 3.02 | 2.50 | 4.00 |',
  '| 0 ms | 0 ms | 4 | — | — | 2,856 | 324 | 1,242 | 432 | 125 % | 14 % | 54 % | 19 % | 260 % | 29 % | 3.10 | 2.60 | 4.10 |',
  '| 20 ms | 2 ms (3.8 measured) | 1 | 800 | — | — | 300 | 700 | 250 | — | 38 % | 88 % | 31 % | — | — | 3.00 | 2.40 | 4.00 |',
  '',
  'Text after.',
];

describe('figures from the bench output', () => {
  test('every measured cell of the throughput table becomes one figure; dashes are skipped', () => {
    const { throughput } = figuresFromMarkdown(TABLE);
    expect(throughput).toHaveLength(6 + 4 + 4);
    expect(throughput).toContainEqual({ siteLatencyMs: 0, storageRttMs: 0, processors: 1, crawler: 'crawlee', pagesPerSecond: 1100 });
    expect(throughput).toContainEqual({ siteLatencyMs: 0, storageRttMs: 0, processors: 4, crawler: 'kv', pagesPerSecond: 1242, roundTripsPerPage: 2.6 });
    expect(throughput).toContainEqual({ siteLatencyMs: 20, storageRttMs: 2, processors: 1, crawler: 'rest', pagesPerSecond: 250, roundTripsPerPage: 4 });
    expect(throughput).toContainEqual({ siteLatencyMs: 20, storageRttMs: 2, processors: 1, crawler: 'bare', pagesPerSecond: 800 });
    expect(throughput.filter((t) => t.crawler === 'memory')).toHaveLength(2);
  });

  test('a table without the storage RTT column (older BENCHMARKS.md) is all storage RTT 0 ms', () => {
    const { throughput } = figuresFromMarkdown([
      '| server latency | processors | bare undici + cheerio | memory | Postgres |',
      '|---|---|---|---|---|',
      '| 20 ms | 1 | 809 | 832 | 406 |',
      '| 20 ms | 4 | — | 2,213 | 330 |',
    ]);
    expect(throughput).toHaveLength(5);
    expect(throughput.every((t) => t.storageRttMs === 0 && t.siteLatencyMs === 20)).toBe(true);
    expect(throughput).toContainEqual({ siteLatencyMs: 20, storageRttMs: 0, processors: 4, crawler: 'memory', pagesPerSecond: 2213 });
  });

  test('no throughput table is an error', () => {
    expect(() => figuresFromMarkdown('# nothing here')).toThrow(/no throughput table/);
  });
});

describe('validateFigures', () => {
  const good = { siteLatencyMs: 0, storageRttMs: 0, processors: 1, crawler: 'memory', pagesPerSecond: 10 };
  test.each([
    [null, /figures\.throughput must be an array/],
    [{ throughput: {} }, /figures\.throughput must be an array/],
    [{ throughput: [{ ...good, crawler: 'sqlite' }] }, /figures\.throughput\[0\]\.crawler must be one of/],
    [{ throughput: [good, { ...good, pagesPerSecond: Number.NaN }] }, /figures\.throughput\[1\]\.pagesPerSecond/],
    [{ throughput: [{ ...good, storageRttMs: -1 }] }, /figures\.throughput\[0\]\.storageRttMs/],
    [{ throughput: [{ ...good, processors: 1.5 }] }, /figures\.throughput\[0\]\.processors/],
    [{ throughput: [{ ...good, roundTripsPerPage: '3' }] }, /figures\.throughput\[0\]\.roundTripsPerPage/],
  ])('refuses %j', (figures, message) => {
    expect(() => validateFigures(figures)).toThrow(message);
    expect(() => chartSpecs(figures as Figures)).toThrow(message);
  });
  test('accepts the sample', () => {
    expect(validateFigures(sample)).toBe(sample);
  });
});

/** A minimal XML well-formedness check: one root, tags balanced and nested, attributes quoted, entities known. */
function checkWellFormed(xml: string): void {
  const stack: string[] = [];
  let roots = 0;
  const token = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->|([^<]+)|(<)/g;
  for (const m of xml.trim().matchAll(token)) {
    const [, closing, name, , selfClosing, text, stray] = m;
    if (stray) throw new Error(`malformed tag at ${m.index}: ${xml.slice(m.index, m.index + 40)}`);
    if (text !== undefined) {
      if (stack.length === 0) throw new Error(`text outside the root at ${m.index}`);
      const bad = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[\da-fA-F]+);)/.exec(text);
      if (bad) throw new Error(`bad entity at ${m.index + bad.index}`);
      continue;
    }
    if (!name) continue;
    if (closing) {
      if (stack.pop() !== name) throw new Error(`</${name}> closes the wrong element at ${m.index}`);
    } else {
      if (stack.length === 0) roots++;
      if (!selfClosing) stack.push(name);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed: ${stack.join(' > ')}`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
}

/** The bars (rect marks) and value labels (text marks of the chart's layer) of a vega SVG. */
function marks(svg: string, kind: 'rect' | 'text'): number {
  let n = 0;
  for (const [, body] of svg.matchAll(new RegExp(`<g class="mark-${kind} role-mark [^"]*"[^>]*>([\\s\\S]*?)</g>`, 'g')))
    n += (body!.match(kind === 'rect' ? /<path /g : /<text /g) ?? []).length;
  return n;
}

describe.skipIf(!installed)('rendered charts (needs npm ci --prefix bench/charts)', () => {
  const out = mkdtempSync(join(tmpdir(), 'bench-charts-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));
  const t = sample.throughput;
  const direct = t.filter((f) => f.storageRttMs === 0);
  const withRtt = t.filter((f) => f.storageRttMs > 0);
  const rttSite = Math.max(...(withRtt.length > 0 ? withRtt : t).map((f) => f.siteLatencyMs));
  const expected: Record<string, { title: string; bars: number }> = {
    'throughput-by-site-latency': { title: 'Throughput by crawler and site latency', bars: direct.filter((f) => f.processors === 1).length },
    'throughput-by-storage-rtt': {
      title: 'Throughput of the shared adapters by storage round-trip time',
      bars: t.filter((f) => ['postgres', 'kv', 'rest'].includes(f.crawler) && f.siteLatencyMs === rttSite).length,
    },
    'throughput-scaling': {
      title: 'Scaling: one processor vs four on the same job',
      bars: direct.filter((f) => f.crawler !== 'bare' && f.crawler !== 'crawlee').length,
    },
  };

  test('each chart is well-formed SVG with its title and one labelled bar per figure, the same bytes twice', async () => {
    const charts = await renderCharts(sample, out);
    expect(charts.map((c) => c.name).sort()).toEqual(Object.keys(expected).sort());
    for (const chart of charts) {
      const svg = readFileSync(chart.file, 'utf8');
      const want = expected[chart.name]!;
      expect(() => checkWellFormed(svg), chart.name).not.toThrow();
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), chart.name).toBe(true);
      expect(svg).toContain(`<title>${want.title.replace(/&/g, '&amp;')}</title>`);
      expect(svg).toMatch(/<desc>[^<]+<\/desc>/);
      expect(svg).toContain('pages per second');
      expect(want.bars, chart.name).toBeGreaterThan(0);
      expect(marks(svg, 'rect'), `${chart.name} bars`).toBe(want.bars);
      expect(marks(svg, 'text'), `${chart.name} value labels`).toBe(want.bars);
      expect(svg).toMatch(/^<svg [^>]*width="\d+" height="\d+"/);
    }
    const first = charts.map((c) => readFileSync(c.file, 'utf8'));
    await renderCharts(sample, out);
    expect(charts.map((c) => readFileSync(c.file, 'utf8'))).toEqual(first);
  });

  test('the value labels carry the figures, with round trips per page on the storage-RTT chart', async () => {
    const charts = await renderCharts(figuresFromMarkdown(TABLE), out);
    const svg = readFileSync(charts.find((c) => c.name === 'throughput-by-storage-rtt')!.file, 'utf8');
    // Only the 20 ms site has storage-RTT rows: its three shared adapters at 2 ms.
    expect(marks(svg, 'rect')).toBe(3);
    for (const label of ['300 · 3.00 trips/page', '700 · 2.40 trips/page', '250 · 4.00 trips/page']) expect(svg).toContain(label);
    expect(svg).not.toContain('1,242');
    expect(svg).toContain('Site latency 20 ms');
  });
});
