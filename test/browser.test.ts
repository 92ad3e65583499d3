import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startSite, type Site } from '../bench/site.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const root = fileURLToPath(new URL('..', import.meta.url));
const shots = `${root}test-results/screenshots/`;
// In CI a missing browser is a failure (.ci/run installs Debian's chromium); on a laptop, a skip.
const run = existsSync(CHROMIUM) || process.env.CI ? describe : describe.skip;

async function waitFor<T>(what: string, probe: () => Promise<T | null | false>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

run('the Express example in a browser', () => {
  let server: ChildProcess;
  let appUrl = '';
  let browser: Browser;
  let page: Page;
  const sites: Site[] = [];

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
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
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // Nothing but loopback resolves: the browser cannot reach any other host.
        '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    server?.kill('SIGTERM');
    await Promise.all(sites.map((s) => s.close()));
  });

  const rows = () => page.locator('#pages tr').count();
  const percent = async () => Number(await page.locator('.bar').getAttribute('aria-valuenow'));
  const status = () => page.locator('#status').textContent();

  async function startCrawl(url: string, maxPages: number, maxDepth: number) {
    await page.fill('input[name=url]', url);
    await page.fill('input[name=maxPages]', String(maxPages));
    await page.fill('input[name=maxDepth]', String(maxDepth));
    await page.click('button[type=submit]');
    await waitFor('the job panel', async () => (await page.locator('#job-id').textContent()) !== '' && (await page.isVisible('#job')));
  }

  test('a crawl fills the progress bar to 100% and the pages table', async () => {
    const site = await startSite({ pages: 40, fanout: 3, latencyMs: 30 });
    sites.push(site);
    await page.goto(appUrl);
    await startCrawl(site.url, 40, 6);
    const seen = new Set<number>();
    await waitFor('100%', async () => {
      seen.add(await percent());
      return (await percent()) === 100 && (await status()) === 'completed';
    });
    expect(await rows()).toBe(40);
    expect([...seen].some((p) => p > 0 && p < 100)).toBe(true);
    expect(await page.locator('#counts').textContent()).toContain('40 of 40 pages');
    await page.screenshot({ path: `${shots}1-completed.png`, fullPage: true });
  }, 60_000);

  test('the cancel button stops a second job', async () => {
    const slow = await startSite({ pages: 300, fanout: 4, latencyMs: 250 });
    sites.push(slow);
    await startCrawl(slow.url, 300, 6);
    await waitFor('a few pages', async () => (await rows()) >= 3);
    await page.click('#cancel');
    await waitFor('cancelled', async () => (await status()) === 'cancelled');
    const after = await rows();
    const requests = slow.requests.length;
    await new Promise((r) => setTimeout(r, 1000));
    expect(await rows()).toBe(after);
    expect(slow.requests.length).toBe(requests);
    expect(await page.isDisabled('#cancel')).toBe(true);
    await page.screenshot({ path: `${shots}2-cancelled.png`, fullPage: true });
  }, 60_000);

  test('reloading mid-crawl resumes the progress and the table', async () => {
    const site = await startSite({ pages: 60, fanout: 3, latencyMs: 80 });
    sites.push(site);
    await startCrawl(site.url, 60, 6);
    await waitFor('some pages', async () => (await rows()) >= 6);
    const before = await percent();
    expect(before).toBeLessThan(100);
    await page.reload();
    await waitFor('the table to be rebuilt', async () => (await rows()) >= 6);
    await page.screenshot({ path: `${shots}3-reloaded.png`, fullPage: true });
    await waitFor('100% after the reload', async () => (await percent()) === 100 && (await status()) === 'completed');
    const urls = await page.locator('#pages tr td:nth-child(2)').allTextContents();
    expect(urls).toHaveLength(60);
    expect(new Set(urls).size).toBe(60);
    await page.screenshot({ path: `${shots}4-reloaded-completed.png`, fullPage: true });
  }, 60_000);
});
