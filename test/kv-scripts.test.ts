import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { HOST_STATE, indexKeys, JOB_FIELDS, jobKeys, URL_ENTRY } from '../adapters/kv/keys.js';
import * as S from '../adapters/kv/scripts.js';
import { expandLua } from '../scripts/lua.mjs';

const LUA = fileURLToPath(new URL('../adapters/kv/lua/', import.meta.url));
const files = readdirSync(LUA).filter((f) => f.endsWith('.lua'));

describe('expandLua (scripts/lua.mjs)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lua-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => writeFileSync(join(dir, name), text);

  test('expands includes relative to the including file, each file once, and drops comment lines', () => {
    write('a.lua', '-- header\n--- @include "b"\n--- @include "c.lua"\n\nreturn b() + c()\n');
    write('b.lua', '--- @include "c"\nlocal function b() return c() end  \n');
    write('c.lua', '-- c\nlocal function c() return 1 end\n');
    const { code, files } = expandLua(join(dir, 'a.lua'));
    expect(code).toBe('local function c() return 1 end\nlocal function b() return c() end\nreturn b() + c()\n');
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(['a.lua', 'b.lua', 'c.lua']);
  });

  test('a missing include or an include cycle is an error naming the files', () => {
    write('missing.lua', '--- @include "nowhere"\n');
    expect(() => expandLua(join(dir, 'missing.lua'))).toThrow(/missing\.lua:1: included file .*nowhere\.lua does not exist/);
    write('x.lua', '--- @include "y"\n');
    write('y.lua', '--- @include "x"\n');
    expect(() => expandLua(join(dir, 'x.lua'))).toThrow('include cycle in');
    expect(() => expandLua(join(dir, 'x.lua'))).toThrow('x.lua -> y.lua -> x.lua');
    write('block.lua', '--[[ no ]]\n');
    expect(() => expandLua(join(dir, 'block.lua'))).toThrow(/block comments/);
  });

  test.each([
    `--- @include 'includes/h'`,
    `--- @include "includes/h" -- note`,
    `-- @include "includes/h"`,
    `--- @include includes/h`,
    `  ---@include"includes/h"`,
    `-- see @include "includes/h" below`,
  ])('a comment line mentioning @include that is not the strict form is a build error naming the file and line: %s', (line) => {
    write('h.lua', 'local function h() return 1 end\n');
    write('typo.lua', `-- header\n${line}\nreturn h()\n`);
    expect(() => expandLua(join(dir, 'typo.lua'))).toThrow(
      new RegExp(
        `\\[lua\\] .*typo\\.lua:2: malformed include ${JSON.stringify(line.trim()).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: expected the whole line to be --- @include "path"`,
      ),
    );
  });
});

describe('the KV Lua scripts', () => {
  const k = jobKeys('p:', 'id');
  const ix = indexKeys('p:');
  const calls = [
    S.CREATE(k, 'h'),
    ...[S.READ_JOB, S.CLAIM, S.COMPLETE, S.RETRY, S.RELEASE, S.CANCEL, S.APPEND_EVENTS, S.READ_EVENTS, S.READ_RESULTS, S.PUT_ROBOTS, S.GET_ROBOTS].map((s) =>
      s(k),
    ),
    S.INDEX_ADD(ix, 'id'),
    S.INDEX_ACTIVE(ix),
    S.INDEX_APPLY(ix),
    S.INDEX_LIST(ix),
    S.INDEX_DROP(ix, 'id'),
  ];

  test('one script per file, named <name>-<number of KEYS>.lua, inlined with its includes', () => {
    expect(calls.map((c) => `${c.name}-${c.keys.length}.lua`).sort()).toEqual([...files].sort());
    for (const c of calls) expect(c.lua).toBe(expandLua(join(LUA, `${c.name}-${c.keys.length}.lua`)).code);
  });

  test.each(files)('%s: its header names every KEYS[i] and ARGV[i] it uses, and it uses no other KEYS', (file) => {
    const text = readFileSync(join(LUA, file), 'utf8');
    const header = text.slice(0, text.search(/^[^-\n]/m));
    const body = text.slice(header.length);
    const count = Number(/-(\d+)\.lua$/.exec(file)![1]);
    for (let i = 1; i <= count; i++) expect(header, `KEYS[${i}]`).toMatch(new RegExp(`^-- +KEYS\\[${i}\\] `, 'm'));
    for (const [, i] of body.matchAll(/KEYS\[(\d+)\]/g)) expect(Number(i)).toBeLessThanOrEqual(count);
    for (const [argv] of body.matchAll(/ARGV\[\d+\]/g)) expect(header, argv).toContain(argv);
    expect(header).toMatch(/^-- Returns /m);
  });

  test('every field of the job hash the scripts use is in the key map (keys.ts), and every field there is used', () => {
    const used = new Set<string>();
    const lua = files.map((f) => expandLua(join(LUA, f)).code).join('\n');
    for (const [, name] of lua.matchAll(/\bfield\(K, '(\w+)'\)/g)) used.add(name!);
    // redis.call('<command>', K.job, ...): fields are every argument of HMGET, the even ones of HSET.
    for (const m of lua.matchAll(/redis\.call\('(HSET|HGET|HMGET|HINCRBY|HSETNX|HEXISTS)', K\.job, /g)) {
      const args: string[] = [];
      let depth = 0;
      let quote = false;
      let current = '';
      for (const ch of lua.slice(m.index + m[0].length)) {
        if (ch === "'") quote = !quote;
        if (!quote && ch === '(') depth++;
        if (!quote && ch === ')' && depth-- === 0) break;
        if (!quote && depth === 0 && ch === ',') {
          args.push(current.trim());
          current = '';
        } else current += ch;
      }
      args.push(current.trim());
      const fields = m[1] === 'HMGET' ? args : m[1] === 'HSET' ? args.filter((_, i) => i % 2 === 0) : args.slice(0, 1);
      // The one call with a variable field: field(K, name) itself, counted at its callers above.
      if (fields[0] === 'name' && m[1] === 'HGET') continue;
      for (const f of fields) {
        expect(f, `${m[1]} field`).toMatch(/^'\w+'$/);
        used.add(f.slice(1, -1));
      }
    }
    expect([...used].sort()).toEqual([...JOB_FIELDS].sort());
  });

  test('the packed URL entries and host states are decoded part by part, in the order keys.ts documents', () => {
    const entries = readFileSync(join(LUA, 'includes/entries.lua'), 'utf8');
    expect(entries).toContain(
      `local ${URL_ENTRY.join(', ')} = string.match(s, '^${URL_ENTRY.map((_, i) => (i < URL_ENTRY.length - 1 ? '([^|]*)|' : '(.*)$')).join('')}')`,
    );
    expect(entries).toContain(`local ${HOST_STATE.join(', ')} = string.match(s, '^${HOST_STATE.map(() => '([^|]*)').join('|')}$')`);
  });
});
