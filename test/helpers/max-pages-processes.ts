/**
 * The four-process maxPages check of test/processes.test.ts, for every shared backend: four worker
 * processes on one job whose pages also link robots.txt-disallowed URLs (on the same origin, and
 * on another whose rules they learn only after admitting its URLs), with maxPages 1500. Exactly
 * 1,500 pages are fetched, none without a counted attempt, never a disallowed one, and no run ends
 * on a storage error.
 */
import { expect } from 'vitest';
import { createCrawlEngine } from '../../src/core/engine.js';
import type { CrawlStorage } from '../../src/core/storage.js';
import { allResults } from './engine.js';
import { startRobotsSite } from './robots-site.js';
import { startWorker } from './workers.js';

export async function fourProcessesWithRobots(label: string, storage: CrawlStorage, storageUrl: string, namespace: string): Promise<void> {
  const robotsSite = await startRobotsSite({ pages: 2000, fanout: 4, otherFrom: 100, otherRobotsDelayMs: 250 });
  const engine = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
  const job = await engine.jobs.create({ url: robotsSite.url, maxPages: 1500, maxDepth: 100, perHostConcurrency: 32 });
  const workers = Array.from({ length: 4 }, () => startWorker(storageUrl, namespace, job.id, 60_000, 10_000));
  const summaries = await Promise.all(workers.map((w) => w.done));
  await robotsSite.close();
  const pages = robotsSite.site.requests.filter((p) => p !== '/robots.txt');
  expect(pages.filter((p) => p.startsWith('/private'))).toEqual([]);
  expect(robotsSite.other.requests.every((p) => p === '/robots.txt')).toBe(true);
  expect(new Set(pages).size).toBe(1500);
  const done = await engine.jobs.get(job.id);
  expect(done?.status).toBe('completed');
  const results = await allResults(engine, job.id);
  const fetched = results.filter((r) => r.error?.code !== 'robots');
  const skipped = results.filter((r) => r.error?.code === 'robots');
  // A page is requested again only when an attempt failed (a request timed out on a busy
  // machine) and was retried: its one result then counts every attempt. No result is doubled.
  const attemptsOf = new Map(results.map((r) => [new URL(r.url).pathname, r.attempts]));
  const unexplained = [...robotsSite.hits.entries()].filter(([p, n]) => p !== '/robots.txt' && n > (attemptsOf.get(p) ?? 0)).map(([p]) => p);
  expect(unexplained, 'pages requested more often than their results count attempts').toEqual([]);
  // No run ended on a storage error (a deadlock between complete() and putRobots() once did).
  expect(summaries.map((summary) => summary.errors)).toEqual([0, 0, 0, 0]);
  expect(fetched).toHaveLength(1500);
  expect(fetched.every((r) => r.ok)).toBe(true);
  expect(new Set(results.map((r) => r.url)).size).toBe(results.length);
  expect(skipped.every((r) => new URL(r.url).pathname.startsWith('/private/') || r.url.startsWith(robotsSite.other.origin))).toBe(true);
  // Both kinds were met: links known to be disallowed, and URLs refunded after admission.
  expect(skipped.some((r) => r.attempts === 0)).toBe(true);
  expect(skipped.some((r) => r.attempts > 0)).toBe(true);
  expect(done?.counts).toEqual({ discovered: results.length, queued: 0, inProgress: 0, succeeded: 1500, failed: 0, skipped: skipped.length });
  const events = await storage.readEvents(job.id, null, 100_000);
  expect(events.filter((e) => e.type === 'job:completed')).toHaveLength(1);
  expect(events.map((e) => Number(e.id))).toEqual(events.map((_, i) => i + 1));
  expect(summaries.every((s) => (s.succeeded ?? 0) > 0)).toBe(true);
  const found = skipped.filter((r) => r.attempts === 0).length;
  console.log(
    `maxPages 1500 with disallowed links (${label}): ${fetched.length} fetched, ${found} skipped when found, ${skipped.length - found} after admission (refunded); max attempts ${Math.max(...results.map((r) => r.attempts))}`,
  );
}
