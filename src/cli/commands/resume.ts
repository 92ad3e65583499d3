import type { Job } from '../../core/types.js';
import { TERMINAL_STATUSES } from '../../core/types.js';
import { checkCanRender, parseOptions, RUN_OPTIONS, runSettings, storedJobArgument, USAGE } from '../args.js';
import { storageFailure, UsageError } from '../errors.js';
import { countsLine } from '../render.js';
import { closeAfterRun, runJob } from '../run.js';
import { openStorage } from '../storage.js';

export async function resumeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, RUN_OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const jobId = storedJobArgument('resume', positionals, values);
  const settings = runSettings(values);
  // Only what exists: a mistyped --storage, --schema or --table-prefix must not create a storage.
  const opened = await openStorage(values, { existing: true });
  try {
    if ('migrate' in opened.storage) await (opened.storage as { migrate(): Promise<unknown> }).migrate();
    const job: Job | null = await opened.storage.getJob(jobId);
    if (job === null)
      throw new UsageError(
        `resume: no job ${jobId} in ${opened.kind} at ${opened.where} (check --storage${opened.kind === 'Postgres' || opened.kind === 'PGlite' ? ', --schema' : ''} and --table-prefix)`,
      );
    if (settings.format === 'md' && !(job.options.formats ?? []).includes('markdown')) {
      throw new UsageError(
        `resume --format md: job ${job.id} was created without the markdown format, so its pages have no markdown; use --format jsonl or csv`,
      );
    }
    if (!settings.quiet) {
      const state = TERMINAL_STATUSES.has(job.status) ? `already ${job.status}` : 'resuming';
      process.stderr.write(`Job ${job.id} (${job.url}), ${state}: ${countsLine(job)}.\n`);
      if (job.counts.inProgress > 0 && !TERMINAL_STATUSES.has(job.status)) {
        process.stderr.write(
          `${job.counts.inProgress} of its pages are leased, by another process or by a run that stopped without giving them back: those are fetched again once their leases run out (a minute, or --timeout-ms if longer).\n`,
        );
      }
    }
    if ((job.options.render ?? 'never') !== 'never') await checkCanRender(settings.browser);
    return await runJob(opened, settings, {
      start: async () => job,
      resumed: job,
      maxPages: job.options.maxPages,
      renders: (job.options.render ?? 'never') !== 'never',
    });
  } catch (error) {
    throw storageFailure(error, opened);
  } finally {
    await closeAfterRun(opened);
  }
}
