// File names the CLI's --format md makes from hostile page URLs (src/cli/output.ts): they must be writable on every file system.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { markdownFileName } from '../src/cli/output.js';

test.each([
  ['CJK letters (3 bytes each in UTF-8)', `http://a.test/${'漢'.repeat(300)}`],
  ['astral letters (4 bytes each)', `http://a.test/${'𝐀'.repeat(300)}`],
  ['another host with a long name', `http://${'ü'.repeat(60)}.test/${'ж'.repeat(300)}`],
])('a long name of %s fits 255 bytes with its suffix and .md, and can be created', (_kind, url) => {
  const name = markdownFileName(url, 'a.test');
  const file = `${name}-99.md`;
  expect(Buffer.byteLength(file)).toBeLessThanOrEqual(255);
  expect(file.length).toBeLessThanOrEqual(255);
  const dir = mkdtempSync(join(tmpdir(), 'md-names-'));
  try {
    writeFileSync(join(dir, file), 'x');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Still distinct: the cut name ends with a hash of the whole URL.
  expect(markdownFileName(`${url}x`, 'a.test')).not.toBe(name);
});

test('Windows device names with superscript digits (COM¹, LPT³) are prefixed like COM1', () => {
  expect(markdownFileName('http://a.test/com1', 'a.test')).toBe('_com1');
  expect(markdownFileName('http://a.test/COM%C2%B9', 'a.test')).toBe('_COM¹');
  expect(markdownFileName('http://a.test/lpt%C2%B3.txt', 'a.test')).toBe('_lpt³.txt');
});
