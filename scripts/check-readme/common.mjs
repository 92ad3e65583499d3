// The command line of scripts/check-readme.mjs and the helpers every step of it uses: messages,
// failing with a message (CheckFailed, caught by the main script), running commands.
import { spawn, spawnSync } from 'node:child_process';
import { relative, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const win = process.platform === 'win32';
const started = Date.now();
const args = process.argv.slice(2);
export const keep = args.includes('--keep');
const option = (name) => (args.includes(name) ? resolve(args[args.indexOf(name) + 1] ?? '') : null);
export const givenTarball = option('--tarball');
export const readmePath = option('--readme') ?? join(root, 'README.md');
export const README = relative(root, readmePath).startsWith('..') ? readmePath : relative(root, readmePath); // in messages: README.md:<line>

export const log = (message) => console.log(`check:readme: ${message}`);
export class CheckFailed extends Error {}
export function fail(message) {
  throw new CheckFailed(message);
}
export const seconds = () => `at ${((Date.now() - started) / 1000).toFixed(1)} s`;

/** Runs a command, output to our stdout/stderr; fails with `what` on a non-zero exit. */
export function run(what, command, commandArgs, options = {}) {
  log(what);
  const result = spawnSync(command, commandArgs, { stdio: 'inherit', shell: win, ...options });
  if (result.status !== 0) fail(`${what} (exit ${result.status ?? result.signal})`);
}

/** Spawns without a shell, collects output, kills the process group member after timeoutMs. */
export function spawnCollect(command, commandArgs, { cwd, timeoutMs }) {
  return new Promise((done) => {
    const child = spawn(command, commandArgs, { cwd, stdio: ['ignore', 'pipe', 'pipe'], shell: win });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[check-readme: killed after ${timeoutMs / 1000} s]`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}
