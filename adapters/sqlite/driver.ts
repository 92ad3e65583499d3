/**
 * The SQLite connection: what the adapter needs of it (node:sqlite's `DatabaseSync` and
 * better-sqlite3's `Database` both fit), loading node:sqlite lazily, cached statements, and
 * transactions that wait for another process's lock without blocking the event loop.
 */
import { CrawlEngineError } from '../../src/storage/index.js';

export type SqlValue = null | number | bigint | string;

export interface SqliteStatement {
  run(...params: SqlValue[]): unknown;
  get(...params: SqlValue[]): unknown;
  all(...params: SqlValue[]): unknown[];
}

/** An open SQLite connection: node:sqlite `DatabaseSync`, better-sqlite3 `Database`, or alike. */
export interface SqliteDatabase {
  exec(sql: string): unknown;
  prepare(sql: string): SqliteStatement;
  close?(): unknown;
}

/** The first Node.js releases where node:sqlite needs no flag. */
export const NODE_SQLITE_VERSIONS = '22.13 (or 23.4)';

/** Opens a file with node:sqlite, imported on first use so that loading this module works on any Node.js. */
export async function openFile(path: string): Promise<SqliteDatabase> {
  let sqlite: { DatabaseSync: new (path: string) => SqliteDatabase };
  try {
    // A variable specifier: bundlers and type checkers leave the import of a builtin alone.
    const specifier = 'node:sqlite';
    sqlite = (await import(specifier)) as typeof sqlite;
  } catch (cause) {
    throw new CrawlEngineError(
      'unsupported',
      `[crawl-engine] [sqlite] node:sqlite needs Node.js >= ${NODE_SQLITE_VERSIONS}, this is ${process.versions.node}: upgrade Node.js, or pass an open better-sqlite3 Database as database`,
      { cause },
    );
  }
  try {
    return new sqlite.DatabaseSync(path);
  } catch (cause) {
    throw new CrawlEngineError('storage_error', `[crawl-engine] [sqlite] cannot open ${JSON.stringify(path)}: ${(cause as Error).message}`, { cause });
  }
}

/** SQLITE_BUSY and SQLITE_LOCKED, with their extended codes, as node:sqlite and better-sqlite3 report them. */
export function isBusy(error: unknown): boolean {
  const e = error as { errcode?: unknown; code?: unknown; message?: unknown };
  if (typeof e?.errcode === 'number') return (e.errcode & 0xff) === 5 || (e.errcode & 0xff) === 6;
  if (typeof e?.code === 'string' && /^SQLITE_(BUSY|LOCKED)/.test(e.code)) return true;
  return /database (table )?is locked/i.test(String(e?.message ?? ''));
}

export function storageError(error: unknown): unknown {
  if (error instanceof CrawlEngineError) return error;
  return new CrawlEngineError('storage_error', `[crawl-engine] [sqlite] ${(error as Error)?.message ?? String(error)}`, { cause: error });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Statements cached per SQL text, and transactions. A transaction runs synchronously from BEGIN to
 * COMMIT (never across an await), so in one process operations cannot interleave; another
 * process's lock is waited for a few ms inside SQLite (busy_timeout), then asynchronously.
 */
export class Connection {
  private readonly statements = new Map<string, SqliteStatement>();

  constructor(
    readonly db: SqliteDatabase,
    private readonly busyTimeoutMs: number,
  ) {}

  private statement(sql: string): SqliteStatement {
    let found = this.statements.get(sql);
    if (found === undefined) {
      found = this.db.prepare(sql);
      this.statements.set(sql, found);
    }
    return found;
  }

  run(sql: string, ...params: SqlValue[]): void {
    this.statement(sql).run(...params);
  }

  get<T>(sql: string, ...params: SqlValue[]): T | undefined {
    return (this.statement(sql).get(...params) ?? undefined) as T | undefined;
  }

  all<T>(sql: string, ...params: SqlValue[]): T[] {
    return this.statement(sql).all(...params) as T[];
  }

  /** Runs `body` in `BEGIN IMMEDIATE` (writes) or `BEGIN` (a consistent read), again after a rollback while the file is locked. */
  transaction<T>(kind: 'write' | 'read', body: () => T): Promise<T> {
    return this.retrying(() => this.once(kind, body));
  }

  /** Runs `body`, again while another connection holds the lock, until busyTimeoutMs has passed. */
  async retrying<T>(body: () => T): Promise<T> {
    const deadline = Date.now() + this.busyTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return body();
      } catch (error) {
        if (!isBusy(error)) throw storageError(error);
        if (Date.now() >= deadline) {
          throw new CrawlEngineError('storage_error', `[crawl-engine] [sqlite] the database stayed locked by another connection for ${this.busyTimeoutMs} ms`, {
            cause: error,
          });
        }
      }
      await sleep(Math.min(50, 2 ** attempt) + Math.random() * 5);
    }
  }

  private once<T>(kind: 'write' | 'read', body: () => T): T {
    this.db.exec(kind === 'write' ? 'BEGIN IMMEDIATE' : 'BEGIN');
    try {
      const out = body();
      this.db.exec('COMMIT');
      return out;
    } catch (error) {
      try {
        this.db.exec('ROLLBACK');
      } catch {
        // No transaction left to roll back (SQLite rolled it back itself).
      }
      throw error;
    }
  }
}
