/**
 * Cooperative time slicing for CPU work on the event-loop thread (parsing, the extraction walk,
 * link filtering). Such work checks {@link sliceUsed} between small units and, once it is true,
 * calls {@link yieldToLoop}. The slice is shared: waiters resume one per turn of the event loop,
 * and each resumption starts the turn's one slice, so that several pages worked on at once do not
 * add their slices up into one long turn. Work that starts in a turn nobody was resumed in (an I/O
 * callback) finds the slice used up after its first unit, and queues like the rest.
 */

/** Longest stretch of synchronous work before yielding to the event loop. */
export const SLICE_MS = 10;

/** Taken at load, so that a test faking timers for a moment cannot strand every later waiter. */
const immediate = setImmediate;
const waiting: Array<() => void> = [];
/** When the current turn's slice began (the last resumption). */
let sliceStartedAt = Number.NEGATIVE_INFINITY;

/** Whether this turn's shared slice of `sliceMs` is used up, so the caller should yield. */
export function sliceUsed(sliceMs: number = SLICE_MS): boolean {
  return performance.now() - sliceStartedAt >= sliceMs;
}
let scheduled = false;

function resumeNext(): void {
  const next = waiting.shift();
  scheduled = waiting.length > 0;
  // Scheduled before `next` runs: an immediate queued while immediates run waits for the next turn.
  if (scheduled) immediate(resumeNext);
  sliceStartedAt = performance.now();
  next?.();
}

/** Resolves on a later turn of the event loop, after timers and I/O; one waiter per turn. */
export function yieldToLoop(): Promise<void> {
  return new Promise<void>((resolve) => {
    waiting.push(resolve);
    if (!scheduled) {
      scheduled = true;
      immediate(resumeNext);
    }
  });
}
