import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MIGRATIONS } from '../adapters/postgres/schema.js';
import { pagesWithin, startSite, type Site } from './fixtures/site.mjs';
import { runCli } from './helpers/cli.js';

const run = (args: string[], onSpawn?: (child: ChildProcess) => void) => runCli(args, onSpawn);

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
    const versions = MIGRATIONS.map((m) => m.version);
    expect(first.stderr).toContain(`Applied migrations ${versions.join(', ')}; schema is at version ${Math.max(...versions)}`);
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

  test('resume with a mistyped --schema or --table-prefix is a usage error naming them, and creates no schema or table', async () => {
    const url = process.env.DATABASE_URL!;
    const schema = `cli_typo_${Date.now().toString(36)}`;
    const noSchema = await run(['resume', 'job_nope', '--storage', url, '--schema', schema]);
    expect(noSchema.code).toBe(2);
    expect(noSchema.stderr).toMatch(
      new RegExp(
        `^crawl-engine: resume: Postgres at [^ ]+ has no table ${schema}\\.crawl_jobs: expected the --storage, --schema and --table-prefix the job was crawled with \\(resume creates nothing\\)\n`,
      ),
    );
    const noPrefix = await run(['resume', 'job_nope', '--storage', url, '--table-prefix', 'cli_typo_']);
    expect(noPrefix.code).toBe(2);
    expect(noPrefix.stderr).toMatch(/^crawl-engine: resume: Postgres at \S+ has no table public\.cli_typo_jobs: /);
    const pg = await import('pg');
    const pool = new pg.default.Pool({ connectionString: url });
    try {
      expect((await pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rows).toEqual([]);
      expect((await pool.query(`SELECT 1 FROM pg_class WHERE relname LIKE 'cli\\_typo\\_%'`)).rows).toEqual([]);
    } finally {
      await pool.end();
    }
  });

  test('the resume command printed for a crawl shows no password, in the userinfo (up to its last @) or in the query', async () => {
    const schema = `cli_mask_${Date.now().toString(36)}`;
    const base = new URL(process.env.DATABASE_URL!);
    // The server trusts the user: the passwords are not checked, only never to be printed.
    const url = `postgres://${base.username || 'postgres'}:pa@ss3cret@${base.host}${base.pathname}?password=s3cret&sslmode=disable&application_name=cli`;
    const crawl = await run(['crawl', site.url, '--storage', url, '--schema', schema, '--max-pages', '2', '--allow-private-network']);
    expect(crawl.code, crawl.stderr).toBe(0);
    const command = /continue it with: (crawl-engine resume .*)$/m.exec(crawl.stderr)?.[1];
    expect(command).toBe(
      `crawl-engine resume ${/job_\S+/.exec(command ?? '')?.[0]} --storage 'postgres://${base.username || 'postgres'}:<password>@${base.host}${base.pathname}?password=<password>&sslmode=disable&application_name=cli' --schema ${schema} --allow-private-network`,
    );
    expect(crawl.stderr).not.toMatch(/s3cret/);
    const pg = await import('pg');
    const pool = new pg.default.Pool({ connectionString: process.env.DATABASE_URL });
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

/** node:sqlite works without a flag from Node.js 22.13 and 23.4. */
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const hasNodeSqlite = major > 23 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13);

/** The arguments of a command line printed by the CLI (words, or 'quoted' ones). */
const shellWords = (line: string) => [...line.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)].map((m) => (m[1] === undefined ? m[2]! : m[1].replaceAll("'\\''", "'")));

describe.each([
  ['pglite', 'pglite:', true],
  ['sqlite', 'sqlite:', hasNodeSqlite],
] as const)('resume on %s storage', (name, scheme, available) => {
  test.skipIf(!available)(
    `a crawl stopped by Ctrl-C (SIGINT) continues with the printed resume command; every page is stored exactly once${name === 'sqlite' ? ' (node:sqlite needs Node.js >= 22.13)' : ''}`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), `crawl-cli-${name}-`));
      const slow = await startSite({ pages: 300, fanout: 4, latencyMs: 40 });
      try {
        const storage = `${scheme}${join(dir, name === 'sqlite' ? 'crawl.db' : 'pg')}`;
        const args = [
          'crawl',
          slow.url,
          '--max-pages',
          '60',
          '--max-depth',
          '20',
          '--per-host-concurrency',
          '3',
          '--storage',
          storage,
          '--allow-private-network',
        ];
        const first = await run(args, (child) => {
          const poll = setInterval(() => {
            if (slow.requests.length < 12) return;
            clearInterval(poll);
            child.kill('SIGINT');
          }, 10);
        });
        expect(first.code).toBe(130);
        expect(first.stderr).toMatch(/^stopping… \(Ctrl-C again to exit at once\)$/m);
        expect(first.stderr).toMatch(/^Stopped \(interrupted\): \d+ pages? in /m);
        const command = /^To continue: crawl-engine (resume job_\S+ .*)$/m.exec(first.stderr)?.[1];
        expect(command, first.stderr).toBeDefined();
        const resumeArgs = shellWords(command!);
        expect(resumeArgs.slice(2)).toEqual(['--storage', storage, '--allow-private-network']);
        const before = first.stdout.trim().split('\n').filter(Boolean);
        expect(before.length).toBeGreaterThan(0);
        expect(before.length).toBeLessThan(60);

        const second = await run(resumeArgs);
        expect(second.code, second.stderr).toBe(0);
        expect(second.stderr).toMatch(
          new RegExp(`^Job ${resumeArgs[1]} \\(${slow.url.replaceAll('.', '\\.')}\\), resuming: ${before.length} fetched / \\d+ discovered \\(max 60\\)`, 'm'),
        );
        expect(second.stderr).toMatch(new RegExp(`^Done: 60 pages \\(${60 - before.length} in this run\\) in `, 'm'));
        const results = second.stdout
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as { url: string; ok: boolean });
        expect(results).toHaveLength(60);
        expect(new Set(results.map((r) => r.url)).size).toBe(60);
        expect(results.every((r) => r.ok)).toBe(true);
        // The pages of the first run come first, as they were stored.
        expect(results.slice(0, before.length).map((r) => r.url)).toEqual(before.map((line) => (JSON.parse(line) as { url: string }).url));
        // A page is requested again only if it was in flight at Ctrl-C (its lease was given back).
        const twice = [...slow.hits.entries()].filter(([path, n]) => path !== '/robots.txt' && n > 1);
        expect(twice.length).toBeLessThanOrEqual(3);

        // Resuming a finished job writes its pages again and exits as crawl did.
        const again = await run([...resumeArgs, '--quiet']);
        expect(again.code).toBe(0);
        expect(again.stdout.trim().split('\n')).toHaveLength(60);
      } finally {
        await slow.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );
});

describe('crawl-engine delete', () => {
  test('deletes a stored job from pglite:DIR; an unknown job, a bad id or a missing folder is a usage error that creates nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crawl-cli-delete-'));
    try {
      const storage = `pglite:${join(dir, 'pg')}`;
      const crawl = await run(['crawl', site.url, '--max-pages', '5', '--storage', storage, '--allow-private-network']);
      expect(crawl.code, crawl.stderr).toBe(0);
      const jobId = /^Job (job_\S+) is stored in /m.exec(crawl.stderr)?.[1];
      expect(jobId, crawl.stderr).toBeDefined();

      const deleted = await run(['delete', jobId!, '--storage', storage]);
      expect(deleted.code, deleted.stderr).toBe(0);
      expect(deleted.stderr).toMatch(new RegExp(`^Deleted job ${jobId} \\(${site.url.replaceAll('.', '\\.')}\\), completed: 5 fetched`, 'm'));
      const resume = await run(['resume', jobId!, '--storage', storage]);
      expect(resume.code).toBe(2);
      expect(resume.stderr).toMatch(new RegExp(`^crawl-engine: resume: no job ${jobId} in PGlite`));

      const again = await run(['delete', jobId!, '--storage', storage]);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(new RegExp(`^crawl-engine: delete: no job ${jobId} in PGlite`));
      const bad = await run(['delete', '../x', '--storage', storage]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/^crawl-engine: delete: <jobId>: expected a job id/);
      const missing = await run(['delete', jobId!, '--storage', `pglite:${join(dir, 'nope')}`]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/^crawl-engine: delete: --storage pglite:\S+nope: no such folder: .*\(delete creates nothing\)/);
      expect((await run(['delete', jobId!])).stderr).toMatch(/^crawl-engine: delete: --storage is required/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
