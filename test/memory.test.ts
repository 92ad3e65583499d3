import { describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { CrawlEngineError } from '../src/core/errors.js';
import type { CrawlStorage } from '../src/core/storage.js';
import { jobRecord, runStorageConformance } from '../src/testing/index.js';

runStorageConformance({
  name: 'memory',
  storage: () => memoryStorage({ maxEventsPerJob: 20 }),
  test,
  describe,
  eventLimit: 20,
});

runStorageConformance({ name: 'memory with default limits', storage: () => memoryStorage(), test, describe });

describe('memoryStorage()', () => {
  test('rejects a bad maxEventsPerJob with the field name', () => {
    const attempt = () => memoryStorage({ maxEventsPerJob: 0 });
    expect(attempt).toThrow(CrawlEngineError);
    expect(attempt).toThrow(/maxEventsPerJob: expected an integer >= 1/);
  });

  test('says who it is', () => {
    const storage = memoryStorage();
    expect(storage.name).toBe('memory');
    expect(storage.capabilities).toEqual({ push: true, shared: false });
    expect(typeof storage.deleteJob).toBe('function');
    expect(typeof storage.deleteFinishedJobs).toBe('function');
  });

  test('rejects a bad maxFinishedJobs with the field name', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => memoryStorage({ maxFinishedJobs: bad })).toThrow(/maxFinishedJobs: expected an integer >= 1 or Infinity/);
    }
    expect(() => memoryStorage({ maxFinishedJobs: Number.POSITIVE_INFINITY })).not.toThrow();
  });

  describe('maxFinishedJobs', () => {
    const T = Date.UTC(2030, 0, 1);
    async function create(storage: CrawlStorage) {
      const job = jobRecord({ createdAt: new Date(T).toISOString() });
      await storage.createJob(job, { url: job.url, key: job.url, depth: 0, host: 'example.test' });
      return job.id;
    }
    async function finish(storage: CrawlStorage, id: string, at: number) {
      const [lease] = (await storage.claim({ limit: 1, leaseMs: 1000, now: at, jobId: id })).leases;
      const page = { url: lease!.url, finalUrl: lease!.url, depth: 0, status: 200, ok: true, contentType: 'text/html', title: null, description: null };
      const rest = { canonical: null, links: 0, wordCount: 0, error: null, attempts: 1, durationMs: 1, fetchedAt: new Date(at).toISOString(), data: null };
      expect((await storage.complete(lease!, { result: { ...page, ...rest }, links: [], now: at })).ok).toBe(true);
    }

    test('keeps the newest finished jobs: the one that finished longest ago goes, with its results and events', async () => {
      const storage = memoryStorage({ maxFinishedJobs: 2 });
      const [a, b, c, running, queued] = [await create(storage), await create(storage), await create(storage), await create(storage), await create(storage)];
      await storage.claim({ limit: 1, leaseMs: 1000, now: T, jobId: running });
      await finish(storage, b, T + 1);
      await storage.cancelJob(a, T + 2);
      expect((await storage.getJob(b))?.status).toBe('completed');
      await finish(storage, c, T + 3);
      // b finished first, so b goes (not a, which was created first).
      expect(await storage.getJob(b)).toBeNull();
      expect(await storage.listResults(b, { limit: 10 })).toEqual({ items: [], nextCursor: null });
      expect(await storage.readEvents(b, null, 10)).toEqual([]);
      expect((await storage.getJob(a))?.status).toBe('cancelled');
      expect((await storage.listResults(c, { limit: 10 })).items).toHaveLength(1);
      // Active jobs are never counted nor evicted, however many finish.
      for (let i = 0; i < 5; i++) await finish(storage, await create(storage), T + 10 + i);
      expect(await storage.getJob(a)).toBeNull();
      expect(await storage.getJob(c)).toBeNull();
      expect((await storage.getJob(running))?.status).toBe('running');
      expect((await storage.getJob(queued))?.status).toBe('queued');
      const listed = await storage.listJobs({ limit: 100 });
      expect(listed.items.map((j) => j.status).sort()).toEqual(['completed', 'completed', 'queued', 'running']);
    });

    test('deleting an active job at the cap evicts no other job', async () => {
      const storage = memoryStorage({ maxFinishedJobs: 1 });
      const [done, running] = [await create(storage), await create(storage)];
      await finish(storage, done, T + 1);
      await storage.claim({ limit: 1, leaseMs: 1000, now: T + 2, jobId: running });
      expect((await storage.deleteJob!(running, T + 3)).deleted).toBe(true);
      expect((await storage.getJob(done))?.status).toBe('completed');
      expect((await storage.listResults(done, { limit: 10 })).items).toHaveLength(1);
      // A robots.txt fetched for the deleted job lands on nothing, without an error.
      await storage.putRobots(running, {
        origin: 'http://example.test',
        status: 'unavailable',
        rules: [],
        crawlDelayMs: null,
        httpStatus: 404,
        fetchedAt: new Date(T).toISOString(),
        expiresAt: T + 1000,
      });
      expect(await storage.getRobots(running, 'http://example.test')).toBeNull();
    });

    test('defaults to 1000', async () => {
      const storage = memoryStorage();
      const ids: string[] = [];
      for (let i = 0; i < 1001; i++) {
        const id = await create(storage);
        await storage.cancelJob(id, T + i);
        ids.push(id);
      }
      expect(await storage.getJob(ids[0]!)).toBeNull();
      expect((await storage.getJob(ids[1]!))?.status).toBe('cancelled');
      expect((await storage.listJobs({ limit: 100, status: 'cancelled' })).items[0]?.id).toBe(ids[1000]);
    });
  });
});
