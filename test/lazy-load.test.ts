import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

function runChild(format: 'esm' | 'cjs', hooks: boolean): string {
  const args = hooks ? ['--import', `${fixtures}deny-register.mjs`] : [];
  return execFileSync(process.execPath, [...args, `${fixtures}lazy-child.mjs`, format], { encoding: 'utf8', timeout: 20_000 });
}

describe('start-up cost', () => {
  test.each(['esm', 'cjs'] as const)(
    'importing crawl-engine and an adapter (%s), creating jobs and streaming progress load neither undici nor cheerio (nor htmlparser2)',
    (format) => {
      const out = runChild(format, true).trim().split('\n');
      expect(out[0]).toBe('LIGHT');
      // The same hooks do catch the processor loading them, so the check above can fail.
      expect(out[1]).toMatch(/LOADED (undici|cheerio|htmlparser2)/);
    },
  );

  test('without the hooks the same script crawls, so the failure above comes from the hooks alone', () => {
    expect(runChild('esm', false).trim().split('\n')).toEqual(['LIGHT', 'RUN-OK 1']);
  });
});
