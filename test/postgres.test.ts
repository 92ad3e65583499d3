// Over 300 lines: the Postgres adapter's own tests (migrations, errors, group commit, plans) share its targets and helpers.
import { afterAll, describe, expect, test } from 'vitest';
import { postgresStorage } from '../adapters/postgres/index.js';
import { MIGRATIONS } from '../adapters/postgres/schema.js';
import { startSite } from './fixtures/site.mjs';
import { createCrawlEngine } from '../src/core/engine.js';
import type { CompleteItem, CompleteResult, CrawlStorage, FrontierLink, Lease } from '../src/core/storage.js';
import type { Job, PageResult, ProgressEvent } from '../src/core/types.js';
import { jobRecord, runStorageConformance } from '../src/testing/index.js';
import { allResults } from './helpers/engine.js';
import { closeAll, DATABASE_URL, freshSchema, migratedStorage, pglite, realPool } from './helpers/postgres.js';

afterAll(closeAll);

const schemaOf = new WeakMap<CrawlStorage, string>();
const targets: Array<{ name: string; client: () => { query(text: string, params?: unknown[]): Promise<unknown> } }> = [
  { name: 'postgres on PGlite', client: pglite },
];
if (DATABASE_URL) targets.push({ name: 'postgres on the real server (pg Pool)', client: realPool });

for (const target of targets) {
  runStorageConformance({
    name: target.name,
    storage: async () => {
      const schema = freshSchema();
      const storage = postgresStorage({ client: target.client() as never, schema, maxEventsPerJob: 20 });
      await storage.migrate();
      schemaOf.set(storage, schema);
      return storage;
    },
    teardown: async (storage) => {
      await storage.close?.();
      await target.client().query(`DROP SCHEMA IF EXISTS "${schemaOf.get(storage)}" CASCADE`);
    },
    test,
    describe,
    eventLimit: 20,
    timeoutMs: 60_000,
  });

  completeManyTests(target);

  describe(`${target.name}: migrations and errors`, () => {
    test('migrate() is idempotent and reports what it applied', async () => {
      const schema = freshSchema();
      const storage = postgresStorage({ client: target.client() as never, schema });
      const versions = MIGRATIONS.map((m) => m.version);
      expect(await storage.migrate()).toEqual({ applied: versions, version: Math.max(...versions) });
      expect(await storage.migrate()).toEqual({ applied: [], version: Math.max(...versions) });
      await Promise.all([storage.migrate(), storage.migrate()]);
      await target.client().query(`DROP SCHEMA "${schema}" CASCADE`);
    });

    test('a database at version 7 with a job in flight upgrades to version 8: leases carry lastmod from then on, and links stored before have none', async () => {
      const client = target.client();
      const schema = await schemaAtVersion(client, 7);
      const storage = postgresStorage({ client: client as never, schema, listen: false });
      const T = Date.UTC(2030, 0, 1);
      const url = (path: string) => `http://v7.test${path}`;
      const link = (path: string, lastmod?: string) => ({ url: url(path), key: url(path), depth: 1, host: 'v7.test', ...(lastmod ? { lastmod } : {}) });
      const page = (lease: Lease): PageResult => ({
        url: lease.url,
        finalUrl: lease.url,
        depth: lease.depth,
        status: 200,
        ok: true,
        contentType: null,
        title: null,
        description: null,
        canonical: null,
        links: 0,
        wordCount: 0,
        error: null,
        attempts: lease.attempts,
        durationMs: 1,
        fetchedAt: new Date(T).toISOString(),
        data: null,
      });
      const job: Job = jobRecord({ id: 'job_v7', url: url('/'), createdAt: new Date(T).toISOString(), options: { perHostConcurrency: 10 } });
      try {
        // Code of this version on a database still at version 7: a lastmod is taken and dropped, nothing fails.
        await storage.createJob(job, { url: job.url, key: job.url, depth: 0, host: 'v7.test', lastmod: '2030-01-01' });
        const [seed] = (await storage.claim({ limit: 1, leaseMs: 60_000, now: T, jobId: job.id })).leases;
        expect(seed).not.toHaveProperty('lastmod');
        expect((await storage.complete(seed!, { result: page(seed!), links: [link('/a', 'a-v7'), link('/b', 'b-v7')], now: T + 1 })).admitted).toBe(2);
        const [a] = (await storage.claim({ limit: 1, leaseMs: 60_000, now: T + 2, jobId: job.id })).leases;
        expect(a).not.toHaveProperty('lastmod');
        const later = MIGRATIONS.map((m) => m.version).filter((v) => v > 7);
        expect(await storage.migrate()).toEqual({ applied: later, version: Math.max(...later) });
        // /b was stored at version 7: no lastmod. Links stored from now on keep theirs.
        expect((await storage.complete(a!, { result: page(a!), links: [link('/c', 'c-v8'), link('/b', 'b-v8')], now: T + 3 })).admitted).toBe(1);
        const leases = (await storage.claim({ limit: 10, leaseMs: 60_000, now: T + 4, jobId: job.id })).leases;
        expect(leases.map((l) => [l.key, l.lastmod]).sort()).toEqual([
          [url('/b'), undefined],
          [url('/c'), 'c-v8'],
        ]);
        expect(leases.find((l) => l.key === url('/b'))).not.toHaveProperty('lastmod');
        for (const lease of leases) expect((await storage.complete(lease, { result: page(lease), links: [], now: T + 5 })).ok).toBe(true);
        expect((await storage.getJob(job.id))?.status).toBe('completed');
      } finally {
        await client.query(`DROP SCHEMA "${schema}" CASCADE`);
      }
    });

    test('a database at version 8 with results upgrades to version 10: getResults finds results stored before, through the results_url index', async () => {
      const client = target.client();
      const schema = await schemaAtVersion(client, 8);
      const storage = postgresStorage({ client: client as never, schema, listen: false });
      const T = Date.UTC(2030, 0, 1);
      const job: Job = jobRecord({ id: 'job_v8', url: 'http://v8.test/', createdAt: new Date(T).toISOString() });
      try {
        await storage.createJob(job, { url: job.url, key: job.url, depth: 0, host: 'v8.test' });
        const [seed] = (await storage.claim({ limit: 1, leaseMs: 60_000, now: T, jobId: job.id })).leases;
        const result = { ...pageOf(seed!), title: 'v8' };
        expect((await storage.complete(seed!, { result, links: [], now: T + 1 })).ok).toBe(true);
        expect(await storage.migrate()).toEqual({
          applied: MIGRATIONS.map((m) => m.version).filter((v) => v > 8),
          version: Math.max(...MIGRATIONS.map((m) => m.version)),
        });
        expect((await storage.getResults!(job.id, [job.url, 'http://v8.test/none'])).map((r) => r?.title ?? null)).toEqual(['v8', null]);
        const index = (await client.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'crawl_results_url'`, [schema])) as {
          rows: Array<{ indexdef?: string }>;
        };
        expect(index.rows[0]?.indexdef).toMatch(/\(job_id, \(\(result ->> 'url'::text\)\)\)/);
      } finally {
        await storage.close?.();
        await client.query(`DROP SCHEMA "${schema}" CASCADE`);
      }
    });

    test('a database at version 2 with a job in flight upgrades to version 3; the job goes on, and the version 2 complete() still works', async () => {
      // Version 2 as the previous release left it.
      const client = target.client();
      const schema = await schemaAtVersion(client, 2);
      const storage = postgresStorage({ client: client as never, schema, listen: false });
      const T = Date.UTC(2030, 0, 1);
      const url = (path: string) => `http://upgrade.test${path}`;
      const link = (path: string) => ({ url: url(path), key: url(path), depth: 1, host: 'upgrade.test' });
      const page = (lease: Lease, code: string | null = null): PageResult => ({
        url: lease.url,
        finalUrl: lease.url,
        depth: lease.depth,
        status: code === null ? 200 : null,
        ok: code === null,
        contentType: null,
        title: null,
        description: null,
        canonical: null,
        links: 0,
        wordCount: 0,
        error: code === null ? null : { code, message: code },
        attempts: lease.attempts,
        durationMs: 1,
        fetchedAt: new Date(T).toISOString(),
        data: null,
      });
      // What a processor of the previous version calls.
      const completeV2 = async (lease: Lease, result: PageResult, links: unknown[]) => {
        const sql = `SELECT "${schema}".crawl_complete($1::jsonb, $2::jsonb, $3::jsonb, $4::bigint, $5::text, $6::int) AS r`;
        const params = [JSON.stringify(lease), JSON.stringify(result), JSON.stringify(links), T, new Date(T).toISOString(), 100];
        return ((await client.query(sql, params)) as { rows: Array<{ r: { ok: boolean; admitted: number } }> }).rows[0]!.r;
      };
      const job: Job = jobRecord({ id: 'job_upgrade', url: url('/'), createdAt: new Date(T).toISOString(), options: { maxPages: 3, perHostConcurrency: 10 } });
      try {
        await storage.createJob(job, { url: job.url, key: job.url, depth: 0, host: 'upgrade.test' });
        const [seed] = (await storage.claim({ limit: 1, leaseMs: 60_000, now: T, jobId: job.id })).leases;
        expect(await completeV2(seed!, page(seed!), [link('/a'), link('/b'), link('/c')])).toMatchObject({ ok: true, admitted: 2 });
        const later = MIGRATIONS.map((m) => m.version).filter((v) => v > 2);
        expect(await storage.migrate()).toEqual({ applied: later, version: Math.max(...later) });
        const leases = (await storage.claim({ limit: 10, leaseMs: 60_000, now: T + 1, jobId: job.id })).leases;
        expect(leases.map((l) => l.key).sort()).toEqual([url('/a'), url('/b')]);
        const [a, b] = leases as [Lease, Lease];
        // Admitted under version 2 and skipped for robots.txt under version 3: its charge comes back.
        expect((await storage.complete(a, { result: page(a, 'robots'), links: [], now: T + 2 })).ok).toBe(true);
        const x = { link: link('/x'), result: { ...page(b, 'robots'), url: url('/x'), finalUrl: url('/x'), attempts: 0 } };
        expect((await storage.complete(b, { result: page(b), links: [link('/c'), link('/d')], skipped: [x], now: T + 3 })).admitted).toBe(1);
        const [c] = (await storage.claim({ limit: 10, leaseMs: 60_000, now: T + 4, jobId: job.id })).leases;
        expect(c?.key).toBe(url('/c'));
        // A processor of the previous version, still running during the upgrade.
        expect(await completeV2(c!, page(c!), [link('/e')])).toMatchObject({ ok: true, admitted: 0 });
        const after = await storage.getJob(job.id);
        expect(after?.status).toBe('completed');
        expect(after?.counts).toEqual({ discovered: 5, queued: 0, inProgress: 0, succeeded: 3, failed: 0, skipped: 2 });
      } finally {
        await client.query(`DROP SCHEMA "${schema}" CASCADE`);
      }
    });

    test('an operation on an unmigrated schema says to run migrate()', async () => {
      const storage = postgresStorage({ client: target.client() as never, schema: freshSchema() });
      await expect(storage.getJob('job_x')).rejects.toThrow(/crawl_jobs or its functions are missing in schema t_[0-9a-f]+: run storage\.migrate\(\) first/);
    });

    test('bad options name the field', () => {
      expect(() => postgresStorage({ client: target.client() as never, schema: 'Bad-Name' })).toThrow(/schema: expected lower-case letters/);
      expect(() => postgresStorage({ client: {} as never })).toThrow(/client: expected a pg Pool/);
    });

    test('an engine crawl on Postgres stores every page once and completes; a subscriber in another engine is woken by NOTIFY', async () => {
      const site = await startSite({ pages: 60, fanout: 4 });
      const storage = await migratedStorage(target.client() as never);
      const worker = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
      const watcher = createCrawlEngine({ storage });
      const job = await worker.jobs.create({ url: site.url, maxDepth: 6, maxPages: 60, perHostConcurrency: 8 });
      const seen: string[] = [];
      const following = (async () => {
        for await (const e of watcher.progress.subscribe(job.id, { pollMs: 60_000 })) seen.push(e.type);
      })();
      await worker.processor.run({ jobId: job.id, concurrency: 8 });
      const finished = await Promise.race([following.then(() => 'ended'), new Promise((r) => setTimeout(() => r('stuck'), 5000))]);
      expect(finished).toBe('ended'); // with a 60 s poll, only a NOTIFY could have woken it in time
      await worker.close();
      const done = await worker.jobs.get(job.id);
      expect(done?.status).toBe('completed');
      const results = await allResults(worker, job.id);
      expect(results).toHaveLength(60);
      expect(new Set(results.map((r) => r.url)).size).toBe(60);
      expect(seen.at(-1)).toBe('job:completed');
      expect(seen.filter((t) => t === 'page:done')).toHaveLength(60);
      await storage.close?.();
      await site.close();
    }, 60_000);
  });
}

// Group commit (issue 14): completeMany is one statement that applies each item as complete() does.
const T = Date.UTC(2030, 0, 1);
type Client = { query(text: string, params?: unknown[]): Promise<unknown> };

/** A fresh schema migrated to `version` only, as an earlier release left it (for upgrade tests). */
async function schemaAtVersion(client: { query(text: string, params?: unknown[]): Promise<unknown> }, version: number): Promise<string> {
  const schema = freshSchema();
  const names = { schema: `"${schema}"`, prefix: 'crawl_' };
  await client.query(`CREATE SCHEMA "${schema}"`);
  await client.query(`CREATE TABLE "${schema}".crawl_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
  for (const migration of MIGRATIONS.filter((m) => m.version <= version)) {
    for (const sql of migration.statements(names)) await client.query(sql);
    await client.query(`INSERT INTO "${schema}".crawl_migrations (version, name) VALUES ($1, $2)`, [migration.version, migration.name]);
  }
  return schema;
}

function pageOf(lease: Pick<Lease, 'url' | 'depth' | 'attempts'>, code: string | null = null): PageResult {
  return {
    url: lease.url,
    finalUrl: lease.url,
    depth: lease.depth,
    status: code === null ? 200 : null,
    ok: code === null,
    contentType: null,
    title: null,
    description: null,
    canonical: null,
    links: 0,
    wordCount: 0,
    error: code === null ? null : { code, message: code },
    attempts: lease.attempts,
    durationMs: 1,
    fetchedAt: new Date(T).toISOString(),
    data: null,
  };
}

const linkOn =
  (host: string) =>
  (path: string, robots?: 'allowed'): FrontierLink => {
    const url = `http://${host}${path}`;
    return { url, key: url, depth: 1, host, ...(robots ? { robots } : {}) };
  };

/** A job with its seed completed (with `links`) and up to `claim` of them leased. */
async function startedJob(storage: CrawlStorage, id: string, host: string, maxPages: number, links: FrontierLink[], claim: number) {
  const job = jobRecord({ id, url: `http://${host}/`, createdAt: new Date(T).toISOString(), options: { maxPages, perHostConcurrency: 1000 } });
  await storage.createJob(job, { url: job.url, key: job.url, depth: 0, host });
  const [seed] = (await storage.claim({ limit: 1, leaseMs: 60_000, now: T, jobId: id })).leases;
  await storage.complete(seed!, { result: pageOf(seed!), links, now: T });
  if (claim === 0) return [];
  const { leases } = await storage.claim({ limit: claim, leaseMs: 60_000, now: T + 1, jobId: id });
  return leases.sort((a, b) => a.key.localeCompare(b.key));
}

const rand = () => Math.random().toString(36).slice(2, 10);
/** Events without their job id (twin jobs differ only there). */
const sansJob = (events: ProgressEvent[]) => events.map(({ jobId: _, ...rest }) => rest);
/** A result as twin jobs can compare it: events without their job id. */
const comparable = (r: CompleteResult) => ({ ok: r.ok, admitted: r.admitted, events: sansJob(r.events) });

function completeManyTests(target: { name: string; client: () => Client }) {
  describe(`${target.name}: completeMany (group commit)`, () => {
    const schemas: string[] = [];
    const open = async (options: { schema?: string; client?: Client; migrate?: boolean; maxEvents?: number } = {}) => {
      const schema = options.schema ?? freshSchema();
      if (!schemas.includes(schema)) schemas.push(schema);
      const storage = postgresStorage({
        client: (options.client ?? target.client()) as never,
        schema,
        maxEventsPerJob: options.maxEvents ?? 1000,
        listen: false,
      });
      if (options.migrate !== false) await storage.migrate();
      return storage;
    };
    afterAll(async () => {
      for (const schema of schemas) await target.client().query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    });

    test('equals complete() per item on a twin job: results, events and their ids, counts, stored results, spares, refunds, skipped links, maxPages', async () => {
      const storage = await open();
      // Twin jobs with the same URLs. maxPages 6: the seed and 4 links, then room for one more;
      // links past it whose robots.txt was not known (unsure) become spares.
      const l = linkOn('twin.test');
      const seedLinks = ['/a', '/b', '/c', '/d'].map((p) => l(p));
      const one = await startedJob(storage, `job_one_${rand()}`, 'twin.test', 6, seedLinks, 10);
      const many = await startedJob(storage, `job_many_${rand()}`, 'twin.test', 6, seedLinks, 10);
      expect(many.map((x) => x.key)).toEqual(one.map((x) => x.key));
      expect(one).toHaveLength(4);
      /** The inputs for one job's leases a, b, c, d. */
      const inputs = (leases: Lease[]): CompleteItem[] => {
        const [a, b, c, d] = leases as [Lease, Lease, Lease, Lease];
        const skippedX = { link: l('/x'), result: { ...pageOf({ url: l('/x').url, depth: 1, attempts: 0 }, 'robots') } };
        return [
          // New, a duplicate within the page, one already known, one past the room.
          { lease: a, input: { result: pageOf(a), links: [l('/e', 'allowed'), l('/e', 'allowed'), l('/b'), l('/f')], now: T + 10 } },
          // Skipped for robots.txt: its charge goes to the spare /f; /f again (known since item 1).
          { lease: b, input: { result: pageOf(b, 'robots'), links: [l('/f'), l('/g')], now: T + 11 } },
          { lease: c, input: { result: pageOf(c, 'timeout'), links: [], now: T + 12 } },
          { lease: d, input: { result: pageOf(d), links: [l('/h', 'allowed')], skipped: [skippedX], now: T + 13 } },
        ];
      };
      const sequential: CompleteResult[] = [];
      for (const item of inputs(one)) sequential.push(await storage.complete(item.lease, item.input));
      const batched = await storage.completeMany!(inputs(many));
      expect(batched.map(comparable)).toEqual(sequential.map(comparable));
      expect(batched.map((r) => r.ok)).toEqual([true, true, true, true]);
      expect(batched.flatMap((r) => r.events.map((e) => e.type))).toEqual(['page:done', 'page:skipped', 'page:failed', 'page:done', 'page:skipped']);

      // Then everything left, in one batch against one complete() each: the job ends once.
      const rest = async (id: string) =>
        (await storage.claim({ limit: 100, leaseMs: 60_000, now: T + 20, jobId: id })).leases
          .sort((x, y) => x.key.localeCompare(y.key))
          .map((lease, i): CompleteItem => ({ lease, input: { result: pageOf(lease), links: [], now: T + 21 + i } }));
      const oneRest = await rest(one[0]!.jobId);
      const manyRest = await rest(many[0]!.jobId);
      expect(manyRest.length).toBeGreaterThan(1);
      expect(manyRest.map((i) => i.lease.key)).toEqual(oneRest.map((i) => i.lease.key));
      const sequentialRest: CompleteResult[] = [];
      for (const item of oneRest) sequentialRest.push(await storage.complete(item.lease, item.input));
      const batchedRest = await storage.completeMany!(manyRest);
      expect(batchedRest.map(comparable)).toEqual(sequentialRest.map(comparable));
      const ends = batchedRest.map((r) => r.events.filter((e) => e.type === 'job:completed').length);
      expect(ends).toEqual([...Array(ends.length - 1).fill(0), 1]);

      const [jobOne, jobMany] = [await storage.getJob(one[0]!.jobId), await storage.getJob(many[0]!.jobId)];
      expect(jobMany?.status).toBe('completed');
      expect(jobMany?.counts).toEqual(jobOne?.counts);
      // Skipped pages (robots.txt) are not charged: the rest stays within maxPages.
      expect(jobMany!.counts.discovered - jobMany!.counts.skipped).toBeLessThanOrEqual(6);
      expect(sansJob(await storage.readEvents(jobMany!.id, null, 1000))).toEqual(sansJob(await storage.readEvents(jobOne!.id, null, 1000)));
      const stored = async (id: string) => (await storage.listResults(id, { limit: 100 })).items;
      expect(await stored(jobMany!.id)).toEqual(await stored(jobOne!.id));
    });

    test('batches that take the set-based path trim the event log where complete() one by one does, and end the job once', async () => {
      // maxEventsPerJob 8: the log is cut every 16 events past 24 (ids 32, 48, 64, 80): at the start of a
      // batch, inside one, and twice inside one.
      const storage = await open({ maxEvents: 8 });
      const l = linkOn('trim.test');
      const links = Array.from({ length: 90 }, (_, i) => l(`/p${String(i).padStart(2, '0')}`, 'allowed'));
      const one = await startedJob(storage, `job_trim1_${rand()}`, 'trim.test', 1000, links, 90);
      const many = await startedJob(storage, `job_trim2_${rand()}`, 'trim.test', 1000, links, 90);
      expect(many.map((x) => x.key)).toEqual(one.map((x) => x.key));
      const inputs = (leases: Lease[]) =>
        leases.map((lease, i): CompleteItem => ({ lease, input: { result: pageOf(lease, i % 7 === 3 ? 'timeout' : null), links: [], now: T + 10 + i } }));
      const [oneItems, manyItems] = [inputs(one), inputs(many)];
      const sequential: CompleteResult[] = [];
      const batched: CompleteResult[] = [];
      const log = async (leases: Lease[], after: string | null) => sansJob(await storage.readEvents(leases[0]!.jobId, after, 1000));
      // Batches of the ids up to 15, 16-31, 32 alone (a cut as the first id of a batch), 33-42,
      // 43-77 (cuts at 48 and 64 inside it) and the rest (80 inside).
      const base = Number((await storage.readEvents(many[0]!.jobId, null, 1000)).at(-1)!.id);
      const sizes = [15 - base, 16, 1, 10, 35];
      sizes.push(manyItems.length - sizes.reduce((a, b) => a + b, 0));
      let at = 0;
      for (const size of sizes) {
        for (const item of oneItems.slice(at, at + size)) sequential.push(await storage.complete(item.lease, item.input));
        batched.push(...(await storage.completeMany!(manyItems.slice(at, at + size))));
        at += size;
        expect(await log(many, null), `the log after ${at} pages`).toEqual(await log(one, null));
      }
      expect(at).toBe(manyItems.length);
      expect(batched.map(comparable)).toEqual(sequential.map(comparable));
      expect(batched.at(-1)?.events.map((e) => e.type)).toEqual(['page:done', 'job:completed']);
      for (const after of [null, '1', '20', '40']) {
        expect(await log(many, after)).toEqual(await log(one, after));
      }
      const [jobOne, jobMany] = [await storage.getJob(one[0]!.jobId), await storage.getJob(many[0]!.jobId)];
      expect(jobMany).toEqual({ ...jobOne, id: jobMany?.id });
    });

    test('a batch frees the host slot of each of its pages and starts the host delay from its last page', async () => {
      const storage = await open();
      const slot = async (host: string, options: { perHostConcurrency: number; perHostDelayMs?: number }) => {
        const job = jobRecord({
          id: `job_slots_${rand()}`,
          url: `http://${host}/`,
          createdAt: new Date(T).toISOString(),
          options: { maxPages: 100, ...options },
        });
        await storage.createJob(job, { url: job.url, key: job.url, depth: 0, host });
        const [seed] = (await storage.claim({ limit: 1, leaseMs: 60_000, now: T, jobId: job.id })).leases;
        const found = ['/a', '/b', '/c', '/d', '/e'].map((p) => linkOn(host)(p, 'allowed'));
        await storage.complete(seed!, { result: pageOf(seed!), links: found, now: T });
        return job.id;
      };
      const claim = async (jobId: string, now: number) => (await storage.claim({ limit: 10, leaseMs: 60_000, now, jobId })).leases;
      // Two slots, both taken by pages of one batch: the batch frees both.
      const two = await slot('slots.test', { perHostConcurrency: 2 });
      const leases = await claim(two, T + 1);
      expect(leases).toHaveLength(2);
      expect(await claim(two, T + 2)).toHaveLength(0);
      await storage.completeMany!(leases.map((lease) => ({ lease, input: { result: pageOf(lease), links: [], now: T + 3 } })));
      expect(await claim(two, T + 4)).toHaveLength(2);
      // A 100 ms host delay starts when the batch's page was fetched (its now).
      const delayed = await slot('delay.test', { perHostConcurrency: 2, perHostDelayMs: 100 });
      const [page] = await claim(delayed, T + 200);
      await storage.completeMany!([{ lease: page!, input: { result: pageOf(page!), links: [], now: T + 250 } }]);
      expect(await claim(delayed, T + 340)).toHaveLength(0);
      expect(await claim(delayed, T + 350)).toHaveLength(1);
    });

    test('the set-based path does not call complete(): with it dropped, a batch is still stored, and a robots.txt skip (item by item) is not', async () => {
      const schema = freshSchema();
      const storage = await open({ schema });
      const l = linkOn('fast.test');
      const [a, b, c] = await startedJob(
        storage,
        `job_fast_${rand()}`,
        'fast.test',
        100,
        ['/a', '/b', '/c'].map((p) => l(p, 'allowed')),
        3,
      );
      await target.client().query(`DROP FUNCTION "${schema}".crawl_complete(jsonb, jsonb, jsonb, jsonb, bigint, text, int)`);
      const out = await storage.completeMany!([a!, b!].map((lease) => ({ lease, input: { result: pageOf(lease), links: [l('/d', 'allowed')], now: T + 5 } })));
      expect(out.map((r) => [r.ok, r.admitted])).toEqual([
        [true, 1],
        [true, 0],
      ]);
      await expect(storage.completeMany!([{ lease: c!, input: { result: pageOf(c!, 'robots'), links: [], now: T + 6 } }])).rejects.toThrow();
    });

    test('a stale lease among fresh ones changes nothing and gets ok: false; the others are stored', async () => {
      const storage = await open();
      const l = linkOn('stale.test');
      const [a, b, c, d] = (await startedJob(
        storage,
        `job_stale_${rand()}`,
        'stale.test',
        100,
        ['/a', '/b', '/c', '/d'].map((p) => l(p)),
        3,
      )) as Lease[];
      expect(d).toBeUndefined();
      const jobId = a!.jobId;
      // b is spent by a complete() before the batch; d's first lease expires and is claimed again.
      expect((await storage.complete(b!, { result: pageOf(b!), links: [], now: T + 2 })).ok).toBe(true);
      const [expired] = (await storage.claim({ limit: 1, leaseMs: 10, now: T + 3, jobId })).leases;
      const [again] = (await storage.claim({ limit: 1, leaseMs: 60_000, now: T + 100, jobId })).leases;
      expect(again?.key).toBe(expired?.key);
      expect(again?.token).not.toBe(expired?.token);
      const item = (lease: Lease, links: FrontierLink[] = []): CompleteItem => ({ lease, input: { result: pageOf(lease), links, now: T + 200 } });
      const results = await storage.completeMany!([
        item(a!, [l('/e')]),
        item(b!, [l('/f')]),
        item(expired!, [l('/g')]),
        item({ ...c!, token: 'forged' }),
        item({ ...c!, jobId: 'job_missing' }),
        item(c!),
        item(again!),
      ]);
      expect(results.map((r) => r.ok)).toEqual([true, false, false, false, false, true, true]);
      for (const refused of [results[1], results[2], results[3], results[4]]) expect(refused).toEqual({ ok: false, admitted: 0, events: [] });
      expect(results.map((r) => r.admitted)).toEqual([1, 0, 0, 0, 0, 0, 0]);
      const job = await storage.getJob(jobId);
      // The seed, a, b, c and d done; /e admitted, /f and /g (from refused items) not.
      expect(job?.counts).toEqual({ discovered: 6, queued: 1, inProgress: 0, succeeded: 5, failed: 0, skipped: 0 });
      expect((await storage.listResults(jobId, { limit: 100 })).items).toHaveLength(5);
    });

    test('a batch crossing maxPages admits exactly up to it, and the last item ends the job once', async () => {
      const storage = await open();
      const l = linkOn('max.test');
      // maxPages 6: the seed and 3 links, room for 2 more (all links allowed: no spares).
      const [a, b, c] = (await startedJob(
        storage,
        `job_max_${rand()}`,
        'max.test',
        6,
        ['/a', '/b', '/c'].map((p) => l(p, 'allowed')),
        10,
      )) as Lease[];
      const jobId = a!.jobId;
      const item = (lease: Lease, links: FrontierLink[]): CompleteItem => ({ lease, input: { result: pageOf(lease), links, now: T + 10 } });
      const first = await storage.completeMany!([
        item(a!, [l('/d', 'allowed')]),
        item(b!, [l('/e', 'allowed'), l('/f', 'allowed')]),
        item(c!, [l('/g', 'allowed')]),
      ]);
      expect(first.map((r) => r.admitted)).toEqual([1, 1, 0]);
      expect(first.map((r) => r.events.map((e) => e.counts.discovered))).toEqual([[5], [6], [6]]);
      const { leases } = await storage.claim({ limit: 10, leaseMs: 60_000, now: T + 20, jobId });
      expect(leases.map((x) => new URL(x.url).pathname).sort()).toEqual(['/d', '/e']);
      const last = await storage.completeMany!(leases.map((lease) => item(lease, [l('/h', 'allowed')])));
      expect(last.map((r) => r.admitted)).toEqual([0, 0]);
      expect(last.map((r) => r.events.map((e) => e.type))).toEqual([['page:done'], ['page:done', 'job:completed']]);
      const job = await storage.getJob(jobId);
      expect(job?.status).toBe('completed');
      expect(job?.counts).toEqual({ discovered: 6, queued: 0, inProgress: 0, succeeded: 6, failed: 0, skipped: 0 });
      // A completed job refuses the spent leases again.
      expect((await storage.completeMany!(leases.map((lease) => item(lease, [])))).map((r) => r.ok)).toEqual([false, false]);
    });

    test('items of several jobs in any order: results in the given order, each job’s events in order', async () => {
      const storage = await open();
      const tag = rand();
      // Ids that sort the other way round from the order the items are given in.
      const zs = await startedJob(
        storage,
        `job_z_${tag}`,
        'z.test',
        100,
        ['/1', '/2'].map((p) => linkOn('z.test')(p)),
        10,
      );
      const as = await startedJob(
        storage,
        `job_a_${tag}`,
        'a.test',
        100,
        ['/1', '/2'].map((p) => linkOn('a.test')(p)),
        10,
      );
      const order = [zs[0]!, as[0]!, zs[1]!, as[1]!];
      const results = await storage.completeMany!(order.map((lease) => ({ lease, input: { result: pageOf(lease), links: [], now: T + 10 } })));
      expect(results.map((r) => [r.events[0]?.jobId, r.events[0]?.url])).toEqual(order.map((lease) => [lease.jobId, lease.url]));
      for (const jobId of [zs[0]!.jobId, as[0]!.jobId]) {
        const ids = results.flatMap((r) => r.events.filter((e) => e.jobId === jobId).map((e) => Number(e.id)));
        expect(ids).toEqual([...ids].sort((x, y) => x - y));
        expect(ids).toHaveLength(3); // two pages, then job:completed
      }
    });

    test('one round trip per batch, none for an empty one; bad items name the field; an unmigrated schema says to run migrate()', async () => {
      let queries = 0;
      const inner = target.client();
      const counting: Client = {
        query: (text, params) => {
          queries++;
          return inner.query(text, params);
        },
      };
      const storage = await open({ client: counting });
      const leases = await startedJob(
        storage,
        `job_trips_${rand()}`,
        'trips.test',
        100,
        ['/a', '/b', '/c', '/d', '/e'].map((p) => linkOn('trips.test')(p)),
        10,
      );
      queries = 0;
      expect(await storage.completeMany!([])).toEqual([]);
      expect(queries).toBe(0);
      const results = await storage.completeMany!(leases.map((lease) => ({ lease, input: { result: pageOf(lease), links: [], now: T + 10 } })));
      expect(results.map((r) => r.ok)).toEqual([true, true, true, true, true]);
      expect(queries).toBe(1);

      const lease = leases[0]!;
      await expect(storage.completeMany!('nope' as never)).rejects.toMatchObject({
        code: 'invalid_input',
        message: expect.stringMatching(/items: expected an array/),
      });
      await expect(
        storage.completeMany!([
          { lease, input: { result: pageOf(lease), links: [], now: T } },
          { lease, input: { result: pageOf(lease), links: [], now: Number.NaN } },
          { lease: null as never, input: { result: pageOf(lease), links: {} as never, now: T } },
        ]),
      ).rejects.toMatchObject({ code: 'invalid_input', message: expect.stringMatching(/items\.1\.input\.now: .*items\.2\.lease: .*items\.2\.input\.links: /) });
      expect(queries).toBe(1);

      const bare = await open({ migrate: false });
      await expect(bare.completeMany!([{ lease, input: { result: pageOf(lease), links: [], now: T } }])).rejects.toMatchObject({
        code: 'storage_error',
        message: expect.stringMatching(/functions are missing in schema t_[0-9a-f]+: run storage\.migrate\(\) first/),
      });
    });

    test('a database at version 3 upgrades to the latest version with a job in flight; its leases are completed by a batch', async () => {
      const client = target.client();
      const schema = await schemaAtVersion(client, 3);
      schemas.push(schema);
      const storage = await open({ schema, migrate: false });
      const leases = await startedJob(
        storage,
        `job_v3_${rand()}`,
        'v3.test',
        100,
        ['/a', '/b'].map((p) => linkOn('v3.test')(p)),
        10,
      );
      const items = leases.map((lease): CompleteItem => ({ lease, input: { result: pageOf(lease), links: [], now: T + 10 } }));
      await expect(storage.completeMany!(items)).rejects.toThrow(/run storage\.migrate\(\) first/);
      const later = MIGRATIONS.map((m) => m.version).filter((v) => v > 3);
      expect(await storage.migrate()).toEqual({ applied: later, version: Math.max(...later) });
      expect((await storage.completeMany!(items)).map((r) => r.ok)).toEqual([true, true]);
      expect((await storage.getJob(leases[0]!.jobId))?.status).toBe('completed');
    });

    test('two storages completing batches of the same two jobs in opposite orders at once, 50 times: no deadlock', async () => {
      const schema = freshSchema();
      const first = await open({ schema });
      const second = await open({ schema, migrate: false });
      const tag = rand();
      const paths = Array.from({ length: 220 }, (_, i) => `/p${i}`);
      const hosts = ['x.test', 'y.test'];
      const jobs = await Promise.all(
        hosts.map(async (host, i) => {
          await startedJob(
            first,
            `job_dl${i}_${tag}`,
            host,
            1000,
            paths.map((p) => linkOn(host)(p, 'allowed')),
            0,
          );
          return `job_dl${i}_${tag}`;
        }),
      );
      const batch = async (storage: CrawlStorage, order: string[], round: number) => {
        const leases: Lease[] = [];
        for (const jobId of order) leases.push(...(await storage.claim({ limit: 2, leaseMs: 60_000, now: T + 10 + round, jobId })).leases);
        // Each item admits links too, so each holds its job's lock a while.
        return leases.map(
          (lease, i): CompleteItem => ({
            lease,
            input: { result: pageOf(lease), links: [linkOn(lease.host)(`/r${round}-${i}-${order.join('')}`, 'allowed')], now: T + 10 + round },
          }),
        );
      };
      for (let round = 0; round < 50; round++) {
        const [one, two] = [await batch(first, jobs, round), await batch(second, [...jobs].reverse(), round)];
        expect(one.map((i) => i.lease.jobId)).toEqual([jobs[0], jobs[0], jobs[1], jobs[1]]);
        expect(two.map((i) => i.lease.jobId)).toEqual([jobs[1], jobs[1], jobs[0], jobs[0]]);
        const results = await Promise.all([first.completeMany!(one), second.completeMany!(two)]);
        expect(results.flat().map((r) => r.ok)).toEqual(Array(8).fill(true));
      }
      for (const jobId of jobs) expect((await first.getJob(jobId))?.counts).toMatchObject({ succeeded: 201, inProgress: 0 });
    }, 60_000);

    test('subscribers are woken once per job per batch (NOTIFY payloads of one transaction are delivered once)', async (context) => {
      const schema = freshSchema();
      schemas.push(schema);
      const storage = postgresStorage({ client: target.client() as never, schema, maxEventsPerJob: 1000 });
      if (!storage.watch) context.skip();
      await storage.migrate();
      const leases = await startedJob(
        storage,
        `job_wake_${rand()}`,
        'wake.test',
        100,
        ['/a', '/b', '/c', '/d', '/e'].map((p) => linkOn('wake.test')(p)),
        10,
      );
      let calls = 0;
      const stop = storage.watch!(leases[0]!.jobId, () => calls++);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const results = await storage.completeMany!(leases.map((lease) => ({ lease, input: { result: pageOf(lease), links: [], now: T + 10 } })));
      expect(results.flatMap((r) => r.events)).toHaveLength(6); // five pages and job:completed
      await expect.poll(() => calls, { timeout: 3000 }).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(calls).toBe(1);
      stop();
      await storage.close?.();
    });
  });
}

(DATABASE_URL ? describe : describe.skip)('postgres on a single pg Client (not a Pool)', () => {
  test('a crawl completes and NOTIFY on the same connection wakes a subscriber', async () => {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: DATABASE_URL! });
    await client.connect();
    const site = await startSite({ pages: 20, fanout: 3 });
    const schema = freshSchema();
    const storage = postgresStorage({ client, schema });
    await storage.migrate();
    const engine = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
    const job = await engine.jobs.create({ url: site.url, maxDepth: 5, maxPages: 20, perHostConcurrency: 4 });
    const seen: string[] = [];
    const following = (async () => {
      for await (const e of engine.progress.subscribe(job.id, { pollMs: 60_000 })) seen.push(e.type);
    })();
    await engine.processor.run({ jobId: job.id, concurrency: 4 });
    expect(await Promise.race([following.then(() => 'ended'), new Promise((r) => setTimeout(() => r('stuck'), 5000))])).toBe('ended');
    expect(seen.filter((t) => t === 'page:done')).toHaveLength(20);
    expect((await allResults(engine, job.id)).length).toBe(20);
    await engine.close();
    await storage.close?.();
    await client.query(`DROP SCHEMA "${schema}" CASCADE`);
    await client.end();
    await site.close();
  }, 60_000);
});

/** A client of its own on the real server and a fresh migrated schema for `body`, dropped after. */
async function withRealSchema(
  body: (ctx: { client: import('pg').Client; schema: string; storage: ReturnType<typeof postgresStorage> }) => Promise<void>,
): Promise<void> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: DATABASE_URL! });
  await client.connect();
  const schema = freshSchema();
  try {
    const storage = postgresStorage({ client, schema, listen: false });
    await storage.migrate();
    await body({ client, schema, storage });
  } finally {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  }
}

// Plans of the statements inside the SQL functions, through auto_explain (nested statements, at
// NOTICE level, so the client receives them). Needs a superuser to LOAD the module.
(DATABASE_URL ? describe : describe.skip)('postgres plans (real server)', () => {
  test('with a 20,000-URL frontier no statement inside claim, complete, retry, release, readEvents or getJob scans the frontier sequentially', async () => {
    await withRealSchema(async ({ client, schema, storage }) => {
      const host = 'plans.test';
      const url = (i: number) => `http://${host}/p/${i}`;
      const job = jobRecord({ id: 'job_plans', url: url(0), options: { maxPages: 20_001, respectRobots: false, perHostConcurrency: 1000 } });
      await storage.createJob(job, { url: url(0), key: url(0), depth: 0, host });
      const result = (lease: { url: string; depth: number; attempts: number }) => ({
        url: lease.url,
        finalUrl: lease.url,
        depth: lease.depth,
        status: 200,
        ok: true,
        contentType: 'text/html',
        title: null,
        description: null,
        canonical: null,
        links: 0,
        wordCount: 0,
        error: null,
        attempts: lease.attempts,
        durationMs: 1,
        fetchedAt: new Date().toISOString(),
        data: null,
      });
      for (let next = 1; next <= 20_000; next += 2000) {
        const [lease] = (await storage.claim({ limit: 1, leaseMs: 60_000, now: Date.now(), jobId: job.id })).leases;
        const links = Array.from({ length: 2000 }, (_, i) => ({ url: url(next + i), key: url(next + i), depth: 1, host }));
        await storage.complete(lease!, { result: result(lease!), links, now: Date.now() });
      }
      await client.query(`ANALYZE "${schema}".crawl_frontier`);
      try {
        await client.query(`LOAD 'auto_explain'`);
      } catch (error) {
        console.warn(`postgres plans: auto_explain cannot be loaded here (${(error as Error).message}); not checked`);
        return;
      }
      await client.query(`SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = 'notice'`);
      const plans: string[] = [];
      client.on('notice', (notice) => plans.push(notice.message ?? ''));
      const { leases } = await storage.claim({ limit: 10, leaseMs: 60_000, now: Date.now(), jobId: job.id });
      // The job is at maxPages: the new link is kept as a spare, the skipped one recorded; then a
      // page skipped for robots.txt gives its charge to the spare.
      const robots = { ok: false, error: { code: 'robots', message: 'r' } };
      const skipped = {
        link: { url: url(99_998), key: url(99_998), depth: 2, host },
        result: { ...result({ url: url(99_998), depth: 2, attempts: 0 }), ...robots },
      };
      const spare = { url: url(99_999), key: url(99_999), depth: 2, host };
      await storage.complete(leases[0]!, { result: result(leases[0]!), links: [spare], skipped: [skipped], now: Date.now() });
      await storage.complete(leases[2]!, { result: { ...result(leases[2]!), ...robots }, links: [], now: Date.now() });
      await storage.retry(leases[1]!, { notBefore: Date.now() + 1, error: { code: 'timeout', message: 't' }, now: Date.now() });
      await storage.release(leases.slice(3));
      await storage.claim({ limit: 10, leaseMs: 60_000, now: Date.now() + 10, jobId: job.id });
      await storage.readEvents(job.id, '1', 50);
      await storage.getJob(job.id);
      await client.query(`SET auto_explain.log_min_duration = -1`);
      const text = plans.join('\n');
      expect(text).toMatch(/Index Scan using crawl_frontier_ready/);
      expect(text).toMatch(/Index Scan using crawl_frontier_spare/);
      expect(text).not.toMatch(/Seq Scan on (\S+\.)?crawl_frontier\b/);
      const after = await storage.getJob(job.id);
      expect(after?.counts).toMatchObject({ discovered: 20_003, skipped: 2 });
    });
  }, 60_000);
});

(DATABASE_URL ? describe : describe.skip)('postgres retention (real server)', () => {
  test('the sweep finds due jobs through jobs_finished among 20,000 jobs, and deletes a job of 50,000 results and URLs in one short transaction', async () => {
    await withRealSchema(async ({ client, schema, storage }) => {
      const jobs = `"${schema}".crawl_jobs`;
      const T = Date.UTC(2030, 0, 1);
      // 20,000 jobs, 1 in 10 still running, the rest finished a second apart.
      await client.query(
        `INSERT INTO ${jobs} (id, status, url, options, metadata, created_at, finished_at, max_pages, per_host_concurrency, per_host_delay_ms)
         SELECT 'job_bulk_' || i, CASE WHEN i % 10 = 0 THEN 'running' ELSE 'completed' END, 'http://bulk.test/', '{}', '{}', $1,
                CASE WHEN i % 10 = 0 THEN NULL ELSE to_char(($2::timestamptz + i * interval '1 second') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END,
                10, 1, 0
         FROM generate_series(1, 20000) i`,
        [new Date(T).toISOString(), new Date(T).toISOString()],
      );
      // One big finished job: 50,000 frontier rows, results and (trimmed to 10,000) events' worth of rows.
      const big = jobRecord({ id: 'job_big', url: 'http://big.test/', createdAt: new Date(T).toISOString() });
      await storage.createJob(big, { url: big.url, key: big.url, depth: 0, host: 'big.test' });
      await client.query(`INSERT INTO "${schema}".crawl_frontier (job_id, url_key, url, depth, host, state)
        SELECT 'job_big', 'http://big.test/' || i, 'http://big.test/' || i, 1, 'big.test', 'done' FROM generate_series(1, 50000) i`);
      await client.query(
        `INSERT INTO "${schema}".crawl_results (job_id, result) SELECT 'job_big', jsonb_build_object('url', 'http://big.test/' || i) FROM generate_series(1, 50000) i`,
      );
      await client.query(`INSERT INTO "${schema}".crawl_events (job_id, id, event) SELECT 'job_big', i + 1, '{}' FROM generate_series(1, 10000) i`);
      await client.query(`ANALYZE ${jobs}`);
      try {
        await client.query(`LOAD 'auto_explain'`);
      } catch (error) {
        console.warn(`postgres retention plans: auto_explain cannot be loaded here (${(error as Error).message}); not checked`);
        return;
      }
      await client.query(`SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = 'notice'`);
      const plans: string[] = [];
      client.on('notice', (notice) => plans.push(notice.message ?? ''));
      expect(await storage.deleteFinishedJobs!({ finishedBefore: T + 100_000, limit: 50 })).toEqual({ deleted: 50 });
      await client.query(`SET auto_explain.log_min_duration = -1`);
      expect(plans.join('\n')).toMatch(/Index (Only )?Scan using crawl_jobs_finished/);
      // The oldest finishes went: jobs 1 to 55 but for the running 10, 20, ... 50.
      const left = await client.query(`SELECT count(*)::int AS n FROM ${jobs} WHERE id IN (SELECT 'job_bulk_' || i FROM generate_series(1, 56) i)`);
      expect(left.rows[0].n).toBe(6);

      await client.query(`UPDATE ${jobs} SET status = 'completed', finished_at = $1 WHERE id = 'job_big'`, [new Date(T).toISOString()]);
      const started = Date.now();
      expect(await storage.deleteJob!('job_big', T)).toEqual({ deleted: true, events: [] });
      const took = Date.now() - started;
      for (const table of ['frontier', 'results', 'events', 'hosts']) {
        const rows = await client.query(`SELECT count(*)::int AS n FROM "${schema}".crawl_${table} WHERE job_id = 'job_big'`);
        expect(rows.rows[0].n, table).toBe(0);
      }
      expect(took, 'deleting 110,000 rows of one job').toBeLessThan(20_000);
    });
  }, 120_000);
});
