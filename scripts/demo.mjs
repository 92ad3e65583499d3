// `npm run demo`: serves a generated 400-page site on 127.0.0.1 and crawls it with the CLI, so
// the whole thing can be watched with no network.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startSite } from '../test/fixtures/site.mjs';

const site = await startSite({ pages: 400, fanout: 6, latencyMs: 15 });
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const args = ['crawl', site.url, '--max-pages', '300', '--max-depth', '4', '--concurrency', '8', '--allow-private-network', '--out', 'demo-results.jsonl'];
console.error(`demo site on ${site.url}\n$ crawl-engine ${args.join(' ')}\n`);
const child = spawn(process.execPath, [cli, ...args], { stdio: 'inherit' });
const code = await new Promise((resolve) => child.on('close', resolve));
await site.close();
process.exit(code ?? 1);
