import { defineConfig } from 'tsup';
import { luaEsbuildPlugin } from './scripts/lua.mjs';

export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      'adapters/memory': 'adapters/memory/index.ts',
      'adapters/postgres': 'adapters/postgres/index.ts',
      'adapters/kv': 'adapters/kv/index.ts',
      'adapters/sqlite': 'adapters/sqlite/index.ts',
      http: 'src/http/index.ts',
      next: 'src/http/next.ts',
      express: 'src/http/express.ts',
      testing: 'src/testing/index.ts',
      storage: 'src/storage/index.ts',
    },
    format: ['esm', 'cjs'],
    dts: true,
    clean: false, // the build script empties dist once; per-config cleaning races between configs
    // Shared chunks keep one copy of each class (CrawlEngineError) across entry points, in CJS too.
    splitting: true,
    sourcemap: true,
    target: 'node20',
    platform: 'node',
    treeshake: true,
    esbuildPlugins: [luaEsbuildPlugin()], // adapters/kv imports its Lua scripts as strings
  },
  {
    // The browser client is one dependency-free ES module (the Express example serves the file as
    // it is): its own build without shared chunks, so the constants it uses are inlined.
    entry: { client: 'src/browser/client.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    clean: false,
    splitting: false,
    sourcemap: true,
    target: 'es2022',
    platform: 'browser',
  },
  {
    // The React hook is a client component: its own build, so the directive stays at the top.
    entry: { react: 'src/browser/react.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    clean: false,
    splitting: false,
    sourcemap: true,
    target: 'es2022',
    platform: 'browser',
    external: ['react'],
    banner: { js: "'use client';" },
  },
  {
    // The content worker (src/crawl/main-content.ts) is started from a file beside the code that
    // starts it, so it is its own entry: dist/content-worker.js, ES module, its libraries external.
    entry: { 'content-worker': 'src/crawl/content-worker.js' },
    format: ['esm'],
    dts: false,
    clean: false,
    splitting: false,
    sourcemap: true,
    target: 'node20',
    platform: 'node',
  },
  {
    entry: { cli: 'src/cli/index.ts' },
    format: ['esm'],
    dts: false,
    clean: false,
    splitting: false,
    sourcemap: true,
    target: 'node20',
    platform: 'node',
    banner: { js: '#!/usr/bin/env node' },
    esbuildPlugins: [luaEsbuildPlugin()], // the CLI bundles adapters/kv
  },
]);
