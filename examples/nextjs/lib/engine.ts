import { createCrawlEngine, type CrawlEngine } from 'crawl-engine';
import { memoryStorage } from 'crawl-engine/adapters/memory';

// One engine per server process. Memory storage keeps jobs in this process only; on Vercel, where
// every invocation may be a new process, use a shared storage (see README).
const globalForEngine = globalThis as { crawlEngine?: CrawlEngine };

export const engine: CrawlEngine =
  globalForEngine.crawlEngine ??
  (globalForEngine.crawlEngine = createCrawlEngine({
    storage: memoryStorage(),
    // Crawling your own machine needs this; keep it off in production.
    fetch: { allowPrivateNetwork: process.env.ALLOW_PRIVATE_NETWORK === '1' },
  }));
