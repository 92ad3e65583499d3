// The examples use crawl-engine from this repository (`"crawl-engine": "file:../.."`), so they need
// its build, dist/. This file checks for it, and builds it when the repository's own dependencies
// are installed (the root `npm ci`). Run by the examples' `prestart` / `predev` / `prebuild`
// scripts, and by `npm run example:express` / `npm run example:next` at the repository root.
//
// Copying an example out of this repository? Replace `file:../..` with a version of crawl-engine
// and delete the `pre…` scripts from its package.json.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** The files of dist/ that package.json's exports point at. */
function exportedFiles() {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  const files = new Set();
  const walk = (value) => {
    if (typeof value === 'string') {
      if (value.startsWith('./dist/')) files.add(join(repoRoot, value));
    } else if (value !== null && typeof value === 'object') {
      for (const inner of Object.values(value)) walk(inner);
    }
  };
  walk(pkg.exports);
  return [...files];
}

/** Newest modification time of a file or of anything under a folder. */
function newest(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = 0;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

/** Why dist/ must be (re)built, or null when it is complete and newer than the sources. */
export function buildNeeded() {
  const missing = exportedFiles().filter((file) => !existsSync(file));
  if (missing.length > 0) return existsSync(join(repoRoot, 'dist')) ? 'dist/ is incomplete' : 'dist/ does not exist yet';
  const built = Math.min(...exportedFiles().map((file) => statSync(file).mtimeMs));
  const sources = Math.max(...['src', 'adapters', 'package.json', 'tsup.config.ts'].map((p) => newest(join(repoRoot, p))));
  return sources > built ? 'the sources changed since dist/ was built' : null;
}

/**
 * Makes sure dist/ is there and current: builds it with the root's `npm run build` when the root's
 * dependencies are installed; otherwise stops with the command to run. `example` names the root
 * script in the message (express, next).
 */
export function ensureLibrary({ example = 'express' } = {}) {
  const reason = buildNeeded();
  if (reason === null) return;
  if (!existsSync(join(repoRoot, 'node_modules', 'tsup'))) {
    console.error(
      [
        '',
        `crawl-engine has not been built (${reason}).`,
        'The examples use the crawl-engine of this repository (file:../..), which needs its own',
        'dependencies and a build. From the repository root, run:',
        '',
        '  npm ci',
        `  npm run example:${example}`,
        '',
      ].join('\n'),
    );
    process.exit(1);
  }
  console.log(`crawl-engine: building the library first (${reason}): npm run build`);
  const build = spawnSync(npm, ['run', 'build'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], shell: process.platform === 'win32' });
  if (build.status !== 0) {
    console.error(`${build.stdout ?? ''}${build.stderr ?? ''}\ncrawl-engine: the build failed (npm run build at the repository root, above)`);
    process.exit(1);
  }
  console.log('crawl-engine: built');
}

// `node ../ensure-library.mjs next` from an example's folder (its pre scripts).
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  ensureLibrary({ example: process.argv[2] ?? 'express' });
}
