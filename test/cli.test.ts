import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { pagesWithin, startSite, type Site } from './fixtures/site.mjs';

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

let site: Site;
beforeAll(async () => {
  site = await startSite({ pages: 200, fanout: 5 });
});
afterAll(() => site.close());

describe('crawl-engine crawl', () => {
  test('crawls, writes one JSON line per page to stdout, prints progress lines and a summary, exits 0', async () => {
    const { code, stdout, stderr } = await run(['crawl', site.url, '--max-pages', '500', '--max-depth', '2', '--allow-private-network']);
    expect(code).toBe(0);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { url: string; ok: boolean; depth: number });
    expect(lines).toHaveLength(pagesWithin(2, site.opts).size);
    expect(lines.every((l) => l.ok)).toBe(true);
    expect(stderr).toMatch(/\] \d+ fetched \/ \d+ discovered \(max 500\) · 0 failed · \d+ in flight · [\d.]+ pages\/s/);
    expect(stderr).toMatch(/Done: \d+ pages in .* \d+ ok, 0 failed\. Job job_/);
  });

  test('--out writes the results to a file', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'crawl-cli-')), 'r.jsonl');
    const { code, stdout } = await run(['crawl', site.url, '--max-pages', '7', '--out', out, '--quiet', '--allow-private-network']);
    expect(code).toBe(0);
    expect(stdout).toBe('');
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(7);
  });

  test.each([
    [['crawl'], /missing <url>/],
    [['crawl', 'x', 'y'], /expected one <url>, got 2/],
    [['crawl', site?.url ?? 'http://127.0.0.1/', '--max-pages', 'ten'], /--max-pages: expected an integer from 1 to 1000000, got "ten"/],
    [['crawl', 'http://127.0.0.1/', '--bogus'], /unknown option --bogus\n/],
    [['crawl', 'http://127.0.0.1/', '--scope', 'galaxy'], /--scope: expected one of/],
    [['crawl', 'ftp://example.com/'], /url: expected an absolute http\(s\) URL/],
    [['fetch'], /unknown command "fetch"/],
  ])('bad arguments %j exit 2 with a clear message', async (args, message) => {
    const { code, stderr } = await run(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  test('a failed start URL exits 1 and says why', async () => {
    const { code, stderr } = await run(['crawl', `${site.origin}/nowhere`, '--allow-private-network']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/Job failed: .* http_error: HTTP 404/);
  });
});

describe.runIf(Boolean(process.env.DATABASE_URL))('the CLI on Postgres', () => {
  test('migrate creates the schema once, then crawl --storage postgres:// stores the crawl there', async () => {
    const schema = `cli_${Date.now().toString(36)}`;
    const url = process.env.DATABASE_URL!;
    const first = await run(['migrate', '--storage', url, '--schema', schema]);
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/Applied migrations 1, 2, 3; schema is at version 3/);
    expect((await run(['migrate', '--storage', url, '--schema', schema])).stderr).toMatch(/Schema is up to date/);
    const crawl = await run(['crawl', site.url, '--storage', url, '--schema', schema, '--max-pages', '12', '--allow-private-network', '--quiet']);
    expect(crawl.code).toBe(0);
    expect(crawl.stdout.trim().split('\n')).toHaveLength(12);
    const pg = await import('pg');
    const pool = new pg.default.Pool({ connectionString: url });
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".crawl_results`);
    expect(rows[0].n).toBe(12);
    await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
    await pool.end();
  });

  test('migrate without a postgres URL is a usage error', async () => {
    const { code, stderr } = await run(['migrate']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--storage postgres:\/\/… is required/);
  });
});

describe.runIf(Boolean(process.env.REDIS_URL))('the CLI on Redis', () => {
  test('crawl --storage redis:// stores the crawl under the key prefix', async () => {
    const prefix = `cli${Date.now().toString(36)}:`;
    const crawl = await run([
      'crawl',
      site.url,
      '--storage',
      process.env.REDIS_URL!,
      '--table-prefix',
      prefix,
      '--max-pages',
      '9',
      '--allow-private-network',
      '--quiet',
    ]);
    expect(crawl.code).toBe(0);
    expect(crawl.stdout.trim().split('\n')).toHaveLength(9);
    const { default: Redis } = await import('ioredis');
    const redis = new Redis(process.env.REDIS_URL!);
    const keys = await redis.keys(`${prefix}*`);
    expect(keys.some((k) => k.endsWith(':res'))).toBe(true);
    await redis.del(...keys);
    redis.disconnect();
  });
});
