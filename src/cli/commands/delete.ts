/**
 * `crawl-engine delete <jobId> --storage …`: deletes a stored job with its results, events and
 * frontier (cancelling it first if a process is still crawling it).
 */
import { CrawlEngineError } from '../../core/errors.js';
import { createJobsApi } from '../../core/jobs.js';
import { parseOptions, STORAGE_OPTIONS, USAGE, storedJobArgument } from '../args.js';
import { storageFailure, UsageError } from '../errors.js';
import { countsLine } from '../render.js';
import { openStorage } from '../storage.js';

const DELETE_OPTIONS = { ...STORAGE_OPTIONS, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

export async function deleteCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, DELETE_OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const jobId = storedJobArgument('delete', positionals, values);
  // Only what exists: a mistyped --storage, --schema or --table-prefix must not create a storage.
  const opened = await openStorage(values, { existing: true, command: 'delete' });
  try {
    // Postgres needs the delete_job function of migration 6.
    if ('migrate' in opened.storage) await (opened.storage as { migrate(): Promise<unknown> }).migrate();
    const job = await opened.storage.getJob(jobId);
    if (job === null)
      throw new UsageError(
        `delete: no job ${jobId} in ${opened.kind} at ${opened.where} (check --storage${opened.kind === 'Postgres' || opened.kind === 'PGlite' ? ', --schema' : ''} and --table-prefix)`,
      );
    // As engine.jobs.delete: a job holding content that a recrawl of it points to is kept.
    let deleted: boolean;
    try {
      deleted = await createJobsApi(opened.storage, () => undefined, Date.now).delete(jobId);
    } catch (error) {
      if (!(error instanceof CrawlEngineError) || error.code !== 'conflict') throw error;
      process.stderr.write(`crawl-engine: delete: ${error.message.replace(/^\[crawl-engine\] /, '')}\n`);
      return 1;
    }
    if (!values.quiet) {
      process.stderr.write(
        deleted ? `Deleted job ${job.id} (${job.url}), ${job.status}: ${countsLine(job)}.\n` : `Job ${jobId} was deleted meanwhile by another process.\n`,
      );
    }
    return 0;
  } catch (error) {
    throw storageFailure(error, opened);
  } finally {
    await opened.close();
  }
}
