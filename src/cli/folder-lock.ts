/**
 * The lock file of a PGlite folder. PGlite keeps one Postgres in a folder for one process at a time
 * (two would corrupt it, and PGlite does not check), so `crawl-engine.lock` names the holder: its
 * pid, host and, on Linux, its start identity (boot id and start time), which tells a live holder
 * from a process that got a dead holder's pid. A dead holder's lock is taken over.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, linkSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describeCause, StorageError } from './errors.js';

export const LOCK_FILE = 'crawl-engine.lock';

interface Holder {
  pid: number;
  host: string;
  /** `<boot id>:<start time in clock ticks>` on Linux; null where it cannot be read. */
  start: string | null;
}

/** A lock file's text that is neither JSON nor a pid is being written (by an older crawl-engine) if this recent, else garbage. */
const PARTIAL_WRITE_MS = 2000;
/** The takeover mutex is held for microseconds: one this old was left by a process that died holding it. */
const STALE_MUTEX_MS = 5000;
const ATTEMPTS = 200;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const errno = (error: unknown) => (error as NodeJS.ErrnoException)?.code;

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? '';
  }
}

/**
 * Which incarnation of process `pid` this is, on Linux: the boot id and the start time (field 22 of
 * /proc/<pid>/stat, clock ticks since boot). Null elsewhere, or when it cannot be read.
 */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) is in parentheses and may hold spaces: count from the last ')'; field 3 comes first.
    const ticks = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .at(22 - 3);
    return ticks !== undefined && /^\d+$/.test(ticks) ? `${bootId()}:${ticks}` : null;
  } catch {
    return null;
  }
}

/** The holder a lock file names; a bare pid is the format of older crawl-engine versions (this host, start unknown). */
function parseHolder(text: string): Holder | null {
  if (/^\d+$/.test(text.trim())) return { pid: Number(text.trim()), host: hostname(), start: null };
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    if (
      Number.isInteger(value.pid) &&
      (value.pid as number) > 0 &&
      typeof value.host === 'string' &&
      (value.start === null || typeof value.start === 'string')
    ) {
      return value as Holder;
    }
  } catch {
    // Not JSON: see below.
  }
  return null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errno(error) === 'EPERM';
  }
}

/** live: leave it alone; stale: its holder is gone; wait: being written at this moment. */
function judge(text: string, lock: string): { verdict: 'live' | 'stale' | 'wait'; holder: Holder | null } {
  const holder = parseHolder(text);
  if (holder === null) {
    let age = Number.POSITIVE_INFINITY;
    try {
      age = Date.now() - statSync(lock).mtimeMs;
    } catch {
      // Gone meanwhile: the caller looks again.
    }
    return { verdict: age < PARTIAL_WRITE_MS ? 'wait' : 'stale', holder };
  }
  // A process on another machine (a shared folder) cannot be checked from here.
  if (holder.host !== hostname()) return { verdict: 'live', holder };
  // This process takes the lock once: its own pid there was left by an earlier process with the same pid.
  if (holder.pid === process.pid) return { verdict: 'stale', holder };
  if (!isAlive(holder.pid)) return { verdict: 'stale', holder };
  // Alive: the holder itself, or another process that got its pid after it died.
  const now = holder.start === null ? null : processStart(holder.pid);
  return { verdict: now !== null && now !== holder.start ? 'stale' : 'live', holder };
}

const readOrNull = (file: string): string | null => {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if (errno(error) === 'ENOENT') return null;
    throw error;
  }
};

/**
 * Removes the lock file if it still holds `staleText`. Only the holder of `<lock>.takeover` removes a
 * stale lock, so two processes taking over at once cannot remove the lock the other has just taken.
 */
async function removeStale(lock: string, staleText: string): Promise<void> {
  const mutex = `${lock}.takeover`;
  let fd: number;
  try {
    fd = openSync(mutex, 'wx');
  } catch (error) {
    if (errno(error) !== 'EEXIST') throw error;
    try {
      if (Date.now() - statSync(mutex).mtimeMs > STALE_MUTEX_MS) rmSync(mutex, { force: true });
    } catch {
      // Released meanwhile.
    }
    await sleep(5 + Math.random() * 20);
    return;
  }
  try {
    closeSync(fd);
    if (readOrNull(lock) === staleText) unlinkSync(lock);
  } catch (error) {
    if (errno(error) !== 'ENOENT') throw error;
  } finally {
    rmSync(mutex, { force: true });
  }
}

function inUse(dir: string, lock: string, holder: Holder | null): StorageError {
  const who = holder === null ? '' : holder.host === hostname() ? ` (pid ${holder.pid})` : ` (pid ${holder.pid} on ${holder.host})`;
  return new StorageError(
    `PGlite folder ${dir} is in use by another process${who}; PGlite serves one process at a time (use sqlite:FILE or postgres:// to share). Lock file: ${lock}; delete it if no crawl-engine process uses the folder`,
  );
}

/**
 * Takes the lock of PGlite folder `dir` (which must exist) and returns its release. The lock file
 * appears complete or not at all: it is written under a temporary name and hard-linked into place,
 * which fails if a lock is there.
 */
export async function lockFolder(dir: string): Promise<() => void> {
  const lock = join(dir, LOCK_FILE);
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), start: processStart(process.pid) } satisfies Holder);
  const temporary = join(dir, `${LOCK_FILE}.${process.pid}.${randomBytes(6).toString('hex')}`);
  try {
    writeFileSync(temporary, mine, { flag: 'wx' });
  } catch (error) {
    throw new StorageError(`cannot open PGlite folder ${dir}: ${describeCause(error)}`);
  }
  try {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      try {
        linkSync(temporary, lock);
        return holding(lock, mine);
      } catch (error) {
        if (errno(error) !== 'EEXIST') throw new StorageError(`cannot lock PGlite folder ${dir}: ${describeCause(error)}`);
      }
      const text = readOrNull(lock);
      if (text === null) continue; // released meanwhile
      const { verdict, holder } = judge(text, lock);
      if (verdict === 'live') throw inUse(dir, lock, holder);
      if (verdict === 'wait') await sleep(20);
      else await removeStale(lock, text);
    }
    throw new StorageError(`cannot lock PGlite folder ${dir}: its lock file ${lock} kept changing`);
  } finally {
    rmSync(temporary, { force: true });
  }
}

/** The release of a lock taken: removes the lock file if it is still ours, also when the process exits at once (a second Ctrl-C). */
function holding(lock: string, mine: string): () => void {
  const unlock = () => {
    try {
      if (readOrNull(lock) === mine) unlinkSync(lock);
    } catch {
      // Gone already, or the folder with it.
    }
  };
  process.once('exit', unlock);
  return () => {
    process.off('exit', unlock);
    unlock();
  };
}
