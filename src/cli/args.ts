/** Command-line parsing: the usage text, the option specs, and flag checks whose errors name the flag. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { RENDER_MODES, RENDER_WAITS, RESULT_FORMATS } from '../core/constants.js';
import { CrawlEngineError } from '../core/errors.js';
import { JOB_ID_PATTERN } from '../core/jobs.js';
import { checkSchedule } from '../core/schedule.js';
import type { RenderMode, ResultFormat } from '../core/types.js';
import { UsageError } from './errors.js';
import { OUTPUT_FORMATS, type OutputFormat } from './output.js';
import { redactUrl } from './redact.js';

export const DEFAULT_MAX_PAGES = 50;

export const USAGE = `Usage: crawl-engine crawl <url> [options]
       crawl-engine resume <jobId> --storage sqlite:FILE|pglite:DIR|postgres://…|redis://… [options]
       crawl-engine recrawl <jobId> --storage sqlite:FILE|pglite:DIR|postgres://…|redis://… [options]
       crawl-engine export <jobId> --storage sqlite:FILE|pglite:DIR|postgres://…|redis://… [--format F] [--out PATH]
       crawl-engine delete <jobId> --storage sqlite:FILE|pglite:DIR|postgres://…|redis://… [--quiet]
       crawl-engine migrate --storage postgres://…|sqlite:FILE|pglite:DIR [--schema S] [--table-prefix P]
       crawl-engine map <url> [--limit N] [--sitemap include|only|skip] [--search TEXT] [--json] [options]

Options:
  --max-pages N               most URLs to fetch (default 50)
  --max-depth D               link hops from the start URL (default 2)
  --scope S                   same-origin | same-hostname | same-domain | any (default same-hostname)
  --include GLOB              only follow matching URLs (repeatable)
  --exclude GLOB              never follow matching URLs (repeatable)
  --sitemap M                 include: also crawl the URLs the site's sitemaps list;
                              only: the start URL and those, no links followed;
                              skip: read no sitemap (default skip)
  --concurrency N             fetches in flight overall, all hosts together (default 20,
                              at most 1000)
  --per-host-concurrency N    fetches in flight to any one host (default 2, at most 100)
  --per-host-delay-ms N       pause between requests to one host (default 0); above 0 it
                              also means one request at a time to that host
  --priority N                the job's place among queued jobs on shared storage, from
                              -1000 to 1000, higher first (default 0); this process works
                              the job at once either way
  --timeout-ms N              per-request timeout (default 15000)
  --user-agent STR            User-Agent header, also matched against robots.txt groups
                              (default crawl-engine/0.1 (+https://www.npmjs.com/package/crawl-engine))
  --no-robots                 ignore robots.txt (default: obey it, Crawl-delay included)
  --formats LIST              what each result carries, comma-separated: metadata, links,
                              text, markdown, html (default metadata)
  --only-main-content         text and markdown of the main content only (the default)
  --no-only-main-content      text and markdown of the whole page (navigation, footer…)
  --webhook URL               post the job's events to URL, signed (Standard Webhooks) with
                              the secret in CRAWL_ENGINE_WEBHOOK_SECRET (whsec_…)
  --schedule CRON             recrawl the job on a schedule, e.g. "0 3 * * *" (5 cron
                              fields, or 6 with seconds first), kept in a durable --storage:
                              the app's process route (or any processor) on it starts each
                              recrawl when due; this process crawls once
  --schedule-timezone TZ      the IANA time zone of --schedule (default UTC)
  --render M                  render pages in a browser first (Chromium, through the
                              playwright-core package): never (default), always, or auto
                              (only pages that look client-rendered: a script and almost
                              no text, or an empty #root/#app/#__next)
  --render-wait W             what a render waits for: load (default) or networkidle,
                              at most 10 s
  --render-selector CSS       a render also waits for an element matching CSS
  --chromium PATH             the Chromium to render with (default: $CHROMIUM_PATH, else
                              /usr/bin/chromium, chromium-browser, google-chrome, else
                              Playwright's own)
  --browser-ws URL            render in a remote browser instead, over CDP (ws://…)
  --format F                  how results are written: jsonl (default, one JSON line per
                              page), csv (a header row, then one row per page), or md
                              (one markdown file per page into the --out folder; adds
                              markdown to --formats)
  --out PATH                  write the results to the file PATH (default: stdout); with
                              --format md, the folder to write the files into (required)
  --storage S                 where the job lives:
                                memory         (default) gone when the process ends
                                sqlite:FILE    a SQLite file (Node.js >= 22.13), resumable
                                pglite:DIR     Postgres in a folder (needs @electric-sql/pglite),
                                               resumable, one process at a time
                                postgres://…   needs pg; migrates the schema first
                                redis://…      needs ioredis
  --schema S, --table-prefix P   Postgres schema and table prefix (default public, crawl_);
                              with sqlite:, the table prefix; with redis://, the key prefix
                              (default crawl:)
  --allow-private-network     allow loopback and private addresses (for local sites)
  --quiet                     no progress output and no summary
  -h, --help                  show this help

resume <jobId> continues a job stopped by Ctrl-C or a crash, from the same --storage: it
prints the progress so far, crawls to the end and writes every page of the job, like crawl.
It takes the crawl options that are not stored with the job (--concurrency, --timeout-ms,
--user-agent, --allow-private-network, --format, --out, --quiet); Ctrl-C prints the exact command.

recrawl <jobId> crawls a finished job again, cheaply, as a new job on the same --storage: the
same site and options (--max-pages, --max-depth, --per-host-concurrency, --per-host-delay-ms,
--priority, --schedule and --schedule-timezone may change; a schedule is not carried over), conditional requests from the ETag / Last-Modified stored with
each page (a 304 costs no body), and each result marked "change": new, changed, unchanged
or gone (404/410 now). It takes resume's options too and writes every page of the new job,
like crawl; Ctrl-C leaves the new job to resume.

export <jobId> writes the results stored for a job (finished or not) from the same --storage
(and --schema / --table-prefix), as crawl would: --format jsonl|csv|md, --out PATH.

map <url> lists a site's URLs, fast, without a job: those its sitemaps list and those its
start page links to, in scope (--scope, --include, --exclude), each once, one per line
(--json: one JSON line each, {"url", "lastmod"?}), to stdout or --out FILE; a summary and
sitemap problems go to stderr (not with --quiet). --limit N: at most N URLs (default 5000,
at most 100000); --search TEXT: only URLs containing TEXT; --sitemap include (default),
only (no page fetched) or skip (no sitemap); --timeout-ms: the whole map's time (default
30000); --no-robots: list what robots.txt disallows too. Exits 1 when no URL was found.

delete <jobId> deletes a job with its results, events and frontier from the same --storage
(and --schema / --table-prefix); a job still being crawled is cancelled first. A job with
content formats that a recrawl points to is kept (exit 1) until that recrawl is deleted.

Concurrency: one host never sees more than min(--concurrency, --per-host-concurrency)
requests at once, so a single site is fetched 2 at a time by default; raise
--per-host-concurrency for that (e.g. 10). --concurrency caps the total across hosts
and matters when the crawl spans several (--scope same-domain or any).

Exit codes:
  0    the job completed
  1    the job failed or was cancelled by someone else (the summary says why),
       or an unexpected error
  2    bad arguments (the message names the option)
  3    the storage could not be reached or failed (the message names it, with host and port)
  130  interrupted (Ctrl-C): with memory storage prints "cancelling…" and cancels the job;
       with a durable one prints "stopping…", leaves the job to resume and prints the
       resume command; either way it aborts the fetches in flight, writes the pages stored
       so far and the summary; a second Ctrl-C exits at once
  143  terminated (SIGTERM), handled like Ctrl-C`;

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;
type Parsed<T extends OptionSpec> = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; strict: true; options: T }>>;

/**
 * parseArgs, with its errors turned into CLI messages: an unknown option names the closest known
 * one, a missing value names the option.
 */
export function parseOptions<T extends OptionSpec>(argv: string[], options: T): Parsed<T> {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && code !== 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw error;
    // Parse again leniently to find the offending argument.
    const { tokens } = parseArgs({ args: argv, allowPositionals: true, strict: false, tokens: true, options });
    for (const token of tokens) {
      if (token.kind !== 'option') continue;
      const spec = options[token.name];
      const raw = argv[token.index]!.split('=', 1)[0]!;
      if (spec === undefined) {
        const typed = raw.replace(/^-+/, '');
        let best: string | null = null;
        let bestDistance = Infinity;
        for (const name of Object.keys(options)) {
          const distance = editDistance(typed, name);
          if (distance < bestDistance) [best, bestDistance] = [name, distance];
        }
        const close = best !== null && bestDistance <= Math.max(2, Math.floor(typed.length / 3));
        throw new UsageError(`unknown option ${raw}${close ? `; did you mean --${best}?` : ''}`);
      }
      if (spec.type === 'string' && token.value === undefined) throw new UsageError(`--${token.name}: expected a value`);
      if (spec.type === 'string' && token.inlineValue === false && token.value?.startsWith('-')) {
        // strict parsing refuses `--max-depth -1`: the value looks like an option.
        throw new UsageError(
          `--${token.name}: expected a value, got the option-like ${JSON.stringify(token.value)} (write --${token.name}=${token.value} if that is the value)`,
        );
      }
      if (spec.type === 'boolean' && token.value !== undefined) throw new UsageError(`--${token.name} takes no value, got ${JSON.stringify(token.value)}`);
    }
    throw new UsageError((error as Error).message.split('\n', 1)[0]!);
  }
}

/** An integer flag within bounds, or undefined when absent; anything else is a UsageError naming the flag. */
export function intFlag(flag: string, value: string | undefined, min: number, max?: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value) || Number(value) < min || (max !== undefined && Number(value) > max)) {
    throw new UsageError(`${flag}: expected an integer ${max === undefined ? `>= ${min}` : `from ${min} to ${max}`}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

export const STORAGE_OPTIONS = {
  storage: { type: 'string' },
  schema: { type: 'string' },
  'table-prefix': { type: 'string' },
} as const;

/** Options of how this process fetches: given to crawl and to resume alike (a job does not store them). */
export const RUN_OPTIONS = {
  chromium: { type: 'string' },
  'browser-ws': { type: 'string' },
  concurrency: { type: 'string' },
  'timeout-ms': { type: 'string' },
  'user-agent': { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string' },
  ...STORAGE_OPTIONS,
  'allow-private-network': { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** In the order of --help (which "did you mean" follows on a tie). */
export const CRAWL_OPTIONS = {
  'max-pages': { type: 'string' },
  'max-depth': { type: 'string' },
  scope: { type: 'string' },
  include: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
  sitemap: { type: 'string' },
  concurrency: { type: 'string' },
  'per-host-concurrency': { type: 'string' },
  'per-host-delay-ms': { type: 'string' },
  priority: { type: 'string' },
  'timeout-ms': { type: 'string' },
  'user-agent': { type: 'string' },
  'no-robots': { type: 'boolean' },
  formats: { type: 'string' },
  'only-main-content': { type: 'boolean' },
  'no-only-main-content': { type: 'boolean' },
  webhook: { type: 'string' },
  schedule: { type: 'string' },
  'schedule-timezone': { type: 'string' },
  render: { type: 'string' },
  'render-wait': { type: 'string' },
  'render-selector': { type: 'string' },
  chromium: { type: 'string' },
  'browser-ws': { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string' },
  ...STORAGE_OPTIONS,
  'allow-private-network': { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Record<keyof typeof RUN_OPTIONS, unknown> & OptionSpec;

/** Options of `map`, in the order of --help. */
export const MAP_OPTIONS = {
  limit: { type: 'string' },
  scope: { type: 'string' },
  include: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
  search: { type: 'string' },
  sitemap: { type: 'string' },
  'timeout-ms': { type: 'string' },
  'user-agent': { type: 'string' },
  'no-robots': { type: 'boolean' },
  json: { type: 'boolean' },
  out: { type: 'string' },
  'allow-private-network': { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpec;

/** How this process fetches and reports; `args` are the flags that say so again (for the resume command). */
export interface RunSettings {
  concurrency: number;
  timeoutMs: number | undefined;
  userAgent: string | undefined;
  allowPrivateNetwork: boolean;
  /** How results are written (`--format`). */
  format: OutputFormat;
  out: string | undefined;
  quiet: boolean;
  /** The browser a job that renders uses (`--chromium`, `--browser-ws`, else one found on this machine). */
  browser: { executablePath?: string; connect?: { wsEndpoint: string } };
  args: string[];
}

type RunValues = { [K in keyof typeof RUN_OPTIONS]?: (typeof RUN_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

export function runSettings(values: RunValues): RunSettings {
  const userAgent = values['user-agent'];
  if (userAgent !== undefined && (!/^[\x20-\x7e]{1,512}$/.test(userAgent) || userAgent.trim() === '')) {
    throw new UsageError(
      `--user-agent: expected 1 to 512 printable ASCII characters, got ${JSON.stringify(userAgent.length > 60 ? `${userAgent.slice(0, 60)}…` : userAgent)}`,
    );
  }
  const concurrency = intFlag('--concurrency', values.concurrency, 1, 1000);
  const timeoutMs = intFlag('--timeout-ms', values['timeout-ms'], 1, 600_000);
  const allowPrivateNetwork = values['allow-private-network'] === true;
  const format = outputFormat(values.format, values.out);
  const browser = browserFlags(values.chromium, values['browser-ws']);
  const args = [
    ...(values.chromium === undefined ? [] : ['--chromium', resolve(values.chromium)]),
    // Printed in the resume command: a token in the endpoint is not.
    ...(values['browser-ws'] === undefined ? [] : ['--browser-ws', redactUrl(values['browser-ws']) ?? '<endpoint>']),
    ...(concurrency === undefined ? [] : ['--concurrency', String(concurrency)]),
    ...(timeoutMs === undefined ? [] : ['--timeout-ms', String(timeoutMs)]),
    ...(userAgent === undefined ? [] : ['--user-agent', userAgent]),
    ...(allowPrivateNetwork ? ['--allow-private-network'] : []),
    ...(format === 'jsonl' ? [] : ['--format', format]),
    ...(values.out === undefined ? [] : ['--out', resolve(values.out)]),
  ];
  return { concurrency: concurrency ?? 20, timeoutMs, userAgent, allowPrivateNetwork, format, out: values.out, quiet: values.quiet === true, browser, args };
}

/** Where Chromium usually is: Debian and Ubuntu packages, Google Chrome. */
const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/** `--chromium PATH` and `--browser-ws URL`, checked; without either, a Chromium found on this machine (or Playwright's own). */
export function browserFlags(chromium: string | undefined, ws: string | undefined): RunSettings['browser'] {
  if (chromium !== undefined && ws !== undefined) throw new UsageError('--chromium and --browser-ws: expected one of them, not both');
  if (ws !== undefined) {
    if (!/^(?:wss?|https?):\/\/[^\s]+$/i.test(ws))
      throw new UsageError(`--browser-ws: expected a ws://, wss://, http:// or https:// URL, got ${JSON.stringify(ws)}`);
    return { connect: { wsEndpoint: ws } };
  }
  if (chromium !== undefined) {
    if (!existsSync(chromium)) throw new UsageError(`--chromium: expected the path of a Chromium executable, got ${JSON.stringify(chromium)} (no such file)`);
    return { executablePath: resolve(chromium) };
  }
  const found = [process.env.CHROMIUM_PATH, ...CHROMIUM_PATHS].find((path) => path !== undefined && path !== '' && existsSync(path));
  return found === undefined ? {} : { executablePath: found };
}

/** `--render`, `--render-wait`, `--render-selector`: the job's render options, checked. */
export function renderFlags(values: { render?: string | undefined; 'render-wait'?: string | undefined; 'render-selector'?: string | undefined }) {
  const render = values.render;
  if (render !== undefined && !(RENDER_MODES as readonly string[]).includes(render)) {
    throw new UsageError(`--render: expected one of ${RENDER_MODES.join(', ')}, got ${JSON.stringify(render)}`);
  }
  const wait = values['render-wait'];
  if (wait !== undefined && !(RENDER_WAITS as readonly string[]).includes(wait)) {
    throw new UsageError(`--render-wait: expected one of ${RENDER_WAITS.join(', ')}, got ${JSON.stringify(wait)}`);
  }
  const selector = values['render-selector'];
  if (selector !== undefined && (selector.trim() === '' || selector.length > 500))
    throw new UsageError('--render-selector: expected a CSS selector of 1 to 500 characters');
  if ((wait !== undefined || selector !== undefined) && (render === undefined || render === 'never')) {
    throw new UsageError(`${wait !== undefined ? '--render-wait' : '--render-selector'}: expected with --render always or --render auto`);
  }
  return {
    ...(render === undefined ? {} : { render: render as RenderMode }),
    ...(wait === undefined ? {} : { renderWait: wait as (typeof RENDER_WAITS)[number] }),
    ...(selector === undefined ? {} : { renderSelector: selector }),
  };
}

/**
 * Checks, before a job that renders starts, that this process can render: playwright-core is
 * installed, and a browser was named or found.
 */
export async function checkCanRender(browser: RunSettings['browser']): Promise<void> {
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    throw new UsageError('--render: rendering needs the playwright-core package: npm install playwright-core');
  }
  if (browser.connect !== undefined || browser.executablePath !== undefined) return;
  let own: string | null = null;
  try {
    own = chromium.executablePath();
  } catch {
    own = null;
  }
  if (own === null || !existsSync(own)) {
    throw new UsageError(
      '--render: no Chromium found: pass --chromium PATH or --browser-ws URL, or install one (apt install chromium, or npx playwright install chromium)',
    );
  }
}

/** `--format`, checked: `md` needs an `--out` folder. */
export function outputFormat(value: string | undefined, out: string | undefined): OutputFormat {
  if (value !== undefined && !(OUTPUT_FORMATS as readonly string[]).includes(value)) {
    throw new UsageError(`--format: expected one of ${OUTPUT_FORMATS.join(', ')}, got ${JSON.stringify(value)}`);
  }
  const format = (value ?? 'jsonl') as OutputFormat;
  if (format === 'md' && (out === undefined || out === ''))
    throw new UsageError('--format md: expected --out DIR, the folder to write one markdown file per page into');
  return format;
}

/** `--formats a,b`: each a known format, at most once. */
export function formatsFlag(value: string | undefined): ResultFormat[] | undefined {
  if (value === undefined) return undefined;
  const list = value.split(',').map((item) => item.trim());
  for (const item of list) {
    if (!(RESULT_FORMATS as readonly string[]).includes(item)) {
      throw new UsageError(
        `--formats: expected a comma-separated list of ${RESULT_FORMATS.join(', ')}, got ${JSON.stringify(item)} in ${JSON.stringify(value)}`,
      );
    }
  }
  if (new Set(list).size !== list.length) throw new UsageError(`--formats: expected each format at most once, got ${JSON.stringify(value)}`);
  return list as ResultFormat[];
}

/** A command line as a shell would take it back: arguments quoted where needed. */
export function shellCommand(args: string[]): string {
  return args.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`)).join(' ');
}

/**
 * `--schedule CRON` and `--schedule-timezone TZ`, checked as the engine would (naming the flag):
 * only with a durable `--storage`, since processors of the app on that storage start the recrawls.
 */
export async function scheduleFlags(values: {
  schedule?: string | undefined;
  'schedule-timezone'?: string | undefined;
  storage?: string | undefined;
}): Promise<{ schedule?: string; scheduleTimezone?: string }> {
  const schedule = values.schedule;
  const timezone = values['schedule-timezone'];
  if (schedule === undefined) {
    if (timezone !== undefined) throw new UsageError('--schedule-timezone: expected only with --schedule');
    return {};
  }
  if (values.storage === undefined || values.storage === 'memory') {
    throw new UsageError(
      '--schedule: expected a durable --storage (sqlite:, pglite:, postgres://, redis://): the schedule is kept there, and the processors of your app on it start each recrawl',
    );
  }
  try {
    await checkSchedule(schedule, timezone, Date.now());
  } catch (error) {
    const problem = error instanceof CrawlEngineError ? error.errors?.[0] : undefined;
    if (problem === undefined) throw error;
    throw new UsageError(`--${problem.path === 'scheduleTimezone' ? 'schedule-timezone' : 'schedule'}: ${problem.message}`);
  }
  return { schedule, ...(timezone === undefined ? {} : { scheduleTimezone: timezone }) };
}

/**
 * The `<jobId>` of a command on a stored job (resume, recrawl, export, delete), and its
 * `--storage`, checked with the command named: one job id, well formed, and a durable storage.
 */
export function storedJobArgument(command: string, positionals: string[], values: { storage?: string | undefined }): string {
  if (positionals.length !== 1)
    throw new UsageError(positionals.length === 0 ? `${command}: missing <jobId>` : `${command}: expected one <jobId>, got ${positionals.length}`);
  const jobId = positionals[0]!;
  if (!JOB_ID_PATTERN.test(jobId)) throw new UsageError(`${command}: <jobId>: expected a job id such as job_…, got ${JSON.stringify(jobId.slice(0, 80))}`);
  if (values.storage === undefined || values.storage === 'memory') {
    throw new UsageError(`${command}: --storage is required: the sqlite:FILE, pglite:DIR, postgres://… or redis://… the job was crawled with`);
  }
  return jobId;
}
