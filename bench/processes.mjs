// Processors in child processes (bench/processor.mjs), driven from the benchmark's parent process.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./processor.mjs', import.meta.url));

/** Starts `n` processor processes on `namespace` of `kind` and waits until all are connected. */
export async function startProcessors(kind, namespace, n, concurrency) {
  const children = Array.from({ length: n }, () => {
    const child = spawn(process.execPath, [script, kind, namespace, String(concurrency)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const waiting = [];
    let pending = '';
    child.stdout.on('data', (chunk) => {
      pending += String(chunk);
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) waiting.shift()?.(line.startsWith('done ') ? JSON.parse(line.slice(5)) : line);
    });
    const next = () => new Promise((resolve) => waiting.push(resolve));
    return { child, next, ready: next() };
  });
  await Promise.all(children.map((c) => c.ready));
  return {
    /** Every process works `jobId` until it is finished; resolves with each one's memory figures and round trips. */
    work(jobId) {
      return Promise.all(
        children.map((c) => {
          const answer = c.next();
          c.child.stdin.write(`${jobId}\n`);
          return answer;
        }),
      );
    },
    async stop() {
      await Promise.all(
        children.map((c) => {
          const exited = new Promise((resolve) => c.child.on('exit', resolve));
          c.child.stdin.end();
          return exited;
        }),
      );
    },
  };
}
