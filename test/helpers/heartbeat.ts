/**
 * Event-loop stall measurement for tests: a 5 ms interval timer whose longest gap between beats is
 * the longest time the event loop was held.
 */
import { readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { expect } from 'vitest';

/** Longest the event loop may be held at a time. */
export const MAX_GAP_MS = 100;
/** Longest gap allowed when it includes garbage-collector pauses. */
export const MAX_GAP_WITH_GC_MS = 250;

/**
 * How long this thread has waited for a CPU (runnable, not running), in ms, on Linux: the test
 * machine is shared, and time the scheduler gave to other processes is not time the parser held
 * the event loop. Null elsewhere (then gaps are plain wall time).
 */
function runQueueMs(): number | null {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]) / 1e6;
  } catch {
    return null;
  }
}

/** What {@link heartbeat} measured. */
export interface Watched<T> {
  value: T;
  /** Longest gap between two beats, less the time the thread waited for a CPU. */
  maxGapMs: number;
  /** Longest gap in plain wall-clock time. */
  maxWallGapMs: number;
  /** Longest gap less the garbage collector's pauses in it or the thread's waits for a CPU, whichever is more: the longest time this code held the loop. */
  stallMs: number;
  /** The garbage collector's pauses inside the gap {@link stallMs} was measured on. */
  gcInMaxGapMs: number;
}

/** Gaps shorter than this are not kept for the garbage-collection accounting (they cannot be the longest). */
const KEEP_GAP_MS = 20;

/**
 * Runs `work` with a 5 ms interval timer and reports the longest time between two beats, with and
 * without the time the thread waited for a CPU, and without the garbage collector's pauses.
 *
 * The pauses are matched to the gaps after the work: Node delivers `gc` performance entries to
 * observers on a later turn, so at the beat that ends a gap the pauses inside it are often not
 * known yet (counting them then reported "0 ms of it garbage collection" for gaps that were
 * mostly that).
 */
export async function heartbeat<T>(work: () => Promise<T>): Promise<Watched<T>> {
  let last = performance.now();
  let lastWait = runQueueMs() ?? 0;
  let maxGapMs = 0;
  let maxWallGapMs = 0;
  let maxShortGapMs = 0;
  const gaps: Array<{ from: number; to: number; wait: number }> = [];
  const pauses: Array<{ start: number; end: number }> = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) pauses.push({ start: entry.startTime, end: entry.startTime + entry.duration });
  });
  observer.observe({ entryTypes: ['gc'] });
  const beat = () => {
    const now = performance.now();
    const wait = runQueueMs() ?? 0;
    maxWallGapMs = Math.max(maxWallGapMs, now - last);
    const net = now - last - (wait - lastWait);
    maxGapMs = Math.max(maxGapMs, net);
    if (net >= KEEP_GAP_MS) gaps.push({ from: last, to: now, wait: wait - lastWait });
    else maxShortGapMs = Math.max(maxShortGapMs, net);
    last = now;
    lastWait = wait;
  };
  const timer = setInterval(beat, 5);
  try {
    await new Promise((resolve) => setTimeout(resolve, 15));
    beat();
    maxGapMs = 0;
    maxWallGapMs = 0;
    maxShortGapMs = 0;
    gaps.length = 0;
    const value = await work();
    beat(); // a parse that never yields shows up here, as one gap as long as itself
    const measured = { maxGapMs, maxWallGapMs };
    clearInterval(timer);
    // Let the observer receive the last pauses.
    await new Promise((resolve) => setTimeout(resolve, 20));
    let stallMs = maxShortGapMs;
    let gcInMaxGapMs = 0;
    for (const { from, to, wait } of gaps) {
      const gc = pauses.reduce((sum, p) => sum + Math.max(0, Math.min(p.end, to) - Math.max(p.start, from)), 0);
      // The thread may have waited for a CPU during a pause: only the larger of the two is taken
      // off, so that no time is subtracted twice.
      const held = to - from - Math.max(wait, gc);
      if (held > stallMs) {
        stallMs = held;
        gcInMaxGapMs = gc;
      }
    }
    return { value, ...measured, stallMs, gcInMaxGapMs };
  } finally {
    clearInterval(timer);
    observer.disconnect();
  }
}

/**
 * The event loop was never held for `maxStallMs` ({@link MAX_GAP_MS} unless told) or more, less the
 * collector's reported pauses, nor for `maxGapMs` ({@link MAX_GAP_WITH_GC_MS}) with them.
 */
export function expectNoStall(
  watched: Omit<Watched<unknown>, 'value'>,
  what = '',
  { maxStallMs = MAX_GAP_MS, maxGapMs = MAX_GAP_WITH_GC_MS }: { maxStallMs?: number; maxGapMs?: number } = {},
): void {
  const detail = `${what}longest gap ${Math.round(watched.maxGapMs)} ms (${Math.round(watched.maxWallGapMs)} ms of wall time, including waits for a CPU); longest less garbage collection or CPU waits ${Math.round(watched.stallMs)} ms (${Math.round(watched.gcInMaxGapMs)} ms of garbage collection in that gap)`;
  if (process.env.PARSE_BOUNDS_LOG !== undefined) console.log(expect.getState().currentTestName, detail);
  // The garbage collector's own pauses (a few hundred MB of parsed documents to collect, on a
  // shared machine) are the runtime's, not work this code does without yielding: they are
  // reported, and bounded separately.
  expect(watched.stallMs, detail).toBeLessThan(maxStallMs);
  expect(watched.maxGapMs, detail).toBeLessThan(maxGapMs);
}
