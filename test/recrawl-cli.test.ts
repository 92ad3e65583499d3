/**
 * `crawl-engine recrawl <jobId>`: spawns the built CLI against a loopback site, on a PGlite folder
 * (the storage the job was crawled with): a crawl, then a recrawl after one page changed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { PageResult } from '../src/core/types.js';
import { type RecrawlSite, recrawlSite } from './helpers/recrawl-site.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let site: RecrawlSite;
let dir: string;
beforeAll(async () => {
  site = await recrawlSite(20);
  dir = mkdtempSync(join(tmpdir(), 'crawl-cli-recrawl-'));
});
afterAll(async () => {
  await site.close();
  rmSync(dir, { recursive: true, force: true });
});

const lines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as PageResult);

describe('crawl-engine recrawl', () => {
  test('crawls a stored job again: conditional requests, each page marked; bad arguments name the flag', async () => {
    const storage = `pglite:${join(dir, 'db')}`;
    const first = await run(['crawl', site.url, '--storage', storage, '--allow-private-network', '--max-pages', '100', '--quiet']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const firstLines = lines(first.stdout);
    expect(firstLines).toHaveLength(31);
    // The job id, from the storage.
    const { PGlite } = await import('@electric-sql/pglite');
    const db = new PGlite(join(dir, 'db'));
    const { rows } = await db.query<{ id: string }>('SELECT id FROM crawl_jobs');
    await db.close();
    const jobId = rows[0]!.id;

    site.change(4);
    site.resetCounts();
    const again = await run(['recrawl', jobId, '--storage', storage, '--allow-private-network', '--quiet', '--format', 'jsonl']);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    const results = lines(again.stdout);
    expect(results).toHaveLength(31);
    expect(results.filter((r) => r.change === 'changed').map((r) => new URL(r.url).pathname)).toEqual(['/p/4']);
    expect(results.filter((r) => r.change === 'unchanged')).toHaveLength(30);
    expect(site.notModified).toBe(30);

    expect((await run(['recrawl', jobId])).stderr).toMatch(/^crawl-engine: recrawl: --storage is required/);
    expect((await run(['recrawl', jobId, '--storage', storage, '--max-pages', '0'])).stderr).toMatch(/^crawl-engine: --max-pages: expected an integer/);
    expect((await run(['recrawl', jobId, '--storage', storage, '--formats', 'html'])).stderr).toMatch(/^crawl-engine: unknown option --formats/);
    const missing = await run(['recrawl', 'job_none', '--storage', storage]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/recrawl: no job job_none in PGlite/);
  }, 120_000);

  test('delete keeps a job whose content a recrawl points to, until the recrawl is deleted', async () => {
    const storage = `pglite:${join(dir, 'links')}`;
    const ids = async () => {
      const { PGlite } = await import('@electric-sql/pglite');
      const db = new PGlite(join(dir, 'links'));
      const { rows } = await db.query<{ id: string }>('SELECT id FROM crawl_jobs ORDER BY ordinal');
      await db.close();
      return rows.map((row) => row.id);
    };
    expect((await run(['crawl', site.url, '--storage', storage, '--allow-private-network', '--formats', 'links', '--quiet'])).code).toBe(0);
    const [first] = await ids();
    expect((await run(['recrawl', first!, '--storage', storage, '--allow-private-network', '--quiet'])).code).toBe(0);
    const [, second] = await ids();
    const refused = await run(['delete', first!, '--storage', storage]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`crawl-engine: delete: job "${first}" holds content that its recrawl "${second}" points to`);
    expect((await run(['delete', second!, '--storage', storage, '--quiet'])).code).toBe(0);
    expect((await run(['delete', first!, '--storage', storage, '--quiet'])).code).toBe(0);
    expect(await ids()).toEqual([]);
  }, 120_000);
});
