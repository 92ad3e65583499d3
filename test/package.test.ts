import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as {
  exports: Record<string, string | { import: { types: string; default: string }; require: { types: string; default: string } }>;
  bin: Record<string, string>;
};
const subpaths = Object.keys(pkg.exports).filter((p) => p !== './package.json');
const expected: Record<string, string[]> = {
  '.': ['createCrawlEngine', 'CrawlEngineError', 'jobInputSchema', 'normalizeUrl'],
  './adapters/memory': ['memoryStorage'],
  './adapters/postgres': ['postgresStorage'],
  './adapters/kv': ['kvStorage'],
  './adapters/sqlite': ['sqliteStorage'],
  './http': ['createCrawlHandler', 'problem'],
  './next': ['createNextHandlers'],
  './express': ['createExpressRouter'],
  './client': ['watchJob', 'createCrawlClient', 'CrawlClientError'],
  './react': ['useCrawlJob'],
  './testing': ['runStorageConformance', 'jobRecord'],
  './storage': ['CrawlEngineError', 'parseDigitsCursor', 'SKIP_CODES', 'SKIP_CODE_LIST', 'TERMINAL_STATUSES', 'TERMINAL_EVENTS'],
};

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
}

describe('the built package', () => {
  test('an error from one copy of the library is a CrawlEngineError to another, and their HTTP handler answers it 400, not 500', () => {
    // The ESM and CJS builds in one process are two copies (as is a bundled copy next to the one in
    // node_modules): each has its own CrawlEngineError class.
    const script = `
      import { createRequire } from 'node:module';
      import { CrawlEngineError, createCrawlEngine } from 'crawl-engine';
      import { createCrawlHandler } from 'crawl-engine/http';
      import { memoryStorage } from 'crawl-engine/adapters/memory';
      const cjs = createRequire(import.meta.url)('crawl-engine');
      const foreign = new cjs.CrawlEngineError('invalid_input', 'bad', { errors: [{ path: 'url', message: 'expected a URL' }] });
      const engine = cjs.createCrawlEngine({ storage: memoryStorage() });
      const handler = createCrawlHandler(engine, { public: true });
      const res = await handler(new Request('http://app.test/api/crawl/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"url":"nope"}' }));
      console.log(JSON.stringify({
        classes: cjs.CrawlEngineError !== CrawlEngineError,
        foreign: foreign instanceof CrawlEngineError,
        own: new CrawlEngineError('conflict', 'x') instanceof cjs.CrawlEngineError,
        plain: new Error('x') instanceof CrawlEngineError,
        lookalike: Object.assign(new Error('x'), { code: 'invalid_input' }) instanceof CrawlEngineError,
        status: res.status,
      }));
      await engine.close();
    `;
    const seen = JSON.parse(node(['--input-type=module', '-e', script])) as Record<string, unknown>;
    expect(seen).toEqual({ classes: true, foreign: true, own: true, plain: false, lookalike: false, status: 400 });
  });

  test('every subpath named in API.md so far is exported', () => {
    expect(subpaths.sort()).toEqual(Object.keys(expected).sort());
  });

  test.each(subpaths)('%s resolves by package name in ESM and CJS, with types for both', (subpath) => {
    const spec = subpath === '.' ? 'crawl-engine' : `crawl-engine/${subpath.slice(2)}`;
    const esm = JSON.parse(node(['--input-type=module', '-e', `import * as m from '${spec}'; console.log(JSON.stringify(Object.keys(m)))`])) as string[];
    const cjs = JSON.parse(node(['-e', `console.log(JSON.stringify(Object.keys(require('${spec}'))))`])) as string[];
    for (const name of expected[subpath]!) {
      expect(esm).toContain(name);
      expect(cjs).toContain(name);
    }
    const entry = pkg.exports[subpath] as { import: { types: string; default: string }; require: { types: string; default: string } };
    for (const file of [entry.import.types, entry.import.default, entry.require.types, entry.require.default]) {
      expect(existsSync(`${root}${file}`), file).toBe(true);
    }
  });

  test('one CrawlEngineError class is shared by every entry point (instanceof works across them)', () => {
    const out = node([
      '-e',
      `const { CrawlEngineError } = require('crawl-engine'); const { memoryStorage } = require('crawl-engine/adapters/memory');
       try { memoryStorage({ maxEventsPerJob: 0 }) } catch (e) { console.log(e instanceof CrawlEngineError) }`,
    ]);
    expect(out.trim()).toBe('true');
  });

  test('the browser client and the React hook are single files that import nothing of their own (a page can load dist/client.js as it is)', () => {
    for (const file of ['client.js', 'client.cjs', 'react.js', 'react.cjs']) {
      const code = readFileSync(`${root}dist/${file}`, 'utf8');
      const local = [...code.matchAll(/(?:from\s*|import\s*\(?\s*|require\s*\(\s*)['"](\.[^'"]*)['"]/g)].map((m) => m[1]);
      expect(local, `dist/${file} imports`).toEqual([]);
    }
  });

  test('the CLI bin is built with a shebang and answers --help', () => {
    const bin = `${root}${pkg.bin['crawl-engine']}`;
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node')).toBe(true);
    expect(node([bin, '--help'])).toContain('Usage: crawl-engine crawl <url>');
  });

  test('npm pack ships dist and nothing from src or test', () => {
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })) as [
      { files: { path: string }[] },
    ];
    const files = packed.files.map((f) => f.path);
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/adapters/memory.cjs');
    expect(files.some((f) => f.startsWith('src/') || f.startsWith('test/'))).toBe(false);
  });
});
