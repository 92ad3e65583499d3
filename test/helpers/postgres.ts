import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { postgresStorage, type PostgresStorage, type PostgresStorageOptions } from '../../adapters/postgres/index.js';

export const DATABASE_URL = process.env.DATABASE_URL || null;

/** A fresh schema name, so tests sharing one database never see each other's jobs. */
export const freshSchema = () => `t_${randomBytes(6).toString('hex')}`;

let lite: PGlite | null = null;
/** One embedded Postgres per test file (a schema per test keeps tests apart). */
export function pglite(): PGlite {
  lite ??= new PGlite();
  return lite;
}

let pool: pg.Pool | null = null;
export function realPool(): pg.Pool {
  pool ??= new pg.Pool({ connectionString: DATABASE_URL!, max: 8 });
  return pool;
}

export async function migratedStorage(client: PostgresStorageOptions['client'], extra: Partial<PostgresStorageOptions> = {}): Promise<PostgresStorage> {
  const storage = postgresStorage({ client, schema: freshSchema(), ...extra });
  await storage.migrate();
  return storage;
}

export async function dropSchema(client: { query(text: string): Promise<unknown> }, schema: string): Promise<void> {
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

export async function closeAll(): Promise<void> {
  await pool?.end();
  pool = null;
  await lite?.close();
  lite = null;
}
