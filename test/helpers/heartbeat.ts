/**
 * Event-loop stall measurement for tests: a 5 ms interval timer whose longest gap between beats is
 * the longest time the event loop was held.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

/** Longest the event loop may be held at a time. */
export const MAX_GAP_MS = 100;

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
export async function heartbeat<T>(work: () => Promise<T>): Promise<{ value: T; maxGapMs: number; maxWallGapMs: number }> {
  let last = performance.now();
  let lastWait = runQueueMs() ?? 0;
  let maxGapMs = 0;
  let maxWallGapMs = 0;
  const beat = () => {
    const now = performance.now();
    const wait = runQueueMs() ?? 0;
    maxWallGapMs = Math.max(maxWallGapMs, now - last);
    maxGapMs = Math.max(maxGapMs, now - last - (wait - lastWait));
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
    return { value, maxGapMs, maxWallGapMs };
  } finally {
    clearInterval(timer);
  }
}

/** The event loop was never held for {@link MAX_GAP_MS} or more. */
export function expectNoStall(watched: { maxGapMs: number; maxWallGapMs: number }, what = ''): void {
  const detail = `${what}longest gap ${Math.round(watched.maxGapMs)} ms (${Math.round(watched.maxWallGapMs)} ms of wall time, including waits for a CPU)`;
  if (process.env.PARSE_BOUNDS_LOG !== undefined) console.log(expect.getState().currentTestName, detail);
  expect(watched.maxGapMs, detail).toBeLessThan(MAX_GAP_MS);
}

