import { Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';
import { kvStorage } from '../../adapters/kv/index.js';
import { memoryStorage } from '../../adapters/memory/index.js';
import { postgresStorage } from '../../adapters/postgres/index.js';
import type { CrawlStorage } from '../../src/core/storage.js';
import { DATABASE_URL, freshSchema, pglite, realPool } from './postgres.js';

const REDIS_URL = process.env.REDIS_URL || null;
let counter = 0;
const prefix = () => `t${process.pid}_${Date.now().toString(36)}_${counter++}:`;

let redis: Redis | null = null;
const realRedis = () => (redis ??= new Redis(REDIS_URL!, { maxRetriesPerRequest: 2 }));

/**
 * One storage factory per adapter: memory, Postgres (the real server when DATABASE_URL is set,
 * else PGlite) and KV (the real Redis when REDIS_URL is set, else ioredis-mock).
 */
export const everyStorage: Array<[string, () => Promise<CrawlStorage>]> = [
  ['memory', async () => memoryStorage()],
  [
    DATABASE_URL ? 'postgres (real server)' : 'postgres (PGlite)',
    async () => {
      const storage = postgresStorage({ client: (DATABASE_URL ? realPool() : pglite()) as never, schema: freshSchema() });
      await storage.migrate();
      return storage;
    },
  ],
  [
    REDIS_URL ? 'kv (real Redis)' : 'kv (ioredis-mock)',
    async () => kvStorage({ client: (REDIS_URL ? realRedis() : new RedisMock()) as never, prefix: prefix() }),
  ],
];

/** Deletes the keys the KV factories wrote to the real Redis and closes its connection. */
export async function closeRedis(): Promise<void> {
  if (redis === null) return;
  const keys = await redis.keys(`t${process.pid}_*`);
  for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  redis.disconnect();
  redis = null;
}
