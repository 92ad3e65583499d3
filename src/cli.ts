/**
 * `crawl-engine crawl <url>`: runs a crawl in this process with memory storage, draws a progress
 * bar on a terminal (plain lines otherwise), writes one JSON line per page, prints a summary.
 *
 * @module crawl-engine/cli
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { memoryStorage } from '../adapters/memory/index.js';
import { kvStorage } from '../adapters/kv/index.js';
import { postgresStorage } from '../adapters/postgres/index.js';
import type { CrawlStorage } from './storage.js';
import { createCrawlEngine } from './engine.js';
import { CrawlEngineError } from './errors.js';
import type { CrawlScope, Job, JobCounts, ProgressEvent } from './types.js';

const USAGE = `Usage: crawl-engine crawl <url> [options]
       crawl-engine migrate --storage postgres://… [--schema S] [--table-prefix P]

Options:
  --max-pages N             most URLs to fetch (default 50)
  --max-depth D             link hops from the start URL (default 2)
  --scope S                 same-origin | same-hostname | same-domain | any (default same-hostname)
  --include GLOB            only follow matching URLs (repeatable)
  --exclude GLOB            never follow matching URLs (repeatable)
  --concurrency N           fetches in flight (default 20)
  --timeout-ms N            per-request timeout (default 15000)
  --out FILE                write one JSON line per page to FILE (default: stdout)
  --storage URL             memory (default), postgres://… (needs pg; migrates the
                            schema first) or redis://… (needs ioredis)
  --schema S, --table-prefix P   Postgres schema and table prefix (default public, crawl_);
                            with redis://, --table-prefix is the key prefix (default crawl:)
  --allow-private-network   allow loopback and private addresses (for local sites)
  --quiet                   no progress output
  -h, --help                show this help`;

class UsageError extends Error {}

interface OpenedStorage {
  storage: CrawlStorage;
  close(): Promise<void>;
  describe: string;
}

/** Opens the storage named by --storage: memory, or Postgres through the optional `pg` package. */
async function openStorage(url: string | undefined, schema: string | undefined, tablePrefix: string | undefined): Promise<OpenedStorage> {
  if (url === undefined || url === 'memory') return { storage: memoryStorage(), close: async () => undefined, describe: 'memory' };
  if (/^postgres(ql)?:\/\//.test(url)) {
    let pg: { Pool: new (options: { connectionString: string; max?: number }) => { end(): Promise<void>; on(e: 'error', cb: () => void): void; query(t: string, p?: unknown[]): Promise<{ rows: unknown[] }> } };
    try {
      const specifier = 'pg';
      const loaded = (await import(specifier)) as { default?: typeof pg } & typeof pg;
      pg = loaded.default ?? loaded;
    } catch {
      throw new UsageError('--storage postgres://… needs the pg package: npm install pg');
    }
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    pool.on('error', () => undefined);
    const storage = postgresStorage({ client: pool, ...(schema ? { schema } : {}), ...(tablePrefix !== undefined ? { tablePrefix } : {}) });
    return { storage, close: () => pool.end(), describe: `postgres (${new URL(url).host})` };
  }
  if (/^rediss?:\/\//.test(url)) {
    let Redis: new (url: string, options?: { maxRetriesPerRequest?: number }) => { quit(): Promise<unknown>; on(e: 'error', cb: () => void): void };
    try {
      const specifier = 'ioredis';
      const loaded = (await import(specifier)) as { default?: typeof Redis } & { Redis?: typeof Redis };
      Redis = (loaded.default ?? loaded.Redis)!;
    } catch {
      throw new UsageError('--storage redis://… needs the ioredis package: npm install ioredis');
    }
    const redis = new Redis(url, { maxRetriesPerRequest: 3 });
    redis.on('error', () => undefined);
    const storage = kvStorage({ client: redis as never, ...(tablePrefix !== undefined ? { prefix: tablePrefix } : {}) });
    return { storage, close: async () => void (await redis.quit()), describe: `redis (${new URL(url).host})` };
  }
  throw new UsageError(`--storage: expected memory, postgres://… or redis://…, got ${JSON.stringify(url)}`);
}

async function migrateCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { storage: { type: 'string' }, schema: { type: 'string' }, 'table-prefix': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`migrate takes no positional arguments, got ${JSON.stringify(positionals[0])}`);
  if (values.storage === undefined || !/^postgres(ql)?:\/\//.test(values.storage)) throw new UsageError('migrate: --storage postgres://… is required');
  const opened = await openStorage(values.storage, values.schema, values['table-prefix']);
  try {
    const { applied, version } = await (opened.storage as ReturnType<typeof postgresStorage>).migrate();
    process.stderr.write(applied.length === 0 ? `Schema is up to date (version ${version}).\n` : `Applied migration${applied.length === 1 ? '' : 's'} ${applied.join(', ')}; schema is at version ${version}.\n`);
    return 0;
  } finally {
    await opened.close();
  }
}

function positiveInt(flag: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min) {
    throw new UsageError(`${flag}: expected an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function bar(counts: JobCounts, width = 28): string {
  const done = counts.succeeded + counts.failed;
  const total = Math.max(counts.discovered, 1);
  const filled = Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${counts.discovered}`;
}

async function crawlCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'max-pages': { type: 'string' },
      'max-depth': { type: 'string' },
      scope: { type: 'string' },
      include: { type: 'string', multiple: true },
      exclude: { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      'timeout-ms': { type: 'string' },
      out: { type: 'string' },
      storage: { type: 'string' },
      schema: { type: 'string' },
      'table-prefix': { type: 'string' },
      'allow-private-network': { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing <url>' : `expected one <url>, got ${positionals.length}`);
  const maxPages = positiveInt('--max-pages', values['max-pages']);
  const maxDepth = positiveInt('--max-depth', values['max-depth'], 0);
  const concurrency = positiveInt('--concurrency', values.concurrency) ?? 20;
  const timeoutMs = positiveInt('--timeout-ms', values['timeout-ms']);
  const scopes = ['same-origin', 'same-hostname', 'same-domain', 'any'] as const;
  const scope = values.scope as (typeof scopes)[number] | undefined;
  if (scope !== undefined && !scopes.includes(scope)) throw new UsageError(`--scope: expected one of ${scopes.join(', ')}, got ${JSON.stringify(scope)}`);

  const opened = await openStorage(values.storage, values.schema, values['table-prefix']);
  try {
    return await crawlWith(opened, values, positionals[0]!, { maxPages, maxDepth, concurrency, timeoutMs, scope });
  } finally {
    await opened.close();
  }
}

async function crawlWith(
  opened: OpenedStorage,
  values: { include?: string[] | undefined; exclude?: string[] | undefined; out?: string | undefined; quiet?: boolean | undefined; 'allow-private-network'?: boolean | undefined },
  url: string,
  settings: { maxPages: number | undefined; maxDepth: number | undefined; concurrency: number; timeoutMs: number | undefined; scope: CrawlScope | undefined },
): Promise<number> {
  const { maxPages, maxDepth, concurrency, timeoutMs, scope } = settings;
  if ('migrate' in opened.storage) await (opened.storage as ReturnType<typeof postgresStorage>).migrate();
  const engine = createCrawlEngine({
    storage: opened.storage,
    fetch: {
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      allowPrivateNetwork: values['allow-private-network'] === true,
    },
    ...(timeoutMs === undefined ? {} : { leaseMs: Math.max(60_000, timeoutMs) }),
  });

  const err = process.stderr;
  const tty = err.isTTY === true && !values.quiet;
  const plain = !err.isTTY && !values.quiet;
  const started = Date.now();
  let lastDraw = 0;
  let latest: ProgressEvent | null = null;
  const rate = (done: number) => (done / Math.max((Date.now() - started) / 1000, 0.001)).toFixed(1);
  const draw = (force = false) => {
    if (latest === null) return;
    const now = Date.now();
    if (!force && now - lastDraw < (tty ? 80 : 1000)) return;
    lastDraw = now;
    const c = latest.counts;
    const line = `${bar(c)} pages · ${c.failed} failed · ${c.inProgress} in flight · ${rate(c.succeeded + c.failed)} pages/s`;
    if (tty) err.write(`\r\x1b[2K${line}`);
    else if (plain) err.write(`${line}\n`);
  };

  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let job: Job;
  try {
    job = await engine.crawl(
      {
        url,
        ...(maxPages === undefined ? {} : { maxPages }),
        ...(maxDepth === undefined ? {} : { maxDepth }),
        ...(scope === undefined ? {} : { scope }),
        ...(values.include ? { include: values.include } : {}),
        ...(values.exclude ? { exclude: values.exclude } : {}),
      },
      {
        concurrency,
        signal: controller.signal,
        onEvent: (event) => {
          latest = event;
          draw(event.type.startsWith('job:'));
        },
      },
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await engine.close();
  }
  draw(true);
  if (tty) err.write('\n');

  const out: WriteStream | NodeJS.WriteStream = values.out ? createWriteStream(values.out) : process.stdout;
  const failures = new Map<string, number>();
  let cursor: string | null = null;
  do {
    const page = await engine.jobs.results(job.id, { limit: 1000, cursor });
    let chunk = '';
    for (const result of page.items) {
      chunk += `${JSON.stringify(result)}\n`;
      if (result.error) failures.set(result.error.code, (failures.get(result.error.code) ?? 0) + 1);
    }
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    cursor = page.nextCursor;
  } while (cursor !== null);
  if (out !== process.stdout) await new Promise<void>((resolve, reject) => (out as WriteStream).end((e?: Error | null) => (e ? reject(e) : resolve())));

  if (!values.quiet) {
    const c = job.counts;
    const seconds = (Date.now() - started) / 1000;
    const byCode = [...failures].map(([code, n]) => `${code} ${n}`).join(', ');
    err.write(
      `${job.status === 'completed' ? 'Done' : `Job ${job.status}`}: ${c.succeeded + c.failed} page${c.succeeded + c.failed === 1 ? '' : 's'} in ${seconds.toFixed(1)}s ` +
        `(${rate(c.succeeded + c.failed)} pages/s), ${c.succeeded} ok, ${c.failed} failed${byCode ? ` (${byCode})` : ''}` +
        `${job.error ? ` — ${job.error.code}: ${job.error.message}` : ''}. Job ${job.id}${values.out ? `, results in ${values.out}` : ''}.\n`,
    );
  }
  return job.status === 'completed' ? 0 : controller.signal.aborted ? 130 : 1;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    }
    if (command === 'migrate') return await migrateCommand(rest);
    if (command !== 'crawl') throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    return await crawlCommand(rest);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (error instanceof UsageError || code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      process.stderr.write(`crawl-engine: ${(error as Error).message}\n\n${USAGE}\n`);
      return 2;
    }
    if (error instanceof CrawlEngineError && (error.code === 'invalid_input' || error.code === 'invalid_options')) {
      process.stderr.write(`crawl-engine: ${error.message.replace('[crawl-engine] ', '')}\n`);
      return 2;
    }
    process.stderr.write(`crawl-engine: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`crawl-engine: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
