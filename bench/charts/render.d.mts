// Types of bench/charts/render.mjs, for the TypeScript that imports it (test/bench-charts.test.ts).
export type Crawler = 'bare' | 'crawlee' | 'memory' | 'postgres' | 'kv' | 'rest';
/** One measured throughput cell: storageRttMs 0 = storage reached directly; roundTripsPerPage = storage round trips (REST: requests) per stored page. */
export interface ThroughputFigure {
  siteLatencyMs: number;
  storageRttMs: number;
  processors: number;
  crawler: Crawler;
  pagesPerSecond: number;
  roundTripsPerPage?: number;
}
export interface Figures {
  throughput: ThroughputFigure[];
}
export interface Chart {
  file: string;
  name: string;
  title: string;
}
/** Display names by crawler, in the order the bars are drawn. */
export const CRAWLERS: Readonly<Record<Crawler, string>>;
/** Checks a figures object, with errors naming the bad field; returns it. */
export function validateFigures(figures: unknown): Figures;
/** The figures of the throughput table bench/run.mjs prints (its lines, or the text of BENCHMARKS.md). */
export function figuresFromMarkdown(markdown: string | string[]): Figures;
/** Installs vega and vega-lite into bench/charts/node_modules (npm ci) when they are missing. */
export function ensureChartDeps(): void;
/** The vega-lite specs of the charts, by file name without .svg. */
export function chartSpecs(figures: Figures): Record<string, object>;
/** Renders the charts as SVG files into outDir; needs bench/charts/node_modules. */
export function renderCharts(figures: Figures, outDir: string): Promise<Chart[]>;
/** For bench/run.mjs: installs if needed, renders the throughput table of `lines`, returns Markdown image lines. */
export function chartsFromBench(lines: string[], outDir: string, markdownDir: string): Promise<string[]>;
