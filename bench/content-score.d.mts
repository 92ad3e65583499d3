// Types of bench/content-score.mjs, for test/content-corpus.test.ts.
export interface CorpusEntry {
  file: string;
  kind: string;
  url: string;
  main: string[];
  exclude: string[];
}
export interface CorpusPage extends CorpusEntry {
  html: string;
  mainText: string;
}
export interface Score {
  recall: number;
  boilerplate: number;
  mainTokens: number;
  outputTokens: number;
}
export function loadCorpus(): CorpusPage[];
export function markedText(html: string, page: CorpusEntry): string;
export function tokens(text: string): string[];
export function markdownText(markdown: string): string;
export function score(main: string, output: string): Score;
