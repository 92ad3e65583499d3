/**
 * `--storage`: memory, a SQLite file, a PGlite folder, Postgres or Redis, opened and checked before
 * anything else. Drivers are loaded only when asked for, with an install hint when missing. For
 * `resume`, only what exists is opened: no file, folder, schema or table is created.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { kvStorage } from '../../adapters/kv/index.js';
import { memoryStorage } from '../../adapters/memory/index.js';
import { postgresStorage } from '../../adapters/postgres/index.js';
import { openFile } from '../../adapters/sqlite/driver.js';
import { sqliteStorage } from '../../adapters/sqlite/index.js';
import type { CrawlStorage } from '../core/storage.js';
import { describeCause, type StorageIdentity, StorageError, UsageError } from './errors.js';
import { lockFolder } from './folder-lock.js';
import { redactUrl } from './redact.js';

export interface OpenedStorage extends StorageIdentity {
  storage: CrawlStorage;
  close(): Promise<void>;
  /** Jobs outlive this process: an interrupted crawl is left to be resumed, not cancelled. */
  durable: boolean;
  /** The arguments that open this storage again (`--storage …` and its options), for the resume command. */
  args: string[];
  /** What opening it migrated (SQLite creates its tables as it opens). */
  migrated?: { applied: number[]; version: number };
}

export interface StorageFlags {
  storage?: string | undefined;
  schema?: string | undefined;
  'table-prefix'?: string | undefined;
}

export interface OpenOptions {
  /**
   * For `resume` and `delete`: open only a storage that exists, with its tables (a mistyped
   * --storage, --schema or --table-prefix is a usage error naming them, and nothing is created).
   */
  existing?: boolean;
  /** The command named in those usage errors. @default 'resume' */
  command?: 'resume' | 'delete' | 'export';
}

type Existing = false | 'resume' | 'delete' | 'export';

const EXPECTED = 'expected memory, sqlite:FILE, pglite:DIR, postgres://… or redis://…';

/** Loads an optional dependency, or says how to install it. */
async function load<T>(name: string, flag: string): Promise<T> {
  try {
    const specifier = name; // a variable: bundlers leave the import alone
    return (await import(specifier)) as T;
  } catch {
    throw new UsageError(`--storage ${flag} needs the ${name} package: npm install ${name}`);
  }
}

/** host:port of a storage URL, with the default port filled in. */
function hostPort(url: string, defaultPort: number, defaultHost = 'localhost'): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--storage: ${EXPECTED}, got ${JSON.stringify(url)}`);
  }
  return `${parsed.hostname || defaultHost}:${parsed.port || defaultPort}`;
}

/** The path of `sqlite:FILE` / `pglite:DIR` (also `sqlite://FILE`), absolute. */
function pathOf(spec: string, scheme: 'sqlite' | 'pglite', what: string): string {
  const path = spec.slice(scheme.length + 1).replace(/^\/\//, '');
  if (path.trim() === '')
    throw new UsageError(
      `--storage ${scheme}:${what}: expected a ${what === 'FILE' ? 'file' : 'folder'} path after ${scheme}:, e.g. ${scheme}:crawl${what === 'FILE' ? '.db' : ''}`,
    );
  if (path === ':memory:')
    throw new UsageError(
      `--storage ${scheme}::memory: keeps nothing after the crawl: use --storage memory, or give a ${what === 'FILE' ? 'file' : 'folder'} path`,
    );
  return resolve(path);
}

/** `--storage URL` for the printed resume command, with its secrets replaced. */
const storageArg = (url: string) => ['--storage', redactUrl(url) ?? '<the same URL you used>'];

/** The table a storage's jobs live in, looked up without creating anything. */
async function requireJobsTable(
  client: { query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }> },
  schema: string,
  prefix: string,
  what: string,
  command: 'resume' | 'delete' | 'export',
): Promise<void> {
  const { rows } = await client.query(
    'SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2',
    [schema, `${prefix}jobs`],
  );
  if (rows.length === 0) {
    throw new UsageError(
      `${command}: ${what} has no table ${schema}.${prefix}jobs: expected the --storage, --schema and --table-prefix the job was crawled with (${command} creates nothing)`,
    );
  }
}

/** Opens the storage named by --storage and checks that it answers before anything else. */
export async function openStorage(flags: StorageFlags, options: OpenOptions = {}): Promise<OpenedStorage> {
  // The command that needs an existing storage, named in its errors; false: any storage is opened or created.
  const existing: Existing = options.existing === true ? (options.command ?? 'resume') : false;
  const spec = flags.storage;
  const schema = flags.schema;
  const tablePrefix = flags['table-prefix'];
  const extraArgs = [...(schema === undefined ? [] : ['--schema', schema]), ...(tablePrefix === undefined ? [] : ['--table-prefix', tablePrefix])];
  if (spec === undefined || spec === 'memory')
    return { storage: memoryStorage(), close: async () => undefined, kind: 'memory', where: 'memory', durable: false, args: [] };
  if (spec.startsWith('sqlite:')) return openSqlite(pathOf(spec, 'sqlite', 'FILE'), tablePrefix, existing);
  if (spec.startsWith('pglite:')) return openPglite(pathOf(spec, 'pglite', 'DIR'), schema, tablePrefix, extraArgs, existing);
  if (/^postgres(ql)?:\/\//.test(spec)) {
    const where = hostPort(spec, 5432, process.env.PGHOST || 'localhost');
    type Pool = { end(): Promise<void>; on(e: 'error', cb: () => void): void; query(t: string, p?: unknown[]): Promise<{ rows: unknown[] }> };
    type PgModule = { Pool: new (options: { connectionString: string; max?: number; connectionTimeoutMillis?: number }) => Pool };
    const loaded = await load<{ default?: PgModule } & PgModule>('pg', 'postgres://…');
    const pool = new (loaded.default ?? loaded).Pool({ connectionString: spec, max: 10, connectionTimeoutMillis: 10_000 });
    pool.on('error', () => undefined);
    try {
      await pool.query('SELECT 1');
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw new StorageError(`cannot reach Postgres at ${where}: ${describeCause(error)}`);
    }
    try {
      const storage = postgresStorage({ client: pool, ...(schema ? { schema } : {}), ...(tablePrefix !== undefined ? { tablePrefix } : {}) });
      if (existing) await requireJobsTable(pool, schema || 'public', tablePrefix ?? 'crawl_', `Postgres at ${where}`, existing);
      return { storage, close: () => pool.end(), kind: 'Postgres', where, durable: true, args: [...storageArg(spec), ...extraArgs] };
    } catch (error) {
      await pool.end().catch(() => undefined);
      if (error instanceof UsageError || (error as { code?: unknown }).code === 'invalid_options') throw error;
      throw new StorageError(`Postgres at ${where} failed: ${describeCause(error)}`);
    }
  }
  if (/^rediss?:\/\//.test(spec)) return openRedis(spec, tablePrefix);
  throw new UsageError(`--storage: ${EXPECTED}, got ${JSON.stringify(spec)}`);
}

/** node:sqlite prints an ExperimentalWarning when loaded: noise on the CLI's stderr. */
function quietSqliteWarning(): void {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (/SQLite is an experimental feature/.test(typeof warning === 'string' ? warning : warning.message)) return;
    return (emit as (...args: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
}

const sqliteUnsupported = () =>
  new UsageError(
    `--storage sqlite:FILE needs Node.js >= 22.13 (node:sqlite), this is ${process.versions.node}: upgrade Node.js, or use --storage pglite:DIR (npm install @electric-sql/pglite)`,
  );
const sqliteFailure = (file: string, error: unknown) =>
  new StorageError(`cannot open SQLite file ${file}: ${describeCause(error).replace(/^cannot open ".*?": /, '')}`);

/** For resume and delete: the file must exist and hold the jobs table of the prefix (opening a missing file would create it). */
async function requireSqliteTables(file: string, prefix: string, command: 'resume' | 'delete' | 'export'): Promise<void> {
  if (!existsSync(file)) {
    throw new UsageError(`${command}: --storage sqlite:${file}: no such file: expected the SQLite file the job was crawled with (${command} creates nothing)`);
  }
  let found: unknown;
  try {
    const db = await openFile(file);
    try {
      found = db.prepare(`SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ?`).get(`${prefix}jobs`);
    } finally {
      db.close?.();
    }
  } catch (error) {
    if ((error as { code?: unknown }).code === 'unsupported') throw sqliteUnsupported();
    throw sqliteFailure(file, error);
  }
  if (found === undefined || found === null) {
    throw new UsageError(
      `${command}: SQLite file ${file} has no table ${prefix}jobs: expected the --storage and --table-prefix the job was crawled with (${command} creates nothing)`,
    );
  }
}

async function openSqlite(file: string, tablePrefix: string | undefined, existing: Existing): Promise<OpenedStorage> {
  quietSqliteWarning();
  const storage = sqliteStorage({ database: file, ...(tablePrefix !== undefined ? { tablePrefix } : {}) });
  if (existing) await requireSqliteTables(file, tablePrefix ?? 'crawl_', existing);
  let migrated: { applied: number[]; version: number };
  try {
    migrated = await storage.migrate();
  } catch (error) {
    if ((error as { code?: unknown }).code === 'unsupported') throw sqliteUnsupported();
    throw sqliteFailure(file, error);
  }
  const args = ['--storage', `sqlite:${file}`, ...(tablePrefix === undefined ? [] : ['--table-prefix', tablePrefix])];
  return { storage, close: async () => storage.close?.(), kind: 'SQLite', where: file, durable: true, args, migrated };
}

/** For resume and delete: the folder must exist and be a Postgres data folder (PGlite would create one). */
function requirePgliteFolder(dir: string, command: 'resume' | 'delete' | 'export'): void {
  let isFolder = false;
  try {
    isFolder = statSync(dir).isDirectory();
  } catch {
    // Missing: below.
  }
  if (!isFolder)
    throw new UsageError(
      `${command}: --storage pglite:${dir}: no such folder: expected the PGlite folder the job was crawled with (${command} creates nothing)`,
    );
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    throw new UsageError(
      `${command}: --storage pglite:${dir}: not a PGlite folder (no PG_VERSION in it): expected the PGlite folder the job was crawled with (${command} creates nothing)`,
    );
  }
}

async function openPglite(
  dir: string,
  schema: string | undefined,
  tablePrefix: string | undefined,
  extraArgs: string[],
  existing: Existing,
): Promise<OpenedStorage> {
  type PGliteModule = {
    PGlite: new (
      dataDir: string,
    ) => { waitReady: Promise<void>; close(): Promise<void>; query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }> };
  };
  const { PGlite } = await load<PGliteModule>('@electric-sql/pglite', 'pglite:DIR');
  if (existing) requirePgliteFolder(dir, existing);
  else {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw new StorageError(`cannot open PGlite folder ${dir}: ${describeCause(error)}`);
    }
  }
  const unlock = await lockFolder(dir);
  let db: InstanceType<PGliteModule['PGlite']>;
  try {
    db = new PGlite(dir);
    await db.waitReady;
  } catch (error) {
    unlock();
    throw new StorageError(`cannot open PGlite folder ${dir}: ${describeCause(error)}`);
  }
  let storage: CrawlStorage;
  try {
    storage = postgresStorage({ client: db, ...(schema ? { schema } : {}), ...(tablePrefix !== undefined ? { tablePrefix } : {}) });
    if (existing) await requireJobsTable(db, schema || 'public', tablePrefix ?? 'crawl_', `PGlite folder ${dir}`, existing);
  } catch (error) {
    await db.close().catch(() => undefined);
    unlock();
    if (error instanceof UsageError || (error as { code?: unknown }).code === 'invalid_options') throw error;
    throw new StorageError(`PGlite folder ${dir} failed: ${describeCause(error)}`);
  }
  const close = async () => {
    try {
      await storage.close?.();
      await db.close();
    } finally {
      unlock();
    }
  };
  return { storage, close, kind: 'PGlite', where: dir, durable: true, args: ['--storage', `pglite:${dir}`, ...extraArgs] };
}

async function openRedis(url: string, tablePrefix: string | undefined): Promise<OpenedStorage> {
  const where = hostPort(url, 6379);
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
  type RedisConstructor = new (url: string, options?: RedisOptions) => RedisClient;
  const loaded = await load<{ default?: RedisConstructor; Redis?: RedisConstructor }>('ioredis', 'redis://…');
  const Redis = (loaded.default ?? loaded.Redis)!;
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
  const args = [...storageArg(url), ...(tablePrefix === undefined ? [] : ['--table-prefix', tablePrefix])];
  return { storage, close, kind: 'Redis', where, durable: true, args, connectionError: () => (redis.status === 'ready' ? null : lastError) };
}
