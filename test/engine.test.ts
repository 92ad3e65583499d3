import { sweepEach } from '../src/storage/index.js';
import { afterEach, describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { pagesWithin, startSite, type Site } from './fixtures/site.mjs';
import { createCrawlEngine } from '../src/core/engine.js';
import { CrawlEngineError } from '../src/core/errors.js';
import type { ProgressEvent } from '../src/core/types.js';
import { allResults, testEngine } from './helpers/engine.js';

let site: Site | null = null;
/** Page requests the site saw, robots.txt aside. */
const pages = (s: Site) => s.requests.filter((p) => p !== '/robots.txt');
afterEach(async () => {
  await site?.close();
  site = null;
});

describe('engine.crawl()', () => {
  test('with maxDepth 3 it fetches exactly the pages within three hops, each once, and none outside scope', async () => {
    site = await startSite({ pages: 2000, fanout: 6 });
    const engine = testEngine();
    const events: ProgressEvent[] = [];
    const job = await engine.crawl({ url: site.url, maxDepth: 3, maxPages: 10_000 }, { onEvent: (e) => events.push(e) });
    await engine.close();

    const expected = pagesWithin(3, site.opts);
    const expectedPaths = [...expected.keys()].map((i) => (i === 0 ? '/' : `/p/${i}`)).sort();
    expect(expected.size).toBeGreaterThan(100);
    expect(pages(site).sort()).toEqual(expectedPaths);
    expect([...site.hits.values()].every((n) => n === 1)).toBe(true);
    expect(site.hits.get('/robots.txt')).toBe(1);

    expect(job.status).toBe('completed');
    const results = await allResults(engine, job.id);
    expect(results).toHaveLength(expected.size);
    expect(new Set(results.map((r) => r.url)).size).toBe(results.length);
    for (const r of results) {
      const i = r.url === site.url ? 0 : Number(r.url.split('/p/')[1]);
      expect(r.depth, r.url).toBe(expected.get(i));
      expect(r).toMatchObject({ ok: true, status: 200, title: `Page ${i}`, error: null, attempts: 1 });
      expect(r.wordCount).toBeGreaterThan(300);
    }
    expect(job.counts).toEqual({ discovered: results.length, queued: 0, inProgress: 0, succeeded: results.length, failed: 0, skipped: 0 });

    const ids = events.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    expect(events[0]!.type).toBe('job:created');
    expect(events.at(-1)!.type).toBe('job:completed');
    expect(events.filter((e) => e.type === 'page:done')).toHaveLength(results.length);
    const durable = await engine.storage.readEvents(job.id, null, 100_000);
    expect(durable.map((e) => e.id)).toEqual(events.map((e) => e.id));
  });

  test('maxPages caps the URLs fetched, with 20 fetches in flight', async () => {
    site = await startSite({ pages: 1000, fanout: 10 });
    const engine = testEngine();
    const job = await engine.crawl({ url: site.url, maxDepth: 10, maxPages: 137 });
    await engine.close();
    expect(job.status).toBe('completed');
    expect(pages(site)).toHaveLength(137);
    expect(new Set(pages(site)).size).toBe(137);
    expect(job.counts.discovered).toBe(137);
    expect(await allResults(engine, job.id)).toHaveLength(137);
  });

  test('maxDepth 0 fetches the start URL alone', async () => {
    site = await startSite({ pages: 50 });
    const engine = testEngine();
    const job = await engine.crawl({ url: site.url, maxDepth: 0 });
    expect(site.requests).toEqual(['/robots.txt', '/']);
    expect(job.counts).toMatchObject({ discovered: 1, succeeded: 1 });
    await engine.close();
  });

  test('a start URL that fails makes the job failed with its error', async () => {
    site = await startSite({ pages: 5 });
    const engine = testEngine();
    const job = await engine.crawl({ url: `${site.origin}/missing` });
    expect(job.status).toBe('failed');
    expect(job.error).toEqual({ code: 'http_error', message: 'HTTP 404' });
    await engine.close();
  });

  test('the extract option stores per-page data, and a throwing extract fails the page', async () => {
    site = await startSite({ pages: 20, fanout: 3 });
    const engine = testEngine({
      extract: ({ $, url, job }) => {
        if (url.endsWith('/p/2')) throw new Error('boom');
        return { h1: $('h1').text(), jobUrl: job.url };
      },
    });
    const job = await engine.crawl({ url: site.url, maxDepth: 1 });
    const results = await allResults(engine, job.id);
    expect(results.find((r) => r.url === site!.url)?.data).toEqual({ h1: 'Page 0', jobUrl: site.url });
    expect(results.find((r) => r.url.endsWith('/p/2'))?.error).toEqual({ code: 'extract_error', message: 'extract() threw: boom' });
    await engine.close();
  });
});

describe('CrawlEngineError', () => {
  test('instanceof: any copy of the class matches its errors, subclasses match only their own, lookalikes never', () => {
    class Narrower extends CrawlEngineError {}
    const base = new CrawlEngineError('conflict', 'x');
    expect(base).toBeInstanceOf(CrawlEngineError);
    expect(new Narrower('conflict', 'y')).toBeInstanceOf(CrawlEngineError);
    expect(new Narrower('conflict', 'y')).toBeInstanceOf(Narrower);
    expect(base instanceof Narrower).toBe(false);
    expect(Object.assign(new Error('x'), { code: 'conflict', name: 'CrawlEngineError' }) instanceof CrawlEngineError).toBe(false);
    expect(JSON.parse(JSON.stringify(base)) instanceof CrawlEngineError).toBe(false);
    expect(new Error('x')).not.toBeInstanceOf(CrawlEngineError);
    expect((null as unknown) instanceof CrawlEngineError).toBe(false);
  });
});

describe('engine.jobs', () => {
  const engine = createCrawlEngine({ storage: memoryStorage() });

  test('create() validates input and names every bad field', async () => {
    const error = await engine.jobs.create({ url: 'ftp://x', maxPages: 0, scope: 'planet', extra: 1 } as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrawlEngineError);
    expect(error).toMatchObject({ code: 'invalid_input', name: 'CrawlEngineError' });
    const paths = (error as CrawlEngineError).errors!.map((e) => e.path).sort();
    expect(paths).toEqual(['(root)', 'maxPages', 'scope', 'url']);
    expect((error as Error).message).toMatch(/^\[crawl-engine\] invalid job input: .*url: expected an absolute http\(s\) URL/);
    expect((await engine.jobs.list()).items).toHaveLength(0);
  });

  test('create() takes an integer priority from -1000 to 1000 and stores it with the job', async () => {
    for (const priority of [1.5, 1001, -1001, '1', null]) {
      const error = await engine.jobs.create({ url: 'https://example.com/', priority } as never).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'invalid_input', errors: [{ path: 'priority' }] });
    }
    const job = await engine.jobs.create({ url: 'https://example.com/', priority: -7 });
    expect(job.options.priority).toBe(-7);
    expect((await engine.jobs.get(job.id))?.options.priority).toBe(-7);
  });

  test('create() applies the documented defaults and normalises the URL', async () => {
    const job = await engine.jobs.create({ url: 'HTTP://Example.COM:80/a#x', metadata: { team: 'seo' } });
    expect(job).toMatchObject({
      status: 'queued',
      url: 'http://example.com/a',
      options: {
        maxPages: 50,
        maxDepth: 2,
        scope: 'same-hostname',
        include: [],
        exclude: [],
        respectRobots: true,
        maxRetries: 2,
        perHostConcurrency: 2,
        perHostDelayMs: 0,
        priority: 0,
        formats: ['metadata'],
        onlyMainContent: true,
        sitemap: 'skip',
      },
      counts: { discovered: 1, queued: 1, inProgress: 0, succeeded: 0, failed: 0, skipped: 0 },
      startedAt: null,
      finishedAt: null,
      error: null,
      metadata: { team: 'seo' },
    });
    expect(job.id).toMatch(/^job_[A-Za-z0-9_-]+$/);
    expect(await engine.jobs.get(job.id)).toEqual(job);
  });

  test('get() returns null and cancel()/results() throw not_found for unknown or malformed ids', async () => {
    expect(await engine.jobs.get('job_nope')).toBeNull();
    expect(await engine.jobs.get('../../etc/passwd')).toBeNull();
    await expect(engine.jobs.cancel('job_nope')).rejects.toMatchObject({ code: 'not_found' });
    await expect(engine.jobs.results('job_nope')).rejects.toMatchObject({ code: 'not_found' });
  });

  test('cancel() is idempotent and emits job:cancelled once', async () => {
    const seen: string[] = [];
    engine.events.on('job:cancelled', (e) => seen.push(e.jobId));
    const job = await engine.jobs.create({ url: 'https://example.com/' });
    expect((await engine.jobs.cancel(job.id)).status).toBe('cancelled');
    expect((await engine.jobs.cancel(job.id)).status).toBe('cancelled');
    expect(seen).toEqual([job.id]);
    const report = await engine.processor.run({ jobId: job.id, budgetMs: 1000 });
    expect(report.claimed).toBe(0);
  });

  test('list() pages newest first, filters by status and rejects a bad cursor or limit', async () => {
    const local = createCrawlEngine({ storage: memoryStorage() });
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await local.jobs.create({ url: `https://example.com/${i}` }));
    await local.jobs.cancel(made[2]!.id);
    const first = await local.jobs.list({ limit: 3 });
    expect(first.items.map((j) => j.id)).toEqual([made[4]!.id, made[3]!.id, made[2]!.id]);
    const second = await local.jobs.list({ limit: 3, cursor: first.nextCursor });
    expect(second.items.map((j) => j.id)).toEqual([made[1]!.id, made[0]!.id]);
    expect(second.nextCursor).toBeNull();
    expect((await local.jobs.list({ status: 'cancelled' })).items.map((j) => j.id)).toEqual([made[2]!.id]);
    await expect(local.jobs.list({ cursor: 'garbage' })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(local.jobs.list({ limit: 1000 })).rejects.toThrow(/limit/);
  });
});

describe('engine.jobs.delete()', () => {
  test('validates the id, naming the field; an unknown job gives false', async () => {
    const engine = createCrawlEngine({ storage: memoryStorage() });
    for (const bad of ['../x', '', 'a'.repeat(65), 42, null]) {
      const error = await engine.jobs.delete(bad as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CrawlEngineError);
      expect(error).toMatchObject({ code: 'invalid_input', errors: [{ path: 'id' }] });
      expect((error as Error).message).toMatch(/invalid delete\(\) arguments: id: expected a job id/);
    }
    expect(await engine.jobs.delete('job_nope')).toBe(false);
  });

  test('deletes a running job: job:cancelled is emitted, a progress subscriber ends, and nothing of the job is left', async () => {
    const engine = createCrawlEngine({ storage: memoryStorage() });
    const keep = await engine.jobs.create({ url: 'https://example.com/keep' });
    const job = await engine.jobs.create({ url: 'https://example.com/' });
    await engine.storage.claim({ limit: 1, leaseMs: 60_000, now: Date.now(), jobId: job.id });
    expect((await engine.jobs.get(job.id))?.status).toBe('running');
    const emitted: string[] = [];
    engine.events.on('*', (type, e) => emitted.push(`${type} ${e.jobId === job.id ? 'job' : 'other'}`));
    const seen: string[] = [];
    const following = (async () => {
      for await (const event of engine.progress.subscribe(job.id, { pollMs: 60_000 })) seen.push(event.type);
    })();
    while (seen.length < 2) await new Promise((r) => setTimeout(r, 5));
    expect(await engine.jobs.delete(job.id)).toBe(true);
    expect(emitted).toEqual(['job:cancelled job']);
    // pollMs is a minute: the subscriber ends because the delete woke it and the job is gone.
    await following;
    expect(seen).toEqual(['job:created', 'job:started']);
    expect(await engine.jobs.get(job.id)).toBeNull();
    await expect(engine.jobs.results(job.id)).rejects.toMatchObject({ code: 'not_found' });
    expect((await engine.jobs.list()).items.map((j) => j.id)).toEqual([keep.id]);
    expect(await engine.jobs.delete(job.id)).toBe(false);
  });

  test('a storage without deleteJob() gives unsupported', async () => {
    const { deleteJob: _, ...storage } = memoryStorage();
    const engine = createCrawlEngine({ storage });
    await expect(engine.jobs.delete('job_x')).rejects.toMatchObject({ code: 'unsupported', message: /cannot delete jobs: it has no deleteJob\(\)/ });
  });
});

describe('retention', () => {
  /** A memory storage holding finished jobs that finished `agesMs` ago, and a running job (its one URL leased). */
  async function aged(agesMs: number[]) {
    const storage = memoryStorage();
    const engine = createCrawlEngine({ storage });
    const finished: string[] = [];
    for (const age of agesMs) {
      const job = await engine.jobs.create({ url: 'https://example.com/' });
      await storage.cancelJob(job.id, Date.now() - age);
      finished.push(job.id);
    }
    const running = await engine.jobs.create({ url: 'https://example.com/' });
    await storage.claim({ limit: 1, leaseMs: 600_000, now: Date.now(), jobId: running.id });
    return { storage, finished, running: running.id };
  }

  test('the processor deletes finished jobs past the age, a bounded batch per sweep, never an active one', async () => {
    const { storage, finished, running } = await aged([90_000, 80_000, 70_000, 1000]);
    const engine = createCrawlEngine({ storage, retention: { finishedJobsMaxAgeMs: 60_000, batchSize: 2, intervalMs: 0 } });
    const first = await engine.processor.run({ budgetMs: 50 });
    expect(first.retention).toEqual({ deleted: 2 });
    expect(first.errors).toEqual([]);
    expect(await engine.jobs.get(finished[0]!)).toBeNull();
    expect(await engine.jobs.get(finished[1]!)).toBeNull();
    expect((await engine.processor.run({ budgetMs: 50 })).retention).toEqual({ deleted: 1 });
    expect((await engine.processor.run({ budgetMs: 50 })).retention).toEqual({ deleted: 0 });
    expect((await engine.jobs.get(finished[3]!))?.status).toBe('cancelled');
    expect((await engine.jobs.get(running))?.status).toBe('running');
  });

  test('sweeps at most every intervalMs; without the option nothing is deleted', async () => {
    const { storage, finished } = await aged([90_000, 80_000]);
    const keeping = createCrawlEngine({ storage });
    expect((await keeping.processor.run({ budgetMs: 50 })).retention).toBeUndefined();
    const engine = createCrawlEngine({ storage, retention: { finishedJobsMaxAgeMs: 60_000, batchSize: 1 } });
    expect((await engine.processor.run({ budgetMs: 50 })).retention).toEqual({ deleted: 1 });
    expect((await engine.processor.run({ budgetMs: 50 })).retention).toBeUndefined();
    expect((await engine.jobs.get(finished[1]!))?.status).toBe('cancelled');
  });

  test('a failing sweep never fails the run: its error is reported apart, and the next sweep tries again', async () => {
    const { storage } = await aged([90_000]);
    let calls = 0;
    const failing = {
      ...storage,
      deleteFinishedJobs: async () => {
        calls++;
        throw new Error('boom');
      },
    };
    const engine = createCrawlEngine({ storage: failing, retention: { finishedJobsMaxAgeMs: 60_000, intervalMs: 0 } });
    const report = await engine.processor.run({ budgetMs: 50 });
    expect(report.errors).toEqual([]);
    expect(report.retention).toEqual({ deleted: 0, error: 'deleteFinishedJobs: boom' });
    await engine.processor.run({ budgetMs: 50 });
    expect(calls).toBe(2);
  });

  test('bad retention options, or a storage that cannot sweep, are refused naming the field', () => {
    expect(() => createCrawlEngine({ storage: memoryStorage(), retention: { finishedJobsMaxAgeMs: 10 } })).toThrow(/retention\.finishedJobsMaxAgeMs/);
    expect(() => createCrawlEngine({ storage: memoryStorage(), retention: { finishedJobsMaxAgeMs: 60_000, batchSize: 0 } })).toThrow(/retention\.batchSize/);
    expect(() => createCrawlEngine({ storage: memoryStorage(), retention: {} as never })).toThrow(/retention\.finishedJobsMaxAgeMs/);
    const { deleteFinishedJobs: _, ...storage } = memoryStorage();
    expect(() => createCrawlEngine({ storage, retention: { finishedJobsMaxAgeMs: 60_000 } })).toThrow(
      /retention: expected a storage with deleteFinishedJobs\(\)/,
    );
  });
});

describe('createCrawlEngine() options', () => {
  test('bad options throw invalid_options naming the field', () => {
    expect(() => createCrawlEngine({ storage: {} as never })).toThrow(/storage: expected a CrawlStorage/);
    expect(() => createCrawlEngine({ storage: memoryStorage(), fetch: { timeoutMs: -1 } })).toThrow(/fetch\.timeoutMs/);
    expect(() => createCrawlEngine({ storage: memoryStorage(), leaseMs: 1000 })).toThrow(/leaseMs: expected at least fetch\.timeoutMs/);
    expect(() => createCrawlEngine({ storage: memoryStorage(), fetch: { typo: 1 } as never })).toThrow(/fetch/);
    expect(() => createCrawlEngine({ storage: memoryStorage(), maxActiveJobs: 0 })).toThrow(/maxActiveJobs/);
    expect(() => createCrawlEngine({ storage: memoryStorage(), maxActiveJobs: 2.5 })).toThrow(/maxActiveJobs/);
  });
});

describe('sweepEach (the loop of adapters that delete finished jobs one at a time)', () => {
  test('stops between jobs past the deadline, after at least one, and skips a job whose removal fails', async () => {
    const removed: string[] = [];
    const remove = async (id: string) => {
      if (id === 'bad') throw new Error('cannot');
      removed.push(id);
      return true;
    };
    expect(await sweepEach(['bad', 'a', 'b'], {}, remove)).toEqual({ deleted: 2 });
    expect(removed).toEqual(['a', 'b']);
    removed.length = 0;
    expect(await sweepEach(['a', 'b', 'c'], { deadline: Date.now() - 1 }, remove)).toEqual({ deleted: 1 });
    expect(removed).toEqual(['a']);
    await expect(sweepEach(['bad', 'bad'], {}, remove)).rejects.toThrow('cannot');
    expect(await sweepEach([], {}, remove)).toEqual({ deleted: 0 });
  });
});
