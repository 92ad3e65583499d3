/**
 * The page pipeline's side of rendering, with renderers of the test's own (the `Renderer`
 * interface; no browser): what a renderer is handed, that its requests go through the guarded
 * fetcher, and what becomes of a render that never started.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import { type Renderer, RenderError, type RenderRequest } from '../src/crawl/render.js';
import { allResults } from './helpers/engine.js';
import { html, serve, type TestServer } from './helpers/server.js';

describe('rendering in the page pipeline (renderers of our own)', () => {
  let site: TestServer;
  beforeAll(async () => {
    site = await serve((req, res) => {
      // Pages answered late: /slow after 1.3 s, /lead after 2 s (it links to /late, 1.6 s).
      const late = { '/slow': [1300, ''], '/lead': [2000, '<a href="/late">late</a>'], '/late': [1600, ''] }[req.url ?? ''];
      if (late !== undefined) {
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end(html(`<div id="root"></div><script src="/app.js"></script>${late[1]}`, `<title>Late ${req.url}</title>`));
        }, late[0] as number);
        return;
      }
      if (req.url === '/data') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"title":"from data"}');
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html('<div id="root"></div><script src="/app.js"></script>', '<title>Shell</title>'));
    });
  });
  afterAll(() => site.close());

  const engineWith = (renderer: Renderer) =>
    createCrawlEngine({
      storage: memoryStorage(),
      fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 2000 },
      retry: { baseDelayMs: 10, maxDelayMs: 20 },
      render: { renderer },
    });

  it("hands the renderer the fetched document and a load() that is the engine's guarded fetcher", async () => {
    const seen: RenderRequest[] = [];
    const loads: Array<{ status: number | null; error: string | null; body: string | null }> = [];
    const renderer: Renderer = {
      async render(request) {
        seen.push(request);
        for (const url of [`${site.url}data`, 'http://127.0.0.2:9/private', 'http://[::1]:9/private']) {
          const answer = await request.load({ url, method: 'GET', headers: {}, body: null, kind: 'resource' });
          loads.push({ status: answer.status, error: answer.error?.code ?? null, body: answer.body?.toString() ?? null });
        }
        return { html: html('<h1>Rendered</h1><a href="/next">next</a>', '<title>from data</title>'), url: request.url };
      },
      close: async () => undefined,
    };
    const engine = engineWith(renderer);
    const job = await engine.crawl({ url: site.url, maxPages: 1, render: 'always', renderWait: 'networkidle', renderSelector: 'h1' });
    const [page] = await allResults(engine, job.id);
    expect(page).toMatchObject({ ok: true, rendered: true, title: 'from data', links: 1 });
    expect(seen[0]).toMatchObject({ url: site.url, waitUntil: 'networkidle', selector: 'h1', document: { status: 200 } });
    expect(seen[0]!.document.html).toContain('<div id="root"></div>');
    expect(loads).toEqual([
      { status: 200, error: null, body: '{"title":"from data"}' },
      { status: null, error: 'blocked', body: null },
      { status: null, error: 'blocked', body: null },
    ]);
    await engine.close();
  });

  it('a render that never started (no renderer slot in time) gives the page back without using an attempt', async () => {
    let calls = 0;
    const renderer: Renderer = {
      async render(request) {
        calls++;
        if (calls <= 3) throw new RenderError('render_failed', 'no render slot came free in time', true, true);
        return { html: html('<h1>Rendered</h1>', '<title>Rendered</title>'), url: request.url };
      },
      close: async () => undefined,
    };
    const engine = engineWith(renderer);
    // maxRetries 0: a failure of any kind would end the page; three give-backs do not.
    const job = await engine.crawl({ url: site.url, maxPages: 1, maxRetries: 0, render: 'always' });
    const [page] = await allResults(engine, job.id);
    expect(calls).toBe(4);
    expect(page).toMatchObject({ ok: true, rendered: true, title: 'Rendered', attempts: 1 });
    await engine.close();
  });

  it("a render still waiting past the run's budget ends render.timeoutMs after it, not at the lease's limit", async () => {
    const aborted: number[] = [];
    const renderer: Renderer = {
      render: (request) =>
        new Promise((_, reject) => {
          // A renderer whose slots are all taken: it waits until the pipeline gives up on the page.
          request.signal.addEventListener('abort', () => {
            aborted.push(Date.now());
            reject(new RenderError('render_failed', 'no render slot came free in time', true, true));
          });
        }),
      close: async () => undefined,
    };
    const engine = createCrawlEngine({
      storage: memoryStorage(),
      fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 2000 },
      render: { renderer, timeoutMs: 1000 },
      leaseMs: 60_000,
    });
    const job = await engine.jobs.create({ url: site.url, maxPages: 1, render: 'always' });
    const started = Date.now();
    const report = await engine.processor.run({ jobId: job.id, budgetMs: 200 });
    // Without the bound the page waited until 45 s (¾ of the lease) into the run.
    expect(aborted).toHaveLength(1);
    expect(aborted[0]! - started).toBeGreaterThanOrEqual(1100);
    expect(aborted[0]! - started).toBeLessThan(5000);
    // It never started: back in the queue, its attempt not used.
    expect(report).toMatchObject({ released: 1, succeeded: 0, failed: 0 });
    await engine.close();
  });

  /** A renderer that hands back the fetched document, counting its calls. */
  const echo = () => {
    const rendered: string[] = [];
    const renderer: Renderer = {
      async render(request) {
        rendered.push(new URL(request.url).pathname);
        return { html: request.document.html, url: request.url };
      },
      close: async () => undefined,
    };
    return { renderer, rendered };
  };

  it('a page fetched too late in its run to render (past the budget plus render.timeoutMs) goes back unrendered, its attempt unused', async () => {
    const { renderer, rendered } = echo();
    const engine = createCrawlEngine({
      storage: memoryStorage(),
      fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 3000 },
      render: { renderer, timeoutMs: 1000 },
    });
    const job = await engine.jobs.create({ url: `${site.url}lead`, maxPages: 2, maxRetries: 0, render: 'always' });
    // /lead is fetched by 2 s and rendered; /late, fetched from 2 s on, arrives at 3.6 s, past
    // 2.5 s + 1 s: not handed to the renderer (it would have used the only attempt). Its fetch
    // took less than the budget, so a run can render it: it goes back to the queue.
    const report = await engine.processor.run({ jobId: job.id, budgetMs: 2500, concurrency: 1 });
    expect(rendered).toEqual(['/lead']);
    expect(report).toMatchObject({ succeeded: 1, released: 1, failed: 0 });
    await engine.processor.run({ jobId: job.id, budgetMs: 10_000 });
    expect(rendered).toEqual(['/lead', '/late']);
    const pages = await allResults(engine, job.id);
    expect(pages.map((page) => [new URL(page.url).pathname, page.ok, page.rendered, page.attempts]).sort()).toEqual([
      ['/late', true, true, 1],
      ['/lead', true, true, 1],
    ]);
    await engine.close();
  });

  it('a page whose fetch outlasts the whole budget plus render.timeoutMs every time fails its attempts instead of coming back for ever', async () => {
    const { renderer, rendered } = echo();
    const engine = createCrawlEngine({
      storage: memoryStorage(),
      fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 3000 },
      retry: { baseDelayMs: 10, maxDelayMs: 20 },
      render: { renderer, timeoutMs: 1000 },
    });
    const job = await engine.jobs.create({ url: `${site.url}slow`, maxPages: 1, maxRetries: 1, render: 'always' });
    const reports = [];
    for (let i = 0; i < 4; i++) {
      const status = (await engine.jobs.get(job.id))?.status;
      if (status !== 'queued' && status !== 'running') break;
      reports.push(await engine.processor.run({ jobId: job.id, budgetMs: 100 }));
    }
    expect(rendered).toEqual([]);
    expect(reports.map((r) => [r.retried, r.failed, r.released])).toEqual([
      [1, 0, 0],
      [0, 1, 0],
    ]);
    const [page] = await allResults(engine, job.id);
    expect(page).toMatchObject({
      ok: false,
      attempts: 2,
      error: { code: 'render_failed', message: expect.stringMatching(/could not start: render\.timeoutMs/) },
    });
    await engine.close();
  });

  it('a render that failed is the page error: transient ones retried, the rest not', async () => {
    let calls = 0;
    const renderer: Renderer = {
      async render() {
        calls++;
        throw new RenderError(calls === 1 ? 'render_failed' : 'too_large', calls === 1 ? 'the browser went away' : 'too big', calls === 1);
      },
      close: async () => undefined,
    };
    const engine = engineWith(renderer);
    const job = await engine.crawl({ url: site.url, maxPages: 1, maxRetries: 3, render: 'always' });
    const [page] = await allResults(engine, job.id);
    expect(calls).toBe(2);
    expect(page).toMatchObject({ ok: false, attempts: 2, error: { code: 'too_large', message: 'too big' } });
    await engine.close();
  });
});
