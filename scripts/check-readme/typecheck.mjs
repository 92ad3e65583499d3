// Step 2 of scripts/check-readme.mjs: every ts/js block as a module of the project, checked by
// `tsc --noEmit` (strict, NodeNext), server blocks with @types/node and browser ones with the DOM lib.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fail, log, README, seconds } from './common.mjs';

/** Fails naming README.md:<line> for every TypeScript error in `modules`; `readme` is the README's text. */
export async function typecheck(project, modules, readme) {
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
}
