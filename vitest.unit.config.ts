import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { luaVitePlugin } from './scripts/lua.mjs';

// `npm run test:unit`: the inner loop. Tests that import the sources directly and need no database
// or Redis server, no browser, no `npm run build` and no examples; about 20 s on 2 cores.
// DATABASE_URL and REDIS_URL are blanked, so the same files run the same way on every machine.
//
// Left to `npm test` (which runs everything, this list included):
// - need dist/ (npm run build) or the examples: cli, lazy-load, package, nextjs, browser (Chromium)
// - need a real Postgres or Redis (skipped without DATABASE_URL / REDIS_URL): kv-processes,
//   postgres-processes, neon, neon-http
// - slow here (3-40 s a file: PGlite start-up, ioredis-mock's Lua, 1,000-job and fuzz loads) or
//   timed (100 ms event-loop stalls, cost ratios) so they flake when two files share two cores:
//   bad-input, hostile-input, postgres, pg-listen, kv, starvation, hostile-corpus, http-fuzz,
//   parse-bounds, hostile-matching
// - the type tests (test/*.test-d.ts): `npm run typecheck` or `npm test`
export default defineConfig({
  plugins: [luaVitePlugin()], // adapters/kv imports its Lua scripts as strings
  test: {
    include: [
      'test/memory.test.ts',
      'test/robots.test.ts',
      'test/extract.test.ts',
      'test/netguard.test.ts',
      'test/fuzz.test.ts',
      'test/http.test.ts',
      'test/engine.test.ts',
      'test/url.test.ts',
      'test/fetcher.test.ts',
      'test/frameworks.test.ts',
      'test/react.test.ts',
      'test/policy.test.ts',
      'test/processor.test.ts',
      'test/render-heuristic.test.ts',
      'test/render-pipeline.test.ts',
    ],
    env: { DATABASE_URL: '', REDIS_URL: '' },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two workers even on two cores (vitest's default there is one): about 20 s instead of 35 s.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
