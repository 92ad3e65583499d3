import type { Job } from '../../core/types.js';
import { TERMINAL_STATUSES } from '../../core/types.js';
import { checkCanRender, intFlag, parseOptions, RUN_OPTIONS, runSettings, scheduleFlags, storedJobArgument, type OptionSpec, USAGE } from '../args.js';
import { storageFailure, UsageError } from '../errors.js';
import { countsLine } from '../render.js';
import { closeAfterRun, runJob } from '../run.js';
import { openStorage } from '../storage.js';

/** The run options, and the job options a recrawl may change. */
export const RECRAWL_OPTIONS = {
  'max-pages': { type: 'string' },
  'max-depth': { type: 'string' },
  'per-host-concurrency': { type: 'string' },
  'per-host-delay-ms': { type: 'string' },
  priority: { type: 'string' },
  schedule: { type: 'string' },
  'schedule-timezone': { type: 'string' },
  ...RUN_OPTIONS,
} as const satisfies OptionSpec;

export async function recrawlCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, RECRAWL_OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const jobId = storedJobArgument('recrawl', positionals, values);
  const maxPages = intFlag('--max-pages', values['max-pages'], 1, 1_000_000);
  const maxDepth = intFlag('--max-depth', values['max-depth'], 0, 1000);
  const perHostConcurrency = intFlag('--per-host-concurrency', values['per-host-concurrency'], 1, 100);
  const perHostDelayMs = intFlag('--per-host-delay-ms', values['per-host-delay-ms'], 0, 600_000);
  const priority = intFlag('--priority', values.priority, -1000, 1000);
  const overrides = {
    ...(maxPages === undefined ? {} : { maxPages }),
    ...(maxDepth === undefined ? {} : { maxDepth }),
    ...(perHostConcurrency === undefined ? {} : { perHostConcurrency }),
    ...(perHostDelayMs === undefined ? {} : { perHostDelayMs }),
    ...(priority === undefined ? {} : { priority }),
    ...(await scheduleFlags(values)),
  };
  const settings = runSettings(values);
  // Only what exists: a mistyped --storage, --schema or --table-prefix must not create a storage.
  const opened = await openStorage(values, { existing: true });
  try {
    if ('migrate' in opened.storage) await (opened.storage as { migrate(): Promise<unknown> }).migrate();
    const earlier: Job | null = await opened.storage.getJob(jobId);
    if (earlier === null)
      throw new UsageError(
        `recrawl: no job ${jobId} in ${opened.kind} at ${opened.where} (check --storage${opened.kind === 'Postgres' || opened.kind === 'PGlite' ? ', --schema' : ''} and --table-prefix)`,
      );
    if (!TERMINAL_STATUSES.has(earlier.status)) {
      throw new UsageError(`recrawl: job ${jobId} is ${earlier.status}; only a finished job can be recrawled (resume it with: crawl-engine resume ${jobId} …)`);
    }
    if (settings.format === 'md' && !(earlier.options.formats ?? []).includes('markdown')) {
      throw new UsageError(
        `recrawl --format md: job ${jobId} was crawled without the markdown format, so its pages have no markdown; use --format jsonl or csv`,
      );
    }
    if (!settings.quiet) process.stderr.write(`Recrawling job ${earlier.id} (${earlier.url}), ${earlier.status}: ${countsLine(earlier)}.\n`);
    if ((earlier.options.render ?? 'never') !== 'never') await checkCanRender(settings.browser);
    return await runJob(opened, settings, {
      start: (engine) => engine.jobs.recrawl(jobId, overrides),
      resumed: null,
      maxPages: maxPages ?? earlier.options.maxPages,
      renders: (earlier.options.render ?? 'never') !== 'never',
    });
  } catch (error) {
    throw storageFailure(error, opened);
  } finally {
    await closeAfterRun(opened);
  }
}
