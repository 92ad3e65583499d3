/** The CLI's own errors (each with its exit code) and library wording turned into CLI terms. */

/** Exit codes, as documented in --help. */
export const EXIT = { completed: 0, jobFailed: 1, usage: 2, storage: 3, interrupted: 130, terminated: 143 } as const;

/** Bad arguments: the message names the option; exit code 2 with the usage. */
export class UsageError extends Error {}

/** The storage could not be reached, or failed mid-crawl: one line, exit code 3. */
export class StorageError extends Error {}

/** What a network error code means, in words (for storage messages). */
export const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed',
  ECONNABORTED: 'connection aborted',
};

/** Library wording that a CLI user cannot act on, in terms of the CLI's flags. */
export function cliWording(text: string): string {
  return text
    .replace(/\[crawl-engine\] (\[(postgres|kv|sqlite)\] )?/g, '')
    .replaceAll('set fetch.allowPrivateNetwork to allow it', 'pass --allow-private-network to allow it')
    .replaceAll('fetch.allowPrivateNetwork', '--allow-private-network')
    .replaceAll('within timeoutMs (', 'within --timeout-ms (');
}

/** The cause of a storage failure in a few words: the network error if there is one, else the message. */
export function describeCause(error: unknown): string {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  let innermost: unknown = error;
  while (queue.length > 0) {
    const e = queue.shift();
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    innermost = e;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code in NETWORK_ERRORS) return NETWORK_ERRORS[code]!;
    const found = /\b(E[A-Z]{3,})\b/.exec(String((e as { message?: unknown }).message ?? ''))?.[1];
    if (found !== undefined && found in NETWORK_ERRORS) return NETWORK_ERRORS[found]!;
    queue.push((e as { cause?: unknown }).cause, ...(((e as { errors?: unknown }).errors as unknown[] | undefined) ?? []));
  }
  const text = innermost instanceof Error ? innermost.message : String(innermost);
  return cliWording(text).split('\n', 1)[0]!.trim() || 'unknown error';
}

/** What `storageFailure` needs to know of the storage. */
export interface StorageIdentity {
  kind: string;
  /** host:port or the file, for messages. */
  where: string;
  /** The error that broke the connection, while it is broken (Redis: commands then fail with ioredis' own words). */
  connectionError?: () => unknown;
}

/** A failure of the storage mid-crawl as one line (exit 3), or the error unchanged. */
export function storageFailure(error: unknown, opened: StorageIdentity): unknown {
  if (opened.kind === 'memory' || error instanceof StorageError || error instanceof UsageError) return error;
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'storage_error' || message.startsWith('[crawl-engine] crawl(): storage failed')) {
    const broken = opened.connectionError?.() ?? null;
    if (broken !== null) return new StorageError(`lost the connection to ${opened.kind} at ${opened.where}: ${describeCause(broken)}`);
    const cause = describeCause(error).replace(/^crawl\(\): storage failed: /, '');
    const lost = Object.values(NETWORK_ERRORS).includes(cause);
    return new StorageError(lost ? `lost the connection to ${opened.kind} at ${opened.where}: ${cause}` : `${opened.kind} at ${opened.where} failed: ${cause}`);
  }
  return error;
}
