// The README's fenced blocks for scripts/check-readme.mjs: reading them with their marks and
// headings, grouping them into the modules to typecheck, the packages they import, JSON blocks.
import { fail, README } from './common.mjs';

export const EXTENSIONS = { ts: 'ts', typescript: 'ts', tsx: 'tsx', js: 'js', javascript: 'js', mjs: 'js', jsx: 'jsx' };
const BROWSER_IMPORTS = ['crawl-engine/client', 'crawl-engine/react'];

/** Every fenced block: { lang, line (of the opening fence, 1-based), lines: [{ line, text }], marks, heading }. */
export function readBlocks(markdown) {
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

/** Fails on a mark other than `continues` and `skip`. */
export function checkMarks(blocks) {
  for (const block of blocks) {
    for (const mark of block.marks) {
      if (mark !== 'continues' && mark !== 'skip') fail(`${README}:${block.line}: unknown mark <!-- check-readme: ${mark} -->`);
    }
  }
}

/** The modules to typecheck: { name, ext, browser, lines: [{ line, text }], from: [block lines] }. */
export function modulesOf(blocks) {
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
export function importsOf(text) {
  const names = new Set();
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)) {
    const spec = m[1];
    if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || spec.startsWith('@/')) continue;
    const parts = spec.split('/');
    names.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
  }
  return names;
}

/** JSON blocks must parse, after dropping leading `// file name` lines. */
export function checkJsonBlocks(jsonBlocks) {
  for (const block of jsonBlocks) {
    const first = block.lines.findIndex((l) => !/^\s*\/\//.test(l.text)); // leading `// file name` lines dropped
    const body = first < 0 ? [] : block.lines.slice(first);
    try {
      JSON.parse(body.map((l) => l.text).join('\n'));
    } catch (error) {
      fail(`${README}:${block.line}: the json block does not parse: ${error.message}`);
    }
  }
}
