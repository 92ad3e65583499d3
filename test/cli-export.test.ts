/**
 * The CLI's formats and exports (issue 16): --formats, --only-main-content / --no-only-main-content,
 * --format jsonl|csv|md on crawl and resume, and `export <jobId>` of a stored job. Spawns the built
 * CLI against a loopback site.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { postgresStorage } from '../adapters/postgres/index.js';
import { CSV_COLUMNS } from '../src/core/export.js';
import type { PageResult } from '../src/core/types.js';
import { markdownFileName } from '../src/cli/output.js';
import { startSite, type Site } from './fixtures/site.mjs';
import { runCli } from './helpers/cli.js';

const run = (args: string[], onSpawn?: (child: ChildProcess) => void) => runCli(args, onSpawn);

let site: Site;
let dir: string;
beforeAll(async () => {
  site = await startSite({ pages: 30, fanout: 3 });
  dir = mkdtempSync(join(tmpdir(), 'crawl-cli-export-'));
});
afterAll(async () => {
  await site.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Opens a PGlite folder the way the CLI does (public schema, crawl_ tables), for a look inside or to seed it. */
async function withFolder<T>(folder: string, work: (storage: ReturnType<typeof postgresStorage>) => Promise<T>): Promise<T> {
  const db = new PGlite(folder);
  try {
    const storage = postgresStorage({ client: db as never });
    await storage.migrate();
    return await work(storage);
  } finally {
    await db.close();
  }
}

describe('crawl --formats and --format', () => {
  test('--formats links puts outlinks in the JSON lines; --format csv writes a header and a row per page', async () => {
    const jsonl = await run(['crawl', site.url, '--max-pages', '5', '--formats', 'metadata,links', '--quiet', '--allow-private-network']);
    expect(jsonl.code, jsonl.stderr).toBe(0);
    const results = jsonl.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as PageResult);
    expect(results).toHaveLength(5);
    const home = results.find((r) => r.url === site.url)!;
    expect(home.outlinks!.length).toBeGreaterThan(0);
    expect(home.outlinks!.every((l) => typeof l.text === 'string' && typeof l.internal === 'boolean')).toBe(true);
    expect(home.outlinks!.some((l) => !l.internal)).toBe(true);

    const out = join(dir, 'r.csv');
    const csv = await run(['crawl', site.url, '--max-pages', '5', '--format', 'csv', '--out', out, '--quiet', '--allow-private-network']);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout).toBe('');
    const lines = readFileSync(out, 'utf8').split('\r\n');
    expect(lines[0]).toBe(CSV_COLUMNS.join(','));
    expect(lines).toHaveLength(1 + 5 + 1);
    expect(lines.at(-1)).toBe('');
  });

  test.each([
    [['--format', 'xml'], /--format: expected one of jsonl, csv, md, got "xml"/],
    [['--format', 'md'], /--format md: expected --out DIR/],
    [['--formats', 'links,pdf'], /--formats: expected a comma-separated list of metadata, links, text, markdown, html, got "pdf"/],
    [['--formats', 'links,links'], /--formats: expected each format at most once/],
    [['--only-main-content', '--no-only-main-content'], /expected one of them, not both/],
    [['--fromat', 'csv'], /unknown option --fromat; did you mean --format\?/],
  ])('bad arguments %j exit 2 naming the flag', async (args, message) => {
    const { code, stderr } = await run(['crawl', site.url, ...args, '--allow-private-network']);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  test('--format md adds markdown to the formats and --no-only-main-content is stored with the job; the files are the pages with markdown', async () => {
    const folder = join(dir, 'pg-md');
    const out = join(dir, 'md-out');
    const crawled = await run([
      'crawl',
      site.url,
      '--max-pages',
      '4',
      '--formats',
      'links',
      '--no-only-main-content',
      '--format',
      'md',
      '--out',
      out,
      '--storage',
      `pglite:${folder}`,
      '--allow-private-network',
    ]);
    expect(crawled.code, crawled.stderr).toBe(0);
    expect(crawled.stdout).toBe('');
    const jobId = /^Job (job_\S+) is stored in /m.exec(crawled.stderr)![1]!;
    expect(crawled.stderr).toMatch(/--format md --out /);
    const { job, results } = await withFolder(folder, async (storage) => ({
      job: await storage.getJob(jobId),
      results: (await storage.listResults(jobId, { limit: 100 })).items,
    }));
    expect(job!.options).toMatchObject({ formats: ['links', 'markdown'], onlyMainContent: false });
    const withMarkdown = results.filter((r) => typeof r.markdown === 'string');
    expect(readdirSync(out).sort()).toEqual(withMarkdown.map((r) => `${markdownFileName(r.url, new URL(site.url).hostname)}.md`).sort());
    expect(crawled.stderr).toContain(`Wrote ${withMarkdown.length} markdown file`);
  }, 60_000);
});

describe('crawl-engine export', () => {
  test('writes a stored job as JSON lines (as crawl wrote it), CSV, or markdown files; refuses what cannot be done', async () => {
    const folder = join(dir, 'pg-export');
    const storage = `pglite:${folder}`;
    const crawled = await run(['crawl', site.url, '--max-pages', '6', '--formats', 'links', '--storage', storage, '--allow-private-network']);
    expect(crawled.code, crawled.stderr).toBe(0);
    const jobId = /^Job (job_\S+) is stored in /m.exec(crawled.stderr)![1]!;

    const jsonl = await run(['export', jobId, '--storage', storage]);
    expect(jsonl.code, jsonl.stderr).toBe(0);
    expect(jsonl.stdout).toBe(crawled.stdout);
    expect(jsonl.stderr).toMatch(new RegExp(`^Exported job ${jobId} \\(.*\\), completed: 6 fetched`, 'm'));

    const csvFile = join(dir, 'export.csv');
    const csv = await run(['export', jobId, '--storage', storage, '--format', 'csv', '--out', csvFile, '--quiet']);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stderr).toBe('');
    expect(readFileSync(csvFile, 'utf8').split('\r\n')).toHaveLength(1 + 6 + 1);

    const md = await run(['export', jobId, '--storage', storage, '--format', 'md', '--out', join(dir, 'nope')]);
    expect(md.code).toBe(2);
    expect(md.stderr).toMatch(/was crawled without the markdown format/);
    expect(existsSync(join(dir, 'nope'))).toBe(false);

    for (const [args, message] of [
      [['export'], /export: missing <jobId>/],
      [['export', 'not a job', '--storage', storage], /<jobId>: expected a job id/],
      [['export', jobId], /export: --storage is required/],
      [['export', 'job_missing', '--storage', storage], /export: no job job_missing in PGlite/],
      [['export', jobId, '--storage', `pglite:${join(dir, 'missing')}`], /export/],
      [['export', jobId, '--storage', storage, '--format', 'md'], /--format md: expected --out DIR/],
    ] as const) {
      const got = await run([...args]);
      expect(got.code, got.stderr).toBe(2);
      expect(got.stderr).toMatch(message);
    }
    expect(existsSync(join(dir, 'missing'))).toBe(false);
  }, 60_000);

  test('--format md: one file per page with markdown, safe names from hostile URLs, collisions numbered, symbolic links not followed', async () => {
    const folder = join(dir, 'pg-seeded');
    const start = 'https://example.com/';
    const paths = [
      '/',
      '/docs/intro',
      '/docs_intro',
      '/DOCS/INTRO',
      '/..%2F..%2Fetc%2Fpasswd',
      '/../../secret',
      '/.hidden',
      '/con',
      `/${'long-'.repeat(60)}`,
      '/page.html?q=1&x=%00',
      '/caf%C3%A9',
      '/planted',
    ];
    const jobId = await withFolder(folder, async (storage) => {
      const job = {
        id: 'job_seeded_md',
        status: 'running' as const,
        url: start,
        options: {
          maxPages: 100,
          maxDepth: 1,
          scope: 'any' as const,
          include: [],
          exclude: [],
          respectRobots: false,
          maxRetries: 0,
          perHostConcurrency: 2,
          perHostDelayMs: 0,
          priority: 0,
          formats: ['markdown' as const],
          onlyMainContent: true,
          sitemap: 'skip' as const,
        },
        counts: { discovered: 1, queued: 1, inProgress: 0, succeeded: 0, failed: 0, skipped: 0 },
        createdAt: new Date().toISOString(),
        startedAt: null,
        finishedAt: null,
        error: null,
        metadata: {},
      };
      await storage.createJob(job, { url: start, key: start, depth: 0, host: 'example.com' });
      const urls = [...paths.map((p) => new URL(p, start).href), 'https://other.example/x'];
      const [first] = (await storage.claim({ limit: 1, leaseMs: 60_000, now: Date.now(), jobId: job.id })).leases;
      const result = (url: string, markdown: string | null): PageResult => ({
        url,
        finalUrl: url,
        depth: 0,
        status: 200,
        ok: markdown !== null,
        contentType: 'text/html',
        title: `Title of ${url}`,
        description: null,
        canonical: null,
        links: 0,
        wordCount: 1,
        error: markdown === null ? { code: 'http_error', message: 'HTTP 500' } : null,
        attempts: 1,
        durationMs: 1,
        fetchedAt: new Date().toISOString(),
        data: null,
        markdown,
      });
      const links = urls.slice(1).map((url) => ({ url, key: url, depth: 1, host: new URL(url).hostname }));
      await storage.complete(first!, { result: result(start, '# Home'), links, now: Date.now() });
      // Claims honour perHostConcurrency: a few at a time.
      for (;;) {
        const leases = (await storage.claim({ limit: 100, leaseMs: 60_000, now: Date.now(), jobId: job.id })).leases;
        if (leases.length === 0) break;
        for (const lease of leases)
          await storage.complete(lease, { result: result(lease.url, lease.url.endsWith('/planted') ? null : `# ${lease.url}\n`), links: [], now: Date.now() });
      }
      return job.id;
    });
    const out = join(dir, 'md-seeded');
    mkdirSync(out);
    writeFileSync(join(dir, 'outside.txt'), 'untouched');
    symlinkSync(join(dir, 'outside.txt'), join(out, 'index.md'));

    const md = await run(['export', jobId, '--storage', `pglite:${folder}`, '--format', 'md', '--out', out]);
    // The home page would be written through the planted link: refused, nothing outside changes.
    expect(md.code).toBe(2);
    expect(md.stderr).toMatch(/index\.md" is a symbolic link; not writing through it/);
    expect(readFileSync(join(dir, 'outside.txt'), 'utf8')).toBe('untouched');
    rmSync(join(out, 'index.md'));

    const again = await run(['export', jobId, '--storage', `pglite:${folder}`, '--format', 'md', '--out', out]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/Wrote 12 markdown files to .* \(1 page without markdown: failed, not HTML, or skipped\)\./);
    const files = readdirSync(out).sort();
    expect(files).toHaveLength(12);
    expect(files).toEqual(
      expect.arrayContaining([
        'index.md',
        'docs_intro.md',
        'docs_intro-2.md',
        'DOCS_INTRO-3.md',
        '_con.md',
        'hidden.md',
        'other.example_x.md',
        'café.md',
        'secret.md',
        'etc_passwd.md',
        'page_q_1_x_00.md',
      ]),
    );
    for (const file of files) {
      expect(file).toMatch(/^[\p{L}\p{N}_][\p{L}\p{N}._-]*\.md$/u);
      expect(file.length).toBeLessThanOrEqual(123);
    }
    expect(files.some((f) => f.startsWith('long-long-') && /-[0-9a-f]{10}\.md$/.test(f))).toBe(true);
    expect(readdirSync(dir)).not.toContain('secret.md');
    expect(readFileSync(join(out, 'index.md'), 'utf8')).toBe(`---\nurl: "${start}"\ntitle: "Title of ${start}"\n---\n\n# Home\n`);
    expect(readFileSync(join(out, 'etc_passwd.md'), 'utf8')).toContain('# https://example.com/..%2F..%2Fetc%2Fpasswd');
  }, 60_000);
});
