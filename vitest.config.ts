import { configDefaults, defineConfig } from 'vitest/config';
import { luaVitePlugin } from './scripts/lua.mjs';

/**
 * The files that drive Chromium (and the Next.js example's build): they run after all the others
 * (a second group), so that a browser's processes never share the two cores with the timed tests
 * (event-loop stalls of 100 ms, cost ratios) of the first group.
 */
const BROWSER_TESTS = ['test/render.test.ts', 'test/browser.test.ts', 'test/nextjs.test.ts'];

export default defineConfig({
  plugins: [luaVitePlugin()], // adapters/kv imports its Lua scripts as strings
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...BROWSER_TESTS],
          sequence: { groupOrder: 0 },
          typecheck: {
            enabled: true,
            include: ['test/**/*.test-d.ts'],
            tsconfig: './tsconfig.json',
          },
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: BROWSER_TESTS,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
