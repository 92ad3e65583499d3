// Step 3 of scripts/check-readme.mjs: the Quick start's first ts block and the CLI command of
// "## The CLI", run from the installed tarball against a small site served on 127.0.0.1.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { EXTENSIONS } from './blocks.mjs';
import { fail, log, README, seconds, spawnCollect } from './common.mjs';

// The site: depth from / in brackets.
const PAGES = {
  '/': ['/about', '/blog/', '/docs/'], // [0]
  '/about': ['/'], // [1]
  '/blog/': ['/blog/1', '/blog/2', '/'], // [1]
  '/docs/': ['/docs/intro', '/docs/api', '/'], // [1]
  '/blog/1': ['/blog/1/comments', '/blog/'], // [2]
  '/blog/2': ['/blog/'], // [2]
  '/docs/intro': ['/docs/', '/docs/api'], // [2]
  '/docs/api': ['/docs/api/client', '/docs/api/server', '/docs/'], // [2]
  '/blog/1/comments': ['/blog/1/comments/2'], // [3]
  '/docs/api/client': ['/docs/api/client/deep'], // [3]
  '/docs/api/server': ['/docs/'], // [3]
  '/blog/1/comments/2': [], // [4]
  '/docs/api/client/deep': [], // [4]
};
/**
 * The paths a crawl from `start` fetches: links followed up to maxDepth hops, where `follow(path)`.
 * @param {string} start @param {number} maxDepth @param {(path: string) => boolean} [follow]
 */
const reachable = (start, maxDepth, follow = (_path) => true) => {
  const seen = new Set([start]);
  let frontier = [start];
  for (let depth = 0; depth < maxDepth; depth++) {
    const next = [];
    for (const q of frontier.flatMap((p) => PAGES[p])) {
      if (follow(q) && !seen.has(q)) {
        seen.add(q);
        next.push(q);
      }
    }
    frontier = next;
  }
  return seen;
};

/** Serves PAGES on 127.0.0.1 (a free port); the caller closes the server. */
export async function serveSite() {
  const requested = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requested.push(path);
    const links = PAGES[path];
    if (!links) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const body = links.map((l) => `<a href="${l}">${l}</a>`).join('\n');
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      .end(`<!doctype html><html><head><title>Page ${path}</title></head><body><h1>${path}</h1>\n${body}\n</body></html>`);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(undefined)));
  const origin = `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (server.address()).port}`;
  log(`site on ${origin}: ${Object.keys(PAGES).length} pages`);
  return { server, origin };
}

const section = (blocks, title) => blocks.filter((b) => b.heading.toLowerCase() === title.toLowerCase());
const loopback = (origin) => (text) => text.replaceAll(/https?:\/\/(www\.)?example\.com(?=[/\s'"`]|$)/g, origin);

/** Runs the Quick start's first ts block in `project`, its example.com URLs pointed at `origin`. */
export async function checkQuickStart(project, blocks, origin) {
  const toLoopback = loopback(origin);
  const quick = section(blocks, 'Quick start').find((b) => EXTENSIONS[b.lang]);
  if (!quick) fail(`${README} has no ts block under "## Quick start"`);
  const quickText = quick.lines.map((l) => l.text).join('\n');
  let runnable = toLoopback(quickText);
  if (/example\.com/.test(runnable)) fail(`${README}:${quick.line}: the Quick start uses an example.com URL this check cannot map to the loopback site`);
  if (!/\bcreateCrawlEngine\(/.test(runnable)) fail(`${README}:${quick.line}: the Quick start does not call createCrawlEngine(...)`);
  runnable = runnable.replaceAll(/\bcreateCrawlEngine\(/g, '__checkReadmeEngine(');
  runnable += `
// Added by scripts/check-readme.mjs (not in README.md):
function __checkReadmeEngine(options) {
  return createCrawlEngine({ ...options, fetch: { ...options.fetch, allowPrivateNetwork: ['127.0.0.1'] } });
}
const __seen = (f) => { try { return f(); } catch { return undefined; } };
console.log('@@check-readme ' + JSON.stringify({
  job: __seen(() => job), report: __seen(() => report), queued: __seen(() => queued),
  items: __seen(() => items)?.map((r) => ({ url: r.url, ok: r.ok, depth: r.depth })), nextCursor: __seen(() => nextCursor),
}));
`;
  const ts = createRequire(join(project, 'package.json'))('typescript');
  const js = ts.transpileModule(runnable, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  writeFileSync(join(project, 'quick-start.mjs'), js);
  const quickRun = await spawnCollect(process.execPath, ['quick-start.mjs'], { cwd: project, timeoutMs: 60_000 });
  const quickWhere = `${README}:${quick.line} (Quick start)`;
  const quickOutput = () => `\n--- stdout ---\n${quickRun.stdout.slice(-4000)}\n--- stderr ---\n${quickRun.stderr.slice(-4000)}`;
  if (quickRun.code !== 0) fail(`${quickWhere} exited ${quickRun.code ?? quickRun.signal}${quickOutput()}`);
  const marker = quickRun.stdout.split('\n').find((l) => l.startsWith('@@check-readme '));
  const summary = marker ? JSON.parse(marker.slice('@@check-readme '.length)) : null;
  const expectFirst = reachable('/', 2);
  const expectDocs = reachable('/docs/', 2, (p) => p.startsWith('/docs/'));
  const problems = [];
  if (!summary?.job) problems.push('it declares no `job` (the engine.crawl result) for the check to inspect');
  else {
    if (summary.job.status !== 'completed') problems.push(`job.status is ${summary.job.status}, expected completed`);
    if (summary.job.counts?.succeeded !== expectFirst.size)
      problems.push(`job.counts.succeeded is ${summary.job.counts?.succeeded}, expected ${expectFirst.size} (pages within 2 hops)`);
  }
  if (summary?.items) {
    const urls = summary.items.map((r) => new URL(r.url).pathname).sort();
    if (urls.join() !== [...expectDocs].sort().join())
      problems.push(`results of the /docs/ job are ${urls.join(', ')}, expected ${[...expectDocs].sort().join(', ')}`);
    if (!summary.items.every((r) => r.ok)) problems.push('a result of the /docs/ job is not ok');
  }
  if (!/^job:completed\b/m.test(quickRun.stdout)) problems.push('the progress loop printed no job:completed');
  if (problems.length) fail(`${quickWhere}: ${problems.join('; ')}${quickOutput()}`);
  log(`Quick start OK: ${summary.job.counts.succeeded} pages crawled, ${summary.items?.length ?? 0} results of the queued job, exit 0 (${seconds()})`);
}

/** Runs the `npx crawl-engine crawl ...` command of "## The CLI" in `project` against `origin`. */
export async function checkCli(project, blocks, origin) {
  const toLoopback = loopback(origin);
  const cliBlock = section(blocks, 'The CLI').find((b) => b.lines.some((l) => /^\s*npx crawl-engine crawl\b/.test(l.text)));
  if (!cliBlock) fail(`${README} has no \`npx crawl-engine crawl ...\` block under "## The CLI"`);
  const cliLine = cliBlock.lines.find((l) => /^\s*npx crawl-engine crawl\b/.test(l.text));
  if (/["'`$\\|;&<>]/.test(cliLine.text)) fail(`${README}:${cliLine.line}: the CLI command has quoting or shell syntax this check does not interpret`);
  const words = toLoopback(cliLine.text.replace(/\s+#.*$/, ''))
    .trim()
    .split(/\s+/)
    .slice(1); // without npx
  if (words.some((w) => /example\.com/.test(w))) fail(`${README}:${cliLine.line}: the CLI command has an example.com URL this check cannot map`);
  const cliArgs = [...words, '--allow-private-network'];
  const outIndex = cliArgs.indexOf('--out');
  const outFile = outIndex >= 0 ? join(project, cliArgs[outIndex + 1]) : null;
  const maxDepth = cliArgs.includes('--max-depth') ? Number(cliArgs[cliArgs.indexOf('--max-depth') + 1]) : 2;
  const startPath = new URL(words.find((w) => w.startsWith(origin)) ?? fail(`${README}:${cliLine.line}: no URL in the CLI command`)).pathname;
  log(`$ npx --no ${cliArgs.join(' ')}`);
  const cliRun = await spawnCollect('npx', ['--no', ...cliArgs], { cwd: project, timeoutMs: 60_000 });
  const cliWhere = `${README}:${cliLine.line} (the CLI)`;
  const cliOutput = () => `\n--- stdout ---\n${cliRun.stdout.slice(-4000)}\n--- stderr ---\n${cliRun.stderr.slice(-4000)}`;
  if (cliRun.code !== 0) fail(`${cliWhere} exited ${cliRun.code ?? cliRun.signal}, expected 0${cliOutput()}`);
  const jsonl = outFile ? (existsSync(outFile) ? readFileSync(outFile, 'utf8') : fail(`${cliWhere}: no ${outFile} written${cliOutput()}`)) : cliRun.stdout;
  const pages = jsonl
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const expectCli = reachable(startPath, maxDepth);
  const got = pages.map((p) => new URL(p.url).pathname).sort();
  if (got.join() !== [...expectCli].sort().join() || !pages.every((p) => p.ok)) {
    fail(`${cliWhere}: results are ${got.join(', ')} (ok: ${pages.filter((p) => p.ok).length}), expected ${[...expectCli].sort().join(', ')}${cliOutput()}`);
  }
  log(`CLI OK: ${pages.length} pages, exit 0 (${seconds()})`);
}
