/**
 * Loopback fixtures for rendering: a single-page app whose content and links exist only after its
 * scripts run, pages that never settle, loop, open popups or crash the renderer, and a hostile
 * page that tries every way a page can reach an address (`trap`) the engine must not reach.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { html, serve, type TestServer } from './server.js';

/** Pages of the app: /, /page/1 … /page/N, each a shell filled in by /app.js from /api/page/N. */
export const SPA_PAGES = 6;

const shell = (title = 'Loading…') =>
  html(
    '<div id="root"></div><noscript>You need to enable JavaScript to run this app.</noscript><script type="module" src="/app.js"></script>',
    `<title>${title}</title>`,
  );

/** The app: fetches its page's data and renders a heading, text and links to the other pages. */
const APP = `
const n = location.pathname === '/' ? 0 : Number(location.pathname.split('/').pop());
const data = await (await fetch('/api/page/' + n, { headers: { accept: 'application/json' } })).json();
document.title = data.title;
const root = document.getElementById('root');
root.innerHTML = '<main><h1>' + data.title + '</h1><p>' + data.text + '</p><nav>' +
  data.links.map((href) => '<a href="' + href + '">' + href + '</a>').join(' ') + '</nav></main>';
`;

export interface SpaSite extends TestServer {
  /** Requests by path and user agent. */
  agents: Map<string, string>;
  /** Requests of /blob/N (the /bulk page's): served, in flight now, most in flight at once. */
  blobs: { served: number; inFlight: number; maxInFlight: number };
}

/**
 * The app and the fixture pages. `trap` is the origin of the address the engine must not reach
 * (its pages point there).
 */
export async function spaSite(trap = 'http://127.0.0.2:9'): Promise<SpaSite> {
  const agents = new Map<string, string>();
  const blobs = { served: 0, inFlight: 0, maxInFlight: 0 };
  const server = await serve((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    agents.set(url.pathname, String(req.headers['user-agent']));
    const send = (type: string, body: string, status = 200) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    const page = (body: string, head = '') => send('text/html; charset=utf-8', html(body, head));
    const path = url.pathname;
    if (path === '/robots.txt') return send('text/plain', 'User-agent: *\nDisallow: /private-frame\n');
    if (path === '/app.js') return send('text/javascript', APP);
    const api = /^\/api\/page\/(\d+)$/.exec(path);
    if (api) {
      const n = Number(api[1]);
      const links = Array.from({ length: SPA_PAGES }, (_, i) => `/page/${i + 1}`).filter((_, i) => i + 1 !== n);
      return send(
        'application/json',
        JSON.stringify({ title: `Page ${n} rendered`, text: `Content of page ${n} that only exists after scripts ran. `.repeat(5), links }),
      );
    }
    if (path === '/' || /^\/page\/\d+$/.test(path)) return send('text/html; charset=utf-8', shell());
    if (path === '/static') {
      // Server-rendered: plenty of text, and a script (analytics) that changes nothing visible.
      return page(
        `<main><h1>Static</h1><p>${'Server-rendered words. '.repeat(40)}</p><a href="/static-2">next</a></main><script src="/analytics.js"></script>`,
        '<title>Static page</title>',
      );
    }
    if (path === '/analytics.js') return send('text/javascript', 'window.__seen = true;');
    if (path === '/late') {
      // Its data arrives 400 ms after the load event (a module script awaits it).
      return page(
        '<div id="root"></div><script type="module">const data = await (await fetch("/api/late")).json(); document.title = data.title; document.getElementById("root").innerHTML = "<main><p>" + data.text + "</p></main>";</script>',
        '<title>Loading…</title>',
      );
    }
    if (path === '/api/late') {
      setTimeout(() => send('application/json', JSON.stringify({ title: 'Late data', text: 'Arrived after the load event. '.repeat(10) })), 400);
      return;
    }
    if (path === '/never-settles') {
      // Polls for ever: networkidle never comes; the wait's cap ends it.
      return page(
        '<div id="app"></div><script>setInterval(() => fetch("/api/poll?" + Math.random()).catch(() => {}), 50); document.getElementById("app").innerHTML = "<h1>Still polling</h1><a href=\\"/page/1\\">one</a>";</script>',
        '<title>Polling</title>',
      );
    }
    if (path.startsWith('/api/poll')) return send('application/json', '{}');
    if (path === '/loops') {
      // Renders, then never gives the thread back.
      return page('<div id="root"></div><script>document.getElementById("root").textContent = "Looping"; setTimeout(() => { for (;;) {} }, 0);</script>');
    }
    if (path === '/popups') {
      return page(
        `<div id="root"></div><script>
          window.open('/page/1'); window.open('${trap}/popup');
          const a = document.createElement('a'); a.href = '${trap}/blank'; a.target = '_blank'; document.body.append(a); a.click();
          alert('hello'); confirm('sure?');
          document.getElementById('root').innerHTML = '<h1>Popups opened</h1><a href="/page/2">two</a>';
        </script>`,
        '<title>Popups</title>',
      );
    }
    if (path === '/crash') {
      // Allocates until the renderer's V8 heap cap crashes it.
      return page('<div id="root"></div><script>const keep = []; for (;;) keep.push(new Array(1e6).fill(Math.random()));</script>');
    }
    if (path === '/bulk') {
      // Asks for 30 answers of 300 kB at once, and shows how many arrived.
      return page(
        '<p id="count">waiting</p><script>Promise.all(Array.from({ length: 30 }, (_, i) => fetch("/blob/" + i).then((r) => r.text()).then((t) => t.length === 300000, () => false))).then((ok) => { document.getElementById("count").textContent = "arrived " + ok.filter(Boolean).length; });</script>',
        '<title>Bulk</title>',
      );
    }
    if (path.startsWith('/blob/')) {
      blobs.inFlight++;
      blobs.served++;
      blobs.maxInFlight = Math.max(blobs.maxInFlight, blobs.inFlight);
      setTimeout(() => {
        blobs.inFlight--;
        send('text/plain', 'b'.repeat(300_000));
      }, 100);
      return;
    }
    if (path === '/cookies') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(
        html(
          '<p id="c">waiting</p><script>fetch("/set-cookies").then(() => { document.getElementById("c").textContent = "cookies " + document.cookie; });</script>',
          '<title>Cookies</title>',
        ),
      );
    }
    if (path === '/set-cookies') {
      res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': ['a=1; Path=/; Expires=Wed, 09 Jun 2100 10:18:14 GMT', 'b=2; Path=/'] });
      return res.end('ok');
    }
    if (path === '/huge') return page('<div id="root"></div><script>document.getElementById("root").textContent = "x".repeat(3e6);</script>');
    if (path === '/selector') {
      return page(
        '<div id="root"></div><script>setTimeout(() => { document.getElementById("root").innerHTML = "<h1 id=late>Late heading</h1><p>" + "late words ".repeat(40) + "</p>"; }, 700);</script>',
      );
    }
    if (path === '/to-private') {
      res.writeHead(302, { location: `${trap}/redirected` });
      return res.end();
    }
    if (path === '/script-to-private.js') {
      res.writeHead(302, { location: `${trap}/script.js` });
      return res.end();
    }
    if (path === '/private-frame') return page('<p>robots.txt disallows this frame</p>');
    if (path === '/api/ok') return send('application/json', '{"ok":true}');
    if (path === '/hostile') return page(hostile(trap), '<title>Hostile</title>');
    if (path === '/sw.js') return send('text/javascript', `self.addEventListener('fetch', () => fetch('${trap}/sw'));`);
    return send('text/plain', 'not found', 404);
  });
  return Object.assign(server, { agents, blobs });
}

/** Every way a page can try to reach `trap`; what the engine allows (/api/ok) fills in #ok. */
function hostile(trap: string): string {
  const ws = trap.replace(/^http/, 'ws');
  return `
<link rel="preconnect" href="${trap}">
<link rel="dns-prefetch" href="${trap}">
<link rel="prefetch" href="${trap}/prefetch">
<link rel="prerender" href="${trap}/prerender">
<link rel="modulepreload" href="${trap}/modulepreload.js">
<script type="speculationrules">{"prefetch": [{"source": "list", "urls": ["${trap}/spec-prefetch"]}], "prerender": [{"source": "list", "urls": ["${trap}/spec-prerender"]}]}</script>
<link rel="stylesheet" href="${trap}/style.css">
<style>body { background: url('${trap}/bg.png'); } @font-face { font-family: x; src: url('${trap}/font.woff2'); }</style>
<img src="${trap}/img.png"><video src="${trap}/video.mp4" autoplay muted></video><audio src="${trap}/audio.mp3" autoplay></audio>
<iframe src="${trap}/frame"></iframe><iframe src="/private-frame"></iframe>
<object data="${trap}/object"></object><embed src="${trap}/embed">
<form id="f" action="${trap}/form" method="post"><input name="a" value="b"></form>
<script src="/script-to-private.js"></script>
<script src="${trap}/direct.js"></script>
<h1>Hostile page</h1><p id="ok">waiting</p>
<script>
  fetch('/api/ok').then((r) => r.json()).then((d) => { document.getElementById('ok').textContent = d.ok ? 'allowed request answered' : 'no'; });
  fetch('${trap}/fetch').catch(() => {});
  fetch('${trap}/post', { method: 'POST', body: 'x' }).catch(() => {});
  const x = new XMLHttpRequest(); x.open('GET', '${trap}/xhr'); x.send();
  try { new WebSocket('${ws}/ws'); } catch {}
  try { new EventSource('${trap}/events'); } catch {}
  try { navigator.sendBeacon('${trap}/beacon', 'x'); } catch {}
  try { navigator.serviceWorker && navigator.serviceWorker.register('/sw.js').catch(() => {}); } catch {}
  try {
    const pc = new RTCPeerConnection({ iceServers: [{ urls: 'stun:${new URL(trap).host}' }, { urls: 'turn:${new URL(trap).host}', username: 'u', credential: 'c' }] });
    pc.createDataChannel('x'); pc.createOffer().then((o) => pc.setLocalDescription(o));
  } catch {}
  const i = new Image(); i.src = '${trap}/js-image.png';
  try {
    const worker = new Worker(URL.createObjectURL(new Blob(["fetch('${trap}/worker').catch(() => {}); try { new WebSocket('${ws}/worker-ws'); } catch {}"], { type: 'text/javascript' })));
    worker.onerror = () => {};
  } catch {}
  try {
    const popup = window.open('');
    const pc = popup && new popup.RTCPeerConnection({ iceServers: [{ urls: 'stun:${new URL(trap).host}' }] });
    if (pc) { pc.createDataChannel('x'); pc.createOffer().then((o) => pc.setLocalDescription(o)); }
  } catch {}
  import('${trap}/module.js').catch(() => {});
  setTimeout(() => { try { document.getElementById('f').submit(); } catch {} }, 50);
  setTimeout(() => { location.href = '${trap}/navigate'; }, 100);
  setTimeout(() => { location.href = '${trap}/spec-prefetch'; }, 1500);
</script>`;
}

/** A TCP and a UDP listener on one loopback address and port, counting whatever reaches them. */
export interface Trap {
  origin: string;
  /** TCP connections and UDP datagrams received. */
  hits(): number;
  close(): Promise<void>;
}

export async function trap(host = '127.0.0.2'): Promise<Trap> {
  let hits = 0;
  const tcp: Server = createServer((socket) => {
    hits++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => tcp.listen(0, host, resolve));
  const { port } = tcp.address() as AddressInfo;
  const udp: Socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  udp.on('message', () => hits++);
  await new Promise<void>((resolve) => udp.bind(port, host, resolve));
  return {
    origin: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    hits: () => hits,
    close: async () => {
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    },
  };
}
