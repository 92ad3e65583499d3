/**
 * `runStorageConformance`: one suite that every `CrawlStorage` adapter must pass, the built-in
 * ones and third-party ones alike. It takes the test function of your runner (vitest, jest,
 * node:test, mocha) and asserts with `node:assert`, so it depends on no test framework. The
 * model-based test also needs `fast-check` (an optional peer dependency), and is skipped without it.
 *
 * @module crawl-engine/testing
 */
import type { CrawlStorage } from '../core/storage.js';
import { admissionTests } from './admission.js';
import { batchTests } from './batches.js';
import { claimTests } from './claims.js';
import { deleteTests } from './delete.js';
import { completionTests } from './completion.js';
import { eventTests } from './events.js';
import type { Register } from './fixtures.js';
import { jobTests } from './jobs.js';
import { lastmodTests } from './lastmod.js';
import { maxPagesTests } from './max-pages.js';
import { type ConformanceModelOptions, modelTests } from './model.js';
import { politenessTests } from './politeness.js';
import { refusalTests } from './refusals.js';
import { resultsTests } from './results.js';
import { watchTests } from './watch.js';
import { webhookTests } from './webhooks.js';

export { jobRecord } from './fixtures.js';
export type { ConformanceModelOptions } from './model.js';

/** A runner's `test(name, fn, timeout?)`. */
export type ConformanceTestFn = (name: string, fn: () => Promise<void>, timeout?: number) => unknown;
/** A runner's `describe(name, fn)`; optional. */
export type ConformanceDescribeFn = (name: string, fn: () => void) => unknown;

export interface ConformanceOptions {
  /** Shown in test names: `storage conformance (postgres)`. */
  name: string;
  /** Makes a fresh, empty (or at least isolated) storage for each test. */
  storage: () => CrawlStorage | Promise<CrawlStorage>;
  /** Your runner's test function. @default globalThis.test ?? globalThis.it */
  test?: ConformanceTestFn;
  /** Your runner's describe function. @default globalThis.describe, else no grouping */
  describe?: ConformanceDescribeFn;
  /** Called after each test with the storage it used (close connections here). */
  teardown?: (storage: CrawlStorage) => unknown;
  /** Names (or parts of names) of tests to skip. */
  skip?: string[];
  /**
   * The per-job event limit the factory's storage was configured with; enables the trimming test.
   */
  eventLimit?: number;
  /** Per-test timeout passed to `test`. @default 30000 */
  timeoutMs?: number;
  /**
   * The model-based test (random operation sequences checked against a reference model): how many
   * sequences, how long, and the `seed` / `path` a failure printed, to replay it. `false` leaves
   * the test out.
   */
  model?: ConformanceModelOptions | false;
}

type SkipFn = (reason: string) => void;

/**
 * Marks the running test skipped through whatever the runner offers: vitest's and node:test's
 * context `skip(reason)`, mocha's `this.skip()`. Without one (jest) the reason is printed and the
 * test ends as passed.
 */
function skipper(context: unknown, self: unknown): (reason: string) => never {
  return (reason) => {
    const fromContext = (context as { skip?: SkipFn } | undefined)?.skip;
    const fromThis = (self as { skip?: SkipFn } | undefined)?.skip;
    if (typeof fromContext === 'function') fromContext.call(context, reason);
    else if (typeof fromThis === 'function') fromThis.call(self, reason);
    else console.warn(`[crawl-engine] conformance test skipped: ${reason}`);
    // node:test's skip() only marks the test: end it here.
    throw new SkippedTest(reason);
  };
}

class SkippedTest extends Error {}

/** Registers the conformance tests with your runner. */
export function runStorageConformance(options: ConformanceOptions): void {
  const g = globalThis as { test?: ConformanceTestFn; it?: ConformanceTestFn; describe?: ConformanceDescribeFn };
  const test = options.test ?? g.test ?? g.it;
  if (typeof test !== 'function') {
    throw new TypeError("[crawl-engine] runStorageConformance: pass your runner's test function, e.g. `import { test } from 'vitest'`");
  }
  const describe = options.describe ?? g.describe ?? ((_: string, fn: () => void) => fn());
  const timeout = options.timeoutMs ?? 30_000;
  const skip = options.skip ?? [];

  const it: Register = (name, body) => {
    if (skip.some((s) => name.includes(s))) return;
    test(
      name,
      // A rest parameter keeps `fn.length` at 0, so jest does not take the test for callback-style;
      // vitest and node:test pass their context first, mocha its context as `this`.
      async function (this: unknown, ...args: unknown[]) {
        const storage = await options.storage();
        try {
          await body(storage, skipper(args[0], this));
        } catch (error) {
          if (!(error instanceof SkippedTest)) throw error;
        } finally {
          await options.teardown?.(storage);
        }
      },
      timeout,
    );
  };

  describe(`storage conformance (${options.name})`, () => {
    jobTests(it);
    refusalTests(it);
    claimTests(it);
    admissionTests(it);
    completionTests(it);
    batchTests(it);
    maxPagesTests(it);
    politenessTests(it);
    eventTests(it, options.eventLimit);
    watchTests(it);
    deleteTests(it);
    lastmodTests(it);
    webhookTests(it);
    resultsTests(it);
    if (options.model !== false) modelTests(it, options.model ?? {}, timeout);
  });
}
