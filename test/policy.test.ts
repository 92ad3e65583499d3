import { performance } from 'node:perf_hooks';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import type { PageResult } from '../src/core/types.js';
import { allResults, testEngine } from './helpers/engine.js';
import { html, serve, type TestServer } from './helpers/server.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('a hostile site with robots rules and a Crawl-delay', () => {
  test('is crawled to completion: each bad page has its own error code, no disallowed path is requested, no two requests come closer than the delay', async () => {
    const DELAY = 150;
    const other = await serve((_, res) => res.end('never'), '127.0.0.2');
    servers.push(other);
    const arrivals: Array<{ path: string; at: number }> = [];
    const site = await serve((req, res) => {
      const path = req.url ?? '/';
      arrivals.push({ path, at: performance.now() });
      const page = (body: string, type = 'text/html; charset=utf-8') => {
        res.writeHead(200, { 'content-type': type });
        res.end(body);
      };
      switch (path) {
        case '/robots.txt':
          return page('User-agent: *\nDisallow: /private\nCrawl-delay: 0.15\n', 'text/plain');
        case '/': {
          const links = [
            '/a',
            '/private/secret',
            '/private-too',
            '/hang',
            '/slow-body',
            '/big',
            '/gzip-bomb',
            '/br-bomb',
            '/loop1',
            '/chain/0',
            '/bad-location',
            '/image',
            '/notype',
            '/bad-utf8',
            '/win1252',
            '/malformed',
            '/links',
            '/redirect-off',
          ];
          return page(html(`${links.map((l) => `<a href="${l}">${l}</a>`).join('')}<a href="${other.origin}/offsite">off</a>`));
        }
        case '/a':
          return page(html('<p>fine</p>'));
        case '/hang':
          return; // never answers
        case '/slow-body':
          res.writeHead(200, { 'content-type': 'text/html' });
          res.write('<p>never ends');
          return;
        case '/big':
          return page(`<p>${'x'.repeat(5 * 1024 * 1024)}</p>`);
        case '/gzip-bomb':
          res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
          return res.end(gzipSync(Buffer.alloc(20 * 1024 * 1024, 0x41)));
        case '/br-bomb':
          res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'br' });
          return res.end(brotliCompressSync(Buffer.alloc(20 * 1024 * 1024, 0x41), { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } }));
        case '/loop1':
          res.writeHead(301, { location: '/loop2' });
          return res.end();
        case '/loop2':
          res.writeHead(301, { location: '/loop1' });
          return res.end();
        case '/bad-location':
          res.writeHead(302, { location: 'http://[::1' });
          return res.end();
        case '/image':
          return page('<html><a href="/from-image">x</a></html>', 'image/png');
        case '/notype':
          res.writeHead(200);
          return res.end('<!doctype html><title>No type</title><p>still html</p>');
        case '/bad-utf8':
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          return res.end(Buffer.concat([Buffer.from('<title>bad '), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('</title>')]));
        case '/win1252':
          res.writeHead(200, { 'content-type': 'text/html' });
          return res.end(Buffer.from('<meta charset="windows-1252"><title>\x93quoted\x94 caf\xe9</title>', 'latin1'));
        case '/malformed':
          return page('<html><head><title>Broken<body><p>unclosed <div><a href="/a">a</a></td></tr></b><<<>>');
        case '/links':
          return page(html(Array.from({ length: 100_000 }, (_, i) => `<a href="/private/l${i}">${i}</a>`).join('')));
        case '/redirect-off':
          res.writeHead(302, { location: `${other.origin}/landing` });
          return res.end();
        default: {
          const chain = /^\/chain\/(\d+)$/.exec(path);
          if (chain) {
            res.writeHead(302, { location: `/chain/${Number(chain[1]) + 1}` });
            return res.end();
          }
          res.writeHead(404);
          return res.end();
        }
      }
    });
    servers.push(site);

    const engine = createCrawlEngine({
      storage: memoryStorage(),
      fetch: { allowPrivateNetwork: ['127.0.0.1'], timeoutMs: 800, maxBytes: 4 * 1024 * 1024, maxRedirects: 5 },
    });
    const started = Date.now();
    const job = await engine.crawl({ url: site.url, maxDepth: 2, maxPages: 60, maxRetries: 0 });
    await engine.close();
    const results = await allResults(engine, job.id);
    const code = (path: string) => results.find((r) => new URL(r.url).pathname === path)?.error?.code ?? 'ok';
    const get = (path: string) => results.find((r) => new URL(r.url).pathname === path) as PageResult;

    expect(job.status).toBe('completed');
    expect({
      hang: code('/hang'),
      slowBody: code('/slow-body'),
      big: code('/big'),
      gzipBomb: code('/gzip-bomb'),
      brBomb: code('/br-bomb'),
      loop: code('/loop1'),
      chain: code('/chain/0'),
      badLocation: code('/bad-location'),
      image: code('/image'),
      private: code('/private/secret'),
      privateToo: code('/private-too'),
      redirectOff: code('/redirect-off'),
    }).toEqual({
      hang: 'timeout',
      slowBody: 'timeout',
      big: 'too_large',
      gzipBomb: 'too_large',
      brBomb: 'too_large',
      loop: 'redirect_loop',
      chain: 'too_many_redirects',
      badLocation: 'bad_redirect',
      image: 'not_html',
      private: 'robots',
      privateToo: 'robots',
      redirectOff: 'blocked',
    });
    expect(get('/notype')).toMatchObject({ ok: true, title: 'No type' });
    expect(get('/bad-utf8')).toMatchObject({ ok: true, title: 'bad \ufffd\ufffd\ufffd' });
    expect(get('/win1252')).toMatchObject({ ok: true, title: '\u201cquoted\u201d café' });
    expect(get('/malformed')).toMatchObject({ ok: true });
    expect(get('/links')).toMatchObject({ ok: true, links: 1000 });
    expect(get('/redirect-off').error?.message).toMatch(/outside the job's scope/);
    expect(results.some((r) => r.url.includes('offsite') || r.url.includes('from-image'))).toBe(false);

    // Counts agree with the stored results; the disallowed ones are skipped, not failed, and do not
    // use up maxPages: the 17 pages fetched, and maxPages of the 1,002 disallowed links (the rest
    // are not recorded).
    const c = job.counts;
    expect(c.discovered).toBe(results.length);
    expect(c.succeeded + c.failed + c.skipped).toBe(results.length);
    expect(c.skipped).toBe(results.filter((r) => r.error?.code === 'robots').length);
    expect(c.succeeded + c.failed).toBe(17);
    expect(c.skipped).toBe(60);

    // The server never saw a disallowed path, nor anything on the other address.
    expect(arrivals.filter((a) => a.path.startsWith('/private'))).toEqual([]);
    expect(other.requests).toEqual([]);
    expect(arrivals.filter((a) => a.path === '/robots.txt')).toHaveLength(1);
    // No two requests closer together than the Crawl-delay (1 ms for timer granularity).
    const gaps = arrivals.slice(1).map((a, i) => a.at - arrivals[i]!.at);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(DELAY - 1);
    expect(Date.now() - started).toBeLessThan(25_000);
  }, 40_000);
});

describe('politeness across processors', () => {
  test('two processors on one storage never have more than perHostConcurrency requests in flight to a host', async () => {
    let inFlight = 0;
    let peak = 0;
    let served = 0;
    const site = await serve((req, res) => {
      if (req.url === '/robots.txt') {
        res.writeHead(404);
        return res.end();
      }
      inFlight++;
      peak = Math.max(peak, inFlight);
      const n = Number(/\d+/.exec(req.url ?? '')?.[0] ?? 0);
      setTimeout(() => {
        inFlight--;
        served++;
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(html([1, 2, 3].map((k) => `<a href="/p${n * 3 + k}">x</a>`).join('')));
      }, 15);
    });
    servers.push(site);
    const storage = memoryStorage();
    const a = testEngine({}, storage);
    const b = testEngine({}, storage);
    const job = await a.jobs.create({ url: site.url, maxPages: 40, maxDepth: 10, perHostConcurrency: 2 });
    for (let round = 0; (round < 20 && (await a.jobs.get(job.id))?.status === 'running') || round === 0; round++) {
      await Promise.all([a.processor.run({ concurrency: 10 }), b.processor.run({ concurrency: 10 })]);
    }
    await Promise.all([a.close(), b.close()]);
    expect((await a.jobs.get(job.id))?.status).toBe('completed');
    expect(served).toBe(40);
    expect(peak).toBe(2);
  });

  test('a job can opt out of robots.txt', async () => {
    const site = await serve((req, res) => {
      if (req.url === '/robots.txt') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        return res.end('User-agent: *\nDisallow: /');
      }
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html('<a href="/x">x</a>'));
    });
    servers.push(site);
    const engine = testEngine();
    const obeying = await engine.crawl({ url: site.url });
    expect(obeying.status).toBe('failed');
    expect(obeying.error?.code).toBe('robots');
    const ignoring = await engine.crawl({ url: site.url, respectRobots: false });
    await engine.close();
    expect(ignoring.counts).toMatchObject({ succeeded: 2, skipped: 0 });
  });

  test('a robots.txt that answers 5xx disallows the host until it can be fetched', async () => {
    let robotsCalls = 0;
    const site = await serve((req, res) => {
      if (req.url === '/robots.txt') {
        robotsCalls++;
        res.writeHead(robotsCalls === 1 ? 503 : 404);
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html('hi'));
    });
    servers.push(site);
    const engine = testEngine();
    const job = await engine.jobs.create({ url: site.url, maxDepth: 0 });
    const first = await engine.processor.run({ jobId: job.id, budgetMs: 100 });
    expect(first.retried).toBe(1);
    expect(site.requests).toEqual(['/robots.txt']);
    await engine.close();
  });
});
