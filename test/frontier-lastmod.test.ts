import { describe, expect, test } from 'vitest';
import { LASTMOD_MAX_LENGTH } from '../src/core/constants.js';
import { storable, storableLink } from '../src/core/processor/results.js';
import type { FrontierLink, SkippedLink } from '../src/core/storage.js';
import type { PageResult } from '../src/core/types.js';

const link = (path: string, lastmod?: string): FrontierLink => ({
  url: `http://example.test${path}`,
  key: `http://example.test${path}`,
  depth: 1,
  host: 'example.test',
  ...(lastmod === undefined ? {} : { lastmod }),
});

const page: PageResult = {
  url: 'http://example.test/',
  finalUrl: 'http://example.test/',
  depth: 0,
  status: 200,
  ok: true,
  contentType: 'text/html',
  title: null,
  description: null,
  canonical: null,
  links: 0,
  wordCount: 0,
  error: null,
  attempts: 1,
  durationMs: 1,
  fetchedAt: new Date(0).toISOString(),
  data: null,
};

describe('a frontier link’s lastmod at the storage boundary', () => {
  test('a lastmod of at most 64 units is kept as it is, and a link without one is handed on untouched', () => {
    const plain = link('/a');
    expect(storableLink(plain)).toBe(plain);
    const dated = link('/b', '2030-01-02T03:04:05Z');
    expect(storableLink(dated)).toBe(dated);
    const full = link('/c', 'x'.repeat(LASTMOD_MAX_LENGTH));
    expect(storableLink(full)).toBe(full);
    expect(LASTMOD_MAX_LENGTH).toBe(64);
  });

  test('a longer lastmod is cut to 64 units, never inside a surrogate pair', () => {
    expect(storableLink(link('/a', `${'2'.repeat(64)}overflow`))).toEqual(link('/a', '2'.repeat(64)));
    // A pair that would straddle the cut is left out whole: 63 units, well-formed.
    const cut = storableLink(link('/a', `${'x'.repeat(63)}😀tail`)).lastmod!;
    expect(cut).toBe('x'.repeat(63));
  });

  test('a lastmod is made storable (a NUL or a lone surrogate becomes U+FFFD) and an empty one is left out', () => {
    expect(storableLink(link('/a', '2030\u0000-01'))).toEqual(link('/a', '2030\uFFFD-01'));
    expect(storableLink(link('/a', '2030\uD800'))).toEqual(link('/a', '2030\uFFFD'));
    const empty = storableLink(link('/a', ''));
    expect(empty).toEqual(link('/a'));
    expect('lastmod' in empty).toBe(false);
  });

  test('storable() bounds the lastmod of the links and of the skipped links it hands to storage', () => {
    const long = 'y'.repeat(100);
    const skipped: SkippedLink[] = [{ link: link('/s', long), result: { ...page, url: 'http://example.test/s' } }];
    const out = storable(page, [link('/a', long), link('/b')], skipped);
    expect(out.links).toEqual([link('/a', 'y'.repeat(64)), link('/b')]);
    expect(out.skipped[0]!.link.lastmod).toBe('y'.repeat(64));
    // Links without a lastmod: the same arrays, not copies.
    const plain = [link('/a')];
    expect(storable(page, plain, []).links).toBe(plain);
  });
});
