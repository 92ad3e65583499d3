/**
 * Rendering pages in Debian's Chromium (`render`): a single-page app's content and links, the
 * private-network guard over every request the browser makes, and the bounds (a page that never
 * settles, loops, opens popups, crashes the renderer, or renders too much; browser restarts).
 */
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { createCrawlEngine, type CrawlEngine, type RenderSettings } from '../src/core/engine.js';
import { createPlaywrightRenderer, type PlaywrightRenderer } from '../src/crawl/playwright.js';
import type { PageResult } from '../src/core/types.js';
import { createCrawlHandler } from '../src/http/index.js';
import { CHROMIUM, hasChromium, remoteChromium as remoteChromiumWith } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';
import { allResults } from './helpers/engine.js';
import { SPA_PAGES, type SpaSite, spaSite, type Trap, trap } from './helpers/spa-site.js';

/** Chromium is found by the marker flag in its command line (to kill it mid-crawl). */
const MARKER = `--crawl-engine-test=${process.pid}`;
/** A remote Chromium with this file's marker. */
const remoteChromium = (flags: string[]) => remoteChromiumWith([MARKER, ...flags]);

function engineWith(render: Partial<RenderSettings> = {}, storage = memoryStorage()): CrawlEngine {
  return createCrawlEngine({
    storage,
    // The site is on 127.0.0.1; the traps (127.0.0.2, ::1) stay refused.
    fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 3000 },
    retry: { baseDelayMs: 20, maxDelayMs: 100 },
    render: { executablePath: CHROMIUM, args: [MARKER], timeoutMs: 8000, waitMs: 3000, idleCloseMs: 0, ...render },
  });
}

const byPath = (results: PageResult[]) => new Map(results.map((r) => [new URL(r.url).pathname, r]));

describe.skipIf(!hasChromium)('render (Debian Chromium)', () => {
  let site: SpaSite;
  let traps: Trap[];
  beforeAll(async () => {
    traps = [await trap('127.0.0.2')];
    try {
      traps.push(await trap('::1'));
    } catch {
      // No IPv6 loopback on this machine: the IPv4 trap alone.
    }
    site = await spaSite(traps[0]!.origin);
  });
  afterAll(async () => {
    await site.close();
    for (const t of traps) await t.close();
  });

  it('crawls a single-page app: its content and links exist only after its scripts run', async () => {
    const engine = engineWith();
    try {
      const unrendered = await engine.crawl({ url: site.url, maxPages: 10, maxDepth: 2 });
      const plain = await allResults(engine, unrendered.id);
      expect(plain).toHaveLength(1);
      expect(plain[0]).toMatchObject({ ok: true, title: 'Loading…', links: 0 });
      expect(plain[0]!.rendered).toBeUndefined();

      const job = await engine.crawl({ url: site.url, maxPages: 10, maxDepth: 2, render: 'always', formats: ['metadata', 'links', 'markdown'] });
      expect(job.status).toBe('completed');
      const results = byPath(await allResults(engine, job.id));
      expect(results.size).toBe(SPA_PAGES + 1);
      for (let n = 0; n <= SPA_PAGES; n++) {
        const page = results.get(n === 0 ? '/' : `/page/${n}`)!;
        expect(page, `page ${n}`).toMatchObject({ ok: true, rendered: true, title: `Page ${n} rendered` });
        expect(page.markdown).toContain(`Content of page ${n} that only exists after scripts ran.`);
        expect(page.outlinks!.map((l) => new URL(l.url).pathname)).toContain(n === 1 ? '/page/2' : '/page/1');
      }
      // The browser's requests were made by the engine's fetcher (its user agent), not by Chromium.
      expect(site.agents.get('/app.js')).toMatch(/^crawl-engine\//);
      expect(site.agents.get('/api/page/3')).toMatch(/^crawl-engine\//);
    } finally {
      await engine.close();
    }
  }, 90_000);

  it("with renderWait 'load', a page whose data arrives after the load event is read once its requests are quiet", async () => {
    const engine = engineWith();
    try {
      const job = await engine.crawl({ url: `${site.origin}/late`, maxPages: 1, render: 'always', formats: ['metadata', 'markdown'] });
      const [page] = await allResults(engine, job.id);
      expect(page).toMatchObject({ ok: true, rendered: true, title: 'Late data' });
      expect(page!.markdown).toContain('Arrived after the load event.');
    } finally {
      await engine.close();
    }
  }, 60_000);

  it("render: 'auto' renders the shells and not the server-rendered page", async () => {
    const engine = engineWith();
    try {
      const shell = await engine.crawl({ url: site.url, maxPages: 3, maxDepth: 1, render: 'auto' });
      const shells = await allResults(engine, shell.id);
      expect(shells).toHaveLength(3);
      for (const page of shells) expect(page).toMatchObject({ ok: true, rendered: true });
      const before = site.requests.filter((p) => p === '/analytics.js').length;
      const stat = await engine.crawl({ url: `${site.origin}/static`, maxPages: 1, render: 'auto' });
      const [page] = await allResults(engine, stat.id);
      expect(page).toMatchObject({ ok: true, title: 'Static page' });
      expect(page!.rendered).toBeUndefined();
      expect(site.requests.filter((p) => p === '/analytics.js').length).toBe(before);
    } finally {
      await engine.close();
    }
  }, 60_000);

  it('the browser never reaches a refused address: scripts, redirects, images, frames, sockets, beacons, popups, navigations', async () => {
    // Images, fonts and media allowed here, so that they too go to the fetcher and its guard.
    const engine = engineWith({ block: [] });
    let renderer: PlaywrightRenderer | null = null;
    try {
      for (const path of ['/hostile', '/popups', '/to-private']) {
        const job = await engine.crawl({
          url: `${site.origin}${path}`,
          maxPages: 1,
          render: 'always',
          renderWait: 'networkidle',
          formats: ['metadata', 'html'],
        });
        const [page] = await allResults(engine, job.id);
        if (path === '/to-private') {
          // The document's redirect is refused by the fetcher before any browser is involved.
          expect(page!.error?.code).toBe('blocked');
          continue;
        }
        expect(page, path).toMatchObject({ ok: true, rendered: true });
        if (path === '/hostile') {
          // The page itself, not an error page for the navigation it tried: that was not followed.
          expect(page!.title).toBe('Hostile');
          expect(page!.html).toContain('allowed request answered');
        }
      }
      // And the same with a renderer of its own, to read its counters.
      renderer = createPlaywrightRenderer({
        executablePath: CHROMIUM,
        args: [MARKER],
        userAgent: 'test',
        concurrency: 1,
        timeoutMs: 8000,
        waitMs: 3000,
        maxHtmlBytes: 5_000_000,
        maxRequests: 200,
        block: [],
        restartAfterPages: 100,
        idleCloseMs: 0,
        maxHeapMb: 512,
      });
      const withOwn = createCrawlEngine({
        storage: memoryStorage(),
        fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 3000 },
        render: { renderer },
      });
      const job = await withOwn.crawl({ url: `${site.origin}/hostile`, maxPages: 1, render: 'always' });
      expect((await allResults(withOwn, job.id))[0]).toMatchObject({ ok: true, rendered: true });
      await withOwn.close();
      // Give late attempts (the form, the navigation, WebRTC) time to arrive if they could.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      for (const t of traps) expect(t.hits(), `connections and datagrams that reached ${t.origin}`).toBe(0);
      expect(renderer.stats().active).toBe(0);
    } finally {
      await engine.close();
      await renderer?.close();
    }
  }, 90_000);

  it("a remote browser started without any of the engine's flags reaches no refused address either", async () => {
    // The worst case of `connect`: a plain headless Chromium that could reach everything by itself.
    const remote = await remoteChromium([]);
    const engine = createCrawlEngine({
      storage: memoryStorage(),
      fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 3000 },
      render: { connect: { wsEndpoint: remote.wsEndpoint }, timeoutMs: 8000, waitMs: 3000, block: [] },
    });
    try {
      const before = traps.map((t) => t.hits());
      const job = await engine.crawl({ url: `${site.origin}/hostile`, maxPages: 1, render: 'always', renderWait: 'networkidle', formats: ['html'] });
      const [page] = await allResults(engine, job.id);
      // Read as the document the engine fetched, or refused; never as a page the browser got by itself.
      if (page!.ok) expect(page).toMatchObject({ rendered: true, title: 'Hostile' });
      else expect(page!.error?.code).toBe('render_failed');
      await new Promise((resolve) => setTimeout(resolve, 2500));
      for (const [i, t] of traps.entries()) expect(t.hits() - before[i]!, `connections and datagrams that reached ${t.origin}`).toBe(0);
    } finally {
      await engine.close();
      await remote.close();
    }
  }, 90_000);

  it('bounds: a page that never settles is read at the wait cap; a selector is waited for; a looping page and an oversized one fail', async () => {
    const engine = engineWith({ timeoutMs: 5000, waitMs: 1500, maxHtmlBytes: 1_000_000 });
    try {
      const started = Date.now();
      const never = await engine.crawl({ url: `${site.origin}/never-settles`, maxPages: 1, render: 'always', renderWait: 'networkidle' });
      const [polling] = await allResults(engine, never.id);
      expect(polling).toMatchObject({ ok: true, rendered: true, title: 'Polling', links: 1 });
      expect(Date.now() - started).toBeLessThan(15_000);

      const selector = await engine.crawl({
        url: `${site.origin}/selector`,
        maxPages: 1,
        render: 'always',
        renderSelector: '#late',
        formats: ['metadata', 'text'],
      });
      expect((await allResults(engine, selector.id))[0]!.text).toContain('Late heading');

      const loops = await engine.crawl({ url: `${site.origin}/loops`, maxPages: 1, maxRetries: 0, render: 'always' });
      const [looping] = await allResults(engine, loops.id);
      expect(looping!.error).toMatchObject({ code: 'render_failed' });
      expect(looping!.error!.message).toMatch(/render\.timeoutMs/);

      const huge = await engine.crawl({ url: `${site.origin}/huge`, maxPages: 1, maxRetries: 0, render: 'always' });
      expect((await allResults(engine, huge.id))[0]!.error).toMatchObject({ code: 'too_large' });

      // The browser is still there for the next page.
      const after = await engine.crawl({ url: `${site.origin}/page/1`, maxPages: 1, render: 'always' });
      expect((await allResults(engine, after.id))[0]).toMatchObject({ ok: true, rendered: true });
    } finally {
      await engine.close();
    }
  }, 90_000);

  it("a page's requests: a few at a time, within its byte budget; every Set-Cookie reaches the browser", async () => {
    const engine = engineWith({ maxPageBytes: 1_000_000 });
    try {
      const job = await engine.crawl({ url: `${site.origin}/bulk`, maxPages: 1, render: 'always', renderWait: 'networkidle', formats: ['html'] });
      const [bulk] = await allResults(engine, job.id);
      expect(bulk).toMatchObject({ ok: true, rendered: true });
      const arrived = Number(/arrived (\d+)/.exec(bulk!.html ?? '')?.[1]);
      // 1 MB of budget: the first answers (up to 6 at once, each capped by what was left when it
      // started), then no more; the page asked for 30 × 300 kB.
      expect(arrived).toBeGreaterThanOrEqual(1);
      expect(arrived).toBeLessThanOrEqual(6);
      expect(site.blobs.maxInFlight).toBeLessThanOrEqual(6);
      expect(site.blobs.served).toBeLessThan(15);

      const cookies = await engine.crawl({ url: `${site.origin}/cookies`, maxPages: 1, render: 'always', renderWait: 'networkidle', formats: ['html'] });
      const [page] = await allResults(engine, cookies.id);
      expect(page!.html).toContain('cookies a=1; b=2');
    } finally {
      await engine.close();
    }
  }, 90_000);

  it('a page that crashes its renderer fails alone; the next page renders', async () => {
    const engine = engineWith({ maxHeapMb: 32 });
    try {
      const crash = await engine.crawl({ url: `${site.origin}/crash`, maxPages: 1, maxRetries: 1, render: 'always' });
      const [crashed] = await allResults(engine, crash.id);
      expect(crashed!.error).toMatchObject({ code: 'render_failed' });
      expect(crashed!.attempts).toBe(2);
      const next = await engine.crawl({ url: site.url, maxPages: 2, maxDepth: 1, render: 'always' });
      for (const page of await allResults(engine, next.id)) expect(page).toMatchObject({ ok: true, rendered: true });
    } finally {
      await engine.close();
    }
  }, 90_000);

  it('the browser is restarted after restartAfterPages, and after being killed mid-crawl; no page is lost', async () => {
    const renderer = createPlaywrightRenderer({
      executablePath: CHROMIUM,
      args: [MARKER],
      userAgent: 'test',
      concurrency: 2,
      timeoutMs: 8000,
      waitMs: 3000,
      maxHtmlBytes: 5_000_000,
      maxRequests: 200,
      block: ['image', 'font', 'media'],
      restartAfterPages: 3,
      idleCloseMs: 0,
      maxHeapMb: 512,
    });
    const engine = createCrawlEngine({
      storage: memoryStorage(),
      fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 3000 },
      retry: { baseDelayMs: 20, maxDelayMs: 100 },
      render: { renderer },
    });
    try {
      const job = await engine.crawl({ url: site.url, maxPages: 10, maxDepth: 2, render: 'always', maxRetries: 3 }, { concurrency: 2 });
      expect((await allResults(engine, job.id)).filter((r) => r.ok && r.rendered)).toHaveLength(SPA_PAGES + 1);
      expect(renderer.stats().launches).toBeGreaterThanOrEqual(3);

      // Killed while a crawl renders: the pages in flight fail transiently and are retried.
      const running = engine.crawl({ url: site.url, maxPages: 10, maxDepth: 2, render: 'always', maxRetries: 3 }, { concurrency: 2 });
      const launches = renderer.stats().launches;
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (renderer.stats().active > 0 && renderer.stats().launches > launches) {
            clearInterval(poll);
            resolve();
          }
        }, 20);
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      execFileSync('pkill', ['-KILL', '-f', '--', MARKER]);
      const killed = await running;
      expect(killed.status).toBe('completed');
      const results = await allResults(engine, killed.id);
      expect(results.filter((r) => r.ok && r.rendered)).toHaveLength(SPA_PAGES + 1);
    } finally {
      await engine.close();
    }
    expect(renderer.stats().active).toBe(0);
  }, 120_000);

  it('works through the HTTP API: POST /jobs with render, and a 400 naming the field for a bad one', async () => {
    const engine = engineWith();
    const plain = createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: ['127.0.0.1'] } });
    try {
      const handler = createCrawlHandler(engine);
      const post = (to: typeof handler, body: unknown) =>
        to(new Request('http://app.test/api/crawl/jobs', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }));
      const created = await post(handler, { url: site.url, maxPages: 3, maxDepth: 1, render: 'auto', renderWait: 'networkidle' });
      expect(created.status).toBe(201);
      const job = (await created.json()) as { id: string; options: { render: string; renderWait: string } };
      expect(job.options).toMatchObject({ render: 'auto', renderWait: 'networkidle' });
      const report = await engine.processor.run({ jobId: job.id, budgetMs: 60_000, concurrency: 2 });
      expect(report.succeeded).toBe(3);
      const listed = await handler(new Request(`http://app.test/api/crawl/jobs/${job.id}/results`));
      const { items } = (await listed.json()) as { items: PageResult[] };
      expect(items).toHaveLength(3);
      for (const page of items) expect(page).toMatchObject({ ok: true, rendered: true, title: expect.stringMatching(/^Page \d rendered$/) });

      for (const [body, path] of [
        [{ url: site.url, render: 'sometimes' }, 'render'],
        [{ url: site.url, render: 'always', renderWait: 'domcontentloaded' }, 'renderWait'],
        [{ url: site.url, render: 'always', renderSelector: 'x'.repeat(501) }, 'renderSelector'],
      ] as const) {
        const res = await post(handler, body);
        expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
        expect(JSON.stringify(await res.json())).toContain(`"${path}"`);
      }
      // An engine without `render` refuses a job that needs it, before storing anything.
      const refused = await post(createCrawlHandler(plain), { url: site.url, render: 'auto' });
      expect(refused.status).toBe(400);
      expect(await refused.json()).toMatchObject({ errors: [expect.objectContaining({ path: 'render' })] });
      expect((await plain.jobs.list()).items).toHaveLength(0);
    } finally {
      await engine.close();
      await plain.close();
    }
  }, 90_000);

  it("renders in a remote browser: over CDP (connectOverCDP) and over Playwright's protocol, leaving the browser running", async () => {
    // A browser service as a serverless function would use one: started elsewhere, reached by WebSocket.
    const remote = await remoteChromium(['--disable-gpu', '--no-first-run', '--disable-background-networking']);
    const { wsEndpoint } = remote;
    const server = await chromium.launchServer({ executablePath: CHROMIUM, args: [MARKER] });
    try {
      for (const connect of [{ wsEndpoint }, { wsEndpoint: server.wsEndpoint(), protocol: 'playwright' as const }]) {
        const engine = createCrawlEngine({
          storage: memoryStorage(),
          fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 3000 },
          render: { connect, timeoutMs: 8000, waitMs: 3000 },
        });
        try {
          const job = await engine.crawl({ url: site.url, maxPages: 3, maxDepth: 1, render: 'always' });
          const results = await allResults(engine, job.id);
          expect(results, connect.protocol ?? 'cdp').toHaveLength(3);
          for (const page of results) expect(page).toMatchObject({ ok: true, rendered: true, title: expect.stringMatching(/^Page \d rendered$/) });
          // Its requests went through the engine's fetcher.
          expect(site.agents.get('/app.js')).toMatch(/^crawl-engine\//);
        } finally {
          await engine.close();
        }
      }
      // Closing the engine disconnected from the browsers; it did not end them.
      expect(remote.alive()).toBe(true);
      const again = await chromium.connectOverCDP(wsEndpoint);
      expect(
        again
          .contexts()
          .flatMap((c) => c.pages())
          .map((p) => p.url()),
      ).toEqual(['about:blank']);
      await again.close();
    } finally {
      await remote.close();
      await server.close();
    }
  }, 90_000);

  it('works through the CLI: --render auto renders the shells; bad render flags are usage errors', async () => {
    const run = await runCli(
      [
        'crawl',
        site.url,
        '--render',
        'auto',
        '--render-wait',
        'networkidle',
        '--chromium',
        CHROMIUM,
        '--max-pages',
        '3',
        '--max-depth',
        '1',
        '--formats',
        'markdown',
        '--allow-private-network',
        '--quiet',
      ],
      { env: { CHROMIUM_PATH: '' } },
    );
    expect(run.code, run.stderr).toBe(0);
    const pages = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as PageResult);
    expect(pages).toHaveLength(3);
    for (const page of pages) {
      expect(page).toMatchObject({ ok: true, rendered: true, title: expect.stringMatching(/^Page \d rendered$/) });
      expect(page.markdown).toMatch(/Content of page \d that only exists after scripts ran\./);
    }
    for (const [args, message] of [
      [['--render', 'sometimes'], /--render: expected one of never, always, auto, got "sometimes"/],
      [['--render-wait', 'networkidle'], /--render-wait: expected with --render always or --render auto/],
      [['--render', 'auto', '--chromium', '/nonexistent/chromium'], /--chromium: expected the path of a Chromium executable/],
      [['--render', 'auto', '--browser-ws', 'not a url'], /--browser-ws: expected a ws:\/\/, wss:\/\/, http:\/\/ or https:\/\/ URL/],
    ] as const) {
      const bad = await runCli(['crawl', site.url, '--allow-private-network', ...args]);
      expect(bad.code, args.join(' ')).toBe(2);
      expect(bad.stderr).toMatch(message);
      expect(bad.stdout).toBe('');
    }
  }, 90_000);

  it('validates: a job that renders needs an engine with render; render options are checked', async () => {
    const plain = createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: true } });
    await expect(plain.jobs.create({ url: site.url, render: 'auto' })).rejects.toMatchObject({
      code: 'invalid_input',
      errors: [expect.objectContaining({ path: 'render' })],
    });
    await expect(plain.jobs.create({ url: site.url, render: 'sometimes' as never })).rejects.toMatchObject({
      errors: [expect.objectContaining({ path: 'render' })],
    });
    expect(() => createCrawlEngine({ storage: memoryStorage(), render: { executablePath: CHROMIUM, connect: { wsEndpoint: 'ws://127.0.0.1:1' } } })).toThrow(
      /render\.connect/,
    );
    expect(() => createCrawlEngine({ storage: memoryStorage(), leaseMs: 20_000, render: {} })).toThrow(/leaseMs/);
    const storage = memoryStorage();
    const engine = engineWith({}, storage);
    await expect(engine.jobs.create({ url: site.url, render: 'always', renderSelector: '' })).rejects.toMatchObject({
      errors: [expect.objectContaining({ path: 'renderSelector' })],
    });
    // A selector Playwright cannot read fails the page for good, rather than being waited for in vain.
    const unreadable = await engine.crawl({ url: site.url, maxPages: 1, render: 'always', renderSelector: 'nosuchengine=//h1' });
    expect((await allResults(engine, unreadable.id))[0]).toMatchObject({ ok: false, attempts: 1, error: { code: 'render_failed' } });
    // A recrawl of a job that rendered, on an engine that cannot: refused, unless it says never.
    const onPlain = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: ['127.0.0.1'] } });
    await expect(onPlain.jobs.recrawl(unreadable.id)).rejects.toMatchObject({ errors: [expect.objectContaining({ path: 'render' })] });
    expect((await onPlain.jobs.recrawl(unreadable.id, { render: 'never' })).options.render).toBe('never');
    // After close(), the engine starts no browser: a page that would render fails (and is retried elsewhere).
    await engine.close();
    const late = await engine.crawl({ url: site.url, maxPages: 1, maxRetries: 0, render: 'always' });
    expect((await allResults(engine, late.id))[0]!.error).toMatchObject({ code: 'render_failed', message: expect.stringContaining('closed') });
    await engine.close();
    // A remote browser's token is not in the stored error.
    const tokened = createCrawlEngine({
      storage: memoryStorage(),
      fetch: { allowPrivateNetwork: ['127.0.0.1'] },
      render: { connect: { wsEndpoint: 'ws://127.0.0.1:9/chromium?token=SECRET-TOKEN-123' }, timeoutMs: 3000 },
    });
    const refused = await tokened.crawl({ url: site.url, maxPages: 1, maxRetries: 0, render: 'always' });
    const [failed] = await allResults(tokened, refused.id);
    expect(failed!.error?.message).toContain('ws://127.0.0.1:9/chromium');
    expect(failed!.error?.message).not.toContain('SECRET');
    await tokened.close();
  }, 60_000);
});
