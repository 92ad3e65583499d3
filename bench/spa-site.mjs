// A single-page app on loopback for the rendering bench (bench/render.mjs): every page is the same
// HTML shell (`<div id="root"></div><script src="/app.js"></script>`) and /app.js, run in the page,
// renders its heading, a paragraph and the links to other pages. Nothing but the script makes the
// links, so a crawler that does not run it finds one page.
// Page i lives at /page/i (page 0 is /). Its links: its two children in a binary tree (2i+1, 2i+2),
// the next page, its parent and one page further away, deduplicated, all within the site, so the
// whole site is reachable from / through rendered links only. /robots.txt allows everything.
// `node bench/spa-site.mjs pages=320` serves it on 127.0.0.1 and prints its URL on stdout.
import { createServer } from 'node:http';

/** The page indexes page `i` links to, in document order (the same rule as app.js). */
export function spaLinksOf(i, pages) {
  const out = [];
  for (const j of [2 * i + 1, 2 * i + 2, i + 1, i > 0 ? Math.floor((i - 1) / 2) : -1, (i * 37 + 11) % pages]) {
    if (j >= 0 && j < pages && j !== i && !out.includes(j)) out.push(j);
  }
  return out;
}

const SHELL =
  '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Loading…</title><meta name="viewport" content="width=device-width"></head>' +
  '<body><div id="root"></div><noscript>You need to enable JavaScript to run this app.</noscript><script src="/app.js"></script></body></html>';

/** The app: the page's number from its path, then the heading, text and links (spaLinksOf) put into #root. */
const app = (pages) => `(function () {
  var pages = ${pages};
  var match = /^\\/page\\/(\\d+)$/.exec(location.pathname);
  var i = match ? Number(match[1]) : 0;
  var words = 'render browser shell script page link heading paragraph chromium crawl frontier queue'.split(' ');
  var text = [];
  for (var w = 0; w < 90; w++) text.push(words[(i * 7 + w * 3) % words.length]);
  var links = (${spaLinksOf.toString()})(i, pages);
  document.title = 'Page ' + i;
  var href = function (j) { return j === 0 ? '/' : '/page/' + j; };
  document.getElementById('root').innerHTML =
    '<main><h1>Page ' + i + '</h1><p>' + text.join(' ') + '.</p><nav>' +
    links.map(function (j) { return '<a href="' + href(j) + '">Page ' + j + '</a>'; }).join(' ') + '</nav></main>';
})();
`;

/** Serves the site on 127.0.0.1 (an ephemeral port unless given); `requests` counts answers by kind. */
export async function startSpaSite({ pages = 320, port = 0 } = {}) {
  const script = Buffer.from(app(pages));
  const shell = Buffer.from(SHELL);
  const requests = { pages: 0, scripts: 0, robots: 0, other: 0 };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/robots.txt') {
      requests.robots++;
      res.writeHead(200, { 'content-type': 'text/plain' }).end('User-agent: *\nAllow: /\n');
      return;
    }
    if (path === '/app.js') {
      requests.scripts++;
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=3600' }).end(script);
      return;
    }
    const match = /^\/page\/(\d+)$/.exec(path);
    if (path === '/' || (match && Number(match[1]) > 0 && Number(match[1]) < pages)) {
      requests.pages++;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(shell);
      return;
    }
    requests.other++;
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  server.keepAliveTimeout = 10_000;
  await new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(undefined)));
  const { port: bound } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${bound}/`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve(undefined))),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const opts = Object.fromEntries(
    process.argv
      .slice(2)
      .map((arg) => arg.split('='))
      .map(([key, value]) => [key, Number(value)]),
  );
  const site = await startSpaSite(opts);
  process.stdout.write(`${site.url}\n`);
  process.on('SIGTERM', () => {
    process.stderr.write(`spa-site: ${JSON.stringify(site.requests)}\n`);
    void site.close().then(() => process.exit(0));
  });
}
