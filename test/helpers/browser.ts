import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { QUIET_CHROMIUM_ARGS } from '../../src/crawl/playwright.js';

/** Debian's Chromium (.ci/run installs it); no browser is ever downloaded. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
export const shots = fileURLToPath(new URL('../../test-results/screenshots/', import.meta.url));

/** Headless Chromium that can resolve nothing but loopback, so a page cannot reach the internet. */
export async function launchBrowser(): Promise<Browser> {
  mkdirSync(shots, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', ...QUIET_CHROMIUM_ARGS, '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1'],
  });
}

/** A Chromium started on its own with `--remote-debugging-port`, as a browser service runs one; `flags` added. */
export async function remoteChromium(flags: string[]): Promise<{ wsEndpoint: string; alive(): boolean; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'crawl-engine-cdp-'));
  const remote = spawn(CHROMIUM, ['--headless', '--no-sandbox', `--user-data-dir=${profile}`, '--remote-debugging-port=0', ...flags, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true, // its own process group, so that its children end with it
  });
  const wsEndpoint = await new Promise<string>((resolve, reject) => {
    let text = '';
    remote.stderr!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const found = /DevTools listening on (ws:\/\/\S+)/.exec(text);
      if (found) resolve(found[1]!);
    });
    remote.once('exit', (code) => reject(new Error(`chromium exited (${code}): ${text}`)));
  });
  return {
    wsEndpoint,
    alive: () => remote.exitCode === null,
    async close() {
      const exited = new Promise((resolve) => (remote.exitCode === null ? remote.once('exit', resolve) : resolve(null)));
      process.kill(-remote.pid!, 'SIGKILL');
      await exited;
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | null | false>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const WIDTHS = [400, 1280] as const;

/**
 * The example page (both examples have the same markup: #start, #crawl, #job, #status, #pages
 * rows with data-url and data-kind, .code, #cancel, the .bar progressbar, #stat-*).
 */
export function crawlPage(page: Page) {
  const self = {
    rows: () => page.locator('#pages tr[data-url]').count(),
    rowUrls: () => page.locator('#pages tr[data-url]').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.url!)),
    status: async () => (await page.locator('#status').textContent()) ?? '',
    percent: async () => Number(await page.locator('.bar').getAttribute('aria-valuenow')),
    jobId: async () => (await page.locator('#job-id').textContent()) ?? '',
    async fill(url: string, maxPages: number, maxDepth: number) {
      await page.fill('input[name=url]', url);
      await page.fill('input[name=maxPages]', String(maxPages));
      await page.fill('input[name=maxDepth]', String(maxDepth));
    },
    /** Starts a crawl and waits for its panel; returns the job id. */
    async start(url: string, maxPages: number, maxDepth: number): Promise<string> {
      const before = (await page.isVisible('#job')) ? await self.jobId() : '';
      await self.fill(url, maxPages, maxDepth);
      await page.click('#crawl');
      return waitFor('the job panel', async () => {
        const id = await self.jobId();
        return id !== '' && id !== before && (await page.isVisible('#job')) && id;
      });
    },
    async finished(what = 'the job to complete', status = 'completed') {
      await waitFor(what, async () => (await self.status()) === status && (status !== 'completed' || (await self.percent()) === 100));
    },
    /** The page is no wider than the window (nothing makes it scroll sideways). */
    async expectNoHorizontalOverflow(label: string) {
      const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: document.scrollingElement!.scrollWidth, innerWidth: window.innerWidth }));
      expect(scrollWidth, `${label}: page width ${scrollWidth} > window ${innerWidth}`).toBeLessThanOrEqual(innerWidth);
      // And no element sticks out to the right (a table cell clipped by overflow: hidden would not
      // show in scrollWidth, but would be cut off for the reader).
      const wide = await page.evaluate(() =>
        [...document.querySelectorAll('main *')]
          .filter((e) => {
            const box = e.getBoundingClientRect();
            return box.width > 0 && box.right > window.innerWidth + 0.5;
          })
          .map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}.${[...e.classList].join('.')}`)
          .slice(0, 5),
      );
      expect(wide, `${label}: elements past the right edge`).toEqual([]);
      // Nor is a button, a status or an error code squeezed so that its text is cut off.
      const squeezed = await page.evaluate(() =>
        [...document.querySelectorAll('main button, main .status, main .code')]
          .filter((e) => e.getBoundingClientRect().width > 0 && e.scrollWidth > e.clientWidth + 1)
          .map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}: ${e.textContent}`)
          .slice(0, 5),
      );
      expect(squeezed, `${label}: text cut off`).toEqual([]);
    },
    /** Screenshots at 1280 and 400 px, checking for horizontal overflow at each; ends at 1280. */
    async shootAtBothWidths(name: string) {
      for (const width of [...WIDTHS].reverse()) {
        await page.setViewportSize({ width, height: 900 });
        await page.waitForTimeout(100);
        await self.expectNoHorizontalOverflow(`${name} at ${width}px`);
        await page.screenshot({ path: `${shots}${name}-${width}.png` });
      }
      await page.setViewportSize({ width: 1280, height: 900 });
    },
  };
  return self;
}
