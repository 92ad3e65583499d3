// @vitest-environment happy-dom
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventSource } from 'eventsource';
import express from 'express';
import { act, createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { fetch as undiciFetch } from 'undici';
import { afterEach, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { startSite, type Site } from './fixtures/site.mjs';
import { createCrawlEngine } from '../src/core/engine.js';
import { createExpressRouter } from '../src/http/express.js';
import { useCrawlJob, type CrawlJobState } from '../src/browser/react.js';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
let site: Site | null = null;
let server: Server | null = null;
afterEach(async () => {
  await site?.close();
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(null)));
});

/** Records every state the hook returns. */
function Probe({ id, options, states }: { id: string; options: Parameters<typeof useCrawlJob>[1]; states: CrawlJobState[] }) {
  states.push(useCrawlJob(id, options));
  return null;
}

test('useCrawlJob() loads a job and follows its progress to the end', async () => {
  site = await startSite({ pages: 12, fanout: 3, latencyMs: 10 });
  const engine = createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: true } });
  const app = express();
  app.use('/api/crawl', createExpressRouter(engine) as never);
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/crawl`;
  const job = await engine.jobs.create({ url: site.url, maxDepth: 5 });

  const states: CrawlJobState[] = [];
  // Node's own fetch for both, not happy-dom's (which does not stream to a foreign origin).
  class NodeEventSource extends EventSource {
    constructor(url: string, init?: { withCredentials?: boolean }) {
      super(url, { ...init, fetch: undiciFetch as never });
    }
  }
  const options = { baseUrl, fetch: undiciFetch as unknown as typeof fetch, EventSource: NodeEventSource as never, recent: 5 };
  const root = createRoot(document.createElement('div'));
  await act(async () => root.render(createElement(Probe, { id: job.id, options, states })));
  await act(async () => {
    for (let i = 0; i < 100 && states.at(-1)!.job === null; i++) await new Promise((r) => setTimeout(r, 10));
  });
  // Loaded while still queued: whatever it shows later came through the event stream.
  expect(states.at(-1)).toMatchObject({ status: 'queued', done: false, progress: 0 });
  await act(async () => {
    await engine.processor.run({ jobId: job.id });
    for (let i = 0; i < 100 && !states.at(-1)!.done; i++) await new Promise((r) => setTimeout(r, 20));
  });
  const last = states.at(-1)!;
  expect(last.done).toBe(true);
  expect(last.status).toBe('completed');
  expect(last.counts).toMatchObject({ succeeded: 12, discovered: 12 });
  expect(last.progress).toBe(1);
  expect(last.pages).toHaveLength(5);
  expect(last.pages[0]!.type).toBe('page:done');
  expect(last.job?.id).toBe(job.id);
  await act(async () => root.unmount());
  await engine.close();
});
