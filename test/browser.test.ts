import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Job, PageResult, Paginated } from '../src/core/types.js';
import { crawlPage, hasChromium, launchBrowser, shots, waitFor } from './helpers/browser.js';
import { type DocsSite, startDocsSite } from './helpers/docs-site.js';

const root = fileURLToPath(new URL('..', import.meta.url));
// In CI a missing browser is a failure (.ci/run installs Debian's chromium); on a laptop, a skip.
const run = hasChromium || process.env.CI ? describe : describe.skip;

run('the Express example in a browser', () => {
  let server: ChildProcess;
  let appUrl = '';
  let browser: Browser;
  let page: Page;
  let ui: ReturnType<typeof crawlPage>;
  const sites: DocsSite[] = [];
  const api = async <T>(path: string) => (await (await fetch(`${appUrl}api/crawl${path}`)).json()) as T;
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
  const site = async (options: Parameters<typeof startDocsSite>[0]) => {
    const s = await startDocsSite(options);
    sites.push(s);
    return s;
  };

  beforeAll(async () => {
    console.log(`screenshots: ${shots}`);
    server = spawn(process.execPath, [`${root}examples/express/server.mjs`], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ALLOW_PRIVATE_NETWORK: '1', DATABASE_URL: '', REDIS_URL: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    appUrl = await new Promise<string>((resolve, reject) => {
      server.stdout!.on('data', (chunk: Buffer) => {
        const found = /listening on (http:\/\/\S+)/.exec(String(chunk));
        if (found) resolve(found[1]!);
      });
      server.once('exit', (code) => reject(new Error(`example exited with ${code}`)));
    });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    ui = crawlPage(page);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    server?.kill('SIGTERM');
    await Promise.all(sites.map((s) => s.close()));
  });

  test('a crawl with broken links: live progress, newest first, failures with their code, no overflow at 400 and 1280 px', async () => {
    const docs = await site({ pages: 60, fanout: 3, latencyMs: 120 });
    await page.goto(appUrl);
    await ui.shootAtBothWidths('express-0-empty');
    const id = await ui.start(docs.url, 80, 6);
    expect(new URL(page.url()).searchParams.get('job')).toBe(id);

    // Mid-crawl: a failure row, counters moving, at both widths.
    await waitFor('a failure row mid-crawl', async () => (await page.locator('#pages tr.fail').count()) > 0 && (await ui.status()) === 'running');
    const mid = await ui.percent();
    expect(mid).toBeLessThan(100);
    await waitFor('the speed and the elapsed time', async () => (await page.locator('#stat-rate').textContent())!.includes('pages/s'));
    await ui.shootAtBothWidths('express-1-running');

    await ui.finished();
    await page.waitForTimeout(1200); // the last results read fills in titles and HTTP statuses
    const job = await api<Job>(`/jobs/${id}`);
    const results = await allResults(id);
    const finished = job.counts.succeeded + job.counts.failed + job.counts.skipped;
    expect(job.counts.failed).toBeGreaterThan(0);

    // Newest first: the table is the stored order, reversed.
    const urls = await ui.rowUrls();
    expect(urls).toEqual(results.items.map((r) => r.url).reverse());
    expect(urls).toHaveLength(finished);

    // A failure shows its error code and HTTP status; an ok row its title and status.
    const failure = results.items.find((r) => !r.ok)!;
    const failRow = page.locator(`#pages tr[data-url="${failure.url}"]`);
    expect(await failRow.getAttribute('class')).toContain('fail');
    expect(await failRow.locator('.code').textContent()).toBe('http_error');
    expect(await failRow.locator('.http').textContent()).toBe('HTTP 404');
    const ok = results.items.find((r) => r.ok && r.title !== null && typeof r.markdown === 'string' && r.markdown !== '')!;
    const okRow = page.locator(`#pages tr[data-url="${ok.url}"]`);
    expect(await okRow.locator('.page-title').textContent()).toBe(ok.title);
    // The Markdown box (checked by default) asked for each page's markdown: folded under its row.
    expect(await okRow.locator('details.markdown pre').textContent()).toBe(ok.markdown);
    expect(await page.locator('#pages details.markdown').count()).toBeGreaterThan(0);
    expect(await okRow.locator('.code').textContent()).toBe('200');
    expect(await page.locator('#stat-failed').textContent()).toBe(String(job.counts.failed));
    expect(await page.locator('#stat-elapsed').textContent()).toMatch(/^\d+:\d\d$/);
    expect(await page.locator('#stat-rate').textContent()).toMatch(/^\d+\.\d pages\/s$/);
    expect(await page.isDisabled('#cancel')).toBe(true);
    // The page with the long URL and title is in the table, cut short rather than widening it.
    expect(urls).toContain(`${docs.origin}${docs.longPath}`);
    await ui.shootAtBothWidths('express-2-completed');
    await page.setViewportSize({ width: 400, height: 900 });
    await page.locator(`#pages tr[data-url="${docs.origin}${docs.longPath}"]`).screenshot({ path: `${shots}express-2-long-row-400.png` });
    await page
      .locator('#pages tr.fail')
      .first()
      .screenshot({ path: `${shots}express-2-failure-row-400.png` });
    await page.setViewportSize({ width: 1280, height: 900 });
  }, 60_000);

  test('a double click on Crawl makes one job; the button is disabled while the request is pending', async () => {
    const docs = await site({ pages: 10, fanout: 3 });
    // Hold the create request a moment, so the second click lands while it is pending.
    await page.route('**/api/crawl/jobs', async (route) => {
      if (route.request().method() === 'POST') await new Promise((r) => setTimeout(r, 400));
      await route.continue();
    });
    const before = (await api<Paginated<Job>>('/jobs?limit=100')).items.length;
    const previous = await ui.jobId();
    await ui.fill(docs.url, 10, 3);
    await page.dblclick('#crawl');
    expect(await page.isDisabled('#crawl')).toBe(true);
    await waitFor('the new job', async () => (await ui.jobId()) !== previous);
    await ui.finished();
    await page.waitForTimeout(300);
    expect(await page.isDisabled('#crawl')).toBe(false);
    expect((await api<Paginated<Job>>('/jobs?limit=100')).items.length).toBe(before + 1);
    await page.unroute('**/api/crawl/jobs');
  }, 30_000);

  test('the Recrawl button crawls the site again as a new job; each page is marked (unchanged here)', async () => {
    const docs = await site({ pages: 8, fanout: 3 });
    await ui.start(docs.url, 8, 3);
    await ui.finished();
    const first = await ui.jobId();
    expect(await page.isDisabled('#recrawl')).toBe(false);
    await page.click('#recrawl');
    await waitFor('the recrawl', async () => (await ui.jobId()) !== first);
    await ui.finished();
    const again = await ui.jobId();
    expect((await api<Job>(`/jobs/${again}`)).options.recrawlOf).toBe(first);
    const results = await api<Paginated<PageResult>>(`/jobs/${again}/results?limit=100`);
    expect(results.items.length).toBeGreaterThan(0);
    await waitFor('every row marked', async () => (await page.locator('#pages tr[data-url] .change').count()) === results.items.length);
    expect(new Set(await page.locator('#pages .change').allTextContents())).toEqual(new Set(['unchanged']));
    await page.screenshot({ path: `${shots}express-4-recrawled-1280.png` });
  }, 30_000);

  test('the cancel button stops a job', async () => {
    const slow = await site({ pages: 300, fanout: 4, latencyMs: 250 });
    await ui.start(slow.url, 300, 6);
    await waitFor('a few pages', async () => (await ui.rows()) >= 3);
    await page.click('#cancel');
    await ui.finished('cancelled', 'cancelled');
    const rows = await ui.rows();
    const requests = slow.requests.length;
    await new Promise((r) => setTimeout(r, 1000));
    expect(await ui.rows()).toBe(rows);
    expect(slow.requests.length).toBe(requests);
    expect(await page.isDisabled('#cancel')).toBe(true);
    await page.screenshot({ path: `${shots}express-3-cancelled-1280.png` });
  }, 30_000);

  test('a start URL that answers 404 fails the job, and the page says why; long URLs do not squeeze the buttons', async () => {
    const docs = await site({ pages: 5 });
    await page.goto(appUrl);
    await ui.start(`${docs.origin}/docs/removed-and-never-coming-back-${'x'.repeat(80)}`, 10, 2);
    await ui.finished('failed', 'failed');
    expect(await page.locator('#counts').textContent()).toContain('job failed: HTTP 404');
    expect(await page.locator('#pages tr.fail .code').textContent()).toBe('http_error');
    await ui.shootAtBothWidths('express-5-failed');
  }, 30_000);

  test('reloading mid-crawl picks the job up again: progress, clock and table', async () => {
    const docs = await site({ pages: 60, fanout: 3, latencyMs: 100 });
    const id = await ui.start(docs.url, 60, 6);
    const started = Date.now();
    await waitFor('some pages and a second', async () => (await ui.rows()) >= 6 && Date.now() - started > 1100);
    expect(await ui.percent()).toBeLessThan(100);
    await page.reload();
    expect(new URL(page.url()).searchParams.get('job')).toBe(id);
    await waitFor('the table to be rebuilt', async () => (await ui.rows()) >= 6);
    expect(await ui.jobId()).toBe(id);
    expect(await page.locator('#stat-elapsed').textContent()).not.toBe('0:00');
    await ui.finished('100% after the reload');
    const urls = await ui.rowUrls();
    expect(new Set(urls).size).toBe(urls.length);
    const results = await allResults(id);
    expect(urls).toEqual(results.items.map((r) => r.url).reverse());
    await page.screenshot({ path: `${shots}express-4-reloaded-completed-1280.png` });

    // An address with a job the server does not know: a message, and the form still works.
    await page.goto(`${appUrl}?job=job_doesnotexist`);
    await waitFor('the message', async () => (await page.locator('#error').textContent())!.includes('does not exist'));
    expect(await page.isVisible('#job')).toBe(false);
    expect(new URL(page.url()).searchParams.get('job')).toBeNull();
  }, 30_000);
});
