/**
 * `crawl-engine crawl <url>`: runs a crawl in this process with memory storage, draws a progress
 * bar on a terminal (plain lines otherwise), writes one JSON line per page, prints a summary.
 *
 * @module crawl-engine/cli
 */
import { subscribe } from 'node:diagnostics_channel';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { memoryStorage } from '../../adapters/memory/index.js';
import { kvStorage } from '../../adapters/kv/index.js';
import { postgresStorage } from '../../adapters/postgres/index.js';
import type { CrawlStorage, Lease } from '../core/storage.js';
import { createCrawlEngine, type CrawlEngine } from '../core/engine.js';
import { CrawlEngineError } from '../core/errors.js';
import type { CrawlScope, Job, PageResult, ProgressEvent } from '../core/types.js';
import { SKIP_CODES, TERMINAL_EVENTS, TERMINAL_STATUSES } from '../core/types.js';

/** Exit codes, as documented in --help. */
const EXIT = { completed: 0, jobFailed: 1, usage: 2, storage: 3, interrupted: 130, terminated: 143 } as const;

const DEFAULT_MAX_PAGES = 50;

const USAGE = `Usage: crawl-engine crawl <url> [options]
       crawl-engine migrate --storage postgres://… [--schema S] [--table-prefix P]

Options:
  --max-pages N               most URLs to fetch (default 50)
  --max-depth D               link hops from the start URL (default 2)
  --scope S                   same-origin | same-hostname | same-domain | any (default same-hostname)
  --include GLOB              only follow matching URLs (repeatable)
  --exclude GLOB              never follow matching URLs (repeatable)
  --concurrency N             fetches in flight overall, all hosts together (default 20,
                              at most 1000)
  --per-host-concurrency N    fetches in flight to any one host (default 2, at most 100)
  --per-host-delay-ms N       pause between requests to one host (default 0); above 0 it
                              also means one request at a time to that host
  --timeout-ms N              per-request timeout (default 15000)
  --user-agent STR            User-Agent header, also matched against robots.txt groups
                              (default crawl-engine/0.1 (+https://www.npmjs.com/package/crawl-engine))
  --no-robots                 ignore robots.txt (default: obey it, Crawl-delay included)
  --out FILE                  write one JSON line per page to FILE (default: stdout)
  --storage URL               memory (default), postgres://… (needs pg; migrates the
                              schema first) or redis://… (needs ioredis)
  --schema S, --table-prefix P   Postgres schema and table prefix (default public, crawl_);
                              with redis://, --table-prefix is the key prefix (default crawl:)
  --allow-private-network     allow loopback and private addresses (for local sites)
  --quiet                     no progress output and no summary
  -h, --help                  show this help

Concurrency: one host never sees more than min(--concurrency, --per-host-concurrency)
requests at once, so a single site is fetched 2 at a time by default; raise
--per-host-concurrency for that (e.g. 10). --concurrency caps the total across hosts
and matters when the crawl spans several (--scope same-domain or any).

Exit codes:
  0    the job completed
  1    the job failed or was cancelled by someone else (the summary says why),
       or an unexpected error
  2    bad arguments (the message names the option)
  3    the storage could not be reached or failed (the message names it, with host and port)
  130  interrupted (Ctrl-C): prints "cancelling…", cancels the job, aborts the fetches in
       flight, writes the pages stored so far and the summary; a second Ctrl-C exits at once
  143  terminated (SIGTERM), handled like Ctrl-C`;

class UsageError extends Error {}

/** The storage could not be reached, or failed mid-crawl: one line, exit code 3. */
class StorageError extends Error {}

type StorageKind = 'memory' | 'Postgres' | 'Redis';

interface OpenedStorage {
  storage: CrawlStorage;
  close(): Promise<void>;
  kind: StorageKind;
  /** host:port, for messages. */
  where: string;
  /** The error that broke the connection, while it is broken (Redis: commands then fail with ioredis' own words). */
  connectionError?: () => unknown;
}

/** What a network error code means, in words (for storage messages). */
const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed',
  ECONNABORTED: 'connection aborted',
};

/** Library wording that a CLI user cannot act on, in terms of the CLI's flags. */
function cliWording(text: string): string {
  return text
    .replace(/\[crawl-engine\] (\[(postgres|kv)\] )?/g, '')
    .replaceAll('set fetch.allowPrivateNetwork to allow it', 'pass --allow-private-network to allow it')
    .replaceAll('fetch.allowPrivateNetwork', '--allow-private-network')
    .replaceAll('within timeoutMs (', 'within --timeout-ms (');
}

/** The cause of a storage failure in a few words: the network error if there is one, else the message. */
function describeCause(error: unknown): string {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  let innermost: unknown = error;
  while (queue.length > 0) {
    const e = queue.shift();
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    innermost = e;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code in NETWORK_ERRORS) return NETWORK_ERRORS[code]!;
    const found = /\b(E[A-Z]{3,})\b/.exec(String((e as { message?: unknown }).message ?? ''))?.[1];
    if (found !== undefined && found in NETWORK_ERRORS) return NETWORK_ERRORS[found]!;
    queue.push((e as { cause?: unknown }).cause, ...(((e as { errors?: unknown }).errors as unknown[] | undefined) ?? []));
  }
  const text = innermost instanceof Error ? innermost.message : String(innermost);
  return cliWording(text).split('\n', 1)[0]!.trim() || 'unknown error';
}

/** host:port of a storage URL, with the default port filled in. */
function hostPort(url: URL, defaultPort: number, defaultHost = 'localhost'): string {
  const host = url.hostname || defaultHost;
  return `${host}:${url.port || defaultPort}`;
}

function parseStorageUrl(url: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new UsageError(`--storage: expected memory, postgres://… or redis://…, got ${JSON.stringify(url)}`);
  }
}

/** Opens the storage named by --storage and checks that it answers before anything else. */
async function openStorage(url: string | undefined, schema: string | undefined, tablePrefix: string | undefined): Promise<OpenedStorage> {
  if (url === undefined || url === 'memory') return { storage: memoryStorage(), close: async () => undefined, kind: 'memory', where: 'memory' };
  if (/^postgres(ql)?:\/\//.test(url)) {
    const where = hostPort(parseStorageUrl(url), 5432, process.env.PGHOST || 'localhost');
    type Pool = { end(): Promise<void>; on(e: 'error', cb: () => void): void; query(t: string, p?: unknown[]): Promise<{ rows: unknown[] }> };
    let pg: { Pool: new (options: { connectionString: string; max?: number; connectionTimeoutMillis?: number }) => Pool };
    try {
      const specifier = 'pg';
      const loaded = (await import(specifier)) as { default?: typeof pg } & typeof pg;
      pg = loaded.default ?? loaded;
    } catch {
      throw new UsageError('--storage postgres://… needs the pg package: npm install pg');
    }
    const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 10_000 });
    pool.on('error', () => undefined);
    try {
      await pool.query('SELECT 1');
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw new StorageError(`cannot reach Postgres at ${where}: ${describeCause(error)}`);
    }
    const storage = postgresStorage({ client: pool, ...(schema ? { schema } : {}), ...(tablePrefix !== undefined ? { tablePrefix } : {}) });
    return { storage, close: () => pool.end(), kind: 'Postgres', where };
  }
  if (/^rediss?:\/\//.test(url)) {
    const where = hostPort(parseStorageUrl(url), 6379);
    interface RedisOptions {
      lazyConnect?: boolean;
      maxRetriesPerRequest?: number;
      connectTimeout?: number;
      retryStrategy?: (times: number) => number | null;
    }
    type RedisClient = {
      status: string;
      connect(): Promise<void>;
      quit(): Promise<unknown>;
      disconnect(): void;
      on(e: 'error', cb: (error: unknown) => void): void;
    };
    let Redis: new (url: string, options?: RedisOptions) => RedisClient;
    try {
      const specifier = 'ioredis';
      const loaded = (await import(specifier)) as { default?: typeof Redis } & { Redis?: typeof Redis };
      Redis = (loaded.default ?? loaded.Redis)!;
    } catch {
      throw new UsageError('--storage redis://… needs the ioredis package: npm install ioredis');
    }
    // ioredis reconnects forever by default. Here the first connection gets one try (so an
    // unreachable server is reported at once), and a connection lost later gets a few.
    let connected = false;
    let lastError: unknown = null;
    const redis = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 3,
      connectTimeout: 10_000,
      retryStrategy: (times) => (connected && times <= 5 ? times * 200 : null),
    });
    redis.on('error', (error) => {
      lastError = error;
    });
    try {
      await redis.connect();
      connected = true;
    } catch (error) {
      throw new StorageError(`cannot reach Redis at ${where}: ${describeCause(lastError ?? error)}`);
    }
    const storage = kvStorage({ client: redis as never, ...(tablePrefix !== undefined ? { prefix: tablePrefix } : {}) });
    const close = async () => {
      await redis.quit().catch(() => redis.disconnect());
    };
    return { storage, close, kind: 'Redis', where, connectionError: () => (redis.status === 'ready' ? null : lastError) };
  }
  throw new UsageError(`--storage: expected memory, postgres://… or redis://…, got ${JSON.stringify(url)}`);
}

/** A failure of the storage mid-crawl as one line (exit 3), or the error unchanged. */
function storageFailure(error: unknown, opened: OpenedStorage): unknown {
  if (opened.kind === 'memory' || error instanceof StorageError || error instanceof UsageError) return error;
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'storage_error' || message.startsWith('[crawl-engine] crawl(): storage failed')) {
    const broken = opened.connectionError?.() ?? null;
    if (broken !== null) return new StorageError(`lost the connection to ${opened.kind} at ${opened.where}: ${describeCause(broken)}`);
    const cause = describeCause(error).replace(/^crawl\(\): storage failed: /, '');
    const lost = Object.values(NETWORK_ERRORS).includes(cause);
    return new StorageError(lost ? `lost the connection to ${opened.kind} at ${opened.where}: ${cause}` : `${opened.kind} at ${opened.where} failed: ${cause}`);
  }
  return error;
}

const MIGRATE_OPTIONS = {
  storage: { type: 'string' },
  schema: { type: 'string' },
  'table-prefix': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function migrateCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, MIGRATE_OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`migrate takes no positional arguments, got ${JSON.stringify(positionals[0])}`);
  if (values.storage === undefined || !/^postgres(ql)?:\/\//.test(values.storage)) throw new UsageError('migrate: --storage postgres://… is required');
  const opened = await openStorage(values.storage, values.schema, values['table-prefix']);
  try {
    const { applied, version } = await (opened.storage as ReturnType<typeof postgresStorage>).migrate();
    process.stderr.write(
      applied.length === 0
        ? `Schema is up to date (version ${version}).\n`
        : `Applied migration${applied.length === 1 ? '' : 's'} ${applied.join(', ')}; schema is at version ${version}.\n`,
    );
    return 0;
  } catch (error) {
    throw storageFailure(error, opened);
  } finally {
    await opened.close();
  }
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;

/**
 * parseArgs, with its errors turned into CLI messages: an unknown option names the closest known
 * one, a missing value names the option.
 */
function parseOptions<T extends OptionSpec>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && code !== 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw error;
    // Parse again leniently to find the offending argument.
    const { tokens } = parseArgs({ args: argv, allowPositionals: true, strict: false, tokens: true, options });
    for (const token of tokens) {
      if (token.kind !== 'option') continue;
      const spec = options[token.name];
      const raw = argv[token.index]!.split('=', 1)[0]!;
      if (spec === undefined) {
        const typed = raw.replace(/^-+/, '');
        let best: string | null = null;
        let bestDistance = Infinity;
        for (const name of Object.keys(options)) {
          const distance = editDistance(typed, name);
          if (distance < bestDistance) [best, bestDistance] = [name, distance];
        }
        const close = best !== null && bestDistance <= Math.max(2, Math.floor(typed.length / 3));
        throw new UsageError(`unknown option ${raw}${close ? `; did you mean --${best}?` : ''}`);
      }
      if (spec.type === 'string' && token.value === undefined) throw new UsageError(`--${token.name}: expected a value`);
      if (spec.type === 'string' && token.inlineValue === false && token.value?.startsWith('-')) {
        // strict parsing refuses `--max-depth -1`: the value looks like an option.
        throw new UsageError(
          `--${token.name}: expected a value, got the option-like ${JSON.stringify(token.value)} (write --${token.name}=${token.value} if that is the value)`,
        );
      }
      if (spec.type === 'boolean' && token.value !== undefined) throw new UsageError(`--${token.name} takes no value, got ${JSON.stringify(token.value)}`);
    }
    throw new UsageError((error as Error).message.split('\n', 1)[0]!);
  }
}

/** An integer flag within bounds, or undefined when absent; anything else is a UsageError naming the flag. */
function intFlag(flag: string, value: string | undefined, min: number, max?: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || (max !== undefined && Number(value) > max)) {
    throw new UsageError(`${flag}: expected an integer ${max === undefined ? `>= ${min}` : `from ${min} to ${max}`}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

const CRAWL_OPTIONS = {
  'max-pages': { type: 'string' },
  'max-depth': { type: 'string' },
  scope: { type: 'string' },
  include: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
  concurrency: { type: 'string' },
  'per-host-concurrency': { type: 'string' },
  'per-host-delay-ms': { type: 'string' },
  'timeout-ms': { type: 'string' },
  'user-agent': { type: 'string' },
  'no-robots': { type: 'boolean' },
  out: { type: 'string' },
  storage: { type: 'string' },
  schema: { type: 'string' },
  'table-prefix': { type: 'string' },
  'allow-private-network': { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface CrawlSettings {
  url: string;
  maxPages: number | undefined;
  maxDepth: number | undefined;
  scope: CrawlScope | undefined;
  include: string[] | undefined;
  exclude: string[] | undefined;
  concurrency: number;
  perHostConcurrency: number | undefined;
  perHostDelayMs: number | undefined;
  timeoutMs: number | undefined;
  userAgent: string | undefined;
  respectRobots: boolean;
  allowPrivateNetwork: boolean;
  out: string | undefined;
  quiet: boolean;
}

/**
 * Ctrl-C and SIGTERM. The first one cancels the crawl (see `crawlWith`); before and after the
 * crawl, and on a second signal, the process exits at once.
 */
const interrupt = {
  signal: null as NodeJS.Signals | null,
  /** Set while a crawl runs: starts the cancellation. */
  onFirst: null as ((signal: NodeJS.Signals) => void) | null,
  /** When set, `main`'s caller exits with process.exit instead of waiting for the event loop. */
  forceExit: false,
};
const exitCodeOf = (signal: NodeJS.Signals) => (signal === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted);

function onSignal(signal: NodeJS.Signals) {
  if (interrupt.signal === null && interrupt.onFirst !== null) {
    interrupt.signal = signal;
    interrupt.onFirst(signal);
    return;
  }
  process.stderr.write(`\ncrawl-engine: ${interrupt.signal === null ? 'interrupted' : 'interrupted again'}; exiting now\n`);
  process.exit(exitCodeOf(signal));
}

/**
 * Sockets of undici (the fetcher's HTTP client), seen through its diagnostics channel: the
 * engine has no way to abort fetches in flight (run({ signal }) only stops starting new ones,
 * engine.close() waits for them), so on Ctrl-C the CLI destroys these.
 */
const httpSockets = new Set<Socket>();
let refuseHttpSockets = false;
function trackHttpSockets() {
  subscribe('undici:client:connected', (message) => {
    const socket = (message as { socket?: Socket }).socket;
    if (socket === undefined) return;
    if (refuseHttpSockets) {
      socket.destroy();
      return;
    }
    httpSockets.add(socket);
    socket.once('close', () => httpSockets.delete(socket));
  });
}
function abortHttpRequests() {
  refuseHttpSockets = true;
  for (const socket of httpSockets) socket.destroy();
  httpSockets.clear();
}

/** Resolves with the promise's value, or with `fallback` after `ms`. Never rejects. */
function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(fallback), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      () => {
        clearTimeout(timer);
        resolve(fallback);
      },
    );
  });
}

/**
 * The storage, counting the leases this process holds: claimed and not yet completed, retried
 * or released. That is the number of URLs being fetched (or stored) right now, which the job's
 * counts in the last event cannot tell (they are as of that event).
 */
function countLeases(storage: CrawlStorage): { storage: CrawlStorage; held: () => number } {
  const held = new Set<string>();
  const drop = (lease: Lease) => held.delete(lease.token);
  const wrapped = new Proxy(storage, {
    get(target, property) {
      if (property === 'claim') {
        return async (...args: Parameters<CrawlStorage['claim']>) => {
          const claimed = await target.claim(...args);
          for (const lease of claimed.leases) held.add(lease.token);
          return claimed;
        };
      }
      if (property === 'complete' || property === 'retry') {
        return async (lease: Lease, input: never) => {
          try {
            return await (target[property] as (lease: Lease, input: never) => Promise<unknown>)(lease, input);
          } finally {
            drop(lease);
          }
        };
      }
      if (property === 'release') {
        return async (leases: Lease[]) => {
          try {
            return await target.release(leases);
          } finally {
            for (const lease of leases) drop(lease);
          }
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { storage: wrapped, held: () => held.size };
}

async function crawlCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, CRAWL_OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing <url>' : `expected one <url>, got ${positionals.length}`);
  const scopes = ['same-origin', 'same-hostname', 'same-domain', 'any'] as const;
  const scope = values.scope as (typeof scopes)[number] | undefined;
  if (scope !== undefined && !scopes.includes(scope)) throw new UsageError(`--scope: expected one of ${scopes.join(', ')}, got ${JSON.stringify(scope)}`);
  const userAgent = values['user-agent'];
  if (userAgent !== undefined && (!/^[\x20-\x7e]{1,512}$/.test(userAgent) || userAgent.trim() === '')) {
    throw new UsageError(
      `--user-agent: expected 1 to 512 printable ASCII characters, got ${JSON.stringify(userAgent.length > 60 ? `${userAgent.slice(0, 60)}…` : userAgent)}`,
    );
  }
  const settings: CrawlSettings = {
    url: positionals[0]!,
    maxPages: intFlag('--max-pages', values['max-pages'], 1, 1_000_000),
    maxDepth: intFlag('--max-depth', values['max-depth'], 0, 1000),
    scope,
    include: values.include,
    exclude: values.exclude,
    concurrency: intFlag('--concurrency', values.concurrency, 1, 1000) ?? 20,
    perHostConcurrency: intFlag('--per-host-concurrency', values['per-host-concurrency'], 1, 100),
    perHostDelayMs: intFlag('--per-host-delay-ms', values['per-host-delay-ms'], 0, 600_000),
    timeoutMs: intFlag('--timeout-ms', values['timeout-ms'], 1, 600_000),
    userAgent,
    respectRobots: values['no-robots'] !== true,
    allowPrivateNetwork: values['allow-private-network'] === true,
    out: values.out,
    quiet: values.quiet === true,
  };

  const opened = await openStorage(values.storage, values.schema, values['table-prefix']);
  try {
    return await crawlWith(opened, settings);
  } catch (error) {
    throw storageFailure(error, opened);
  } finally {
    const closing = opened.close().catch(() => undefined);
    if (interrupt.signal === null) await closing;
    else await within(closing, 1000, undefined);
  }
}

async function crawlWith(opened: OpenedStorage, settings: CrawlSettings): Promise<number> {
  if ('migrate' in opened.storage) await (opened.storage as ReturnType<typeof postgresStorage>).migrate();
  const { timeoutMs, quiet } = settings;
  const leases = countLeases(opened.storage);
  const engine: CrawlEngine = createCrawlEngine({
    storage: leases.storage,
    fetch: {
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(settings.userAgent === undefined ? {} : { userAgent: settings.userAgent }),
      allowPrivateNetwork: settings.allowPrivateNetwork,
    },
    ...(timeoutMs === undefined ? {} : { leaseMs: Math.max(60_000, timeoutMs) }),
  });

  const err = process.stderr;
  const tty = err.isTTY === true && !quiet;
  const plain = !err.isTTY && !quiet;
  const maxPages = settings.maxPages ?? DEFAULT_MAX_PAGES;
  const started = Date.now();
  // Counters only ever grow (events of concurrent pages can arrive out of order): keep maxima.
  const seen = { fetched: 0, discovered: 1, failed: 0, skipped: 0, events: false, completed: false, terminalDrawn: false };
  let filled = 0;
  let lastDraw = 0;
  let lastLine = '';
  const rate = (done: number) => (done / Math.max((Date.now() - started) / 1000, 0.001)).toFixed(1);
  const width = 20;
  /** `ended`: the job has ended (nothing is in flight any more). */
  const draw = (force = false, ended = false) => {
    if (!seen.events || (!tty && !plain)) return;
    const now = Date.now();
    if (!force && now - lastDraw < (tty ? 80 : 900)) return;
    lastDraw = now;
    // The bar is pages done out of --max-pages (the most the job will fetch), so it never moves
    // back as links are discovered; a completed job fills it.
    const fraction = seen.completed ? 1 : Math.min(1, seen.fetched / maxPages);
    filled = Math.max(filled, Math.floor(fraction * width));
    const inFlight = ended ? 0 : leases.held();
    const line =
      `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${seen.fetched} fetched / ${seen.discovered} discovered (max ${maxPages})` +
      ` · ${seen.failed} failed${seen.skipped > 0 ? ` · ${seen.skipped} skipped (robots.txt)` : ''} · ${inFlight} in flight · ${rate(seen.fetched)} pages/s`;
    // A line wider than the terminal would wrap, and \r would then redraw only its last row.
    if (tty) err.write(`\r\x1b[2K${err.columns > 1 && line.length >= err.columns ? `${line.slice(0, err.columns - 2)}…` : line}`);
    else if (line !== lastLine) err.write(`${line}\n`);
    lastLine = line;
  };
  const ticker = tty || plain ? setInterval(() => draw(), tty ? 100 : 1000) : null;
  ticker?.unref();

  let jobId: string | null = null;
  const controller = new AbortController();
  let onInterrupted: () => void = () => undefined;
  const interrupted = new Promise<'interrupted'>((resolve) => (onInterrupted = () => resolve('interrupted')));
  interrupt.onFirst = () => {
    // Written at once, before anything is awaited.
    if (ticker !== null) clearInterval(ticker);
    err.write(`${tty ? '\r\x1b[2K' : ''}cancelling… (Ctrl-C again to exit at once)\n`);
    controller.abort();
    onInterrupted();
  };

  let job: Job | null = null;
  const crawling = engine.crawl(
    {
      url: settings.url,
      ...(settings.maxPages === undefined ? {} : { maxPages: settings.maxPages }),
      ...(settings.maxDepth === undefined ? {} : { maxDepth: settings.maxDepth }),
      ...(settings.scope === undefined ? {} : { scope: settings.scope }),
      ...(settings.include ? { include: settings.include } : {}),
      ...(settings.exclude ? { exclude: settings.exclude } : {}),
      ...(settings.perHostConcurrency === undefined ? {} : { perHostConcurrency: settings.perHostConcurrency }),
      ...(settings.perHostDelayMs === undefined ? {} : { perHostDelayMs: settings.perHostDelayMs }),
      respectRobots: settings.respectRobots,
    },
    {
      concurrency: settings.concurrency,
      signal: controller.signal,
      onEvent: (event: ProgressEvent) => {
        jobId = event.jobId;
        const c = event.counts;
        seen.events = true;
        seen.fetched = Math.max(seen.fetched, c.succeeded + c.failed);
        seen.discovered = Math.max(seen.discovered, c.discovered);
        seen.failed = Math.max(seen.failed, c.failed);
        seen.skipped = Math.max(seen.skipped, c.skipped);
        if (event.type === 'job:completed') seen.completed = true;
        if (interrupt.signal !== null) return;
        // Page events only update the counters; the ticker draws. Drawn at a page event, the
        // in-flight figure would always miss the page that just finished and its successor.
        if (!event.type.startsWith('job:')) return;
        const terminal = TERMINAL_EVENTS.has(event.type);
        draw(true, terminal);
        if (terminal) seen.terminalDrawn = true;
      },
    },
  );
  crawling.catch(() => undefined); // awaited below, or abandoned after an interrupt
  let settled = true;
  try {
    const first = await Promise.race([crawling, interrupted]);
    if (first !== 'interrupted') job = first;
    else {
      // The processor stops starting fetches when the signal aborts, but waits for those in
      // flight: cancel the job in storage (no URL of it is fetched again, by any process), then
      // abort the requests in flight, and give the crawl a moment to wind down.
      const cancelled = jobId === null ? null : await within(engine.jobs.cancel(jobId), 2000, null);
      abortHttpRequests();
      const ended = await within(crawling, 500, null);
      settled = ended !== null;
      job = ended ?? cancelled ?? (jobId === null ? null : await within(engine.jobs.get(jobId), 1000, null));
    }
  } finally {
    interrupt.onFirst = null;
    if (ticker !== null) clearInterval(ticker);
    // engine.close() waits for requests in flight; after an interrupt they were aborted.
    if (settled) await engine.close();
    else void engine.close().catch(() => undefined);
  }
  if (!settled) interrupt.forceExit = true;
  if (job === null) {
    // Only after an interrupt, when the storage did not answer in time.
    err.write(
      jobId === null
        ? 'Interrupted before the job started.\n'
        : `Job ${jobId}: ${opened.kind} at ${opened.where} did not confirm the cancellation in time; the job may still be stored as running.\n`,
    );
    interrupt.forceExit = true;
    return exitCodeOf(interrupt.signal ?? 'SIGINT');
  }
  if (TERMINAL_STATUSES.has(job.status)) {
    const c = job.counts;
    seen.fetched = Math.max(seen.fetched, c.succeeded + c.failed);
    seen.discovered = Math.max(seen.discovered, c.discovered);
    seen.failed = Math.max(seen.failed, c.failed);
    seen.skipped = Math.max(seen.skipped, c.skipped);
    seen.completed = job.status === 'completed';
  }
  if (!seen.terminalDrawn) draw(true, true);
  if (tty) err.write('\n');

  const out: WriteStream | NodeJS.WriteStream = settings.out ? createWriteStream(settings.out) : process.stdout;
  const failures = new Map<string, number>();
  let cursor: string | null = null;
  do {
    const page = await engine.jobs.results(job.id, { limit: 1000, cursor });
    let chunk = '';
    for (const stored of page.items) {
      const result: PageResult = stored.error === null ? stored : { ...stored, error: { ...stored.error, message: cliWording(stored.error.message) } };
      chunk += `${JSON.stringify(result)}\n`;
      if (result.error && !SKIP_CODES.has(result.error.code)) failures.set(result.error.code, (failures.get(result.error.code) ?? 0) + 1);
    }
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    cursor = page.nextCursor;
  } while (cursor !== null);
  if (out !== process.stdout) await new Promise<void>((resolve, reject) => (out as WriteStream).end((e?: Error | null) => (e ? reject(e) : resolve())));

  if (!quiet) {
    const c = job.counts;
    const done = c.succeeded + c.failed + c.skipped;
    const seconds = (Date.now() - started) / 1000;
    const byCode = [...failures].map(([code, n]) => `${code} ${n}`).join(', ');
    const status = job.status === 'completed' ? 'Done' : `Job ${job.status}${interrupt.signal !== null && job.status === 'cancelled' ? ' (interrupted)' : ''}`;
    err.write(
      `${status}: ${done} page${done === 1 ? '' : 's'} in ${seconds.toFixed(1)}s ` +
        `(${rate(done)} pages/s), ${c.succeeded} ok, ${c.failed} failed${byCode ? ` (${byCode})` : ''}${c.skipped > 0 ? `, ${c.skipped} skipped by robots.txt` : ''}` +
        `${job.error ? ` — ${job.error.code}: ${cliWording(job.error.message)}` : ''}. Job ${job.id}${settings.out ? `, results in ${settings.out}` : ''}.\n`,
    );
  }
  if (job.status === 'completed') return EXIT.completed;
  if (interrupt.signal !== null) {
    interrupt.forceExit = true;
    return exitCodeOf(interrupt.signal);
  }
  return EXIT.jobFailed;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? EXIT.usage : 0;
    }
    if (command === 'migrate') return await migrateCommand(rest);
    if (command !== 'crawl') throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    return await crawlCommand(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`crawl-engine: ${error.message}\n\n${USAGE}\n`);
      return EXIT.usage;
    }
    if (error instanceof CrawlEngineError && (error.code === 'invalid_input' || error.code === 'invalid_options')) {
      process.stderr.write(`crawl-engine: ${cliWording(error.message).replace(/^invalid job input: /, '')}\n`);
      return EXIT.usage;
    }
    if (error instanceof StorageError) {
      process.stderr.write(`crawl-engine: ${error.message}\n`);
      return EXIT.storage;
    }
    process.stderr.write(`crawl-engine: ${(error as Error).stack ?? String(error)}\n`);
    return EXIT.jobFailed;
  }
}

/** Exits once stdout and stderr have taken everything written so far. */
function exitAfterFlush(code: number) {
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

trackHttpSockets();
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    if (interrupt.forceExit) exitAfterFlush(code);
  },
  (error: unknown) => {
    process.stderr.write(`crawl-engine: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
