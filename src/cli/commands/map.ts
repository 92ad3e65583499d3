/**
 * `crawl-engine map <url>`: a site's URLs from its sitemaps and start page (`engine.map()`), one per
 * line (or one JSON line each, with `lastmod`, under `--json`); no job, nothing stored.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { memoryStorage } from '../../../adapters/memory/index.js';
import { CRAWL_SCOPES, SITEMAP_MODES } from '../../core/constants.js';
import { createCrawlEngine } from '../../core/engine.js';
import type { CrawlScope, SitemapMode } from '../../core/types.js';
import { intFlag, MAP_OPTIONS, parseOptions, USAGE } from '../args.js';
import { EXIT, UsageError } from '../errors.js';

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

export async function mapCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, MAP_OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing <url>' : `expected one <url>, got ${positionals.length}`);
  const limit = intFlag('--limit', values.limit, 1, 100_000);
  const timeoutMs = intFlag('--timeout-ms', values['timeout-ms'], 1000, 120_000);
  const scope = oneOf<CrawlScope>('--scope', values.scope, CRAWL_SCOPES);
  const sitemap = oneOf<SitemapMode>('--sitemap', values.sitemap, SITEMAP_MODES);
  const userAgent = values['user-agent'];
  if (userAgent !== undefined && (!/^[\x20-\x7e]{1,512}$/.test(userAgent) || userAgent.trim() === '')) {
    throw new UsageError('--user-agent: expected 1 to 512 printable ASCII characters');
  }
  const engine = createCrawlEngine({
    storage: memoryStorage(),
    fetch: {
      // One request may take the whole map's time, at most the crawl default of 15 s.
      timeoutMs: Math.min(15_000, timeoutMs ?? 30_000),
      ...(userAgent === undefined ? {} : { userAgent }),
      allowPrivateNetwork: values['allow-private-network'] === true,
    },
  });
  try {
    const result = await engine.map(positionals[0]!, {
      ...(limit === undefined ? {} : { limit }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(scope === undefined ? {} : { scope }),
      ...(sitemap === undefined ? {} : { sitemap }),
      ...(values.include ? { include: values.include } : {}),
      ...(values.exclude ? { exclude: values.exclude } : {}),
      ...(values.search === undefined ? {} : { search: values.search }),
      respectRobots: values['no-robots'] !== true,
    });
    const out: WriteStream | NodeJS.WriteStream = values.out ? createWriteStream(values.out) : process.stdout;
    let chunk = '';
    for (const entry of result.urls) {
      chunk += values.json ? `${JSON.stringify(entry)}\n` : `${entry.url}\n`;
      if (chunk.length > 64 * 1024) {
        if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
        chunk = '';
      }
    }
    out.write(chunk);
    if (out !== process.stdout) await new Promise<void>((resolve, reject) => (out as WriteStream).end((e?: Error | null) => (e ? reject(e) : resolve())));
    if (values.quiet !== true) {
      const err = process.stderr;
      const sm = result.sitemaps;
      err.write(
        `${result.urls.length} URLs${result.truncated ? ` (limit reached: --limit ${limit ?? 5000})` : ''}` +
          `${sm === null ? '' : `; sitemaps read: ${sm.read.length}, URLs listed: ${sm.urls}`}` +
          `${result.page === null ? '' : `; start page: ${result.page.error === null ? `HTTP ${result.page.status}, ${result.page.links} links` : `${result.page.error.code}: ${result.page.error.message}`}`}\n`,
      );
      for (const problem of sm?.errors ?? []) err.write(`  sitemap ${problem.code}: ${problem.message}\n`);
    }
    return result.urls.length > 0 ? 0 : EXIT.jobFailed;
  } finally {
    await engine.close();
  }
}
