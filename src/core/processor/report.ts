import type { RunReport } from '../types.js';

/** A report of a run that has done nothing yet: the one place a `RunReport` starts from. */
export function emptyRunReport(): RunReport {
  return { claimed: 0, succeeded: 0, failed: 0, skipped: 0, retried: 0, released: 0, durationMs: 0, jobsTouched: [], errors: [] };
}
