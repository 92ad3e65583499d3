import { createServer } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodeHtml, decodeHtmlSliced } from '../src/crawl/charset.js';
import { createFetcher, parseRetryAfter } from '../src/crawl/fetcher.js';
import { html, serve, type TestServer } from './helpers/server.js';

/** Compressed once: compressing 50 MB inside the request took longer than a loaded machine's fetch timeout. */
const GZIP_BOMB = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20));

const fetcher = createFetcher({
  userAgent: 'test-agent/1',
  timeoutMs: 500,
  maxBytes: 64 * 1024,
  maxRedirects: 3,
  maxRetryAfterMs: 10_000,
  allowPrivateNetwork: ['127.0.0.1'],
});
const allowAll = () => null;
let site: TestServer;

beforeAll(async () => {
  site = await serve((req, res) => {
    const path = req.url ?? '/';
    const to = (status: number, location?: string) => {
      res.writeHead(status, location === undefined ? {} : { location });
      res.end();
    };
    switch (path) {
      case '/ok':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(html(`<p>ua=${req.headers['user-agent']}</p>`));
        return;
      case '/hang':
        return; // never answers
      case '/slow-body':
        res.writeHead(200, { 'content-type': 'text/html' });
        res.write('<p>start');
        return; // body never ends
      case '/big-stream': {
        res.writeHead(200, { 'content-type': 'text/html' });
        const chunk = 'x'.repeat(16 * 1024);
        let sent = 0;
        const pump = () => {
          while (sent < 10 * 1024 * 1024 && res.write(chunk)) sent += chunk.length;
          if (sent < 10 * 1024 * 1024) res.once('drain', pump);
          else res.end();
        };
        pump();
        return;
      }
      case '/big-declared':
        res.writeHead(200, { 'content-type': 'text/html', 'content-length': String(10 * 1024 * 1024) });
        res.end();
        return;
      case '/gzip':
        res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
        res.end(gzipSync(html('<h1>zipped</h1>')));
        return;
      case '/bomb':
        res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
        res.end(GZIP_BOMB);
        return;
      case '/r1':
        return to(301, '/r2');
      case '/r2':
        return to(302, `${site.origin}/ok`);
      case '/loop-a':
        return to(302, '/loop-b');
      case '/loop-b':
        return to(307, '/loop-a');
      case '/chain0':
      case '/chain1':
      case '/chain2':
      case '/chain3':
      case '/chain4':
        return to(302, `/chain${Number(path.slice(6)) + 1}`);
      case '/no-location':
        return to(302);
      case '/bad-location':
        return to(302, 'http://[oops');
      case '/pdf':
        res.writeHead(200, { 'content-type': 'application/pdf' });
        res.end('%PDF-1.4');
        return;
      case '/no-type':
        res.end('<html><title>untyped</title></html>');
        return;
      case '/latin1':
        res.writeHead(200, { 'content-type': 'text/html; charset=ISO-8859-1' });
        res.end(Buffer.from('<title>caf\xe9</title>', 'latin1'));
        return;
      case '/404':
        res.writeHead(404, { 'content-type': 'text/html' });
        res.end('nope');
        return;
      case '/503':
        res.writeHead(503, { 'retry-after': '3' });
        res.end();
        return;
      case '/429-long':
        res.writeHead(429, { 'retry-after': '86400' });
        res.end();
        return;
      default:
        res.writeHead(404);
        res.end();
    }
  });
});

afterAll(async () => {
  await fetcher.close();
  await site.close();
});

describe('fetcher', () => {
  test('fetches HTML with the configured user agent', async () => {
    const got = await fetcher.fetch(`${site.origin}/ok`, allowAll);
    expect(got.error).toBeNull();
    expect(got.status).toBe(200);
    expect(got.html).toContain('ua=test-agent/1');
  });

  test('a server that never answers ends in a transient timeout within timeoutMs', async () => {
    const started = Date.now();
    const got = await fetcher.fetch(`${site.origin}/hang`, allowAll);
    expect(got.error).toMatchObject({ code: 'timeout', transient: true });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('a body that never ends times out too (the timeout covers the whole request)', async () => {
    const got = await fetcher.fetch(`${site.origin}/slow-body`, allowAll);
    expect(got.error).toMatchObject({ code: 'timeout' });
  });

  test('the byte cap is enforced while streaming, and on content-length', async () => {
    expect((await fetcher.fetch(`${site.origin}/big-stream`, allowAll)).error).toMatchObject({ code: 'too_large', transient: false });
    expect((await fetcher.fetch(`${site.origin}/big-declared`, allowAll)).error).toMatchObject({ code: 'too_large' });
  });

  test('gzip bodies are decoded, and a gzip bomb stops at the decoded cap', async () => {
    expect((await fetcher.fetch(`${site.origin}/gzip`, allowAll)).html).toContain('zipped');
    expect((await fetcher.fetch(`${site.origin}/bomb`, allowAll)).error).toMatchObject({ code: 'too_large' });
  });

  test('redirects are followed by hand, and every hop is checked', async () => {
    const hops: string[] = [];
    const got = await fetcher.fetch(`${site.origin}/r1`, (url) => {
      hops.push(url);
      return null;
    });
    expect(got.error).toBeNull();
    expect(got.finalUrl).toBe(`${site.origin}/ok`);
    expect(hops).toEqual([`${site.origin}/r2`, `${site.origin}/ok`]);
    const refused = await fetcher.fetch(`${site.origin}/r1`, (url) => (url.endsWith('/ok') ? 'not allowed' : null));
    expect(refused.error).toMatchObject({ code: 'blocked' });
    expect(refused.error?.message).toContain('not allowed');
  });

  test('redirect loops, long chains and bad Location headers get their own codes', async () => {
    expect((await fetcher.fetch(`${site.origin}/loop-a`, allowAll)).error?.code).toBe('redirect_loop');
    expect((await fetcher.fetch(`${site.origin}/chain0`, allowAll)).error?.code).toBe('too_many_redirects');
    expect((await fetcher.fetch(`${site.origin}/no-location`, allowAll)).error?.code).toBe('bad_redirect');
    expect((await fetcher.fetch(`${site.origin}/bad-location`, allowAll)).error?.code).toBe('bad_redirect');
  });

  test('non-HTML is recorded without reading the body; a missing type is sniffed', async () => {
    const pdf = await fetcher.fetch(`${site.origin}/pdf`, allowAll);
    expect(pdf.error?.code).toBe('not_html');
    expect(pdf.contentType).toBe('application/pdf');
    expect(pdf.html).toBeNull();
    expect((await fetcher.fetch(`${site.origin}/no-type`, allowAll)).html).toContain('untyped');
  });

  test('the charset of the content-type header is honoured', async () => {
    expect((await fetcher.fetch(`${site.origin}/latin1`, allowAll)).html).toBe('<title>café</title>');
  });

  test('HTTP errors: 404 is permanent, 503 transient with Retry-After, long Retry-After is capped', async () => {
    expect((await fetcher.fetch(`${site.origin}/404`, allowAll)).error).toMatchObject({ code: 'http_error', transient: false });
    expect((await fetcher.fetch(`${site.origin}/503`, allowAll)).error).toMatchObject({ code: 'http_error', transient: true, retryAfterMs: 3000 });
    expect((await fetcher.fetch(`${site.origin}/429-long`, allowAll)).error).toMatchObject({ transient: true, retryAfterMs: 10_000 });
  });

  test('a refused connection is a transient network error', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const got = await fetcher.fetch(`http://127.0.0.1:${port}/`, allowAll);
    expect(got.error).toMatchObject({ code: 'network', transient: true });
    expect(got.status).toBeNull();
  });
});

describe('decoding helpers', () => {
  test('a <meta charset> is honoured when the header has none', () => {
    const bytes = Buffer.from('<meta charset="windows-1252"><p>\x93quoted\x94</p>', 'latin1');
    expect(decodeHtml(bytes, 'text/html')).toContain('\u201cquoted\u201d');
    expect(decodeHtml(Buffer.from('<p>\xff</p>', 'latin1'), 'text/html; charset=nonsense')).toContain('\ufffd');
  });

  test('a body held as chunks decodes as the joined bytes would, with characters split across chunks, in every charset', async () => {
    const cases: Array<[string, Buffer, string | null]> = [
      ['utf-8', Buffer.from('\ufeff<title>caf\u00e9 \u{1F600} \u4e2d\u6587</title>', 'utf8'), 'text/html; charset=utf-8'],
      ['meta windows-1252', Buffer.from('<meta charset="windows-1252"><p>\x93quoted\x94 \xe9</p>', 'latin1'), 'text/html'],
      ['shift_jis', Buffer.from([0x3c, 0x70, 0x3e, 0x93, 0xfa, 0x96, 0x7b, 0x8c, 0xea, 0x3c, 0x2f, 0x70, 0x3e]), 'text/html; charset=shift_jis'],
      ['unknown label', Buffer.from('<p>\xff\xfe ok</p>', 'latin1'), 'text/html; charset=nonsense'],
      ['no header', Buffer.from('<p>\u00e9\u00e8</p>', 'utf8'), null],
      ['utf-16le with its BOM', Buffer.from('\ufeff<p>\u00e9 \u{1F600}</p>', 'utf16le'), 'text/html; charset=utf-16le'],
      // Ends inside a character: a replacement character, as when decoded at once.
      ['utf-8 cut short', Buffer.from([0x3c, 0x70, 0x3e, 0x41, 0xe2, 0x82]), 'text/html; charset=utf-8'],
      // Invalid sequences of legacy multi-byte charsets that Node's streaming decoder throws on.
      ['euc-jp, invalid', Buffer.from([0x3c, 0x70, 0x3e, 0x8f, 0xef, 0x3c]), 'text/html; charset=euc-jp'],
      ['gb18030, invalid', Buffer.from([0x3c, 0x70, 0x3e, 0x9f, 0x30, 0x7f]), 'text/html; charset=gb18030'],
      ['iso-2022-jp, invalid', Buffer.from([0x3c, 0x70, 0x3e, 0x1b, 0x24, 0x80]), 'text/html; charset=iso-2022-jp'],
    ];
    for (const [what, bytes, contentType] of cases) {
      const whole = decodeHtml(bytes, contentType);
      // Every way of cutting the body in two, and one byte per chunk.
      for (let cut = 0; cut <= bytes.length; cut++) {
        expect(await decodeHtmlSliced([bytes.subarray(0, cut), bytes.subarray(cut)], contentType), `${what} cut at ${cut}`).toBe(whole);
      }
      expect(
        await decodeHtmlSliced(
          [...bytes].map((b) => Buffer.from([b])),
          contentType,
        ),
        what,
      ).toBe(whole);
    }
    expect(decodeHtml(Buffer.from('<p>\u00e9</p>', 'utf8'), null)).toBe('<p>\u00e9</p>');
    expect(decodeHtml(Buffer.from([0x41, 0xe2, 0x82]), 'text/html')).toBe('A\ufffd');
    expect(await decodeHtmlSliced([], 'text/html')).toBe('');
  });

  test('a multi-megabyte body is decoded a piece at a time, with the event loop free between pieces', async () => {
    // 3 MB in one chunk (a decompressed body) and in 64 KB chunks (as sockets deliver it).
    const text = `<p>${'\u00e9t\u00e9 '.repeat(500_000)}</p>`;
    const bytes = Buffer.from(text, 'utf8');
    const chunked = Array.from({ length: Math.ceil(bytes.length / 65_536) }, (_, i) => bytes.subarray(i * 65_536, (i + 1) * 65_536));
    for (const chunks of [[bytes], chunked]) {
      // Counts the turns of the event loop the decode leaves to others.
      let turns = 0;
      let done = false;
      const tick = () => {
        turns++;
        if (!done) setImmediate(tick);
      };
      setImmediate(tick);
      try {
        expect(await decodeHtmlSliced(chunks, 'text/html', 0)).toBe(text);
      } finally {
        done = true;
      }
      // In one go it would leave none; with 0 ms slices it yields before every piece of at most 256 KB.
      expect(turns).toBeGreaterThanOrEqual(Math.ceil(bytes.length / (256 * 1024)));
    }
  });

  test('Retry-After takes seconds or an HTTP date', () => {
    expect(parseRetryAfter('120')).toBe(120_000);
    expect(parseRetryAfter(new Date(Date.now() + 5000).toUTCString(), Date.now())).toBeGreaterThan(3000);
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });
});
