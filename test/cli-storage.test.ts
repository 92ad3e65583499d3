// The CLI's --storage helpers on their own: the storage URL printed in the resume command, and the
// lock file of a PGlite folder. (test/cli*.test.ts run the built CLI end to end.)
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { LOCK_FILE, lockFolder, processStart } from '../src/cli/folder-lock.js';
import { redactUrl } from '../src/cli/redact.js';

/** Called after each readFileSync (of the code under test too): simulates another process acting between two steps. */
let afterRead: ((path: unknown) => void) | null = null;
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const readFileSync = ((...args: Parameters<typeof fs.readFileSync>) => {
    const out = fs.readFileSync(...args);
    afterRead?.(args[0]);
    return out;
  }) as typeof fs.readFileSync;
  return { ...fs, default: { ...fs, readFileSync }, readFileSync };
});

describe('redactUrl(): the storage URL in the printed resume command', () => {
  test.each([
    ['postgres://u:s3cret@h:5432/db', 'postgres://u:<password>@h:5432/db'],
    // The userinfo runs to the last @ of the authority.
    ['postgres://u:pa@ss@h/db', 'postgres://u:<password>@h/db'],
    ['postgres://u:p%40ss@h/db?sslmode=require', 'postgres://u:<password>@h/db?sslmode=require'],
    ['postgres://u@h/db?password=s3cret&sslmode=disable', 'postgres://u@h/db?password=<password>&sslmode=disable'],
    [
      'postgresql://h/db?sslpassword=a&sslkey=/k.pem&sslcert=/c.pem&sslrootcert=/ca.pem&application_name=x',
      'postgresql://h/db?sslpassword=<password>&sslkey=<password>&sslcert=<password>&sslrootcert=/ca.pem&application_name=x',
    ],
    [
      'postgres://h/db?Token=t&api_KEY=k&MySecret=s&passwd=p&user=u',
      'postgres://h/db?Token=<password>&api_KEY=<password>&MySecret=<password>&passwd=<password>&user=u',
    ],
    // An encoded name is matched decoded; a bare name gets the placeholder as its value.
    ['postgres://h/db?pass%77ord=x&token', 'postgres://h/db?pass%77ord=<password>&token=<password>'],
    ['redis://:s3cret@127.0.0.1:6379/0', 'redis://:<password>@127.0.0.1:6379/0'],
    ['rediss://default:s3cret@cache.example:6380', 'rediss://default:<password>@cache.example:6380'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['postgres://postgres@127.0.0.1:5432/test', 'postgres://postgres@127.0.0.1:5432/test'],
  ])('%s → %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
    expect(redactUrl(url)).not.toMatch(/s3cret|ss@|\/[kc]\.pem/);
  });

  test('a URL that cannot be parsed gives null: nothing of it is printed', () => {
    expect(redactUrl('postgres://u:pa/ss@h/db')).toBeNull();
    expect(redactUrl('not a url')).toBeNull();
  });
});

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
const folder = () => {
  const dir = mkdtempSync(join(tmpdir(), 'crawl-lock-'));
  dirs.push(dir);
  return dir;
};
const holderOf = (dir: string) => JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { pid: number; host: string; start: string | null };
/** Only the lock itself is left in the folder: no temporary file, no takeover mutex. */
const onlyTheLock = (dir: string) => expect(readdirSync(dir)).toEqual([LOCK_FILE]);

describe('lockFolder(): the lock of a PGlite folder', () => {
  test('takes a free folder, names this process in the lock, and removes it on release', async () => {
    const dir = folder();
    const unlock = await lockFolder(dir);
    expect(holderOf(dir)).toEqual({ pid: process.pid, host: hostname(), start: processStart(process.pid) });
    onlyTheLock(dir);
    unlock();
    expect(readdirSync(dir)).toEqual([]);
  });

  test.each([
    ['a bare pid (older crawl-engine)', () => String(process.pid)],
    ['JSON, with this very process’s start', () => JSON.stringify({ pid: process.pid, host: hostname(), start: processStart(process.pid) })],
  ])('a lock holding this process’s own pid (%s) was left by an earlier process: taken over', async (_format, text) => {
    const dir = folder();
    writeFileSync(join(dir, LOCK_FILE), text());
    const unlock = await lockFolder(dir);
    expect(holderOf(dir)).toEqual({ pid: process.pid, host: hostname(), start: processStart(process.pid) });
    onlyTheLock(dir);
    unlock();
  });

  test('a lock whose process is gone is taken over', async () => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    const pid = child.pid!;
    await new Promise((resolve) => child.on('exit', resolve));
    const dir = folder();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid, host: hostname(), start: processStart(process.pid) }));
    const unlock = await lockFolder(dir);
    expect(holderOf(dir).pid).toBe(process.pid);
    unlock();
  });

  test.runIf(process.platform === 'linux')('a live pid with another start identity (the pid was reused) is a stale lock: taken over', async () => {
    // The parent of this test process is alive, but did not write this lock: its start differs.
    expect(processStart(process.ppid)).toMatch(/^.+:\d+$/);
    const dir = folder();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, host: hostname(), start: `${processStart(process.ppid)}0` }));
    const unlock = await lockFolder(dir);
    expect(holderOf(dir).pid).toBe(process.pid);
    onlyTheLock(dir);
    unlock();
  });

  test('a live holder with the right start identity, or one on another host, is refused with the lock file named; the lock is left alone', async () => {
    const dir = folder();
    const lock = join(dir, LOCK_FILE);
    for (const holder of [
      { pid: process.ppid, host: hostname(), start: processStart(process.ppid) },
      { pid: 12345, host: 'elsewhere.example', start: null },
    ]) {
      const text = JSON.stringify(holder);
      writeFileSync(lock, text);
      const error = await lockFolder(dir).catch((e: unknown) => e);
      expect((error as Error).message).toMatch(
        new RegExp(
          `^PGlite folder ${dir} is in use by another process \\(pid ${holder.pid}.*\\); .*Lock file: ${lock.replaceAll('.', '\\.')}; delete it if no crawl-engine process uses the folder$`,
        ),
      );
      expect(readFileSync(lock, 'utf8')).toBe(text);
      onlyTheLock(dir);
    }
  });

  test('a stale lock replaced by a live one after it was judged stale (another process took it over) is not removed', async () => {
    const dir = folder();
    const lock = join(dir, LOCK_FILE);
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), start: 'gone:1' }));
    const taken = JSON.stringify({ pid: 4242, host: 'elsewhere.example', start: null });
    // Right after lockFolder() reads the stale lock, "another process" replaces it with its own.
    afterRead = (path) => {
      if (path !== lock) return;
      afterRead = null;
      rmSync(lock);
      writeFileSync(lock, taken);
    };
    const error = await lockFolder(dir).catch((e: unknown) => e);
    afterRead = null;
    expect((error as Error).message).toMatch(/is in use by another process \(pid 4242 on elsewhere\.example\)/);
    expect(readFileSync(lock, 'utf8')).toBe(taken);
    onlyTheLock(dir);
  });

  test('a stale lock is removed only by the holder of the takeover mutex; a mutex left by a dead process is cleared after 5 s', async () => {
    const dir = folder();
    const lock = join(dir, LOCK_FILE);
    const mutex = `${lock}.takeover`;
    const stale = JSON.stringify({ pid: process.pid, host: hostname(), start: 'gone:1' });
    writeFileSync(lock, stale);
    writeFileSync(mutex, '');
    const taking = lockFolder(dir);
    await new Promise((resolve) => setTimeout(resolve, 150));
    // Another process is taking it over: the stale lock is left to it.
    expect(readFileSync(lock, 'utf8')).toBe(stale);
    rmSync(mutex);
    (await taking)();
    expect(readdirSync(dir)).toEqual([]);

    writeFileSync(lock, stale);
    writeFileSync(mutex, '');
    const old = new Date(Date.now() - 10_000);
    utimesSync(mutex, old, old);
    const unlock = await lockFolder(dir);
    expect(holderOf(dir).start).toBe(processStart(process.pid));
    onlyTheLock(dir);
    unlock();
  });
});
