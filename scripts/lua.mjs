// Lua scripts as string modules, BullMQ-style: `import claim from './lua/claim-9.lua'` gives the
// script's source with every `--- @include "includes/x"` line replaced by includes/x.lua (resolved
// from the including file's folder, `.lua` optional). Each file is included at most once per script
// (later includes of it are dropped, so shared helpers are defined once); a missing include or an
// include cycle is a build error, and so is any other comment line mentioning @include (a mistyped
// include would be dropped as a comment and fail only in Redis). Whole-line `--` comments and blank
// lines are dropped from the emitted string: the headers are for readers, Redis gets the code. The
// string is inlined into the bundle, so nothing reads a file at run time (serverless and edge
// bundles have no source tree).
//
// Used by tsup (`luaEsbuildPlugin()`, esbuild) and vitest (`luaVitePlugin()`, Vite).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';

const INCLUDE = /^[ \t]*---[ \t]*@include[ \t]+"([^"]+)"[ \t]*$/;

/**
 * Expands the includes of one Lua file.
 * @param {string} file absolute path of the script
 * @returns {{ code: string, files: string[] }} the code Redis runs, and every file it was built from
 */
export function expandLua(file) {
  const included = new Set();
  const stack = [];
  const lines = [];
  const visit = (path, from) => {
    if (stack.includes(path)) {
      const cycle = [...stack.slice(stack.indexOf(path)), path].map((p) => relative(dirname(file), p)).join(' -> ');
      throw new Error(`[lua] include cycle in ${file}: ${cycle}`);
    }
    if (included.has(path)) return;
    if (!existsSync(path)) throw new Error(`[lua] ${from ?? file}: included file ${path} does not exist`);
    included.add(path);
    stack.push(path);
    const source = readFileSync(path, 'utf8').split(/\r?\n/);
    source.forEach((line, i) => {
      const include = INCLUDE.exec(line);
      if (include) {
        const name = include[1].endsWith('.lua') ? include[1] : `${include[1]}.lua`;
        visit(resolve(dirname(path), name), `${path}:${i + 1}`);
        return;
      }
      const code = line.trimStart();
      // Block comments would survive half-stripped: keep to line comments.
      if (code.startsWith('--[')) throw new Error(`[lua] ${path}:${i + 1}: block comments (--[[ ]]) are not supported, use -- lines`);
      if (code.startsWith('--') && code.includes('@include')) {
        throw new Error(`[lua] ${path}:${i + 1}: malformed include ${JSON.stringify(line.trim())}: expected the whole line to be --- @include "path"`);
      }
      if (code === '' || code.startsWith('--')) return;
      lines.push(line.trimEnd());
    });
    stack.pop();
  };
  visit(resolve(file), null);
  return { code: `${lines.join('\n')}\n`, files: [...included] };
}

/** The module a `.lua` import becomes. */
const toModule = (code) => `export default ${JSON.stringify(code)};\n`;

/**
 * esbuild plugin (tsup's `esbuildPlugins`).
 * @returns {import('esbuild').Plugin}
 */
export function luaEsbuildPlugin() {
  return {
    name: 'lua',
    setup(build) {
      build.onLoad({ filter: /\.lua$/ }, (args) => {
        const { code, files } = expandLua(args.path);
        return { contents: toModule(code), loader: 'js', watchFiles: files };
      });
    },
  };
}

/**
 * Vite plugin (vitest's `plugins`).
 * @returns {import('vite').Plugin}
 */
export function luaVitePlugin() {
  return {
    name: 'lua',
    enforce: 'pre',
    load(id) {
      const path = id.split('?')[0];
      if (!path.endsWith('.lua')) return null;
      const { code, files } = expandLua(path);
      for (const f of files) this.addWatchFile(f);
      return { code: toModule(code), map: null };
    },
  };
}
