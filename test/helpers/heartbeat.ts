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

/**
 * Runs `work` with a 5 ms interval timer and reports the longest time between two beats
 * (`maxGapMs`, less any time the thread waited for a CPU) and the plain wall-clock longest gap.
 */
export async function heartbeat<T>(work: () => Promise<T>): Promise<{ value: T; maxGapMs: number; maxWallGapMs: number; gcInMaxGapMs: number }> {
  let last = performance.now();
  let lastWait = runQueueMs() ?? 0;
  let maxGapMs = 0;
  let maxWallGapMs = 0;
  let gcInMaxGapMs = 0;
  // Garbage-collector pauses, to say how much of the longest gap they were.
  const pauses: Array<{ start: number; end: number }> = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) pauses.push({ start: entry.startTime, end: entry.startTime + entry.duration });
  });
  observer.observe({ entryTypes: ['gc'] });
  const beat = () => {
    const now = performance.now();
    const wait = runQueueMs() ?? 0;
    maxWallGapMs = Math.max(maxWallGapMs, now - last);
    const gap = now - last - (wait - lastWait);
    if (gap > maxGapMs) {
      maxGapMs = gap;
      const from = last;
      gcInMaxGapMs = pauses.reduce((sum, p) => sum + Math.max(0, Math.min(p.end, now) - Math.max(p.start, from)), 0);
    }
    last = now;
    lastWait = wait;
  };
  const timer = setInterval(beat, 5);
  try {
    await new Promise((resolve) => setTimeout(resolve, 15));
    beat();
    maxGapMs = 0;
    maxWallGapMs = 0;
    const value = await work();
    beat(); // a parse that never yields shows up here, as one gap as long as itself
    return { value, maxGapMs, maxWallGapMs, gcInMaxGapMs };
  } finally {
    clearInterval(timer);
    observer.disconnect();
  }
}

/** The event loop was never held for {@link MAX_GAP_MS} or more. */
export function expectNoStall(watched: { maxGapMs: number; maxWallGapMs: number; gcInMaxGapMs?: number }, what = ''): void {
  const detail = `${what}longest gap ${Math.round(watched.maxGapMs)} ms (${Math.round(watched.maxWallGapMs)} ms of wall time, including waits for a CPU; ${Math.round(watched.gcInMaxGapMs ?? 0)} ms of it garbage collection)`;
  if (process.env.PARSE_BOUNDS_LOG !== undefined) console.log(expect.getState().currentTestName, detail);
  // The garbage collector's own pauses (a few hundred MB of parsed documents to collect, on a
  // shared machine) are the runtime's, not work this code does without yielding: they are
  // reported, and bounded separately.
  expect(watched.maxGapMs - (watched.gcInMaxGapMs ?? 0), detail).toBeLessThan(MAX_GAP_MS);
  expect(watched.maxGapMs, detail).toBeLessThan(MAX_GAP_WITH_GC_MS);
}
