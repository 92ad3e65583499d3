import { defineConfig } from 'vitest/config';
import { luaVitePlugin } from './scripts/lua.mjs';

export default defineConfig({
  plugins: [luaVitePlugin()], // adapters/kv imports its Lua scripts as strings
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    typecheck: {
      enabled: true,
      include: ['test/**/*.test-d.ts'],
      tsconfig: './tsconfig.json',
    },
  },
});
