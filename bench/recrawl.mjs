// Recrawl speed and transfer: `npm run build && node bench/recrawl.mjs [memory|postgres|kv] [pages] [pageKb] [concurrency]`
// (defaults: memory, 1000 pages of about 60 kB, concurrency 20; postgres needs DATABASE_URL, kv
// REDIS_URL). A loopback site in this process (`/` → 10 sections → the pages, every answer with
// an ETag, a bodiless 304 for a matching If-None-Match) is crawled once, then recrawled unchanged
// (`engine.jobs.recrawl`), both run by the same `processor.run()` loop. A 100-page crawl and
// recrawl of another site warm up first. Prints one JSON line: both crawls' wall time and body
// bytes sent by the site, the speed-up, the transfer ratio and the 304 count.
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import { createCrawlEngine } from '../dist/index.js';
import { openStorage } from './storages.mjs';

const [kind = 'memory', pagesArg = '1000', pageKbArg = '60', concurrencyArg = '20'] = process.argv.slice(2);
const pages = Number(pagesArg);
const pageKb = Number(pageKbArg);
const concurrency = Number(concurrencyArg);

/** The site: `pages` pages of about `kb` kB under 10 sections. Counts body bytes and 304s. */
async function startSite(count, kb) {
  const sections = 10;
  const counts = { bodyBytes: 0, notModified: 0 };
  const paragraph = (n, i) => `<p>Paragraph ${i} of page ${n}: ${'lorem ipsum dolor sit amet consectetur adipiscing elit '.repeat(8)}</p>`;
  const paragraphs = Math.max(1, Math.round((kb * 1024) / 480));
  const bodies = new Map();
  const bodyOf = (path) => {
    if (bodies.has(path)) return bodies.get(path);
    let html = null;
    if (path === '/') {
      html = `<!doctype html><html><head><title>Home</title></head><body>${Array.from({ length: sections }, (_, s) => `<a href="/s/${s}">Section ${s}</a>`).join(' ')}</body></html>`;
    } else if (/^\/s\/\d+$/.test(path)) {
      const s = Number(path.slice(3));
      const links = [];
      for (let n = s; n < count; n += sections) links.push(`<a href="/p/${n}">Page ${n}</a>`);
      if (s < sections) html = `<!doctype html><html><head><title>Section ${s}</title></head><body>${links.join(' ')}</body></html>`;
    } else if (/^\/p\/\d+$/.test(path)) {
      const n = Number(path.slice(3));
      if (n < count) {
        const text = Array.from({ length: paragraphs }, (_, i) => paragraph(n, i)).join('');
        html = `<!doctype html><html><head><title>Page ${n}</title><meta name="description" content="Page ${n}"></head><body><nav><a href="/">Home</a></nav><main>${text}</main></body></html>`;
      }
    }
    const entry = html === null ? null : { body: Buffer.from(html), etag: `"${path.replaceAll('/', '-')}-v1"` };
    bodies.set(path, entry);
    return entry;
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const found = path === '/robots.txt' ? null : bodyOf(path);
    if (found === null) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      counts.bodyBytes += 9;
      return;
    }
    const headers = { 'content-type': 'text/html; charset=utf-8', etag: found.etag };
    if (req.headers['if-none-match'] === found.etag) {
      counts.notModified++;
      res.writeHead(304, headers).end();
      return;
    }
    counts.bodyBytes += found.body.length;
    res.writeHead(200, headers).end(found.body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${port}/`,
    counts,
    reset: () => Object.assign(counts, { bodyBytes: 0, notModified: 0 }),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

async function runToEnd(crawler, jobId) {
  for (;;) {
    await crawler.processor.run({ jobId, concurrency, budgetMs: 600_000 });
    const job = await crawler.jobs.get(jobId);
    if (['completed', 'failed', 'cancelled'].includes(job.status)) return job;
  }
}

/** A crawl of `site` and its recrawl: wall time and body bytes of each. */
async function measure(crawler, site, maxPages) {
  site.reset();
  let started = performance.now();
  const first = await crawler.jobs.create({ url: site.url, maxPages, maxDepth: 2, perHostConcurrency: 100 });
  const firstJob = await runToEnd(crawler, first.id);
  const firstMs = performance.now() - started;
  const firstBytes = site.counts.bodyBytes;
  site.reset();
  started = performance.now();
  const again = await crawler.jobs.recrawl(first.id);
  const againJob = await runToEnd(crawler, again.id);
  const recrawlMs = performance.now() - started;
  return {
    pages: firstJob.counts.succeeded,
    recrawledPages: againJob.counts.succeeded,
    firstMs: Math.round(firstMs),
    recrawlMs: Math.round(recrawlMs),
    speedup: Number((firstMs / recrawlMs).toFixed(2)),
    firstBodyBytes: firstBytes,
    recrawlBodyBytes: site.counts.bodyBytes,
    transferRatio: Number((site.counts.bodyBytes / firstBytes).toFixed(4)),
    notModified: site.counts.notModified,
  };
}

const opened = await openStorage(kind);
const crawler = createCrawlEngine({ storage: opened.storage, fetch: { allowPrivateNetwork: true } });
const warm = await startSite(100, pageKb);
await measure(crawler, warm, 200);
await warm.close();
const site = await startSite(pages, pageKb);
const result = await measure(crawler, site, pages + 100);
await site.close();
process.stdout.write(`${JSON.stringify({ kind, pageKb, concurrency, ...result })}\n`);
await crawler.close();
await opened.close({ drop: true });
process.exit(0);
