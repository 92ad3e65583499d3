// Hostile sites against engine.map() and sitemap reading: the private-network guard on every new fetch path, the event loop and the time bound.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import { html, serve, type TestServer } from './helpers/server.js';

/** The longest gap between ticks of a 5 ms interval while enabled, in ms (monitorEventLoopDelay missed a 17 s turn here). */
function loopProbe() {
  let last = performance.now();
  let max = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    enable() {
      last = performance.now();
      timer = setInterval(() => {
        const now = performance.now();
        max = Math.max(max, now - last);
        last = now;
      }, 5);
    },
    /** Stops after one more tick, so that a turn that just ended is counted. */
    async disable() {
      await new Promise((resolve) => setTimeout(resolve, 20));
      clearInterval(timer);
    },
    get maxMs() {
      return max;
    },
  };
}

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
    const delay = loopProbe();
    try {
      delay.enable();
      const started = Date.now();
      const result = await engine.map(hostile.url, { limit: 100_000, sitemap: 'only', timeoutMs: 5000 });
      const took = Date.now() - started;
      await delay.disable();
      // Longest turn: well under a second (slices are 10 ms, but parsing the 450 kB robots.txt and compiling
      // its 30,000 rules take a turn each of 100-300 ms on the shared test machine). Before: one turn of 74 s.
      expect(delay.maxMs).toBeLessThan(1000);
      expect(took).toBeLessThan(7000);
      // Either every URL (a fast machine) or those judged in time, with a timeout.
      if (result.urls.length < 50_001) expect(result.sitemaps!.errors.map((e) => e.code)).toEqual(['timeout']);
      expect(result.urls.length).toBeGreaterThan(1);
    } finally {
      await delay.disable();
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

describe('time of a map on a site that trickles bytes', () => {
  test('robots.txt, the sitemap and the start page each send a byte every 100 ms forever: the map ends within timeoutMs', async () => {
    const timers = new Set<ReturnType<typeof setInterval>>();
    const trickle = await serve((req, res) => {
      res.writeHead(200, { 'content-type': req.url === '/' ? 'text/html' : req.url === '/robots.txt' ? 'text/plain' : 'application/xml' });
      res.write(req.url === '/robots.txt' ? '#' : req.url === '/' ? '<html><body>' : '<urlset>');
      const timer = setInterval(() => res.write(req.url === '/robots.txt' ? '#' : ' '), 100);
      timers.add(timer);
      res.on('close', () => clearInterval(timer));
    });
    const engine = createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: true, timeoutMs: 60_000 } });
    try {
      const started = Date.now();
      const result = await engine.map(trickle.url, { timeoutMs: 2000 });
      expect(Date.now() - started).toBeLessThan(3500);
      expect(result.urls).toEqual([{ url: trickle.url }]);
      expect(result.page!.error!.code).toBe('timeout');
    } finally {
      for (const timer of timers) clearInterval(timer);
      await engine.close();
      await trickle.close();
    }
  }, 30_000);
});

describe('the event loop while the start page links are judged', () => {
  test('robots.txt with 30,000 rules and a start page of 5000 links: no turn of the event loop blocked for long', async () => {
    const rules = Array.from({ length: 30_000 }, (_, i) => `Disallow: /n${i}`).join('\n');
    const links = `<a href="/n1">n</a>${Array.from({ length: 5000 }, (_, i) => `<a href="/p${i}">${i}</a>`).join('')}`;
    const hostile = await serve((req, res) => {
      if (req.url === '/robots.txt') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`User-agent: *\n${rules}\n`);
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(html(links));
      }
    });
    const engine = createCrawlEngine({ storage: memoryStorage(), maxLinksPerPage: 5001, fetch: { allowPrivateNetwork: true, timeoutMs: 20_000 } });
    const delay = loopProbe();
    try {
      // Warm: the rules are compiled on the first check (one turn), as in any map of this site.
      delay.enable();
      const result = await engine.map(hostile.url, { limit: 100_000, sitemap: 'skip', timeoutMs: 60_000 });
      await delay.disable();
      expect(result.page).toEqual({ status: 200, links: 5001, error: null });
      // robots.txt was read and applied: /n1 is disallowed.
      expect(result.urls).toHaveLength(5001);
      expect(result.urls.map((u) => u.url)).not.toContain(`${hostile.origin}/n1`);
      // Before: one turn of 14-30 s (each link checked against the 30,000 rules in one loop).
      expect(delay.maxMs).toBeLessThan(1000);
    } finally {
      await delay.disable();
      await engine.close();
      await hostile.close();
    }
  }, 120_000);
});
