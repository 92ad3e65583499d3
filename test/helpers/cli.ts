/** The built CLI (`dist/cli.js`) run as a child process, its output collected. */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Called once the child is spawned, with the output so far (it grows). */
  onSpawn?: (child: ChildProcess, output: { stdout: string; stderr: string }) => void;
}

/** Runs `crawl-engine <args>` and resolves when it exits; `options` may be just `onSpawn`. */
export function runCli(args: string[], options: CliOptions | CliOptions['onSpawn'] = {}): Promise<CliRun> {
  const { env, onSpawn } = typeof options === 'function' ? { env: undefined, onSpawn: options } : options;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(env === undefined ? {} : { env: { ...process.env, ...env } }),
    });
    const output = { stdout: '', stderr: '' };
    child.stdout.on('data', (d: Buffer) => (output.stdout += d));
    child.stderr.on('data', (d: Buffer) => (output.stderr += d));
    child.on('close', (code, signal) => resolve({ code, signal, ...output }));
    onSpawn?.(child, output);
  });
}
