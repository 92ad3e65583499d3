/**
 * `crawl-engine export <jobId> --storage … [--format jsonl|csv|md] [--out PATH]`: writes the
 * results stored for a job, as `crawl` writes them, without crawling.
 */
import { fillContent } from '../../core/recrawl.js';
import { outputFormat, parseOptions, STORAGE_OPTIONS, USAGE, storedJobArgument } from '../args.js';
import { storageFailure, UsageError } from '../errors.js';
import { writeOutput } from '../output.js';
import { countsLine } from '../render.js';
import { filesLine } from '../run.js';
import { openStorage } from '../storage.js';

const EXPORT_OPTIONS = {
  ...STORAGE_OPTIONS,
  format: { type: 'string' },
  out: { type: 'string' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function exportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, EXPORT_OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const jobId = storedJobArgument('export', positionals, values);
  const format = outputFormat(values.format, values.out);
  // Only what exists: a mistyped --storage, --schema or --table-prefix must not create a storage.
  const opened = await openStorage(values, { existing: true, command: 'export' });
  try {
    const job = await opened.storage.getJob(jobId);
    if (job === null)
      throw new UsageError(
        `export: no job ${jobId} in ${opened.kind} at ${opened.where} (check --storage${opened.kind === 'Postgres' || opened.kind === 'PGlite' ? ', --schema' : ''} and --table-prefix)`,
      );
    if (format === 'md' && !(job.options.formats ?? []).includes('markdown')) {
      throw new UsageError(
        `export --format md: job ${job.id} was crawled without the markdown format, so its pages have no markdown; use --format jsonl or csv`,
      );
    }
    const results = {
      // A recrawl's unchanged pages point to the job holding their content: filled in here.
      results: async (id: string, query: { limit?: number; cursor?: string | null } = {}) => {
        const page = await opened.storage.listResults(id, { limit: query.limit ?? 100, cursor: query.cursor ?? null });
        return job.options.recrawlOf === undefined ? page : { ...page, items: await fillContent(opened.storage, job.options.formats, page.items) };
      },
    };
    const { files } = await writeOutput(results, job, format, values.out);
    if (!values.quiet) {
      process.stderr.write(
        `Exported job ${job.id} (${job.url}), ${job.status}: ${countsLine(job)}${values.out && format !== 'md' ? `; results in ${values.out}` : ''}.\n`,
      );
      if (files !== undefined) process.stderr.write(`${filesLine(files, values.out!)}\n`);
    }
    return 0;
  } catch (error) {
    throw storageFailure(error, opened);
  } finally {
    await opened.close();
  }
}
