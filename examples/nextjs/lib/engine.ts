import pg from 'pg';
import { createCrawlEngine, type CrawlEngine, type CrawlStorage } from 'crawl-engine';
import { memoryStorage } from 'crawl-engine/adapters/memory';
import { postgresStorage } from 'crawl-engine/adapters/postgres';

// One engine per server process. With DATABASE_URL (Neon, or any Postgres) jobs live in the
// database, so every invocation sees them: run `npx crawl-engine migrate --storage $DATABASE_URL`
// once per deploy. Without it, memory storage keeps jobs in this process only (fine for
// `next start` on one machine, not for serverless).
const globalForEngine = globalThis as { crawlEngine?: CrawlEngine };

function storage(): CrawlStorage {
  if (!process.env.DATABASE_URL) return memoryStorage();
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 5 });
  pool.on('error', (error) => console.warn('postgres:', error.message));
  return postgresStorage({ client: pool });
}

export const engine: CrawlEngine =
  globalForEngine.crawlEngine ??
  (globalForEngine.crawlEngine = createCrawlEngine({
    storage: storage(),
    // Crawling your own machine needs this; keep it off in production.
    fetch: { allowPrivateNetwork: process.env.ALLOW_PRIVATE_NETWORK === '1' },
  }));
