import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { PageResult } from '../src/core/types.js';
import { type RecrawlSite, recrawlSite } from './helpers/recrawl-site.js';
import { runCli } from './helpers/cli.js';

const run = (args: string[]) => runCli(args);

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

/** A storage for the CLI (`arg`, with `--schema` on Postgres) and the ids of its jobs, oldest first. */
async function cliStorage(name: string): Promise<{ args: string[]; ids(): Promise<string[]>; drop(): Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (url) {
    const { default: pg } = await import('pg');
    const schema = `recrawl_cli_${name}_${process.pid}_${Date.now()}`;
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    return {
      args: ['--storage', url, '--schema', schema],
      async ids() {
        const { rows } = await pool.query<{ id: string }>(`SELECT id FROM "${schema}".crawl_jobs ORDER BY ordinal`);
        return rows.map((row) => row.id);
      },
      async drop() {
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await pool.end();
      },
    };
  }
  const folder = join(dir, name);
  return {
    args: ['--storage', `pglite:${folder}`],
    async ids() {
      const { PGlite } = await import('@electric-sql/pglite');
      const db = new PGlite(folder);
      const { rows } = await db.query<{ id: string }>('SELECT id FROM crawl_jobs ORDER BY ordinal');
      await db.close();
      return rows.map((row) => row.id);
    },
    async drop() {},
  };
}

const lines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as PageResult);

describe('crawl-engine recrawl', () => {
  test('crawls a stored job again: conditional requests, each page marked; bad arguments name the flag', async () => {
    const store = await cliStorage('db');
    try {
      const first = await run(['crawl', site.url, ...store.args, '--allow-private-network', '--max-pages', '100', '--quiet']);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const firstLines = lines(first.stdout);
      expect(firstLines).toHaveLength(31);
      const [jobId] = await store.ids();

      site.change(4);
      site.resetCounts();
      const again = await run(['recrawl', jobId!, ...store.args, '--allow-private-network', '--quiet', '--format', 'jsonl']);
      expect(again.stderr).toBe('');
      expect(again.code).toBe(0);
      const results = lines(again.stdout);
      expect(results).toHaveLength(31);
      expect(results.filter((r) => r.change === 'changed').map((r) => new URL(r.url).pathname)).toEqual(['/p/4']);
      expect(results.filter((r) => r.change === 'unchanged')).toHaveLength(30);
      expect(site.notModified).toBe(30);

      expect((await run(['recrawl', jobId!])).stderr).toMatch(/^crawl-engine: recrawl: --storage is required/);
      expect((await run(['recrawl', jobId!, ...store.args, '--max-pages', '0'])).stderr).toMatch(/^crawl-engine: --max-pages: expected an integer/);
      expect((await run(['recrawl', jobId!, ...store.args, '--formats', 'html'])).stderr).toMatch(/^crawl-engine: unknown option --formats/);
      const missing = await run(['recrawl', 'job_none', ...store.args]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/recrawl: no job job_none in (PGlite|Postgres)/);
    } finally {
      await store.drop();
    }
  }, 120_000);

  test('delete keeps a job whose content a recrawl points to, until the recrawl is deleted', async () => {
    const store = await cliStorage('links');
    try {
      expect((await run(['crawl', site.url, ...store.args, '--allow-private-network', '--formats', 'links', '--quiet'])).code).toBe(0);
      const [first] = await store.ids();
      expect((await run(['recrawl', first!, ...store.args, '--allow-private-network', '--quiet'])).code).toBe(0);
      const [, second] = await store.ids();
      const refused = await run(['delete', first!, ...store.args]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`crawl-engine: delete: job "${first}" holds content that its recrawl "${second}" points to`);
      expect((await run(['delete', second!, ...store.args, '--quiet'])).code).toBe(0);
      expect((await run(['delete', first!, ...store.args, '--quiet'])).code).toBe(0);
      expect(await store.ids()).toEqual([]);
    } finally {
      await store.drop();
    }
  }, 120_000);
});
