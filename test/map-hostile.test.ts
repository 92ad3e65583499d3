// Hostile sites against engine.map() and sitemap reading: the private-network guard on every new fetch path, the event loop and the time bound.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import { html, serve, type TestServer } from './helpers/server.js';

/** A server on 127.0.0.2, which the engines below are not allowed to reach: it must see no request. */
let forbidden: TestServer;
let site: TestServer;
beforeAll(async () => {
  forbidden = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.end('<urlset><url><loc>http://127.0.0.2/secret</loc></url></urlset>');
  }, '127.0.0.2');
  site = await serve((req, res) => {
    const f = forbidden.origin;
    const o = site.origin;
    if (req.url === '/robots.txt') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`Sitemap: ${f}/direct.xml\nSitemap: ${o}/redirect.xml\nSitemap: ${o}/index.xml\n`);
    } else if (req.url === '/redirect.xml') {
      res.writeHead(302, { location: `${f}/redirected.xml` });
      res.end();
    } else if (req.url === '/index.xml') {
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(`<sitemapindex><sitemap><loc>${f}/listed.xml</loc></sitemap><sitemap><loc>${o}/ok.xml</loc></sitemap></sitemapindex>`);
    } else if (req.url === '/ok.xml') {
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(`<urlset><url><loc>${o}/a</loc></url></urlset>`);
    } else {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html(''));
    }
  });
});
afterAll(async () => {
  await site.close();
  await forbidden.close();
});

describe('the private-network guard on sitemap and map fetches', () => {
  test('robots.txt Sitemap: lines, redirects and index entries pointing at a refused address are blocked without connecting', async () => {
    const engine = createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 3000 } });
    const result = await engine.map(site.url, { sitemap: 'only', scope: 'any' });
    await engine.close();
    expect(forbidden.requests).toEqual([]);
    expect(result.urls.map((u) => u.url)).toEqual([site.url, `${site.origin}/a`]);
    const blocked = result.sitemaps!.errors.filter((e) => e.code === 'blocked').map((e) => e.url);
    expect(blocked.sort()).toEqual([`${forbidden.origin}/direct.xml`, `${forbidden.origin}/listed.xml`, `${site.origin}/redirect.xml`].sort());
  });
});

describe('the event loop while a hostile site is mapped', () => {
  test('robots.txt with 30,000 rules and a sitemap of 50,000 URLs: no turn of the event loop blocked for long, and the map ends within timeoutMs', async () => {
    const rules = Array.from({ length: 30_000 }, (_, i) => `Disallow: /n${i}`).join('\n');
    const urls = Array.from({ length: 50_000 }, (_, i) => `<url><loc>http://127.0.0.1:${0}/p${i}</loc></url>`);
    let body = '';
    const hostile = await serve((req, res) => {
      if (req.url === '/robots.txt') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`Sitemap: ${hostile.origin}/sm.xml\nUser-agent: *\n${rules}\n`);
      } else if (req.url === '/sm.xml') {
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(body);
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(html(''));
      }
    });
    body = `<urlset>${urls.join('').replaceAll('http://127.0.0.1:0', hostile.origin)}</urlset>`;
    const engine = createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: true, timeoutMs: 20_000 } });
    const delay = monitorEventLoopDelay({ resolution: 5 });
    try {
      delay.enable();
      const started = Date.now();
      const result = await engine.map(hostile.url, { limit: 100_000, sitemap: 'only', timeoutMs: 5000 });
      const took = Date.now() - started;
      delay.disable();
      // Longest turn: well under a second (slices are 10 ms; parsing and compiling the 30,000 rules take one turn of ~100 ms).
      expect(delay.max / 1e6).toBeLessThan(400);
      expect(took).toBeLessThan(7000);
      // Either every URL (a fast machine) or those judged in time, with a timeout.
      if (result.urls.length < 50_001) expect(result.sitemaps!.errors.map((e) => e.code)).toEqual(['timeout']);
      expect(result.urls.length).toBeGreaterThan(1);
    } finally {
      delay.disable();
      await engine.close();
      await hostile.close();
    }
  }, 120_000);
});

describe('memory of a map of long URLs', () => {
  test('10,000 listed URLs of 2,000 characters: the map keeps at most 16 Mi characters of URLs and says truncated', async () => {
    const long = 'x'.repeat(1990);
    const hostile = await serve((req, res) => {
      if (req.url === '/sm.xml' || req.url === '/sitemap.xml') {
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.write('<urlset>');
        // Streamed, a batch at a time: 20 MB in all.
        let i = 0;
        const more = () => {
          while (i < 10_000) {
            const batch = Array.from({ length: 500 }, () => `<url><loc>${hostile.origin}/${i++}/${long}</loc></url>`).join('');
            if (!res.write(batch)) return void res.once('drain', more);
          }
          res.end('</urlset>');
        };
        more();
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    const engine = createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: true, timeoutMs: 20_000 } });
    try {
      const result = await engine.map(hostile.url, { limit: 100_000, sitemap: 'only', respectRobots: false, timeoutMs: 60_000 });
      const chars = result.urls.reduce((sum, u) => sum + u.url.length, 0);
      expect(chars).toBeLessThanOrEqual(16 * 1024 * 1024);
      expect(result.urls.length).toBeGreaterThan(7000);
      expect(result.truncated).toBe(true);
      expect(result.sitemaps!.truncated).toBe(true);
    } finally {
      await engine.close();
      await hostile.close();
    }
  }, 120_000);
});
