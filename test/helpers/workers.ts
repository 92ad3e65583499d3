import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const worker = fileURLToPath(new URL('../fixtures/worker.mjs', import.meta.url));

export interface WorkerProcess {
  child: ChildProcess;
  /** The worker's summary, when it exits. */
  done: Promise<Record<string, number>>;
  /** Pages this worker has stored so far. */
  progress(): number;
}

/**
 * Starts a processor in its own process on shared storage (a URL whose scheme test/fixtures/worker.mjs
 * opens: `postgres://…`, `redis://…`), with a request timeout of `fetchTimeoutMs` (1 s unless given).
 */
export function startWorker(storageUrl: string, namespace: string, jobId: string, leaseMs: number, fetchTimeoutMs = 1000): WorkerProcess {
  const child = spawn(process.execPath, [worker, storageUrl, namespace, jobId, String(leaseMs), String(fetchTimeoutMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let last = 0;
  let summary: Record<string, number> = {};
  child.stdout!.on('data', (chunk: Buffer) => {
    for (const line of String(chunk).split('\n')) {
      if (line.startsWith('progress ')) last = Number(line.slice(9));
      else if (line.startsWith('{')) summary = JSON.parse(line) as Record<string, number>;
    }
  });
  const done = new Promise<Record<string, number>>((resolve) => child.on('exit', () => resolve(summary)));
  return { child, done, progress: () => last };
}
