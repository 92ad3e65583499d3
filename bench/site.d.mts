export interface SiteOptions {
  pages: number;
  fanout: number;
  latencyMs: number;
  paragraphs: number;
  host: string;
  port: number;
  /** Turns a request into a 503 ('error'), one never answered ('hang') or a TCP reset ('reset'). */
  fault?: (path: string) => 'error' | 'hang' | 'reset' | null;
}
export interface Site {
  url: string;
  origin: string;
  opts: SiteOptions;
  requests: string[];
  hits: Map<string, number>;
  pageUrl(i: number): string;
  close(): Promise<void>;
}
export function linksOf(i: number, opts: Pick<SiteOptions, 'pages' | 'fanout'>): number[];
export function pagesWithin(maxDepth: number, opts: Pick<SiteOptions, 'pages' | 'fanout'>): Map<number, number>;
export function pageHtml(i: number, opts: SiteOptions): string;
export function startSite(options?: Partial<SiteOptions>): Promise<Site>;
