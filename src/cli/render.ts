/**
 * Progress on stderr: a bar redrawn in place on a terminal, a plain line at most once a second
 * otherwise, nothing with --quiet; and the summary line.
 */
import type { Job, JobCounts, ProgressEvent } from '../core/types.js';
import { TERMINAL_EVENTS } from '../core/types.js';
import { cliWording } from './errors.js';

export interface Progress {
  /** Takes the counts of an event of the job (and draws at job events). */
  onEvent(event: ProgressEvent, interrupted: boolean): void;
  /** Takes the counts of the job as stored (they only ever raise the figures). */
  absorb(job: Job): void;
  /** Stops the ticker. */
  stop(): void;
  /** Clears the bar's line, for a message in its place. */
  clearLine(): string;
  /** The last line, showing nothing in flight; ends the bar's line on a terminal. */
  finish(): void;
  /** `Done: 12 pages in 1.2s (…)`, as of the job given. */
  summary(job: Job, status: string, failures: Map<string, number>, out: string | undefined): string;
}

const WIDTH = 20;

/**
 * `maxPages` is the most the job will fetch; `before` the job's counts when this process took it
 * over (resume), so that the rate counts this process's pages only; `inFlight` the URLs this
 * process holds right now.
 */
export function createProgress(options: { quiet: boolean; maxPages: number; before: JobCounts | null; inFlight: () => number }): Progress {
  const err = process.stderr;
  const tty = err.isTTY === true && !options.quiet;
  const plain = !err.isTTY && !options.quiet;
  const { maxPages } = options;
  const started = Date.now();
  const fetchedOf = (c: JobCounts) => c.succeeded + c.failed;
  const baseline = options.before === null ? 0 : fetchedOf(options.before);
  const baselineDone = options.before === null ? 0 : fetchedOf(options.before) + options.before.skipped;
  // Counters only ever grow (events of concurrent pages can arrive out of order): keep maxima.
  const seen = { fetched: baseline, discovered: options.before?.discovered ?? 1, failed: options.before?.failed ?? 0, skipped: options.before?.skipped ?? 0 };
  let events = options.before !== null;
  let completed = false;
  let terminalDrawn = false;
  let filled = 0;
  let lastDraw = 0;
  let lastLine = '';
  const rate = (pages: number) => (pages / Math.max((Date.now() - started) / 1000, 0.001)).toFixed(1);
  const take = (c: JobCounts) => {
    seen.fetched = Math.max(seen.fetched, fetchedOf(c));
    seen.discovered = Math.max(seen.discovered, c.discovered);
    seen.failed = Math.max(seen.failed, c.failed);
    seen.skipped = Math.max(seen.skipped, c.skipped);
  };
  /** `ended`: the job has ended (nothing is in flight any more). */
  const draw = (force = false, ended = false) => {
    if (!events || (!tty && !plain)) return;
    const now = Date.now();
    if (!force && now - lastDraw < (tty ? 80 : 900)) return;
    lastDraw = now;
    // The bar is pages done out of maxPages (the most the job will fetch), so it never moves back
    // as links are discovered; a completed job fills it.
    const fraction = completed ? 1 : Math.min(1, seen.fetched / maxPages);
    filled = Math.max(filled, Math.floor(fraction * WIDTH));
    const inFlight = ended ? 0 : options.inFlight();
    const line =
      `[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${seen.fetched} fetched / ${seen.discovered} discovered (max ${maxPages})` +
      ` · ${seen.failed} failed${seen.skipped > 0 ? ` · ${seen.skipped} skipped (robots.txt)` : ''} · ${inFlight} in flight · ${rate(seen.fetched - baseline)} pages/s`;
    // A line wider than the terminal would wrap, and \r would then redraw only its last row.
    if (tty) err.write(`\r\x1b[2K${err.columns > 1 && line.length >= err.columns ? `${line.slice(0, err.columns - 2)}…` : line}`);
    else if (line !== lastLine) err.write(`${line}\n`);
    lastLine = line;
  };
  const ticker = tty || plain ? setInterval(() => draw(), tty ? 100 : 1000) : null;
  ticker?.unref();

  return {
    onEvent(event, interrupted) {
      events = true;
      take(event.counts);
      if (event.type === 'job:completed') completed = true;
      if (interrupted) return;
      // Page events only update the counters; the ticker draws. Drawn at a page event, the
      // in-flight figure would always miss the page that just finished and its successor.
      if (!event.type.startsWith('job:')) return;
      const terminal = TERMINAL_EVENTS.has(event.type);
      draw(true, terminal);
      if (terminal) terminalDrawn = true;
    },
    absorb(job) {
      take(job.counts);
      if (job.status === 'completed') completed = true;
    },
    stop() {
      if (ticker !== null) clearInterval(ticker);
    },
    clearLine: () => (tty ? '\r\x1b[2K' : ''),
    finish() {
      if (!terminalDrawn) draw(true, true);
      if (tty) err.write('\n');
    },
    summary(job, status, failures, out) {
      const c = job.counts;
      const done = c.succeeded + c.failed + c.skipped;
      const thisRun = done - baselineDone;
      const seconds = (Date.now() - started) / 1000;
      const byCode = [...failures].map(([code, n]) => `${code} ${n}`).join(', ');
      return (
        `${status}: ${done} page${done === 1 ? '' : 's'}${options.before === null ? '' : ` (${thisRun} in this run)`} in ${seconds.toFixed(1)}s ` +
        `(${rate(thisRun)} pages/s), ${c.succeeded} ok, ${c.failed} failed${byCode ? ` (${byCode})` : ''}${c.skipped > 0 ? `, ${c.skipped} skipped by robots.txt` : ''}` +
        `${job.error ? ` — ${job.error.code}: ${cliWording(job.error.message)}` : ''}. Job ${job.id}${out ? `, results in ${out}` : ''}.`
      );
    },
  };
}

/** The counts of a job in the words of the progress line, for `resume`. */
export function countsLine(job: Job): string {
  const c = job.counts;
  return (
    `${c.succeeded + c.failed} fetched / ${c.discovered} discovered (max ${job.options.maxPages}) · ${c.failed} failed` +
    `${c.skipped > 0 ? ` · ${c.skipped} skipped (robots.txt)` : ''} · ${c.queued} queued`
  );
}
