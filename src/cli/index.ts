/**
 * `crawl-engine crawl <url>`: runs a crawl in this process (memory storage unless --storage says
 * otherwise), draws a progress bar on a terminal (plain lines otherwise), writes one JSON line per
 * page, prints a summary. `resume <jobId>` continues a stored job, `recrawl <jobId>` crawls a
 * finished one again with conditional requests, `export <jobId>` writes its
 * results, `delete <jobId>` deletes one;
 * `migrate` sets up a database; `map <url>` lists a site's URLs.
 *
 * @module crawl-engine/cli
 */
import { CrawlEngineError } from '../core/errors.js';
import { USAGE } from './args.js';
import { crawlCommand } from './commands/crawl.js';
import { deleteCommand } from './commands/delete.js';
import { exportCommand } from './commands/export.js';
import { mapCommand } from './commands/map.js';
import { migrateCommand } from './commands/migrate.js';
import { recrawlCommand } from './commands/recrawl.js';
import { resumeCommand } from './commands/resume.js';
import { cliWording, EXIT, StorageError, UsageError } from './errors.js';
import { interrupt, onSignal, trackHttpSockets } from './interrupt.js';

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  crawl: crawlCommand,
  resume: resumeCommand,
  recrawl: recrawlCommand,
  export: exportCommand,
  delete: deleteCommand,
  migrate: migrateCommand,
  map: mapCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? EXIT.usage : 0;
    }
    const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (run === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    return await run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`crawl-engine: ${error.message}\n\n${USAGE}\n`);
      return EXIT.usage;
    }
    if (error instanceof CrawlEngineError && (error.code === 'invalid_input' || error.code === 'invalid_options')) {
      process.stderr.write(`crawl-engine: ${cliWording(error.message).replace(/^invalid job input: /, '')}\n`);
      return EXIT.usage;
    }
    if (error instanceof StorageError) {
      process.stderr.write(`crawl-engine: ${error.message}\n`);
      return EXIT.storage;
    }
    process.stderr.write(`crawl-engine: ${(error as Error).stack ?? String(error)}\n`);
    return EXIT.jobFailed;
  }
}

/** Exits once stdout and stderr have taken everything written so far. */
function exitAfterFlush(code: number) {
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

trackHttpSockets();
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    if (interrupt.forceExit) exitAfterFlush(code);
  },
  (error: unknown) => {
    process.stderr.write(`crawl-engine: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
