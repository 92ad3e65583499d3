/**
 * The fetcher decodes an unencoded page from the chunks it arrived in (charset.ts
 * decodeHtmlSliced), not from one buffer they were copied into; an encoded page is decompressed
 * into one buffer first.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import { createFetcher } from '../src/crawl/fetcher.js';
import { serve, type TestServer } from './helpers/server.js';

const decoded = vi.hoisted(() => [] as number[]);
vi.mock('../src/crawl/charset.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../src/crawl/charset.js')>();
  return {
    ...actual,
    decodeHtmlSliced: (chunks: readonly Uint8Array[], contentType: string | null, sliceMs?: number) => {
      decoded.push(chunks.length);
      return actual.decodeHtmlSliced(chunks, contentType, sliceMs);
    },
  };
});

// 2 MB of text with a character of 2, 3 and 4 bytes every few bytes, so that writes of 64 KB + 1
// split characters.
const TEXT = `<!doctype html><title>t</title><p>${'é€😀 abc '.repeat(150_000)}</p>`;
const BODY = Buffer.from(TEXT, 'utf8');
let site: TestServer;

beforeAll(async () => {
  site = await serve(async (req, res) => {
    if (req.url === '/gzip') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-encoding': 'gzip' });
      return res.end(gzipSync(BODY));
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    for (let at = 0; at < BODY.length; at += 65_537) {
      res.write(BODY.subarray(at, at + 65_537));
      await new Promise((resolve) => setImmediate(resolve));
    }
    res.end();
  });
});
afterAll(() => site.close());

test('a page is decoded from the chunks it arrived in, characters split between them whole; a gzip page from one buffer', async () => {
  const fetcher = createFetcher({
    userAgent: 'test/1',
    timeoutMs: 10_000,
    maxBytes: 4 * 1024 * 1024,
    maxRedirects: 0,
    maxRetryAfterMs: 0,
    allowPrivateNetwork: ['127.0.0.1'],
  });
  try {
    const plain = await fetcher.fetch(`${site.origin}/chunked`, () => null);
    expect(plain.error).toBeNull();
    expect(plain.html === TEXT).toBe(true);
    expect(decoded).toHaveLength(1);
    expect(decoded[0]).toBeGreaterThan(1);
    const gzip = await fetcher.fetch(`${site.origin}/gzip`, () => null);
    expect(gzip.html === TEXT).toBe(true);
    expect(decoded[1]).toBe(1);
  } finally {
    await fetcher.close();
  }
});
