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
//
// The steps are in scripts/check-readme/: blocks.mjs (reading the README), project.mjs (1),
// typecheck.mjs (2), run.mjs (3); common.mjs has the command line and shared helpers.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkJsonBlocks, checkMarks, modulesOf, readBlocks } from './check-readme/blocks.mjs';
import { CheckFailed, keep, log, readmePath, seconds } from './check-readme/common.mjs';
import { packAndInstall } from './check-readme/project.mjs';
import { checkCli, checkQuickStart, serveSite } from './check-readme/run.mjs';
import { typecheck } from './check-readme/typecheck.mjs';

const dir = mkdtempSync(join(tmpdir(), 'crawl-engine-readme-'));
let server;
let exitCode = 0;
try {
  const readme = readFileSync(readmePath, 'utf8');
  const blocks = readBlocks(readme);
  checkMarks(blocks);

  const modules = modulesOf(blocks);
  const jsonBlocks = blocks.filter((b) => b.lang === 'json' && !b.marks.includes('skip'));
  log(`${modules.length} TypeScript/JavaScript modules from ${modules.reduce((n, m) => n + m.from.length, 0)} blocks, ${jsonBlocks.length} JSON blocks`);

  // JSON blocks: cheap, no project needed.
  checkJsonBlocks(jsonBlocks);

  const project = packAndInstall(dir, modules);
  await typecheck(project, modules, readme);

  // Run the Quick start and the CLI against a loopback site.
  const site = await serveSite();
  server = site.server;
  await checkQuickStart(project, blocks, site.origin);
  await checkCli(project, blocks, site.origin);
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
