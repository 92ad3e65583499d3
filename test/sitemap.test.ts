import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createFetcher, type Fetcher } from '../src/crawl/fetcher.js';
import { cleanLastmod, readSitemaps, type SitemapReading, sitemapsInRobots } from '../src/crawl/sitemap.js';
import { serve, type TestServer } from './helpers/server.js';

type Route = (req: IncomingMessage, res: ServerResponse) => void;
const xml = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
const urlset = (entries: string[]) =>
  xml(`<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">${entries.map((e) => `<url><loc>${e}</loc></url>`).join('\n')}</urlset>`);
const index = (locs: string[]) =>
  xml(`<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">${locs.map((l) => `<sitemap><loc>${l}</loc></sitemap>`).join('')}</sitemapindex>`);
const send =
  (body: string | Buffer, type = 'application/xml', headers: Record<string, string> = {}): Route =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': type, ...headers });
    res.end(body);
  };

let routes: Record<string, Route> = {};
let site: TestServer;
let fetcher: Fetcher;

beforeAll(async () => {
  site = await serve((req, res) => {
    const route = routes[req.url ?? '/'];
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    route(req, res);
  });
  fetcher = createFetcher({ userAgent: 'test', timeoutMs: 3000, maxBytes: 5 * 1024 * 1024, maxRedirects: 5, maxRetryAfterMs: 1000, allowPrivateNetwork: true });
  // Loads undici and htmlparser2 (and warms their code up), so that stalls measured below are the reading's own.
  routes['/sitemap.xml'] = send(urlset(Array.from({ length: 5000 }, (_, i) => `${site.origin}/w${i}`)));
  await readSitemaps({ fetcher, startUrl: site.url, maxUrls: 10_000, deadline: Date.now() + 10_000 });
});
afterAll(async () => {
  await fetcher.close();
  await site.close();
});
afterEach(() => {
  routes = {};
  site.requests.length = 0;
});

const read = (options: Partial<Parameters<typeof readSitemaps>[0]> = {}): Promise<SitemapReading> =>
  readSitemaps({ fetcher, startUrl: site.url, maxUrls: 100_000, deadline: Date.now() + 10_000, ...options });

/** Largest event-loop stall while `work` runs, sampled every 5 ms. */
async function maxStall<T>(work: () => Promise<T>): Promise<{ value: T; stallMs: number }> {
  let last = performance.now();
  let stallMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 5);
  try {
    const value = await work();
    return { value, stallMs };
  } finally {
    clearInterval(timer);
  }
}

describe('discovery and formats', () => {
  test('robots.txt Sitemap: lines (any group, relative resolved, each once)', () => {
    const text =
      'User-agent: *\nDisallow: /x\nSitemap: https://a.example/s1.xml\nsitemap:/s2.xml # comment\nSITEMAP: https://a.example/s1.xml\nSitemap: ftp://no\n';
    expect(sitemapsInRobots(text, 'https://a.example/')).toEqual(['https://a.example/s1.xml', 'https://a.example/s2.xml']);
  });

  test('lastmod: W3C datetimes kept, anything else dropped', () => {
    expect(cleanLastmod(' 2024-05-01 ')).toBe('2024-05-01');
    expect(cleanLastmod('2024-05-01T10:20:30+02:00')).toBe('2024-05-01T10:20:30+02:00');
    expect(cleanLastmod('2024-05-01T10:20:30.123Z')).toBe('2024-05-01T10:20:30.123Z');
    expect(cleanLastmod('yesterday')).toBeUndefined();
    expect(cleanLastmod(`2024-${'1'.repeat(80)}`)).toBeUndefined();
  });

  test('robots.txt lists an index of a gzip urlset, a text sitemap and an XML urlset with lastmod', async () => {
    routes['/robots.txt'] = send(`User-agent: *\nAllow: /\nSitemap: ${site.origin}/index.xml\nSitemap: ${site.origin}/list.txt`, 'text/plain');
    routes['/index.xml'] = send(index([`${site.origin}/a.xml.gz`, `${site.origin}/b.xml`]));
    routes['/a.xml.gz'] = send(gzipSync(urlset([`${site.origin}/a1`, `${site.origin}/a2?x=1&amp;y=2`])), 'application/gzip');
    routes['/b.xml'] = send(
      xml(
        `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"><url><loc> ${site.origin}/b1 </loc><lastmod>2024-03-04</lastmod><image:image><image:loc>${site.origin}/img.png</image:loc></image:image></url><url><loc><![CDATA[${site.origin}/b2]]></loc><lastmod>not a date</lastmod></url></urlset>`,
      ),
    );
    routes['/list.txt'] = send(`${site.origin}/t1\r\n\n  ${site.origin}/t2  \nnot a url\n${site.origin}/a1\n`, 'text/plain');
    const reading = await read();
    expect(reading.urls).toEqual([
      { url: `${site.origin}/t1` },
      { url: `${site.origin}/t2` },
      { url: `${site.origin}/a1` },
      { url: `${site.origin}/a2?x=1&y=2` },
      { url: `${site.origin}/b1`, lastmod: '2024-03-04' },
      { url: `${site.origin}/b2` },
    ]);
    expect(reading.read).toEqual([`${site.origin}/index.xml`, `${site.origin}/list.txt`, `${site.origin}/a.xml.gz`, `${site.origin}/b.xml`]);
    expect(reading.errors).toEqual([]);
    expect(reading.truncated).toBe(false);
  });

  test('without Sitemap: lines, /sitemap.xml; gzip content-encoding; accept and maxUrls bound what is kept', async () => {
    routes['/sitemap.xml'] = send(gzipSync(urlset(Array.from({ length: 20 }, (_, i) => `${site.origin}/p${i}`))), 'application/xml', {
      'content-encoding': 'gzip',
    });
    const reading = await read({ maxUrls: 3, accept: (url) => !url.pathname.endsWith('1') });
    expect(reading.urls.map((u) => u.url)).toEqual([`${site.origin}/p0`, `${site.origin}/p2`, `${site.origin}/p3`]);
    expect(reading.truncated).toBe(true);
  });

  test('no sitemap at all: a clear 404 problem, no URLs', async () => {
    const reading = await read();
    expect(reading.urls).toEqual([]);
    expect(reading.errors).toEqual([{ url: `${site.origin}/sitemap.xml`, code: 'http_error', message: `sitemap ${site.origin}/sitemap.xml: HTTP 404` }]);
  });

  test('an HTML page at /sitemap.xml is not a sitemap', async () => {
    routes['/sitemap.xml'] = send('<!doctype html><html><body><a href="/x">x</a></body></html>', 'text/html');
    const reading = await read();
    expect(reading.urls).toEqual([]);
    expect(reading.errors[0]).toMatchObject({ code: 'invalid_sitemap', message: expect.stringContaining('root element is <html>') });
  });
});

describe('hostile sitemaps end with a clear error, bounded memory and time, the loop responsive', () => {
  test('billion laughs: entities are never expanded, the file is refused', async () => {
    const lols = Array.from({ length: 10 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`).join('\n');
    routes['/sitemap.xml'] = send(
      `<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol0 "lol">\n${lols}\n]>\n<urlset><url><loc>${site.origin}/&lol10;</loc></url></urlset>`,
    );
    const before = process.memoryUsage().heapUsed;
    const { value: reading, stallMs } = await maxStall(() => read());
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(50 * 1024 * 1024);
    expect(reading.urls).toEqual([]);
    expect(reading.errors).toEqual([
      {
        url: `${site.origin}/sitemap.xml`,
        code: 'invalid_sitemap',
        message: `sitemap ${site.origin}/sitemap.xml declares XML entities (<!ENTITY>); refused (entities are never expanded)`,
      },
    ]);
    expect(stallMs).toBeLessThan(200);
  });

  test('an external entity is never fetched', async () => {
    routes['/sitemap.xml'] = send(
      `<?xml version="1.0"?><!DOCTYPE u [<!ENTITY ext SYSTEM "${site.origin}/secret">]><urlset><url><loc>&ext;</loc></url></urlset>`,
    );
    routes['/secret'] = send('http://127.0.0.1/leaked', 'text/plain');
    const reading = await read();
    expect(reading.urls).toEqual([]);
    expect(reading.errors[0]?.code).toBe('invalid_sitemap');
    expect(site.requests).not.toContain('/secret');
  });

  test('50,000 URLs are read whole; a 60,000-URL file stops at 50,000 with too_many_urls', async () => {
    const many = (n: number, tag: string) => urlset(Array.from({ length: n }, (_, i) => `${site.origin}/${tag}/page-${i}`));
    routes['/robots.txt'] = send(`Sitemap: ${site.origin}/fifty.xml\nSitemap: ${site.origin}/sixty.xml\n`, 'text/plain');
    routes['/fifty.xml'] = send(Buffer.from(many(50_000, 'f')));
    routes['/sixty.xml'] = send(gzipSync(many(60_000, 's')), 'application/x-gzip');
    // Once to warm the code up; stalls of a first run are mostly the JIT's.
    await read({ maxUrls: 150_000 });
    const started = performance.now();
    const { value: reading, stallMs } = await maxStall(() => read({ maxUrls: 150_000 }));
    const ms = performance.now() - started;
    expect(reading.urls.length).toBe(100_000);
    expect(reading.urls.at(-1)!.url).toBe(`${site.origin}/s/page-49999`);
    expect(reading.errors).toEqual([
      {
        url: `${site.origin}/sixty.xml`,
        code: 'too_many_urls',
        message: `sitemap ${site.origin}/sixty.xml lists more than 50000 URLs (the protocol's limit); the rest are ignored`,
      },
    ]);
    // Parsing 10 MB of XML unsliced would block for about a second; a major GC of the test
    // process's heap can take ~100 ms on its own.
    expect(stallMs).toBeLessThan(250);
    expect(ms).toBeLessThan(10_000);
  });

  test('two indexes listing each other are each read once (sitemap_loop)', async () => {
    routes['/sitemap.xml'] = send(index([`${site.origin}/b.xml`, `${site.origin}/u.xml`]));
    routes['/b.xml'] = send(index([`${site.origin}/sitemap.xml`]));
    routes['/u.xml'] = send(urlset([`${site.origin}/one`]));
    const reading = await read();
    expect(reading.urls).toEqual([{ url: `${site.origin}/one` }]);
    expect(reading.errors).toEqual([
      {
        url: `${site.origin}/b.xml`,
        code: 'sitemap_loop',
        message: `sitemap index ${site.origin}/b.xml lists ${site.origin}/sitemap.xml, which was already read or queued (a loop between indexes); read once`,
      },
    ]);
    expect(site.requests.filter((p) => p === '/sitemap.xml')).toHaveLength(1);
  });

  test('nesting past 3 indexes is not followed (too_deep); an index of 1,000 sitemaps reads 50 files', async () => {
    for (let i = 0; i < 6; i++) routes[i === 0 ? '/sitemap.xml' : `/d${i}.xml`] = send(index([`${site.origin}/d${i + 1}.xml`]));
    let reading = await read();
    expect(reading.read).toHaveLength(4);
    expect(reading.errors).toEqual([
      { url: `${site.origin}/d4.xml`, code: 'too_deep', message: `sitemap ${site.origin}/d4.xml is listed 4 indexes deep (at most 3 are followed); not read` },
    ]);

    routes = { '/sitemap.xml': send(index(Array.from({ length: 1000 }, (_, i) => `${site.origin}/m${i}.xml`))) };
    for (let i = 0; i < 1000; i++) routes[`/m${i}.xml`] = send(urlset([`${site.origin}/m/${i}`]));
    site.requests.length = 0;
    reading = await read();
    expect(site.requests.filter((p) => p.startsWith('/m'))).toHaveLength(49);
    expect(reading.urls).toHaveLength(49);
    expect(reading.errors).toEqual([
      {
        url: `${site.origin}/sitemap.xml`,
        code: 'too_many_sitemaps',
        message: `more than 50 sitemap files; ${site.origin}/m49.xml and those after it are not read`,
      },
    ]);
  });

  test('gzip bomb (1 GiB of zeros, ~1 MB compressed): too_large after 50 MB, bounded memory', async () => {
    const zeros = Buffer.alloc(64 * 1024 * 1024);
    const chunk = gzipSync(zeros, { level: 9 });
    // Sixteen 64 MiB members: gunzip reads concatenated members as one stream of 1 GiB.
    const bomb = Buffer.concat(Array.from({ length: 16 }, () => chunk));
    expect(bomb.length).toBeLessThan(2 * 1024 * 1024);
    routes['/sitemap.xml'] = send(bomb, 'application/gzip');
    global.gc?.();
    const before = process.memoryUsage().rss;
    const started = performance.now();
    const { value: reading, stallMs } = await maxStall(() => read());
    expect(performance.now() - started).toBeLessThan(5000);
    expect(process.memoryUsage().rss - before).toBeLessThan(150 * 1024 * 1024);
    expect(reading.urls).toEqual([]);
    expect(reading.errors).toEqual([
      { url: `${site.origin}/sitemap.xml`, code: 'too_large', message: `sitemap ${site.origin}/sitemap.xml: gunzipped body is larger than 52428800 bytes` },
    ]);
    expect(stallMs).toBeLessThan(200);
  });

  test('a server that hangs mid-file: timeout, URLs read before it kept; the deadline bounds the whole reading', async () => {
    routes['/robots.txt'] = send(`Sitemap: ${site.origin}/slow.xml\nSitemap: ${site.origin}/never.xml\n`, 'text/plain');
    routes['/slow.xml'] = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.write(`<urlset><url><loc>${site.origin}/early</loc></url>`);
      // …and nothing more.
    };
    routes['/never.xml'] = send(urlset([`${site.origin}/late`]));
    const started = Date.now();
    const reading = await read({ deadline: Date.now() + 1000 });
    expect(Date.now() - started).toBeLessThan(2500);
    expect(reading.urls).toEqual([{ url: `${site.origin}/early` }]);
    expect(reading.errors.map((e) => e.code)).toEqual(['timeout']);
    expect(reading.errors[0]!.message).toContain('no complete response within timeoutMs');
    expect(site.requests).not.toContain('/never.xml');
  });

  test('a 4 MB <loc> and a 4 MB text line are dropped without holding them', async () => {
    routes['/robots.txt'] = send(`Sitemap: ${site.origin}/long.xml\nSitemap: ${site.origin}/long.txt\n`, 'text/plain');
    routes['/long.xml'] = send(urlset([`${site.origin}/${'a'.repeat(4_000_000)}`, `${site.origin}/ok1`]));
    routes['/long.txt'] = send(`${site.origin}/${'b'.repeat(4_000_000)}\n${site.origin}/ok2\n`, 'text/plain');
    const reading = await read();
    expect(reading.urls).toEqual([{ url: `${site.origin}/ok1` }, { url: `${site.origin}/ok2` }]);
  });

  test('a private address is refused by the fetcher guard like any page', async () => {
    const guarded = createFetcher({
      userAgent: 'test',
      timeoutMs: 2000,
      maxBytes: 1024 * 1024,
      maxRedirects: 5,
      maxRetryAfterMs: 1000,
      allowPrivateNetwork: false,
    });
    try {
      const reading = await readSitemaps({ fetcher: guarded, startUrl: site.url, maxUrls: 10, deadline: Date.now() + 5000 });
      expect(reading.urls).toEqual([]);
      expect(reading.errors[0]?.code).toBe('blocked');
      expect(site.requests).toEqual([]);
    } finally {
      await guarded.close();
    }
  });
});
