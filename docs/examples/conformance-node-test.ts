/**
 * Running the conformance suite under `node --test` (docs/adapters.md, step 4). node:test takes a
 * test's timeout in an options object before the function, so `test` is wrapped; vitest, jest and
 * mocha take the runner's own `test` as is.
 */
import { describe, test } from 'node:test';
import { runStorageConformance } from 'crawl-engine/testing';
import { skeletonStorage } from './adapter-skeleton.js';

runStorageConformance({
  name: 'skeleton',
  storage: () => skeletonStorage({ client: null, maxEventsPerJob: 20 }),
  eventLimit: 20,
  test: (name, fn, timeout) => test(name, { timeout }, fn),
  describe,
});
