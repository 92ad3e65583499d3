// The example apps, from the repository root.
//
//   node scripts/prepare-examples.mjs                  installs both examples' dependencies when
//                                                      missing (npm test runs it: the browser test
//                                                      serves the Express one, the Next.js test
//                                                      builds and starts the other)
//   node scripts/prepare-examples.mjs start express    `npm run example:express`: builds crawl-engine
//   node scripts/prepare-examples.mjs start nextjs     if needed, installs the example's dependencies
//                                                      if needed, and starts it (`next dev`; with
//                                                      `-- --prod`, `next build` + `next start`)
//
// After the root `npm ci`, that is all a fresh clone needs.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ensureLibrary } from '../examples/ensure-library.mjs';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const EXAMPLES = { express: { marker: 'express', script: 'express' }, nextjs: { marker: 'next', script: 'next' } };

const dirOf = (name) => fileURLToPath(new URL(`../examples/${name}/`, import.meta.url));

/** Installs an example's dependencies (npm ci) when they are missing or older than its lockfile. */
function installExample(name) {
  const dir = dirOf(name);
  const installed = `${dir}node_modules/.package-lock.json`;
  const fresh =
    existsSync(`${dir}node_modules/${EXAMPLES[name].marker}`) &&
    existsSync(`${dir}node_modules/crawl-engine`) &&
    (!existsSync(installed) || statSync(installed).mtimeMs >= statSync(`${dir}package-lock.json`).mtimeMs);
  if (fresh) return;
  console.log(`installing examples/${name} dependencies (npm ci)`);
  execFileSync(npm, ['ci', '--no-audit', '--no-fund'], {
    cwd: dir,
    stdio: 'inherit',
    shell: process.platform === 'win32',
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
  });
}

/** Runs a command in the example's folder; resolves with its exit code, forwarding Ctrl-C and SIGTERM. */
function run(name, command, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: dirOf(name), stdio: 'inherit', env: { ...process.env, ...env } });
    const forward = (signal) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1));
    });
  });
}

async function start(name, args) {
  const example = EXAMPLES[name];
  if (example === undefined) {
    console.error(`unknown example ${JSON.stringify(name)}: express or nextjs`);
    process.exit(2);
  }
  ensureLibrary({ example: example.script });
  installExample(name);
  if (name === 'express') {
    process.exit(await run(name, process.execPath, ['server.mjs', ...args]));
  }
  const next = `${dirOf(name)}node_modules/next/dist/bin/next`;
  // The example's API is open to anyone who can reach it (public: true): listen on loopback only,
  // as the Express example does, unless told otherwise (-H 0.0.0.0).
  const host = args.some((a) => a === '-H' || a === '--hostname' || a.startsWith('--hostname=')) ? [] : ['-H', '127.0.0.1'];
  if (args.includes('--prod')) {
    const rest = [...host, ...args.filter((a) => a !== '--prod')];
    const built = await run(name, process.execPath, [next, 'build']);
    if (built !== 0) process.exit(built);
    process.exit(await run(name, process.execPath, [next, 'start', ...rest]));
  }
  process.exit(await run(name, process.execPath, [next, 'dev', ...host, ...args]));
}

const [command, name, ...rest] = process.argv.slice(2);
if (command === 'start') {
  await start(name === 'next' ? 'nextjs' : name, rest);
} else if (command === undefined) {
  for (const example of Object.keys(EXAMPLES)) installExample(example);
} else {
  console.error('usage: node scripts/prepare-examples.mjs [start express|nextjs [args…]]');
  process.exit(2);
}
