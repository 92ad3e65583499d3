import { fileURLToPath } from 'node:url';

// crawl-engine is linked from the repository root (file:../..), outside this app's folder.
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** @type {import('next').NextConfig} */
const nextConfig = {
  // Loaded by Node from node_modules at run time rather than bundled (it imports undici, cheerio and
  // htmlparser2 lazily) when crawl-engine is installed from npm. Linked from this repository
  // (file:../..), its real path is outside node_modules and Turbopack bundles it.
  // playwright-core (rendering, loaded on the first render) is never bundled either.
  serverExternalPackages: ['crawl-engine', 'playwright-core'],
  outputFileTracingRoot: repoRoot,
  turbopack: { root: repoRoot },
};

export default nextConfig;
