#!/usr/bin/env node
// `npm run check:readme`: the README's code, the way a user copies it, against the package the way
// a user installs it.
//
// 1. `npm pack` (prepack builds dist/) into a temporary folder, a new project there (`"type":
//    "module"`), and one `npm install --prefer-offline` of the tarball, typescript, @types/node and
//    the packages the blocks import (at the versions pinned in our devDependencies).
// 2. Typecheck: every ```ts / ```typescript / ```tsx / ```js / ```javascript / ```mjs / ```jsx block
//    becomes its own module (blocks/readme-L<line>.<ext>) and `tsc --noEmit` checks them with strict,
//    module and moduleResolution NodeNext, target ES2022, skipLibCheck on (as `tsc --init` and
//    create-next-app set it; checking every .d.ts would triple the time, and ours are emitted by
//    tsc from sources that typecheck). Top-level await is allowed (every file is a module:
//    moduleDetection "force"). A block that imports crawl-engine/client or crawl-engine/react (or is
//    tsx/jsx) is browser code and is checked with the DOM lib, in a second program; the others are
//    checked with @types/node only, like a server project.
//    ```json blocks must parse (after dropping leading `// file name` comment lines).
//    Fences with any other tag (sh, none, ...) are not checked.
// 3. Run: the first ts block of "## Quick start" runs in the project against a site this script
//    serves on 127.0.0.1, and the CLI command of "## The CLI" (`npx crawl-engine crawl ...`) runs from
//    the installed tarball against the same site; both must exit 0 with the expected results.
//
// Conventions in README.md (HTML comments, invisible on GitHub and npm), on the line(s) right
// above a fence:
//   <!-- check-readme: continues -->  the block continues the previous checked block: it is
//                                     appended to that block's file (one module), e.g. a variant
//                                     that reuses the earlier block's imports.
//   <!-- check-readme: skip -->       the block is not checked (say why next to it).
//
// The prelude (written by this script into the project; shadowed by a block that declares the
// same name): fragments may use, without declaring them, the names a reader has from the blocks
// above them:
//   engine: CrawlEngine, storage: CrawlStorage, jobId: string, myStorage(): CrawlStorage
// and the Next.js import alias `@/lib/engine` (lib/engine.ts in the project, exporting `engine`),
// as a Next.js app's tsconfig maps `@/*` to `./*`.
//
// What the run changes in the Quick start block, at run time only (README.md stays as it is):
//   - every `https://example.com` becomes the loopback site's origin (http://127.0.0.1:<port>);
//   - each `createCrawlEngine(options)` call gets `fetch.allowPrivateNetwork: ['127.0.0.1']`
//     added (the guard refuses loopback by default, as the README says), through a wrapper
//     function, so the block's own options stay as they are;
//   - a footer prints the block's `job`, `items` and `report` for the assertions.
// and in the CLI command: the URL the same way, `--allow-private-network` appended (the flag the
// README gives for local sites), and `npx --no` so npx never downloads anything.
// Nothing is sent anywhere but 127.0.0.1 (and the npm registry for packages the cache lacks).
//
// Options: --tarball FILE (skip npm pack and use FILE), --readme FILE (check FILE instead of
// README.md, e.g. a copy with a block broken on purpose), --keep (keep the temporary folder, to
// look at blocks/*.ts, tsconfig.*.json and quick-start.mjs).
// Exits non-zero, naming README.md:<line> for each failing block, on the first failing step.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const win = process.platform === 'win32';
const started = Date.now();
const args = process.argv.slice(2);
const keep = args.includes('--keep');
const option = (name) => (args.includes(name) ? resolve(args[args.indexOf(name) + 1] ?? '') : null);
const givenTarball = option('--tarball');
const readmePath = option('--readme') ?? join(root, 'README.md');
const README = relative(root, readmePath).startsWith('..') ? readmePath : relative(root, readmePath); // in messages: README.md:<line>

const log = (message) => console.log(`check:readme: ${message}`);
class CheckFailed extends Error {}
function fail(message) {
  throw new CheckFailed(message);
}
const seconds = () => `at ${((Date.now() - started) / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------
// README blocks
// ---------------------------------------------------------------------------------------------

const EXTENSIONS = { ts: 'ts', typescript: 'ts', tsx: 'tsx', js: 'js', javascript: 'js', mjs: 'js', jsx: 'jsx' };
const BROWSER_IMPORTS = ['crawl-engine/client', 'crawl-engine/react'];

/** Every fenced block: { lang, line (of the opening fence, 1-based), lines: [{ line, text }], marks, heading }. */
function readBlocks(markdown) {
  const lines = markdown.split('\n');
  const blocks = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]);
    if (!open) {
      if (/^#{1,6}\s/.test(lines[i])) heading = lines[i].replace(/^#+\s*/, '').trim();
      continue;
    }
    const [, indent, fence, lang] = open;
    const marks = [];
    for (let j = i - 1; j >= 0 && /^\s*<!--.*-->\s*$/.test(lines[j]); j--) {
      const mark = /<!--\s*check-readme:\s*([\w-]+)/.exec(lines[j]);
      if (mark) marks.push(mark[1]);
    }
    const body = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      if (lines[j].trimStart().startsWith(fence[0].repeat(fence.length)) && lines[j].trim().replace(new RegExp(`^\\${fence[0]}+`), '') === '') break;
      body.push({ line: j + 1, text: lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j] });
    }
    blocks.push({ lang: lang.toLowerCase(), line: i + 1, lines: body, marks, heading });
    i = j;
  }
  return blocks;
}

/** The modules to typecheck: { name, ext, browser, lines: [{ line, text }], from: [block lines] }. */
function modulesOf(blocks) {
  const modules = [];
  for (const block of blocks) {
    const ext = EXTENSIONS[block.lang];
    if (!ext || block.marks.includes('skip')) continue;
    if (block.marks.includes('continues')) {
      const previous = modules.at(-1);
      if (!previous) fail(`${README}:${block.line}: "continues" but there is no checked block before it`);
      previous.lines.push(...block.lines);
      previous.from.push(block.line);
      continue;
    }
    modules.push({ name: `readme-L${block.line}`, ext, lines: [...block.lines], from: [block.line], browser: false });
  }
  for (const m of modules) {
    const text = m.lines.map((l) => l.text).join('\n');
    m.browser = m.ext === 'tsx' || m.ext === 'jsx' || BROWSER_IMPORTS.some((s) => text.includes(`'${s}'`) || text.includes(`"${s}"`));
  }
  return modules;
}

/** Bare package names a module imports (import ... from 'x', import('x'), export ... from 'x'). */
function importsOf(text) {
  const names = new Set();
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)) {
    const spec = m[1];
    if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || spec.startsWith('@/')) continue;
    const parts = spec.split('/');
    names.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// The project: pack, install
// ---------------------------------------------------------------------------------------------

const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pinned = { ...rootPkg.dependencies, ...rootPkg.devDependencies };
function versionOf(name, why) {
  const version = pinned[name];
  if (!version) fail(`${why} imports ${name}, which is not in package.json devDependencies: add it there (pinned) so the check installs that version`);
  return `${name}@${version}`;
}

/** Runs a command, output to our stdout/stderr; fails with `what` on a non-zero exit. */
function run(what, command, commandArgs, options = {}) {
  log(what);
  const result = spawnSync(command, commandArgs, { stdio: 'inherit', shell: win, ...options });
  if (result.status !== 0) fail(`${what} (exit ${result.status ?? result.signal})`);
}

const dir = mkdtempSync(join(tmpdir(), 'crawl-engine-readme-'));
let server;
let exitCode = 0;
try {
  const readme = readFileSync(readmePath, 'utf8');
  const blocks = readBlocks(readme);
  for (const block of blocks) {
    for (const mark of block.marks) {
      if (mark !== 'continues' && mark !== 'skip') fail(`${README}:${block.line}: unknown mark <!-- check-readme: ${mark} -->`);
    }
  }

  const modules = modulesOf(blocks);
  const jsonBlocks = blocks.filter((b) => b.lang === 'json' && !b.marks.includes('skip'));
  log(`${modules.length} TypeScript/JavaScript modules from ${modules.reduce((n, m) => n + m.from.length, 0)} blocks, ${jsonBlocks.length} JSON blocks`);

  // JSON blocks: cheap, no project needed.
  for (const block of jsonBlocks) {
    const first = block.lines.findIndex((l) => !/^\s*\/\//.test(l.text)); // leading `// file name` lines dropped
    const body = first < 0 ? [] : block.lines.slice(first);
    try {
      JSON.parse(body.map((l) => l.text).join('\n'));
    } catch (error) {
      fail(`${README}:${block.line}: the json block does not parse: ${error.message}`);
    }
  }

  // Pack (prepack builds dist/), as check-package.mjs does.
  let tarball = givenTarball;
  if (!tarball) {
    run('npm pack (prepack builds dist/)', 'npm', ['pack', '--pack-destination', dir, '--loglevel', 'warn'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const tarballs = readdirSync(dir).filter((f) => f.endsWith('.tgz'));
    if (tarballs.length !== 1) fail(`expected one tarball in ${dir}, found ${tarballs.length}`);
    tarball = join(dir, tarballs[0]);
  }
  const listing = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).stdout?.split('\n') ?? [];
  for (const file of ['package/dist/index.js', 'package/dist/cli.js']) {
    if (!listing.includes(file)) fail(`the tarball ${tarball} has no ${file.slice('package/'.length)}`);
  }
  log(`packed ${tarball} (${seconds()})`);

  // What to install: the tarball, the compiler, and every package a block imports, at our pinned
  // versions, with the types packages we pin for them (@types/pg for pg, ...), and the peers the
  // .d.ts of an imported subpath refers to.
  const project = join(dir, 'project');
  mkdirSync(join(project, 'blocks'), { recursive: true });
  const wanted = new Set(['typescript', '@types/node']);
  const PEERS_OF_SUBPATH = { 'crawl-engine/express': ['express'], 'crawl-engine/react': ['react'] };
  for (const m of modules) {
    const text = m.lines.map((l) => l.text).join('\n');
    for (const name of importsOf(text)) {
      if (name === 'crawl-engine') continue;
      wanted.add(name);
    }
    for (const [subpath, peers] of Object.entries(PEERS_OF_SUBPATH)) {
      if (text.includes(`'${subpath}'`)) for (const p of peers) wanted.add(p);
    }
  }
  for (const name of [...wanted]) {
    const types = `@types/${name.startsWith('@') ? name.slice(1).replace('/', '__') : name}`;
    if (pinned[types]) wanted.add(types);
  }
  const specs = [...wanted].sort().map((name) => versionOf(name, 'a README block'));
  writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'readme-check', private: true, type: 'module' }, null, 2)}\n`);
  run(
    `npm install ${tarball.split(/[\\/]/).at(-1)} ${specs.join(' ')}`,
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'warn', tarball, ...specs],
    { cwd: project },
  );
  log(`installed (${seconds()})`);

  // -------------------------------------------------------------------------------------------
  // Typecheck
  // -------------------------------------------------------------------------------------------

  writeFileSync(
    join(project, 'prelude.d.ts'),
    [
      '// What README fragments assume from the blocks above them (scripts/check-readme.mjs).',
      "declare const engine: import('crawl-engine').CrawlEngine;",
      "declare const storage: import('crawl-engine').CrawlStorage;",
      'declare const jobId: string;',
      "declare function myStorage(): import('crawl-engine').CrawlStorage;",
      '',
    ].join('\n'),
  );
  // `@/lib/engine`, the Next.js alias for <app>/lib/engine.
  mkdirSync(join(project, 'lib'), { recursive: true });
  writeFileSync(
    join(project, 'lib', 'engine.ts'),
    [
      "import { createCrawlEngine } from 'crawl-engine';",
      "import { memoryStorage } from 'crawl-engine/adapters/memory';",
      'export const engine = createCrawlEngine({ storage: memoryStorage() });',
      '',
    ].join('\n'),
  );
  const fileOf = (m) => `blocks/${m.name}.${m.ext}`;
  for (const m of modules) writeFileSync(join(project, fileOf(m)), `${m.lines.map((l) => l.text).join('\n')}\n`);
  const compilerOptions = {
    strict: true,
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    target: 'ES2022',
    moduleDetection: 'force',
    types: ['node'],
    noEmit: true,
    skipLibCheck: true,
    allowJs: true,
    checkJs: true,
    // Next.js's alias; NodeNext wants the extension, which a Next.js app's bundler resolution adds.
    paths: { '@/*': ['./*.ts', './*'] },
    ...(modules.some((m) => m.ext === 'tsx' || m.ext === 'jsx') ? { jsx: 'react-jsx' } : {}),
  };
  const programs = [
    { name: 'node', lib: ['ES2022'], modules: modules.filter((m) => !m.browser) },
    { name: 'browser', lib: ['ES2022', 'DOM', 'DOM.Iterable'], modules: modules.filter((m) => m.browser) },
  ].filter((p) => p.modules.length > 0);
  for (const p of programs) {
    writeFileSync(
      join(project, `tsconfig.${p.name}.json`),
      `${JSON.stringify({ compilerOptions: { ...compilerOptions, lib: p.lib }, files: ['prelude.d.ts', ...p.modules.map(fileOf)] }, null, 2)}\n`,
    );
  }
  const tsc = join(project, 'node_modules', 'typescript', 'bin', 'tsc');
  const results = await Promise.all(
    programs.map(
      (p) =>
        new Promise((done) => {
          const child = spawn(process.execPath, [tsc, '-p', `tsconfig.${p.name}.json`, '--pretty', 'false'], { cwd: project });
          let out = '';
          child.stdout.on('data', (d) => (out += d));
          child.stderr.on('data', (d) => (out += d));
          child.on('close', (code) => done({ program: p, code, out }));
        }),
    ),
  );
  const readmeLines = readme.split('\n');
  const failures = [];
  for (const { program, code, out } of results) {
    // `file(line,col): error TSnnnn: message`, continuation lines indented.
    const diagnostics = [];
    for (const line of out.split('\n')) {
      if (!line.trim()) continue;
      if (/^\s/.test(line) && diagnostics.length) diagnostics.at(-1).more.push(line.trim());
      else diagnostics.push({ head: line, more: [] });
    }
    for (const d of diagnostics) {
      const at = /^(.+?)\((\d+),(\d+)\): (error|warning) (TS\d+): (.*)$/.exec(d.head);
      const m = at && modules.find((x) => fileOf(x) === at[1].replaceAll('\\', '/'));
      if (m) {
        const source = m.lines[Number(at[2]) - 1];
        const line = source ? source.line : m.from[0];
        failures.push({
          block: m.from.filter((b) => b < line).at(-1) ?? m.from[0],
          line,
          text: `${at[5]}: ${[at[6], ...d.more].join(' ')}`,
          code: readmeLines[line - 1],
        });
      } else {
        failures.push({ block: null, line: null, text: [d.head, ...d.more].join(' '), program: program.name });
      }
    }
    if (code !== 0 && diagnostics.length === 0) failures.push({ block: null, line: null, text: `tsc (${program.name}) exited ${code} without diagnostics` });
  }
  if (failures.length) {
    console.error(`\ncheck:readme: ${failures.length} TypeScript error(s) in ${README} code blocks:`);
    for (const f of failures) {
      if (f.line) console.error(`  ${README}:${f.line} (block at line ${f.block}): ${f.text}\n      ${f.code?.trim()}`);
      else console.error(`  (${f.program ?? 'tsc'}) ${f.text}`);
    }
    const blocksFailing = [...new Set(failures.map((f) => f.block).filter(Boolean))];
    fail(
      `typecheck: ${blocksFailing.length ? `the blocks at ${README} lines ${blocksFailing.join(', ')} do not compile` : 'tsc failed'} (strict, NodeNext, against the packed package; --keep keeps the files)`,
    );
  }
  log(`typecheck OK: ${modules.map((m) => `L${m.from.join('+L')}${m.browser ? ' (DOM)' : ''}`).join(', ')} (${seconds()})`);

  // -------------------------------------------------------------------------------------------
  // Run the Quick start and the CLI against a loopback site
  // -------------------------------------------------------------------------------------------

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
  const requested = [];
  server = createServer((req, res) => {
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
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const origin = `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (server.address()).port}`;
  log(`site on ${origin}: ${Object.keys(PAGES).length} pages`);

  const section = (title) => blocks.filter((b) => b.heading.toLowerCase() === title.toLowerCase());
  const toLoopback = (text) => text.replaceAll(/https?:\/\/(www\.)?example\.com(?=[/\s'"`]|$)/g, origin);

  // The Quick start.
  const quick = section('Quick start').find((b) => EXTENSIONS[b.lang]);
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

  // The CLI.
  const cliBlock = section('The CLI').find((b) => b.lines.some((l) => /^\s*npx crawl-engine crawl\b/.test(l.text)));
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
  log(`OK (${seconds()})`);
} catch (error) {
  exitCode = 1;
  if (error instanceof CheckFailed) console.error(`\ncheck:readme: FAILED: ${error.message}`);
  else console.error('\ncheck:readme: FAILED:', error);
} finally {
  server?.close();
  server?.closeAllConnections?.();
  if (keep) log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);

/** Spawns without a shell, collects output, kills the process group member after timeoutMs. */
function spawnCollect(command, commandArgs, { cwd, timeoutMs }) {
  return new Promise((done) => {
    const child = spawn(command, commandArgs, { cwd, stdio: ['ignore', 'pipe', 'pipe'], shell: win });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[check-readme: killed after ${timeoutMs / 1000} s]`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}
