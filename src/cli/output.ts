/**
 * What the CLI writes of a job's results (`--format`): JSON Lines (the default) or CSV to stdout
 * or `--out FILE`, or one markdown file per page into the `--out` folder. Results are read a batch
 * at a time, and each batch is written (and drained) before the next is read.
 */
import { createHash } from 'node:crypto';
import { constants, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { exportBatchSize, exportChunks } from '../core/export.js';
import type { JobsApi } from '../core/jobs.js';
import type { Job, PageResult } from '../core/types.js';
import { SKIP_CODES } from '../core/types.js';
import { cliWording, UsageError } from './errors.js';

export const OUTPUT_FORMATS = ['jsonl', 'csv', 'md'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** What was written: failures by error code (for the summary), and the markdown files written. */
export interface OutputReport {
  failures: Map<string, number>;
  /** With `md`: files written, and pages without markdown (failed, not HTML, robots.txt skips). */
  files?: { written: number; withoutMarkdown: number };
}

type Results = Pick<JobsApi, 'results'>;

/** Error messages in CLI terms, as the summary prints them. */
function inCliTerms(result: PageResult): PageResult {
  return result.error === null ? result : { ...result, error: { ...result.error, message: cliWording(result.error.message) } };
}

function countFailure(failures: Map<string, number>, result: PageResult): void {
  if (result.error && !SKIP_CODES.has(result.error.code)) failures.set(result.error.code, (failures.get(result.error.code) ?? 0) + 1);
}

/** Writes every result of the job in `format` to `out` (stdout when undefined; a folder for `md`). */
export async function writeOutput(jobs: Results, job: Job, format: OutputFormat, out: string | undefined): Promise<OutputReport> {
  if (format === 'md') return writeMarkdownFiles(jobs, job, out!);
  const failures = new Map<string, number>();
  const file: WriteStream | null = out ? createWriteStream(out) : null;
  const stream: WriteStream | NodeJS.WriteStream = file ?? process.stdout;
  // A file that cannot be written (a missing folder, no permission) ends the export with its error.
  const finished =
    file === null
      ? null
      : new Promise<void>((resolve, reject) => {
          file.once('error', reject);
          file.once('finish', () => resolve());
        });
  finished?.catch(() => undefined);
  const counted = (result: PageResult) => {
    countFailure(failures, result);
    return inCliTerms(result);
  };
  for await (const chunk of exportChunks(jobs, job, format, counted)) {
    if (stream.write(chunk)) continue;
    const drained = new Promise<void>((resolve) => stream.once('drain', () => resolve()));
    await (finished === null ? drained : Promise.race([drained, finished]));
  }
  if (file !== null) {
    file.end();
    await finished;
  }
  return { failures };
}

/** Windows device names, which cannot be file names there whatever the extension. */
const RESERVED = /^(con|prn|aux|nul|com[\d¹²³]|lpt[\d¹²³])(\.|$)/i;
const MAX_NAME = 120;
/** File systems count bytes (ext4, APFS: 255 bytes of UTF-8): 120 letters of 3 or 4 bytes would not fit. */
const MAX_NAME_BYTES = 200;

/**
 * A safe file name (without `.md`) for a page, from its URL's path and query: `/docs/intro` gives
 * `docs_intro`, `/` gives `index`; a page on another host than the job's start URL is prefixed
 * with its host. Only letters, digits, `.`, `_` and `-` remain, never a leading dot, never a path
 * separator, at most 120 characters and 200 bytes of UTF-8 (a longer name is cut and ends with a hash
 * of the whole).
 */
export function markdownFileName(pageUrl: string, startHost: string): string {
  let url: URL;
  try {
    url = new URL(pageUrl);
  } catch {
    return 'page';
  }
  let path = url.pathname;
  try {
    path = decodeURIComponent(path);
  } catch {
    // Malformed percent-encoding: the raw path, made safe below like any other.
  }
  const raw = `${url.hostname === startHost ? '' : `${url.hostname}_`}${path.replace(/^\/+|\/+$/g, '').replace(/\.(md|markdown|html?)$/i, '')}${url.search === '' ? '' : `_${url.search.slice(1)}`}`;
  let name = raw
    .normalize('NFC')
    .replace(/[^\p{L}\p{N}._-]+/gu, '_')
    .replace(/^[._]+/, '')
    .replace(/_+$/, '');
  if (name === '') name = url.hostname === startHost ? 'index' : `${url.hostname}_index`;
  if (RESERVED.test(name)) name = `_${name}`;
  if (name.length > MAX_NAME || Buffer.byteLength(name) > MAX_NAME_BYTES) {
    const hash = createHash('sha256').update(pageUrl).digest('hex').slice(0, 10);
    let cut = '';
    let bytes = 0;
    for (const char of name) {
      bytes += Buffer.byteLength(char);
      if (cut.length + char.length > MAX_NAME - 11 || bytes > MAX_NAME_BYTES - 11) break;
      cut += char;
    }
    name = `${cut}-${hash}`;
  }
  return name;
}

/** YAML front matter with the page's URL and title (JSON strings are YAML double-quoted scalars). */
function frontMatter(result: PageResult): string {
  const lines = [`url: ${JSON.stringify(result.url)}`];
  if (result.finalUrl !== result.url) lines.push(`finalUrl: ${JSON.stringify(result.finalUrl)}`);
  if (result.title !== null) lines.push(`title: ${JSON.stringify(result.title)}`);
  return `---\n${lines.join('\n')}\n---\n\n`;
}

/**
 * One `.md` file per page with markdown, named by {@link markdownFileName}; a name taken already
 * (compared without case, for case-insensitive file systems) gets `-2`, `-3`, …. Files are opened
 * without following symbolic links, so a link planted in the folder cannot redirect a write.
 */
async function writeMarkdownFiles(jobs: Results, job: Job, dir: string): Promise<OutputReport> {
  const failures = new Map<string, number>();
  await mkdir(dir, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`--out: cannot create the folder ${JSON.stringify(dir)}: ${error.code ?? error.message}`);
  });
  if (!(await stat(dir)).isDirectory())
    throw new UsageError(`--out: ${JSON.stringify(dir)} is not a folder (--format md writes one file per page into a folder)`);
  const startHost = new URL(job.url).hostname;
  const taken = new Set<string>();
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (constants.O_NOFOLLOW ?? 0);
  let written = 0;
  let withoutMarkdown = 0;
  let cursor: string | null = null;
  const limit = exportBatchSize(job);
  do {
    const page: { items: PageResult[]; nextCursor: string | null } = await jobs.results(job.id, { limit, cursor });
    for (const result of page.items) {
      countFailure(failures, result);
      if (typeof result.markdown !== 'string') {
        withoutMarkdown++;
        continue;
      }
      const base = markdownFileName(result.url, startHost);
      let name = base;
      for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${base}-${n}`;
      taken.add(name.toLowerCase());
      const path = join(dir, `${name}.md`);
      const file = await open(path, flags, 0o644).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ELOOP') throw new UsageError(`--out: ${JSON.stringify(path)} is a symbolic link; not writing through it`);
        throw error;
      });
      try {
        await file.writeFile(`${frontMatter(result)}${result.markdown}${result.markdown.endsWith('\n') ? '' : '\n'}`, 'utf8');
      } finally {
        await file.close();
      }
      written++;
    }
    cursor = page.nextCursor;
  } while (cursor !== null);
  return { failures, files: { written, withoutMarkdown } };
}
