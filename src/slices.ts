/**
 * Cooperative time slicing for CPU work on the event-loop thread (parsing, the extraction walk,
 * link filtering). Each run of such work holds the loop for at most {@link SLICE_MS} and then calls
 * {@link yieldToLoop}. Waiters resume one per turn of the event loop, so that several pages being
 * worked on at once do not add their slices up into one long turn: between two slices the loop
 * always gets to run timers and I/O.
 */

/** Longest stretch of synchronous work before yielding to the event loop. */
export const SLICE_MS = 10;

/** Taken at load, so that a test faking timers for a moment cannot strand every later waiter. */
const immediate = setImmediate;
const waiting: Array<() => void> = [];
let scheduled = false;

function resumeNext(): void {
  const next = waiting.shift();
  scheduled = waiting.length > 0;
  // Scheduled before `next` runs: an immediate queued while immediates run waits for the next turn.
  if (scheduled) immediate(resumeNext);
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
