#!/usr/bin/env node
// `npm run check:package`: packs the package the way `npm publish` does and lints the tarball.
//
// 1. Empties dist/ and runs `npm pack`, so the build must come from the `prepack` script, as it does
//    in a fresh clone (a pack that ships only README and package.json fails here).
// 2. publint on the tarball (--strict: warnings fail too): exports, main/module/types, bin and
//    files that point at nothing, wrong formats, missing conditions.
// 3. Are The Types Wrong (attw) on the same tarball, profile node16: every entry point must resolve
//    to the right JavaScript and the right types (.d.ts for import, .d.cts for require) under
//    node16 from ESM, node16 from CJS and bundler resolution. node10 (moduleResolution "node") is
//    not checked: it ignores the exports map, so it cannot see the subpaths at all.
// Exits non-zero on the first failure. The tarball is written to a temporary folder and removed;
// `--keep-tarball FILE` copies it to FILE first (CI hands it to `check:readme --tarball FILE`).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = (name) => join(root, 'node_modules', '.bin', process.platform === 'win32' ? `${name}.cmd` : name);
const win = process.platform === 'win32';

function run(what, command, args) {
  console.log(`\ncheck:package: ${what}`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', shell: win });
  if (result.status !== 0) {
    console.error(`\ncheck:package: FAILED: ${what} (exit ${result.status ?? result.signal})`);
    process.exit(1);
  }
}

const keepAt = process.argv.indexOf('--keep-tarball');
const keep = keepAt === -1 ? null : process.argv[keepAt + 1];
if (keepAt !== -1 && !keep) {
  console.error('check:package: --keep-tarball needs a file path');
  process.exit(2);
}

const out = mkdtempSync(join(tmpdir(), 'crawl-engine-pack-'));
try {
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  run('npm pack (prepack builds dist/)', 'npm', ['pack', '--pack-destination', out, '--loglevel', 'warn']);
  const tarballs = readdirSync(out).filter((f) => f.endsWith('.tgz'));
  if (tarballs.length !== 1) {
    console.error(`check:package: FAILED: expected one tarball in ${out}, found ${tarballs.length}`);
    process.exit(1);
  }
  const tarball = join(out, tarballs[0]);
  // What a fresh clone's publish ships: every file under dist/, not just README and package.json.
  const listing = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
  const files = listing.status === 0 ? listing.stdout.split('\n').filter(Boolean) : [];
  const dist = files.filter((f) => f.startsWith('package/dist/'));
  console.log(`\ncheck:package: ${tarballs[0]}: ${files.length} files, ${dist.length} under dist/`);
  if (listing.status === 0 && !files.includes('package/dist/index.js')) {
    console.error('check:package: FAILED: the tarball has no dist/index.js (is "prepack" still "npm run build"?)');
    process.exit(1);
  }
  run('publint --strict', bin('publint'), ['run', tarball, '--strict']);
  run('attw --profile node16', bin('attw'), [tarball, '--profile', 'node16', '--no-emoji', '--no-color']);
  if (keep) copyFileSync(tarball, keep);
  console.log(`\ncheck:package: OK${keep ? ` (tarball kept at ${keep})` : ''}`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
