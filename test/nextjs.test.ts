import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startSite, type Site } from '../bench/site.mjs';
import type { Job, RunReport } from '../src/types.js';
import { readSse } from './helpers/sse.js';

const app = fileURLToPath(new URL('../examples/nextjs/', import.meta.url));
const next = `${app}node_modules/next/dist/bin/next`;
// No telemetry or update checks: nothing may leave this machine.
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', ALLOW_PRIVATE_NETWORK: '1', CRON_SECRET: 'test-cron-secret-0123456789', NODE_ENV: 'production', DATABASE_URL: '' };
const run = existsSync(next) || process.env.CI ? describe : describe.skip;

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

run('the Next.js example (next build, next start)', () => {
  let server: ChildProcess;
  let origin = '';
  let site: Site;

  beforeAll(async () => {
    execFileSync(process.execPath, [next, 'build'], { cwd: app, env, stdio: 'pipe', timeout: 240_000 });
    const port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    server = spawn(process.execPath, [next, 'start', '-H', '127.0.0.1', '-p', String(port)], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('next start did not come up')), 60_000);
      server.stdout!.on('data', (chunk: Buffer) => {
        if (/Ready|started server|Local:/i.test(String(chunk))) {
          clearTimeout(timer);
          resolve();
        }
      });
      server.once('exit', (code) => reject(new Error(`next start exited with ${code}`)));
    });
    site = await startSite({ pages: 25, fanout: 3, latencyMs: 5 });
  }, 300_000);

  afterAll(async () => {
    server?.kill('SIGTERM');
    await site?.close();
  });

  test('a job posted to the route handler is processed by after() and completes without cron; SSE streams through Next', async () => {
    const res = await fetch(`${origin}/api/crawl/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: site.url, maxDepth: 6, maxPages: 25 }) });
    expect(res.status).toBe(201);
    const job = (await res.json()) as Job;
    const events = await readSse((await fetch(`${origin}/api/crawl/jobs/${job.id}/events`)).body!);
    const named = events.filter((e) => e.event);
    expect(named.at(-1)!.event).toBe('job:completed');
    expect(named.filter((e) => e.event === 'page:done')).toHaveLength(25);
    const done = (await (await fetch(`${origin}/api/crawl/jobs/${job.id}`)).json()) as Job;
    expect(done.status).toBe('completed');
    expect(done.counts.succeeded).toBe(25);
  }, 60_000);

  test('the cron route needs the secret; the page renders', async () => {
    expect((await fetch(`${origin}/api/crawl/process`)).status).toBe(401);
    const ok = await fetch(`${origin}/api/crawl/process`, { headers: { authorization: 'Bearer test-cron-secret-0123456789' } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as RunReport).claimed).toBe(0);
    const page = await fetch(`${origin}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('crawl-engine');
    const bad = await fetch(`${origin}/api/crawl/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"url":"ftp://x"}' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toBe('application/problem+json');
  });
});
