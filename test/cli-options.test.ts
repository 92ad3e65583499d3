// The CLI's politeness and identity flags, Ctrl-C, progress output and error messages, against
// sites served on 127.0.0.1 inside the test (nothing here reaches the internet).
// Over 300 lines in one file: every test spawns the built CLI through run(), most against a site served by site() with one shared cleanup.
import type { ChildProcess } from 'node:child_process';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { html, serve, type TestServer } from './helpers/server.js';
import { runCli } from './helpers/cli.js';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const run = (args: string[], onSpawn?: (child: ChildProcess, output: { stderr: string }) => void): Promise<Run> => runCli(args, onSpawn);

const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A loopback site; `handler` answers everything but what `serve` logs. Closed after the test. */
async function site(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const server = await serve(handler);
  servers.push(server);
  return server;
}

const links = (paths: string[]) => html(paths.map((p) => `<a href="${p}">${p}</a>`).join(' '));
const page = (res: ServerResponse, body: string, status = 200) => {
  res.writeHead(status, { 'content-type': status === 200 ? 'text/html; charset=utf-8' : 'text/plain' });
  res.end(body);
};

/**
 * A site whose start page links to /p/0 … /p/(n-1); those answer after `delayMs`. Counts the
 * page requests in progress at once (robots.txt and / answer at once and are not counted).
 */
async function countingSite(n: number, delayMs: number) {
  const stats = { active: 0, max: 0 };
  const server = await site((req, res) => {
    if (req.url === '/robots.txt') return page(res, 'not found', 404);
    if (req.url === '/') return page(res, links(Array.from({ length: n }, (_, i) => `/p/${i}`)));
    stats.active++;
    stats.max = Math.max(stats.max, stats.active);
    res.on('close', () => stats.active--);
    setTimeout(() => page(res, html('<p>slow page</p>')), delayMs);
  });
  return { server, stats };
}

/** The numbers a progress line shows. */
function progressOf(stderr: string) {
  return stderr
    .split('\n')
    .map((line) => /^\[(#*)-*\] (\d+) fetched \/ (\d+) discovered \(max \d+\) · \d+ failed.* · (\d+) in flight/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ filled: m[1]!.length, fetched: Number(m[2]), discovered: Number(m[3]), inFlight: Number(m[4]) }));
}

describe('politeness and identity flags', () => {
  test('--per-host-concurrency N reaches N requests at once on one host, and the progress shows N in flight', async () => {
    const { server, stats } = await countingSite(40, 300);
    const { code, stderr } = await run(['crawl', server.url, '--max-pages', '41', '--per-host-concurrency', '6', '--allow-private-network']);
    expect(code).toBe(0);
    expect(stats.max).toBe(6);
    // The in-flight figure is live (drawn on a timer), not the count as of the last page event,
    // which always missed the page that had just finished.
    expect(Math.max(...progressOf(stderr).map((p) => p.inFlight))).toBe(6);
  });

  test('without the flag one host gets 2 at once whatever --concurrency says; --concurrency caps below --per-host-concurrency', async () => {
    const byDefault = await countingSite(8, 200);
    expect((await run(['crawl', byDefault.server.url, '--max-pages', '9', '--concurrency', '20', '--allow-private-network', '--quiet'])).code).toBe(0);
    expect(byDefault.stats.max).toBe(2);

    const capped = await countingSite(12, 200);
    expect(
      (await run(['crawl', capped.server.url, '--max-pages', '13', '--concurrency', '3', '--per-host-concurrency', '6', '--allow-private-network', '--quiet']))
        .code,
    ).toBe(0);
    expect(capped.stats.max).toBe(3);
  });

  test('--per-host-delay-ms spaces the requests to a host out', async () => {
    const starts: number[] = [];
    const server = await site((req, res) => {
      if (req.url === '/robots.txt') return page(res, 'not found', 404);
      starts.push(Date.now());
      page(res, req.url === '/' ? links(['/a', '/b', '/c']) : html('<p>leaf</p>'));
    });
    const { code } = await run(['crawl', server.url, '--per-host-delay-ms', '250', '--per-host-concurrency', '4', '--allow-private-network', '--quiet']);
    expect(code).toBe(0);
    expect(starts).toHaveLength(4);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(240);
  });

  test('--no-robots fetches a path robots.txt disallows (and does not ask for robots.txt)', async () => {
    const server = await site((req, res) => {
      if (req.url === '/robots.txt') return page(res, 'User-agent: *\nDisallow: /private\n');
      page(res, req.url === '/' ? links(['/private/page', '/public']) : html('<p>leaf</p>'));
    });
    const obeying = await run(['crawl', server.url, '--allow-private-network']);
    expect(obeying.code).toBe(0);
    expect(server.requests).not.toContain('/private/page');
    expect(obeying.stderr).toMatch(/1 skipped by robots\.txt/);

    server.requests.length = 0;
    const ignoring = await run(['crawl', server.url, '--no-robots', '--allow-private-network']);
    expect(ignoring.code).toBe(0);
    expect(server.requests).toContain('/private/page');
    expect(server.requests).not.toContain('/robots.txt');
    const results = ignoring.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { url: string; ok: boolean });
    expect(results.find((r) => r.url.endsWith('/private/page'))?.ok).toBe(true);
  });

  test('--user-agent is sent with every request and picks the robots.txt group', async () => {
    const agents: Array<string | undefined> = [];
    const server = await site((req, res) => {
      agents.push(req.headers['user-agent']);
      if (req.url === '/robots.txt') return page(res, 'User-agent: my-bot\nDisallow: /hidden\n\nUser-agent: *\nDisallow:\n');
      page(res, req.url === '/' ? links(['/hidden', '/shown']) : html('<p>leaf</p>'));
    });
    const agent = 'my-bot/1.0 (+https://example.test/bot)';
    const { code } = await run(['crawl', server.url, '--user-agent', agent, '--allow-private-network', '--quiet']);
    expect(code).toBe(0);
    expect(server.requests).toEqual(expect.arrayContaining(['/robots.txt', '/', '/shown']));
    expect(server.requests).not.toContain('/hidden');
    expect(new Set(agents)).toEqual(new Set([agent]));
  });

  test.each([
    [['--per-host-concurrency', '0'], /^crawl-engine: --per-host-concurrency: expected an integer from 1 to 100, got "0"$/m],
    [['--per-host-concurrency', '101'], /--per-host-concurrency: expected an integer from 1 to 100, got "101"/],
    [['--per-host-concurrency', 'many'], /--per-host-concurrency: expected an integer from 1 to 100, got "many"/],
    [['--per-host-delay-ms=-5'], /--per-host-delay-ms: expected an integer from 0 to 600000, got "-5"/],
    [['--per-host-delay-ms', '1.5'], /--per-host-delay-ms: expected an integer from 0 to 600000, got "1\.5"/],
    [['--priority=1001'], /--priority: expected an integer from -1000 to 1000, got "1001"/],
    [['--priority', 'high'], /--priority: expected an integer from -1000 to 1000, got "high"/],
    [['--user-agent', ''], /--user-agent: expected 1 to 512 printable ASCII characters, got ""/],
    [['--user-agent', 'bot\r\nX-Evil: 1'], /--user-agent: expected 1 to 512 printable ASCII characters/],
    [['--per-host-concurrency'], /--per-host-concurrency: expected a value/],
    [['--max-depth', '-1'], /--max-depth: expected a value, got the option-like "-1" \(write --max-depth=-1 if that is the value\)/],
    [['--no-robots=yes'], /--no-robots takes no value, got "yes"/],
    [['--concurrency', '0'], /--concurrency: expected an integer from 1 to 1000, got "0"/],
    [['--timeout-ms', '700000'], /--timeout-ms: expected an integer from 1 to 600000, got "700000"/],
  ])('bad value %j: one line naming the flag, exit 2, no stack', async (flags, message) => {
    const { code, stderr } = await run(['crawl', 'http://127.0.0.1:9/', ...flags]);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr.split('\n')[0]).toMatch(/^crawl-engine: --/);
    expect(stderr).not.toMatch(/\n {4}at /);
  });
});

describe('Ctrl-C', () => {
  test('prints "cancelling…" at once, aborts the fetches in flight, prints the summary and exits 130 within a second', async () => {
    const stats = { active: 0, aborted: 0 };
    const server = await site((req, res) => {
      if (req.url === '/robots.txt') return page(res, 'not found', 404);
      if (req.url === '/') return page(res, links(Array.from({ length: 20 }, (_, i) => `/p/${i}`)));
      stats.active++;
      res.on('close', () => {
        stats.active--;
        if (!res.writableFinished) stats.aborted++;
      });
      setTimeout(() => !res.destroyed && page(res, html('<p>slow</p>')), 10_000);
    });
    let sentAt = 0;
    const result = await run(['crawl', server.url, '--allow-private-network'], (child) => {
      const poll = setInterval(() => {
        if (stats.active < 2) return;
        clearInterval(poll);
        sentAt = Date.now();
        child.kill('SIGINT');
      }, 10);
    });
    const elapsed = Date.now() - sentAt;
    expect(sentAt).toBeGreaterThan(0);
    expect(result.signal).toBeNull();
    expect(result.code).toBe(130);
    expect(elapsed).toBeLessThan(1500);
    expect(result.stderr).toMatch(/^cancelling… \(Ctrl-C again to exit at once\)$/m);
    expect(result.stderr).toMatch(/Job cancelled \(interrupted\): 1 page in .*, 1 ok, 0 failed\. Job job_/);
    // The page fetched before Ctrl-C is written out.
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    // Both slow requests were aborted by the client, not left to run out.
    await expect.poll(() => stats.aborted, { timeout: 500 }).toBe(2);
  });

  test('Ctrl-C while the storage is still connecting exits 130 at once', async () => {
    // Accepts the connection and never answers, like a Redis server that hangs.
    const sockets = new Set<Socket>();
    const hanging: TcpServer = createTcpServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    servers.push({
      close: () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          hanging.close(() => resolve());
        }),
    });
    const { port } = hanging.address() as AddressInfo;
    let sentAt = 0;
    const result = await run(['crawl', 'http://127.0.0.1:9/', '--allow-private-network', '--storage', `redis://127.0.0.1:${port}`], (child) => {
      const poll = setInterval(() => {
        if (sockets.size === 0) return;
        clearInterval(poll);
        sentAt = Date.now();
        child.kill('SIGINT');
      }, 10);
    });
    expect(result.signal).toBeNull();
    expect(result.code).toBe(130);
    expect(Date.now() - sentAt).toBeLessThan(1500);
    expect(result.stderr).toMatch(/interrupted; exiting now/);
  });
});

describe('progress output', () => {
  test('the fetched count and the bar never go backwards while discovered jumps', async () => {
    // / links to 3 pages, and /a to 30 more: discovered goes 1 → 4 → 34.
    const server = await site((req, res) => {
      if (req.url === '/robots.txt') return page(res, 'not found', 404);
      const body =
        req.url === '/' ? links(['/a', '/b', '/c']) : req.url === '/a' ? links(Array.from({ length: 30 }, (_, i) => `/a/${i}`)) : html('<p>leaf</p>');
      setTimeout(() => page(res, body), 150);
    });
    const { code, stderr } = await run(['crawl', server.url, '--max-pages', '100', '--per-host-concurrency', '2', '--allow-private-network']);
    expect(code).toBe(0);
    const lines = progressOf(stderr);
    expect(lines.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < lines.length; i++) {
      expect(lines[i]!.fetched).toBeGreaterThanOrEqual(lines[i - 1]!.fetched);
      expect(lines[i]!.filled).toBeGreaterThanOrEqual(lines[i - 1]!.filled);
      expect(lines[i]!.discovered).toBeGreaterThanOrEqual(lines[i - 1]!.discovered);
    }
    expect(lines.at(-1)).toEqual({ filled: 20, fetched: 34, discovered: 34, inFlight: 0 });
    expect(stderr).toMatch(/Done: 34 pages in/);
  });
});

describe('messages in CLI terms', () => {
  test('an unknown option suggests the closest one and shows the usage, exit 2', async () => {
    const { code, stderr } = await run(['crawl', 'http://127.0.0.1:9/', '--max-page', '3']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^crawl-engine: unknown option --max-page; did you mean --max-pages\?\n\nUsage: crawl-engine crawl <url>/);
    expect(stderr).not.toMatch(/positional argument/);
    expect((await run(['crawl', 'x', '--per-host-concurency', '4'])).stderr).toMatch(
      /unknown option --per-host-concurency; did you mean --per-host-concurrency\?/,
    );
    expect((await run(['crawl', 'x', '--no-robot'])).stderr).toMatch(/unknown option --no-robot; did you mean --no-robots\?/);
    expect((await run(['migrate', '--storag', 'postgres://x'])).stderr).toMatch(/unknown option --storag; did you mean --storage\?/);
    const far = await run(['crawl', 'x', '--zzzzzz']);
    expect(far.code).toBe(2);
    expect(far.stderr).toMatch(/^crawl-engine: unknown option --zzzzzz\n/);
  });

  test.each([
    [['crawl', 'http://127.0.0.1:9/', '--storage', 'postgres://127.0.0.1:1/x'], 'crawl-engine: cannot reach Postgres at 127.0.0.1:1: connection refused'],
    [['migrate', '--storage', 'postgres://127.0.0.1:1/x'], 'crawl-engine: cannot reach Postgres at 127.0.0.1:1: connection refused'],
    [['crawl', 'http://127.0.0.1:9/', '--storage', 'redis://127.0.0.1:1'], 'crawl-engine: cannot reach Redis at 127.0.0.1:1: connection refused'],
  ])('unreachable storage %j: one line, no stack, exit 3, no endless retries', async (args, line) => {
    const started = Date.now();
    const { code, stderr, stdout } = await run(args);
    expect(code).toBe(3);
    expect(stderr).toBe(`${line}\n`);
    expect(stderr).not.toContain('    at ');
    expect(stdout).toBe('');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('without --allow-private-network the messages name the flag, not fetch.allowPrivateNetwork', async () => {
    const server = await site((_req, res) => page(res, html('<p>local</p>')));
    const literal = await run(['crawl', server.url]);
    expect(literal.code).toBe(2);
    expect(literal.stderr).toMatch(/^crawl-engine: url: .*127\.0\.0\.1, a loopback address; pass --allow-private-network to allow it\n$/);
    expect(literal.stderr).not.toMatch(/allowPrivateNetwork/);

    // A host name that resolves to loopback is refused when connecting: the job fails.
    const named = await run(['crawl', server.url.replace('127.0.0.1', 'localhost')]);
    expect(named.code).toBe(1);
    expect(named.stderr).toMatch(/Job failed: .*blocked: localhost resolves to 127\.0\.0\.1, a loopback address; pass --allow-private-network to allow it\./);
    expect(JSON.parse(named.stdout.trim()).error.message).toMatch(/pass --allow-private-network/);
    expect(named.stdout + named.stderr).not.toMatch(/allowPrivateNetwork/);
    expect(server.requests).toEqual([]);
  });

  test('--help explains how the concurrency flags combine and lists the exit codes', async () => {
    const { code, stdout } = await run(['crawl', '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/--per-host-concurrency N +fetches in flight to any one host \(default 2/);
    expect(stdout).toMatch(/min\(--concurrency, --per-host-concurrency\)/);
    for (const exit of ['0 ', '1 ', '2 ', '3 ', '130', '143']) expect(stdout).toMatch(new RegExp(`^ {2}${exit} +\\S`, 'm'));
  });
});

/** A path as a literal part of a RegExp. */
const reLiteral = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** node:sqlite works without a flag from Node.js 22.13 and 23.4. */
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const hasNodeSqlite = major > 23 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13);

describe('durable storage and resume: arguments', () => {
  test.each([
    [
      ['crawl', 'http://127.0.0.1:9/', '--storage', 'sqlite:'],
      /^crawl-engine: --storage sqlite:FILE: expected a file path after sqlite:, e\.g\. sqlite:crawl\.db\n/,
    ],
    [['crawl', 'http://127.0.0.1:9/', '--storage', 'sqlite://'], /^crawl-engine: --storage sqlite:FILE: expected a file path after sqlite:/],
    [
      ['crawl', 'http://127.0.0.1:9/', '--storage', 'pglite: '],
      /^crawl-engine: --storage pglite:DIR: expected a folder path after pglite:, e\.g\. pglite:crawl\n/,
    ],
    [
      ['crawl', 'http://127.0.0.1:9/', '--storage', 'sqlite::memory:'],
      /^crawl-engine: --storage sqlite::memory: keeps nothing after the crawl: use --storage memory/,
    ],
    [
      ['crawl', 'http://127.0.0.1:9/', '--storage', 'mysql://x'],
      /^crawl-engine: --storage: expected memory, sqlite:FILE, pglite:DIR, postgres:\/\/… or redis:\/\/…, got "mysql:\/\/x"/,
    ],
    [['migrate', '--storage', 'sqlite:'], /^crawl-engine: --storage sqlite:FILE: expected a file path/],
    [['resume'], /^crawl-engine: resume: missing <jobId>\n/],
    [['resume', 'job_a', 'job_b', '--storage', 'sqlite:x.db'], /^crawl-engine: resume: expected one <jobId>, got 2\n/],
    [
      ['resume', 'job_x'],
      /^crawl-engine: resume: --storage is required: the sqlite:FILE, pglite:DIR, postgres:\/\/… or redis:\/\/… the job was crawled with\n/,
    ],
    [['resume', 'job_x', '--storage', 'memory'], /^crawl-engine: resume: --storage is required/],
    [['resume', 'job x', '--storage', 'sqlite:x.db'], /^crawl-engine: resume: <jobId>: expected a job id such as job_…, got "job x"\n/],
    [['resume', 'job_x', '--storage', 'sqlite:x.db', '--max-pages', '3'], /^crawl-engine: unknown option --max-pages\b/],
    [['resume', 'job_x', '--storage', 'sqlite:x.db', '--concurrency', '0'], /^crawl-engine: --concurrency: expected an integer from 1 to 1000, got "0"\n/],
  ])('%j: a usage error naming the option, exit 2, nothing written', async (args, message) => {
    const { code, stderr, stdout } = await run(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toMatch(/\n\nUsage: crawl-engine crawl <url>/);
    expect(stdout).toBe('');
  });

  test.runIf(!hasNodeSqlite)('--storage sqlite:FILE on a Node.js without node:sqlite is a usage error naming the version it needs, exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crawl-cli-sqlite-'));
    const { code, stderr } = await run(['crawl', 'http://127.0.0.1:9/', '--storage', `sqlite:${join(dir, 'x.db')}`, '--allow-private-network']);
    expect(code).toBe(2);
    expect(stderr).toMatch(
      /^crawl-engine: --storage sqlite:FILE needs Node\.js >= 22\.13 \(node:sqlite\), this is \d+\.\d+\.\d+: upgrade Node\.js, or use --storage pglite:DIR/,
    );
    expect(existsSync(join(dir, 'x.db'))).toBe(false);
  });

  test.runIf(hasNodeSqlite)(
    'resume of a job the storage does not have, and a SQLite file that cannot be opened (node:sqlite needs Node.js >= 22.13)',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'crawl-cli-sqlite-'));
      const file = join(dir, 'crawl.db');
      expect((await run(['migrate', '--storage', `sqlite:${file}`])).code).toBe(0);
      const missing = await run(['resume', 'job_nope', '--storage', `sqlite:${file}`]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(
        new RegExp(`^crawl-engine: resume: no job job_nope in SQLite at ${file.replaceAll('.', '\\.')} \\(check --storage and --table-prefix\\)\\n`),
      );
      // resume creates nothing: not a missing file, nor the tables of a mistyped --table-prefix.
      const typo = join(dir, 'crwal.db');
      const noFile = await run(['resume', 'job_nope', '--storage', `sqlite:${typo}`]);
      expect(noFile.code).toBe(2);
      expect(noFile.stderr).toMatch(
        new RegExp(
          `^crawl-engine: resume: --storage sqlite:${reLiteral(typo)}: no such file: expected the SQLite file the job was crawled with \\(resume creates nothing\\)\n`,
        ),
      );
      expect(existsSync(typo)).toBe(false);
      const noTables = await run(['resume', 'job_nope', '--storage', `sqlite:${file}`, '--table-prefix', 'typo_']);
      expect(noTables.code).toBe(2);
      expect(noTables.stderr).toMatch(
        new RegExp(
          `^crawl-engine: resume: SQLite file ${reLiteral(file)} has no table typo_jobs: expected the --storage and --table-prefix the job was crawled with \\(resume creates nothing\\)\n`,
        ),
      );
      const { DatabaseSync } = (await import('node:sqlite' as string)) as {
        DatabaseSync: new (path: string) => { prepare(sql: string): { all(): unknown[] }; close(): void };
      };
      const db = new DatabaseSync(file);
      expect(db.prepare(`SELECT name FROM sqlite_master WHERE name LIKE 'typo%'`).all()).toEqual([]);
      db.close();
      const unopenable = await run(['crawl', 'http://127.0.0.1:9/', '--storage', `sqlite:${join(dir, 'no', 'such', 'dir', 'x.db')}`]);
      expect(unopenable.code).toBe(3);
      expect(unopenable.stderr).toMatch(/^crawl-engine: cannot open SQLite file .*x\.db: unable to open database file\n$/);
      const migrated = await run(['migrate', '--storage', `sqlite:${join(dir, 'm.db')}`]);
      expect(migrated.code).toBe(0);
      expect(migrated.stderr).toBe('Applied migrations 1, 2, 3, 4, 5, 6; schema is at version 6.\n');
      expect((await run(['migrate', '--storage', `sqlite:${join(dir, 'm.db')}`])).stderr).toBe('Schema is up to date (version 6).\n');
    },
  );

  test('a PGlite folder in use by another live process is refused at once, exit 3, and its lock is left alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crawl-cli-pglite-'));
    const lock = join(dir, 'crawl-engine.lock');
    writeFileSync(lock, String(process.pid));
    const { code, stderr } = await run(['crawl', 'http://127.0.0.1:9/', '--storage', `pglite:${dir}`, '--allow-private-network']);
    expect(code).toBe(3);
    expect(stderr).toBe(
      `crawl-engine: PGlite folder ${dir} is in use by another process (pid ${process.pid}); PGlite serves one process at a time (use sqlite:FILE or postgres:// to share). Lock file: ${lock}; delete it if no crawl-engine process uses the folder\n`,
    );
    expect(readFileSync(lock, 'utf8')).toBe(String(process.pid));
  });

  test('a PGlite folder locked by a live crawl-engine is refused, naming the lock file; the lock goes when the holder exits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crawl-cli-pglite-'));
    const lock = join(dir, 'crawl-engine.lock');
    const hanging = await site((req, res) => {
      if (req.url === '/robots.txt') return page(res, 'not found', 404);
      setTimeout(() => !res.destroyed && page(res, html('<p>slow</p>')), 20_000);
    });
    let holder: ChildProcess | undefined;
    const held = run(['crawl', hanging.url, '--storage', `pglite:${dir}`, '--allow-private-network', '--quiet'], (child) => {
      holder = child;
    });
    try {
      await expect.poll(() => existsSync(lock), { timeout: 10_000, interval: 20 }).toBe(true);
      const { code, stderr } = await run(['crawl', hanging.url, '--storage', `pglite:${dir}`, '--allow-private-network']);
      expect(code).toBe(3);
      expect(stderr).toBe(
        `crawl-engine: PGlite folder ${dir} is in use by another process (pid ${holder!.pid}); PGlite serves one process at a time (use sqlite:FILE or postgres:// to share). Lock file: ${lock}; delete it if no crawl-engine process uses the folder\n`,
      );
      expect(JSON.parse(readFileSync(lock, 'utf8'))).toMatchObject({ pid: holder!.pid });
    } finally {
      holder?.kill('SIGINT');
      const stopped = await held;
      expect(stopped.code).toBe(130);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(existsSync(lock)).toBe(false);
  }, 60_000);

  test('resume never creates a PGlite folder: a missing folder, one that is not PGlite, or a wrong --schema is a usage error naming --storage', async () => {
    const root = mkdtempSync(join(tmpdir(), 'crawl-cli-pglite-'));
    try {
      const missing = join(root, 'typo');
      const gone = await run(['resume', 'job_nope', '--storage', `pglite:${missing}`]);
      expect(gone.code).toBe(2);
      expect(gone.stderr).toMatch(
        new RegExp(
          `^crawl-engine: resume: --storage pglite:${reLiteral(missing)}: no such folder: expected the PGlite folder the job was crawled with \\(resume creates nothing\\)\n`,
        ),
      );
      expect(existsSync(missing)).toBe(false);

      const empty = join(root, 'empty');
      mkdirSync(empty);
      const notPglite = await run(['resume', 'job_nope', '--storage', `pglite:${empty}`]);
      expect(notPglite.code).toBe(2);
      expect(notPglite.stderr).toMatch(
        new RegExp(`^crawl-engine: resume: --storage pglite:${reLiteral(empty)}: not a PGlite folder \\(no PG_VERSION in it\\)`),
      );
      expect(readdirSync(empty)).toEqual([]);

      const real = join(root, 'pg');
      expect((await run(['migrate', '--storage', `pglite:${real}`])).code).toBe(0);
      const wrongSchema = await run(['resume', 'job_nope', '--storage', `pglite:${real}`, '--schema', 'typo']);
      expect(wrongSchema.code).toBe(2);
      expect(wrongSchema.stderr).toMatch(
        new RegExp(
          `^crawl-engine: resume: PGlite folder ${reLiteral(real)} has no table typo\\.crawl_jobs: expected the --storage, --schema and --table-prefix the job was crawled with \\(resume creates nothing\\)\n`,
        ),
      );
      const noJob = await run(['resume', 'job_nope', '--storage', `pglite:${real}`]);
      expect(noJob.code).toBe(2);
      expect(noJob.stderr).toMatch(/^crawl-engine: resume: no job job_nope in PGlite at /);
      const { PGlite } = await import('@electric-sql/pglite');
      const db = new PGlite(real);
      const { rows } = await db.query(`SELECT nspname FROM pg_namespace WHERE nspname = 'typo'`);
      await db.close();
      expect(rows).toEqual([]);
      expect(existsSync(join(real, 'crawl-engine.lock'))).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);
});
