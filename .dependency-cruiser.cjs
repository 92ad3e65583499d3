// The layers of src/ and adapters/ as rules (npm run lint:deps). Type-only imports are seen
// (tsPreCompilationDeps) and told apart as 'type-only', so the browser rule can allow them.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Import cycles, type-only ones included: they make the layers meaningless.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-is-the-bottom',
      comment: 'src/core (engine, jobs, processor, storage contract) knows nothing of the HTTP API, the browser client, the CLI or any adapter.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^(src/(http|browser|cli)/|adapters/)' },
    },
    {
      name: 'crawl-below-core',
      comment: 'src/crawl (fetch, parse, robots, URL rules) is used by the processor; it reaches neither storage, the engine nor HTTP.',
      severity: 'error',
      from: { path: '^src/crawl/' },
      to: { path: ['^src/core/(storage|engine|jobs|progress)\\.ts$', '^src/core/processor/', '^src/http/'] },
    },
    {
      name: 'http-not-crawl',
      comment: 'src/http drives the engine; fetching and parsing belong to the processor.',
      severity: 'error',
      from: { path: '^src/http/' },
      to: { path: '^src/crawl/' },
    },
    {
      name: 'browser-types-only',
      comment: 'src/browser ships to browsers: from outside its folder only types, the dependency-free src/core/constants.ts and React.',
      severity: 'error',
      from: { path: '^src/browser/' },
      // node: modules are browser-no-node-builtins' business.
      to: { pathNot: ['^src/browser/', '^src/core/constants\\.ts$', '(^|/)node_modules/react/'], dependencyTypesNot: ['type-only', 'core'] },
    },
    {
      name: 'browser-no-node-builtins',
      comment: 'src/browser ships to browsers: no node: modules.',
      severity: 'error',
      from: { path: '^src/browser/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'adapters-through-storage-entry',
      comment: 'Adapters see src/ only through crawl-engine/storage (src/storage/index.ts), as a third-party adapter would.',
      severity: 'error',
      from: { path: '^adapters/' },
      to: { path: '^src/', pathNot: '^src/storage/index\\.ts$' },
    },
    {
      name: 'no-test-code-in-production',
      comment: 'src and adapters ship; test/ and bench/ do not.',
      severity: 'error',
      from: { path: '^(src|adapters)/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'no-dev-dependencies-in-production',
      comment: 'What src and adapters import must be a dependency or a peer dependency of the package (types of @types/* aside).',
      severity: 'error',
      from: { path: '^(src|adapters)/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['npm', 'npm-peer', 'npm-optional'], pathNot: '^node_modules/@types/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^dist/' },
  },
};
