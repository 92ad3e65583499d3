import { defineConfig } from 'vitest/config';
import { luaVitePlugin } from './scripts/lua.mjs';

// `npm run test:chaos`: the chaos suite, apart from `npm test` because it restarts the database
// server and kills processes. One test at a time.
export default defineConfig({
  plugins: [luaVitePlugin()], // adapters/kv imports its Lua scripts as strings
  test: {
    include: ['test/chaos/**/*.chaos.ts'],
    testTimeout: 300_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
