/**
 * The Express example's webhook receiver (examples/express/server.mjs): with WEBHOOK_SECRET and
 * WEBHOOK_URL pointing at itself, a job created through its API posts its events to its own
 * POST /hooks, which verifies them and lists them at GET /hooks; a forged delivery gets a 400.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createWebhookSecret } from '../src/index.js';
import { html, serve, type TestServer } from './helpers/server.js';

const root = fileURLToPath(new URL('..', import.meta.url));
let server: ChildProcess;
let appUrl = '';
let site: TestServer;

const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });

beforeAll(async () => {
  site = await serve((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(req.url === '/' ? html('<a href="/a">a</a><a href="/b">b</a>') : html('<p>leaf</p>'));
  });
  const port = await freePort();
  server = spawn(process.execPath, [`${root}examples/express/server.mjs`], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      ALLOW_PRIVATE_NETWORK: '1',
      DATABASE_URL: '',
      REDIS_URL: '',
      WEBHOOK_SECRET: createWebhookSecret(),
      WEBHOOK_URL: `http://127.0.0.1:${port}/hooks`,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  appUrl = await new Promise<string>((resolve, reject) => {
    server.stdout!.on('data', (chunk: Buffer) => {
      const found = /listening on (http:\/\/\S+)/.exec(String(chunk));
      if (found) resolve(found[1]!);
    });
    server.once('exit', (code) => reject(new Error(`example exited with ${code}`)));
  });
}, 60_000);

afterAll(async () => {
  server?.kill('SIGTERM');
  await site?.close();
});

test("a job posts its events to the example's own receiver, which verifies and lists them; a forged one is refused", { timeout: 60_000 }, async () => {
  const created = await fetch(`${appUrl}api/crawl/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url: site.url }),
  });
  expect(created.status).toBe(201);
  const job = (await created.json()) as { id: string; options: { webhook?: { url: string } } };
  expect(job.options.webhook?.url).toBe(`${appUrl}hooks`);
  let received: Array<{ type: string; jobId: string; pages: number }> = [];
  for (let i = 0; i < 100 && !received.some((r) => r.type === 'job.completed'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    received = (await (await fetch(`${appUrl}hooks`)).json()) as typeof received;
  }
  expect(received.map((r) => r.type).sort()).toEqual(expect.arrayContaining(['job.started', 'page', 'job.completed']));
  expect(received.every((r) => r.jobId === job.id)).toBe(true);
  expect(received.reduce((sum, r) => sum + r.pages, 0)).toBe(3);
  const forged = await fetch(`${appUrl}hooks`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': 'msg_x',
      'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
      'webhook-signature': 'v1,AAAA',
    },
    body: '{"type":"job.completed","timestamp":"","data":{"job":{"id":"x"}}}',
  });
  expect(forged.status).toBe(400);
});
