import { memoryStorage } from '../../adapters/memory/index.js';
import { createCrawlEngine, type CrawlEngine, type CrawlEngineOptions } from '../../src/core/engine.js';
import type { CrawlStorage } from '../../src/core/storage.js';
import type { PageResult } from '../../src/core/types.js';

/** An engine for loopback test sites, with quick retries. */
export function testEngine(options: Partial<CrawlEngineOptions> = {}, storage: CrawlStorage = memoryStorage()): CrawlEngine {
  return createCrawlEngine({
    storage,
    ...options,
    fetch: { allowPrivateNetwork: true, timeoutMs: 2000, ...options.fetch },
    retry: { baseDelayMs: 20, maxDelayMs: 100, ...options.retry },
  });
}

export async function allResults(engine: CrawlEngine, jobId: string): Promise<PageResult[]> {
  const out: PageResult[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: PageResult[]; nextCursor: string | null } = await engine.jobs.results(jobId, { limit: 1000, cursor });
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return out;
}
