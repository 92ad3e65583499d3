// Size budgets for `npm run size` (size-limit with @size-limit/preset-small-lib: esbuild bundles
// each check, minified, and the bundle is measured brotli-compressed). It measures dist/, so build
// first (`npm run check:package` and `npm run build` both do).
//
// - Every peerDependency (react, pg, @neondatabase/serverless, ioredis, next, express, ...) is left
//   out by size-limit itself (it adds them to `ignore`, i.e. esbuild externals).
// - The browser checks use esbuild's default browser platform: a Node built-in reached from
//   client.js or react.js fails the check ("Could not resolve"), which is what a browser bundler
//   would do too.
// - The serverless check bundles for Node (platform 'node': built-ins stay external) and leaves out
//   what is only reached through a dynamic import() (undici, cheerio and htmlparser2, which the
//   processor loads on first use): it is what a function that only creates jobs and streams
//   progress loads. A static import of one of those would land in this bundle and fail its budget.
// Budgets are about 20% above the sizes measured when they were set (client 902 B, react 1,494 B,
// serverless 144,304 B).
import { existsSync } from 'node:fs';

if (!existsSync(new URL('./dist/index.js', import.meta.url))) {
  throw new Error('dist/ is missing: run `npm run build` (or `npm run check:package`) before `npm run size`');
}

/** esbuild plugin: every import() target stays external (loaded lazily, not at start-up). */
const lazyImportsExternal = {
  name: 'lazy-imports-external',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, external: true } : undefined));
  },
};

const serverless = (config) => ({
  ...config,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  plugins: [...(config.plugins ?? []), lazyImportsExternal],
  // tsup's shared chunks are imported bare by each entry; with "sideEffects": false esbuild drops
  // those bare imports and warns about each one.
  logOverride: { ...config.logOverride, 'ignored-bare-import': 'silent' },
});

const serverlessImports = {
  'dist/index.js': '{ createCrawlEngine }',
  'dist/http.js': '{ createCrawlHandler }',
  'dist/adapters/postgres.js': '{ postgresStorage }',
};

export default [
  {
    name: 'crawl-engine/client (browser)',
    path: 'dist/client.js',
    limit: '1.1 kB',
  },
  {
    name: 'crawl-engine/react (browser, react external)',
    path: 'dist/react.js',
    limit: '1.8 kB',
  },
  {
    name: 'serverless: createCrawlEngine + crawl-engine/http + crawl-engine/adapters/postgres',
    path: Object.keys(serverlessImports),
    import: serverlessImports,
    modifyEsbuildConfig: serverless,
    limit: '175 kB',
  },
];
