import { describe, expectTypeOf, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import {
  createCrawlEngine,
  type CrawlEngineError,
  type CrawlStorage,
  type Job,
  type JobInput,
  type JobLink,
  type MapResult,
  type PageLink,
  type PageResult,
  type ProgressEvent,
  type RunReport,
} from '../src/index.js';
import { runStorageConformance } from '../src/testing/index.js';

describe('public API types', () => {
  const engine = createCrawlEngine({ storage: memoryStorage() });

  test('jobs API', () => {
    expectTypeOf(engine.jobs.create).parameter(0).toEqualTypeOf<JobInput>();
    expectTypeOf(engine.jobs.create).returns.resolves.toEqualTypeOf<Job>();
    expectTypeOf(engine.jobs.get).returns.resolves.toEqualTypeOf<Job | null>();
    expectTypeOf(engine.jobs.results).returns.resolves.toEqualTypeOf<{ items: PageResult[]; nextCursor: string | null }>();
    expectTypeOf(engine.jobs.links).returns.resolves.toEqualTypeOf<{ items: JobLink[]; nextCursor: string | null }>();
    expectTypeOf(engine.jobs.links).parameter(1).toEqualTypeOf<{ broken?: boolean; limit?: number; cursor?: string | null } | undefined>();
    expectTypeOf<JobLink>().toMatchTypeOf<PageLink & { from: string; status: number | null }>();
    expectTypeOf<PageResult['outlinks']>().toEqualTypeOf<PageLink[] | undefined>();
    expectTypeOf<JobInput>().toHaveProperty('url').toEqualTypeOf<string>();
    expectTypeOf<Job['status']>().toEqualTypeOf<'queued' | 'running' | 'completed' | 'cancelled' | 'failed'>();
    // @ts-expect-error scope is a closed union
    void engine.jobs.create({ url: 'https://example.com', scope: 'planet' });
  });

  test('sitemaps and map', () => {
    expectTypeOf<JobInput['sitemap']>().toEqualTypeOf<'include' | 'only' | 'skip' | undefined>();
    expectTypeOf(engine.map).returns.resolves.toEqualTypeOf<MapResult>();
    expectTypeOf<MapResult['urls'][number]>().toEqualTypeOf<{ url: string; lastmod?: string }>();
    expectTypeOf<NonNullable<PageResult['sitemaps']>['errors'][number]>().toMatchTypeOf<{ url: string; code: string; message: string }>();
    // @ts-expect-error sitemap is a closed union
    void engine.map('https://example.com', { sitemap: 'all' });
  });

  test('processor and events', () => {
    expectTypeOf(engine.processor.run).returns.resolves.toEqualTypeOf<RunReport>();
    engine.events.on('page:done', (event) => {
      expectTypeOf(event).toEqualTypeOf<ProgressEvent>();
    });
    // @ts-expect-error unknown event names are refused
    engine.events.on('page:exploded', () => undefined);
    expectTypeOf(engine.progress.subscribe('id')).toEqualTypeOf<AsyncIterable<ProgressEvent>>();
  });

  test('adapters, errors and the conformance suite', () => {
    expectTypeOf(memoryStorage()).toEqualTypeOf<CrawlStorage>();
    expectTypeOf<CrawlEngineError['code']>().toEqualTypeOf<'invalid_input' | 'invalid_options' | 'not_found' | 'conflict' | 'storage_error' | 'unsupported'>();
    expectTypeOf(runStorageConformance).parameter(0).toHaveProperty('storage').toEqualTypeOf<() => CrawlStorage | Promise<CrawlStorage>>();
  });
});
