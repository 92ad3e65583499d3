import Redis from 'ioredis';
import { afterAll, describe, expect, test } from 'vitest';
import { kvStorage } from '../adapters/kv/index.js';
import { startSite } from '../bench/site.mjs';
import { createCrawlEngine } from '../src/core/engine.js';
import { allResults } from './helpers/engine.js';
import { startWorker } from './helpers/workers.js';
import { fourProcessesWithRobots } from './helpers/max-pages-processes.js';

const REDIS_URL = process.env.REDIS_URL || null;

// Real processes sharing the real Redis (ioredis-mock lives inside one process).
(REDIS_URL ? describe : describe.skip)('KV with several processes (real Redis)', () => {
  const redis = REDIS_URL ? new Redis(REDIS_URL) : null;
  const prefixes: string[] = [];
  const fresh = () => {
    const prefix = `tp${process.pid}_${prefixes.length}:`;
    prefixes.push(prefix);
    return prefix;
  };
  afterAll(async () => {
    for (const prefix of prefixes) {
      const keys = await redis!.keys(`${prefix}*`);
      if (keys.length > 0) await redis!.del(...keys);
    }
    redis?.disconnect();
  });

  test('four processes on one job of a 2,000-page site with maxPages 1500 fetch exactly 1,500 URLs, none twice, and complete once', async () => {
    const site = await startSite({ pages: 2000, fanout: 4, latencyMs: 2 });
    const prefix = fresh();
    const storage = kvStorage({ client: redis as never, prefix });
    const engine = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
    const job = await engine.jobs.create({ url: site.url, maxPages: 1500, maxDepth: 100, perHostConcurrency: 32 });
    const workers = Array.from({ length: 4 }, () => startWorker(REDIS_URL!, prefix, job.id, 60_000));
    const summaries = await Promise.all(workers.map((w) => w.done));
    await site.close();
    const pages = site.requests.filter((p) => p !== '/robots.txt');
    expect(pages).toHaveLength(1500);
    expect(new Set(pages).size).toBe(1500);
    expect((await engine.jobs.get(job.id))?.status).toBe('completed');
    const results = await allResults(engine, job.id);
    expect(results).toHaveLength(1500);
    expect(new Set(results.map((r) => r.url)).size).toBe(1500);
    const events = await storage.readEvents(job.id, null, 100_000);
    expect(events.filter((e) => e.type === 'job:completed')).toHaveLength(1);
    expect(summaries.every((s) => (s.succeeded ?? 0) > 0)).toBe(true);
  }, 120_000);

  test('four processes on one job whose pages also link robots.txt-disallowed URLs (on the same origin, and on another whose rules they learn only after admitting its URLs) with maxPages 1500 fetch exactly 1,500 pages, none twice, and never a disallowed one', async () => {
    const prefix = fresh();
    await fourProcessesWithRobots('kv', kvStorage({ client: redis as never, prefix }), REDIS_URL!, prefix);
  }, 120_000);

  test('a processor killed with SIGKILL mid-run loses nothing: after its leases expire another finishes, nothing doubled', async () => {
    const site = await startSite({ pages: 600, fanout: 4, latencyMs: 10 });
    const prefix = fresh();
    const engine = createCrawlEngine({ storage: kvStorage({ client: redis as never, prefix }), fetch: { allowPrivateNetwork: true } });
    const job = await engine.jobs.create({ url: site.url, maxPages: 400, maxDepth: 100, perHostConcurrency: 8 });
    const doomed = startWorker(REDIS_URL!, prefix, job.id, 1500);
    const until = Date.now() + 30_000;
    while (doomed.progress() < 60 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    doomed.child.kill('SIGKILL');
    await doomed.done;
    expect((await engine.jobs.get(job.id))?.status).toBe('running');
    await startWorker(REDIS_URL!, prefix, job.id, 1500).done;
    await site.close();
    expect((await engine.jobs.get(job.id))?.status).toBe('completed');
    const results = await allResults(engine, job.id);
    expect(results).toHaveLength(400);
    expect(new Set(results.map((r) => r.url)).size).toBe(400);
    const hits = [...site.hits.entries()].filter(([p]) => p !== '/robots.txt');
    expect(hits).toHaveLength(400);
    expect(hits.every(([, n]) => n <= 2)).toBe(true);
    expect(hits.filter(([, n]) => n > 1).length).toBeLessThanOrEqual(8);
  }, 120_000);

  test('pub/sub: a subscriber wakes within milliseconds of an event stored by another connection, and its extra connection closes when the subscription ends', async () => {
    const prefix = fresh();
    const name = `crawl-push-${process.pid}`;
    const reader = new Redis(REDIS_URL!, { connectionName: name });
    const storage = kvStorage({ client: reader, prefix });
    const follower = createCrawlEngine({ storage });
    const other = createCrawlEngine({ storage: kvStorage({ client: redis!, prefix }) });
    const connections = async () =>
      String(await redis!.client('LIST'))
        .split('\n')
        .filter((line) => line.includes(`name=${name} `)).length;
    const job = await other.jobs.create({ url: 'https://example.com/' });
    const seen: Array<[string, number]> = [];
    const following = (async () => {
      for await (const event of follower.progress.subscribe(job.id, { pollMs: 60_000 })) seen.push([event.type, Date.now()]);
    })();
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100)); // SUBSCRIBE is sent next to the first read
    expect(await connections()).toBe(2);
    const cancelledAt = Date.now();
    await other.jobs.cancel(job.id);
    await following;
    expect(seen.map(([type]) => type)).toEqual(['job:created', 'job:cancelled']);
    expect(seen[1]![1] - cancelledAt).toBeLessThan(500);
    await new Promise((r) => setTimeout(r, 100));
    expect(await connections()).toBe(1);
    reader.disconnect();
  });
});
