// A generated website on loopback, shared by the tests, the benchmark and the demo.
// Page i lives at /p/i (page 0 is also /). Its links form a tree with `fanout` children per page,
// plus a link to the next page, one back to its parent, an off-site link and the usual noise
// (fragments, mailto:, javascript:, tel:), so a crawl has to filter and deduplicate.
import { createServer } from 'node:http';

const WORDS =
  'crawl engine durable job frontier lease token budget serverless progress event page link depth scope robots fetch parse store claim complete retry release cancel'.split(
    ' ',
  );

/** The page indexes page `i` links to (in document order), within a site of `pages` pages. */
export function linksOf(i, { pages, fanout }) {
  const out = [];
  for (let c = fanout * i + 1; c <= fanout * i + fanout && c < pages; c++) out.push(c);
  if (i + 1 < pages) out.push(i + 1);
  if (i > 0) out.push(Math.floor((i - 1) / fanout));
  return out;
}

/** Breadth-first distances from page 0, following `linksOf`, up to `maxDepth` hops. */
export function pagesWithin(maxDepth, opts) {
  const depth = new Map([[0, 0]]);
  let frontier = [0];
  for (let d = 1; d <= maxDepth; d++) {
    const next = [];
    for (const i of frontier) {
      for (const j of linksOf(i, opts)) {
        if (!depth.has(j)) {
          depth.set(j, d);
          next.push(j);
        }
      }
    }
    frontier = next;
  }
  return depth;
}

export function pageHtml(i, opts) {
  const links = linksOf(i, opts)
    .map((j) => `<li><a href="${j === 0 ? '/' : `/p/${j}`}">Page ${j}</a></li>`)
    .join('');
  const paragraphs = [];
  for (let p = 0; p < opts.paragraphs; p++) {
    const words = [];
    for (let w = 0; w < 60; w++) words.push(WORDS[(i * 7 + p * 13 + w * 3) % WORDS.length]);
    paragraphs.push(`<p>${words.join(' ')}.</p>`);
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Page ${i}</title>
<meta name="description" content="Generated page ${i}">
<link rel="canonical" href="/p/${i}">
<style>body{font-family:sans-serif}</style><script>var page=${i};</script></head>
<body><header><nav><a href="#main">Skip</a> <a href="mailto:team@example.com">Mail</a> <a href="javascript:void(0)">JS</a> <a href="tel:+100">Call</a></nav></header>
<main id="main"><h1>Page ${i}</h1>${paragraphs.join('\n')}
<ul>${links}</ul>
<p><a href="https://external.invalid/from/${i}">An off-site link</a></p></main></body></html>`;
}

/**
 * Starts the site on 127.0.0.1 (a free port unless given). Options: pages, fanout, latencyMs,
 * paragraphs, host, port, and `fault(path)`, which may turn a request into a 503 ('error'), a
 * request that is never answered ('hang') or a TCP reset ('reset'). Returns { url, origin, requests, close(), opts }; `requests` logs every
 * request path in order, with `hits` counting each path.
 */
export async function startSite(options = {}) {
  const opts = { pages: 500, fanout: 8, latencyMs: 0, paragraphs: 6, host: '127.0.0.1', port: 0, ...options };
  const bodies = new Map();
  const requests = [];
  const hits = new Map();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    requests.push(path);
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const fault = opts.fault?.(path) ?? null;
    if (fault === 'hang') return; // never answers; the socket is closed by close()
    if (fault === 'reset') {
      req.socket.resetAndDestroy?.() ?? req.socket.destroy();
      return;
    }
    if (fault === 'error') {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('unavailable');
      return;
    }
    const respond = () => {
      const m = path === '/' ? ['', '0'] : /^\/p\/(\d+)$/.exec(path);
      const i = m ? Number(m[1]) : -1;
      if (i < 0 || i >= opts.pages) {
        res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' });
        res.end('<!doctype html><title>Not found</title><p>Not found</p>');
        return;
      }
      let body = bodies.get(i);
      if (body === undefined) {
        body = Buffer.from(pageHtml(i, opts));
        bodies.set(i, body);
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length });
      res.end(body);
    };
    if (opts.latencyMs > 0) setTimeout(respond, opts.latencyMs);
    else respond();
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((resolve) => server.listen(opts.port, opts.host, resolve));
  const { port } = server.address();
  const origin = `http://${opts.host}:${port}`;
  return {
    url: `${origin}/`,
    origin,
    opts,
    requests,
    hits,
    pageUrl: (i) => (i === 0 ? `${origin}/` : `${origin}/p/${i}`),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

// `node bench/site.mjs pages=3000 latencyMs=20` serves a site and prints its URL (for the bench).
if (import.meta.url === `file://${process.argv[1]}`) {
  const opts = Object.fromEntries(
    process.argv
      .slice(2)
      .map((a) => a.split('='))
      .map(([k, v]) => [k, Number.isNaN(Number(v)) ? v : Number(v)]),
  );
  const site = await startSite(opts);
  process.stdout.write(`${site.url}\n`);
  process.on('SIGTERM', () => site.close().then(() => process.exit(0)));
}
