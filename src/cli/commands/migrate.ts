/** `crawl-engine migrate --storage …`: creates or upgrades the tables of a Postgres, PGlite or SQLite storage. */
import { parseOptions, STORAGE_OPTIONS, USAGE } from '../args.js';
import { storageFailure, UsageError } from '../errors.js';
import { openStorage } from '../storage.js';

const MIGRATE_OPTIONS = { ...STORAGE_OPTIONS, help: { type: 'boolean', short: 'h' } } as const;

export async function migrateCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, MIGRATE_OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`migrate takes no positional arguments, got ${JSON.stringify(positionals[0])}`);
  if (values.storage === undefined || !/^(postgres(ql)?:\/\/|sqlite:|pglite:)/.test(values.storage)) {
    throw new UsageError('migrate: --storage postgres://… is required (or sqlite:FILE, pglite:DIR)');
  }
  const opened = await openStorage(values);
  try {
    const { applied, version } =
      opened.migrated ?? (await (opened.storage as unknown as { migrate(): Promise<{ applied: number[]; version: number }> }).migrate());
    process.stderr.write(
      applied.length === 0
        ? `Schema is up to date (version ${version}).\n`
        : `Applied migration${applied.length === 1 ? '' : 's'} ${applied.join(', ')}; schema is at version ${version}.\n`,
    );
    return 0;
  } catch (error) {
    throw storageFailure(error, opened);
  } finally {
    await opened.close();
  }
}
