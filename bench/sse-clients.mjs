// Many SSE clients of one stream: `node bench/sse-clients.mjs <eventsUrl> <n>`. Prints `ready` once
// every client has its first event, then, when every stream has ended after the job's terminal
// event, {"received": [events per client]}. A client whose stream ends early (the server's
// maxStreamMs) reconnects with Last-Event-ID, as EventSource does.
import { Agent, request } from 'undici';

const [url, countArg] = process.argv.slice(2);
const count = Number(countArg);
const dispatcher = new Agent({ connections: null, pipelining: 0, keepAliveTimeout: 60_000 });
let connected = 0;
let announce;
const allConnected = new Promise((resolve) => {
  announce = resolve;
});

async function client() {
  let lastId = null;
  let received = 0;
  let first = true;
  for (;;) {
    const res = await request(url, { dispatcher, headers: lastId === null ? {} : { 'last-event-id': lastId } });
    if (res.statusCode === 204) return received;
    // Cheap on purpose (these clients share the machine with the server they measure): count
    // messages by their `id:` lines and keep the last one, without parsing the JSON.
    let tail = '';
    let ended = false;
    for await (const chunk of res.body) {
      const text = tail + chunk.toString('latin1');
      let at = text.indexOf('\nid: ');
      if (text.startsWith('id: ')) at = -1;
      let from = text.startsWith('id: ') ? 0 : at === -1 ? -1 : at + 1;
      while (from !== -1) {
        const end = text.indexOf('\n', from);
        if (end === -1) break;
        lastId = text.slice(from + 4, end);
        received++;
        if (first) {
          first = false;
          if (++connected === count) announce();
        }
        if (/^event: job:(completed|failed|cancelled)$/m.test(text.slice(end + 1, end + 40))) ended = true;
        const next = text.indexOf('\nid: ', end);
        from = next === -1 ? -1 : next + 1;
      }
      tail = text.slice(Math.max(0, text.lastIndexOf('\n\n')));
    }
    if (ended) return received;
  }
}

const results = Array.from({ length: count }, client);
await allConnected;
process.stdout.write('ready\n');
const received = await Promise.all(results);
process.stdout.write(`${JSON.stringify({ received })}\n`);
await dispatcher.close();
