/** `crawl-engine crawl <url>`: creates a job and works it to the end in this process. */
import { CRAWL_SCOPES, SITEMAP_MODES } from '../../core/constants.js';
import type { CrawlScope, SitemapMode } from '../../core/types.js';
import {
  CRAWL_OPTIONS,
  checkCanRender,
  DEFAULT_MAX_PAGES,
  formatsFlag,
  intFlag,
  parseOptions,
  renderFlags,
  runSettings,
  scheduleFlags,
  USAGE,
} from '../args.js';
import { storageFailure, UsageError } from '../errors.js';
import { closeAfterRun, runJob } from '../run.js';
import { openStorage } from '../storage.js';

export async function crawlCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, CRAWL_OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing <url>' : `expected one <url>, got ${positionals.length}`);
  const scope = values.scope as CrawlScope | undefined;
  if (scope !== undefined && !(CRAWL_SCOPES as readonly string[]).includes(scope)) {
    throw new UsageError(`--scope: expected one of ${CRAWL_SCOPES.join(', ')}, got ${JSON.stringify(scope)}`);
  }
  const sitemap = values.sitemap as SitemapMode | undefined;
  if (sitemap !== undefined && !(SITEMAP_MODES as readonly string[]).includes(sitemap)) {
    throw new UsageError(`--sitemap: expected one of ${SITEMAP_MODES.join(', ')}, got ${JSON.stringify(sitemap)}`);
  }
  const maxPages = intFlag('--max-pages', values['max-pages'], 1, 1_000_000);
  const maxDepth = intFlag('--max-depth', values['max-depth'], 0, 1000);
  const perHostConcurrency = intFlag('--per-host-concurrency', values['per-host-concurrency'], 1, 100);
  const perHostDelayMs = intFlag('--per-host-delay-ms', values['per-host-delay-ms'], 0, 600_000);
  const priority = intFlag('--priority', values.priority, -1000, 1000);
  const settings = runSettings(values);
  let formats = formatsFlag(values.formats);
  // Markdown files need the markdown of each page.
  if (settings.format === 'md' && !(formats ?? []).includes('markdown')) formats = [...(formats ?? ['metadata']), 'markdown'];
  if (values['only-main-content'] === true && values['no-only-main-content'] === true) {
    throw new UsageError('--only-main-content and --no-only-main-content: expected one of them, not both');
  }
  const onlyMainContent = values['no-only-main-content'] === true ? false : values['only-main-content'] === true ? true : undefined;
  const webhook = webhookFlag(values.webhook);
  const schedule = await scheduleFlags(values);
  const render = renderFlags(values);
  const renders = render.render !== undefined && render.render !== 'never';
  if (renders) await checkCanRender(settings.browser);
  const input = {
    url: positionals[0]!,
    ...(maxPages === undefined ? {} : { maxPages }),
    ...(maxDepth === undefined ? {} : { maxDepth }),
    ...(scope === undefined ? {} : { scope }),
    ...(values.include ? { include: values.include } : {}),
    ...(values.exclude ? { exclude: values.exclude } : {}),
    ...(sitemap === undefined ? {} : { sitemap }),
    ...(perHostConcurrency === undefined ? {} : { perHostConcurrency }),
    ...(perHostDelayMs === undefined ? {} : { perHostDelayMs }),
    ...(priority === undefined ? {} : { priority }),
    respectRobots: values['no-robots'] !== true,
    ...(formats === undefined ? {} : { formats }),
    ...(onlyMainContent === undefined ? {} : { onlyMainContent }),
    ...(webhook === undefined ? {} : { webhook }),
    ...schedule,
    ...render,
  };

  const opened = await openStorage(values);
  try {
    return await runJob(opened, settings, { start: (engine) => engine.jobs.create(input), resumed: null, maxPages: maxPages ?? DEFAULT_MAX_PAGES, renders });
  } catch (error) {
    throw storageFailure(error, opened);
  } finally {
    await closeAfterRun(opened);
  }
}

/** `--webhook URL`: the job's webhook, signed with the secret in CRAWL_ENGINE_WEBHOOK_SECRET (never a flag: argv is visible to other users). */
function webhookFlag(url: string | undefined): { url: string; secret: string } | undefined {
  if (url === undefined) return undefined;
  const secret = process.env.CRAWL_ENGINE_WEBHOOK_SECRET;
  if (secret === undefined || secret === '') {
    throw new UsageError('--webhook: expected the signing secret (whsec_…) in the environment variable CRAWL_ENGINE_WEBHOOK_SECRET');
  }
  return { url, secret };
}
