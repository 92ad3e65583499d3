// The project scripts/check-readme.mjs checks the README in: `npm pack` (or --tarball), a new
// `"type": "module"` project, and one install of the tarball, the compiler and what the blocks import.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importsOf } from './blocks.mjs';
import { fail, givenTarball, log, root, run, seconds } from './common.mjs';

const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pinned = { ...rootPkg.dependencies, ...rootPkg.devDependencies };
function versionOf(name, why) {
  const version = pinned[name];
  if (!version) fail(`${why} imports ${name}, which is not in package.json devDependencies: add it there (pinned) so the check installs that version`);
  return `${name}@${version}`;
}

/** Packs (unless --tarball) into `dir` and installs into `dir`/project, which it returns. */
export function packAndInstall(dir, modules) {
  // Pack (prepack builds dist/), as check-package.mjs does.
  let tarball = givenTarball;
  if (!tarball) {
    run('npm pack (prepack builds dist/)', 'npm', ['pack', '--pack-destination', dir, '--loglevel', 'warn'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const tarballs = readdirSync(dir).filter((f) => f.endsWith('.tgz'));
    if (tarballs.length !== 1) fail(`expected one tarball in ${dir}, found ${tarballs.length}`);
    tarball = join(dir, tarballs[0]);
  }
  const listing = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).stdout?.split('\n') ?? [];
  for (const file of ['package/dist/index.js', 'package/dist/cli.js']) {
    if (!listing.includes(file)) fail(`the tarball ${tarball} has no ${file.slice('package/'.length)}`);
  }
  log(`packed ${tarball} (${seconds()})`);

  // What to install: the tarball, the compiler, and every package a block imports, at our pinned
  // versions, with the types packages we pin for them (@types/pg for pg, ...), and the peers the
  // .d.ts of an imported subpath refers to.
  const project = join(dir, 'project');
  mkdirSync(join(project, 'blocks'), { recursive: true });
  const wanted = new Set(['typescript', '@types/node']);
  const PEERS_OF_SUBPATH = { 'crawl-engine/express': ['express'], 'crawl-engine/react': ['react'] };
  for (const m of modules) {
    const text = m.lines.map((l) => l.text).join('\n');
    for (const name of importsOf(text)) {
      if (name === 'crawl-engine') continue;
      wanted.add(name);
    }
    for (const [subpath, peers] of Object.entries(PEERS_OF_SUBPATH)) {
      if (text.includes(`'${subpath}'`)) for (const p of peers) wanted.add(p);
    }
  }
  for (const name of [...wanted]) {
    const types = `@types/${name.startsWith('@') ? name.slice(1).replace('/', '__') : name}`;
    if (pinned[types]) wanted.add(types);
  }
  const specs = [...wanted].sort().map((name) => versionOf(name, 'a README block'));
  writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'readme-check', private: true, type: 'module' }, null, 2)}\n`);
  run(
    `npm install ${tarball.split(/[\\/]/).at(-1)} ${specs.join(' ')}`,
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'warn', tarball, ...specs],
    { cwd: project },
  );
  log(`installed (${seconds()})`);
  return project;
}
