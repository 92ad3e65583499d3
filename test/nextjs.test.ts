import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startSite } from './fixtures/site.mjs';
import type { Job, PageResult, Paginated, RunReport } from '../src/core/types.js';
import { crawlPage, hasChromium, launchBrowser, remoteChromium, shots, waitFor } from './helpers/browser.js';
import { SPA_PAGES, spaSite } from './helpers/spa-site.js';
import { startDocsSite } from './helpers/docs-site.js';
import { readSse } from './helpers/sse.js';

const app = fileURLToPath(new URL('../examples/nextjs/', import.meta.url));
const next = `${app}node_modules/next/dist/bin/next`;
const SECRET = 'test-cron-secret-0123456789';
// No telemetry or update checks: nothing may leave this machine. The runs' budgets are cut to 1 s
// so that a crawl of a few seconds has to be continued by something. The example's own settings
// are the test's to give: none comes from the shell that runs it (a browser, a KV store, webhooks).
const EXAMPLE_SETTINGS = /^(?:CRAWL_|VERCEL|CHROMIUM_PATH$|BROWSER_WS_|KV_REST_API_|UPSTASH_REDIS_REST_|WEBHOOK_|CRON_SECRET$|ALLOW_PRIVATE_NETWORK$)/;
const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !EXAMPLE_SETTINGS.test(name)));
const base = {
  ...inherited,
  NEXT_TELEMETRY_DISABLED: '1',
  ALLOW_PRIVATE_NETWORK: '1',
  NODE_ENV: 'production',
  DATABASE_URL: '',
  CRAWL_AFTER_BUDGET_MS: '1000',
};
// As a newcomer runs it: no CRON_SECRET, nothing set up; the local worker (lib/local-worker.ts, started by the route handlers) continues crawls.
const newcomerEnv = { ...base, CRON_SECRET: '' };
// As on Vercel: CRON_SECRET set, no local worker; crawls continue by chaining through /api/crawl/process.
// Its runs are longer than the 2 s a link of the chain waits for the next one to answer, as every
// run of the default budget is (with 1 s runs, the chain's loss of after() went unnoticed).
const chainEnv = { ...base, CRON_SECRET: SECRET, CRAWL_LOCAL_WORKER: '0', CRAWL_PROCESS_BUDGET_MS: '3000' };
const run = existsSync(next) || process.env.CI ? describe : describe.skip;

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function nextStart(env: NodeJS.ProcessEnv): Promise<{ server: ChildProcess; origin: string; output: () => string }> {
  const port = await freePort();
  const server = spawn(process.execPath, [next, 'start', '-H', '127.0.0.1', '-p', String(port)], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  server.stderr!.on('data', (chunk: Buffer) => {
    output += String(chunk);
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('next start did not come up')), 60_000);
    server.stdout!.on('data', (chunk: Buffer) => {
      output += String(chunk);
      if (/Ready|started server|Local:/i.test(String(chunk))) {
        clearTimeout(timer);
        resolve();
      }
    });
    server.once('exit', (code) => reject(new Error(`next start exited with ${code}: ${output}`)));
  });
  return { server, origin: `http://127.0.0.1:${port}`, output: () => output };
}

async function createJob(origin: string, body: Record<string, unknown>): Promise<Job> {
  const res = await fetch(`${origin}/api/crawl/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(201);
  return (await res.json()) as Job;
}

async function until(origin: string, id: string, status: string, timeoutMs = 20_000): Promise<Job> {
  return waitFor(
    `job ${id} ${status}`,
    async () => {
      const job = (await (await fetch(`${origin}/api/crawl/jobs/${id}`)).json()) as Job;
      return job.status === status && job;
    },
    timeoutMs,
  );
}

run('the Next.js example (next build, next start)', () => {
  let newcomer: Awaited<ReturnType<typeof nextStart>>;
  let chained: Awaited<ReturnType<typeof nextStart>>;
  const sites: Array<{ close(): Promise<unknown> }> = [];

  beforeAll(async () => {
    execFileSync(process.execPath, [next, 'build'], { cwd: app, env: newcomerEnv, stdio: 'pipe', timeout: 240_000 });
    [newcomer, chained] = await Promise.all([nextStart(newcomerEnv), nextStart(chainEnv)]);
  }, 300_000);

  afterAll(async () => {
    newcomer?.server.kill('SIGTERM');
    chained?.server.kill('SIGTERM');
    await Promise.all(sites.map((s) => s.close()));
  });

  test('a job posted to the route handler is processed by after() and completes without cron; SSE streams through Next', async () => {
    const site = await startSite({ pages: 25, fanout: 3, latencyMs: 5 });
    sites.push(site);
    const { origin } = chained;
    const job = await createJob(origin, { url: site.url, maxDepth: 6, maxPages: 25 });
    const events = await readSse((await fetch(`${origin}/api/crawl/jobs/${job.id}/events`)).body!);
    const named = events.filter((e) => e.event);
    expect(named.at(-1)!.event).toBe('job:completed');
    expect(named.filter((e) => e.event === 'page:done')).toHaveLength(25);
    const done = await until(origin, job.id, 'completed');
    expect(done.counts.succeeded).toBe(25);
  }, 30_000);

  test('with nothing set up (no CRON_SECRET, no cron), a crawl longer than one after() budget completes: the local worker continues it', async () => {
    const { origin } = newcomer;
    // No secret: the process route is closed, so nothing chains; only the local worker can go on.
    // (The route module starts it when it is loaded, at the first API request.)
    expect((await fetch(`${origin}/api/crawl/process`)).status).toBe(401);
    expect(newcomer.output()).toContain('local worker started');
    const site = await startSite({ pages: 120, fanout: 4, latencyMs: 30 });
    sites.push(site);
    const job = await createJob(origin, { url: site.url, maxDepth: 8, maxPages: 120 });
    const done = await until(origin, job.id, 'completed');
    expect(done.counts.succeeded).toBe(120);
    // It outlasted the 1 s budget of the run after() started.
    expect(Date.parse(done.finishedAt!) - Date.parse(done.startedAt!)).toBeGreaterThan(1000);
  }, 30_000);

  test('with CRON_SECRET and no local worker (as on Vercel), a crawl longer than one budget completes by chaining through /api/crawl/process, runs longer than the chain waits included', async () => {
    const { origin } = chained;
    expect(chained.output()).not.toContain('local worker started'); // CRAWL_LOCAL_WORKER=0
    // About 9 s of fetching (two pages at a time, 150 ms each): the after() run and at least two
    // chained runs of 3 s, each outlasting the 2 s its caller waits.
    const site = await startSite({ pages: 120, fanout: 4, latencyMs: 150 });
    sites.push(site);
    const job = await createJob(origin, { url: site.url, maxDepth: 8, maxPages: 120 });
    const done = await until(origin, job.id, 'completed', 40_000);
    expect(done.counts.succeeded).toBe(120);
    expect(Date.parse(done.finishedAt!) - Date.parse(done.startedAt!)).toBeGreaterThan(7000); // the 1 s run and two of 3 s
  }, 60_000);

  test('the cron route needs the secret; the page is server-rendered with the form; bad input is a problem+json 400', async () => {
    const { origin } = chained;
    expect((await fetch(`${origin}/api/crawl/process`)).status).toBe(401);
    const ok = await fetch(`${origin}/api/crawl/process`, { headers: { authorization: `Bearer ${SECRET}` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as RunReport).errors).toEqual([]);
    const page = await fetch(`${origin}/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<title>crawl-engine · Next.js example</title>');
    expect(html).toContain('name="viewport" content="width=device-width, initial-scale=1"');
    // The form is in the HTML before any JavaScript runs.
    const tags = (name: string) => html.match(new RegExp(`<${name}\\b[^>]*>`, 'g')) ?? [];
    expect(tags('form').some((t) => t.includes('id="start"'))).toBe(true);
    expect(tags('input').filter((t) => /name="(url|maxPages|maxDepth)"/.test(t) && t.includes('required=""'))).toHaveLength(3);
    expect(tags('button').filter((t) => t.includes('id="crawl"') && !t.includes('disabled'))).toHaveLength(1);
    expect(tags('link').some((t) => t.includes('rel="stylesheet"') && t.includes('.css'))).toBe(true);
    const bad = await fetch(`${origin}/api/crawl/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"url":"ftp://x"}' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toBe('application/problem+json');
  });

  test.runIf(hasChromium || process.env.CI)(
    'render: with BROWSER_WS_ENDPOINT (a browser service, over CDP) a single-page app is crawled rendered; without a browser, render is a 400 naming it',
    async () => {
      const refused = await fetch(`${chained.origin}/api/crawl/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: 'http://127.0.0.1:9/', render: 'always' }),
      });
      expect(refused.status).toBe(400);
      expect(await refused.text()).toMatch(/render/);
      const site = await spaSite();
      sites.push(site);
      const remote = await remoteChromium([]);
      const rendering = await nextStart({ ...chainEnv, BROWSER_WS_ENDPOINT: remote.wsEndpoint });
      try {
        const job = await createJob(rendering.origin, { url: site.url, maxPages: 10, maxDepth: 2, render: 'always', formats: ['metadata', 'markdown'] });
        const done = await until(rendering.origin, job.id, 'completed', 60_000);
        expect(done.counts.succeeded).toBe(SPA_PAGES + 1);
        const results = (await (await fetch(`${rendering.origin}/api/crawl/jobs/${job.id}/results?limit=100`)).json()) as Paginated<PageResult>;
        for (let n = 0; n <= SPA_PAGES; n++) {
          const page = results.items.find((r) => new URL(r.url).pathname === (n === 0 ? '/' : `/page/${n}`));
          expect(page, `page ${n}: ${JSON.stringify(page?.error)}`).toMatchObject({ ok: true, rendered: true, title: `Page ${n} rendered` });
          expect(page!.markdown).toContain(`Content of page ${n} that only exists after scripts ran.`);
        }
        // The browser service made no request of its own: the app's fetcher did (its user agent).
        expect(site.agents.get('/app.js')).toMatch(/^crawl-engine\//);
      } finally {
        rendering.server.kill('SIGTERM');
        await remote.close();
      }
    },
    120_000,
  );

  describe.runIf(hasChromium || process.env.CI)('the page in a browser', () => {
    let browser: Browser;
    let page: Page;
    let ui: ReturnType<typeof crawlPage>;
    const api = async <T>(path: string) => (await (await fetch(`${newcomer.origin}/api/crawl${path}`)).json()) as T;
    /** Every stored result of a job, page by page (a job with markdown lists 25 a page). */
    const allResults = async (id: string) => {
      const items: PageResult[] = [];
      let cursor: string | null = null;
      do {
        const page: Paginated<PageResult> = await api(`/jobs/${id}/results?limit=1000${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
        items.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor !== null);
      return { items };
    };

    beforeAll(async () => {
      browser = await launchBrowser();
      page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      ui = crawlPage(page);
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
    });

    test('a crawl with broken links: progress, newest first, failure codes, no overflow at 400 and 1280 px; reload resumes', async () => {
      const docs = await startDocsSite({ pages: 50, fanout: 3, latencyMs: 100 });
      sites.push(docs);
      await page.goto(`${newcomer.origin}/`);
      const id = await ui.start(docs.url, 70, 6);
      expect(new URL(page.url()).searchParams.get('job')).toBe(id);
      await waitFor('a failure row mid-crawl', async () => (await page.locator('#pages tr.fail').count()) > 0 && (await ui.status()) === 'running');
      await ui.shootAtBothWidths('next-1-running');

      // Reload mid-crawl: the job comes back from the address, with its table.
      const before = await ui.rows();
      if ((await ui.status()) === 'running') {
        await page.reload();
        expect(new URL(page.url()).searchParams.get('job')).toBe(id);
        await waitFor('the table to be rebuilt', async () => (await ui.jobId()) === id && (await ui.rows()) >= before);
      }

      await ui.finished();
      await page.waitForTimeout(1000); // the last results read fills in titles and HTTP statuses
      const results = await allResults(id);
      expect(await ui.rowUrls()).toEqual(results.items.map((r) => r.url).reverse());
      const failure = results.items.find((r) => !r.ok)!;
      const failRow = page.locator(`#pages tr[data-url="${failure.url}"]`);
      expect(await failRow.locator('.code').textContent()).toBe('http_error');
      expect(await failRow.locator('.http').textContent()).toBe('HTTP 404');
      const ok = results.items.find((r) => r.ok && r.title !== null && typeof r.markdown === 'string' && r.markdown !== '')!;
      expect(await page.locator(`#pages tr[data-url="${ok.url}"] .page-title`).textContent()).toBe(ok.title);
      // The Markdown box (checked by default) asked for each page's markdown: folded under its row.
      expect(await page.locator(`#pages tr[data-url="${ok.url}"] details.markdown pre`).textContent()).toBe(ok.markdown);
      expect(await page.locator('#stat-rate').textContent()).toMatch(/pages\/s$/);
      expect(await page.isDisabled('#cancel')).toBe(true);
      await ui.shootAtBothWidths('next-2-completed');
    }, 45_000);

    test('a double click on Crawl makes one job; cancel stops a job', async () => {
      const docs = await startDocsSite({ pages: 200, fanout: 4, latencyMs: 200 });
      sites.push(docs);
      await page.route('**/api/crawl/jobs', async (route) => {
        if (route.request().method() === 'POST') await new Promise((r) => setTimeout(r, 400));
        await route.continue();
      });
      const count = async () => (await api<Paginated<Job>>('/jobs?limit=100')).items.length;
      const before = await count();
      const previous = await ui.jobId();
      await ui.fill(docs.url, 200, 6);
      await page.dblclick('#crawl');
      expect(await page.isDisabled('#crawl')).toBe(true);
      await waitFor('the new job', async () => (await ui.jobId()) !== previous && (await ui.rows()) >= 3);
      expect(await count()).toBe(before + 1);
      await page.unroute('**/api/crawl/jobs');

      await page.click('#cancel');
      await ui.finished('cancelled', 'cancelled');
      const requests = docs.requests.length;
      await new Promise((r) => setTimeout(r, 800));
      expect(docs.requests.length).toBe(requests);
      await page.screenshot({ path: `${shots}next-3-cancelled-1280.png` });
    }, 30_000);
  });
});
