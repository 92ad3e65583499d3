/** Stable error codes carried by every {@link CrawlEngineError}. */
export type CrawlEngineErrorCode = 'invalid_input' | 'invalid_options' | 'not_found' | 'conflict' | 'storage_error' | 'unsupported';

/** One problem with an input, named by its field path (`maxPages`, `include.2`). */
export interface FieldError {
  path: string;
  message: string;
}

/** Marks every CrawlEngineError, whichever copy of the library made it (see hasInstance). */
const BRAND = Symbol.for('crawl-engine.error');

/**
 * The one error class crawl-engine throws on purpose. `code` is stable and safe to branch on;
 * `errors` lists each bad field for `invalid_input` / `invalid_options`.
 *
 * `instanceof CrawlEngineError` holds for errors from any copy of the library in the process (the
 * ESM and CJS builds loaded side by side, or a bundled copy next to one in node_modules).
 */
export class CrawlEngineError extends Error {
  readonly code: CrawlEngineErrorCode;
  readonly errors: FieldError[] | undefined;

  static override [Symbol.hasInstance](this: unknown, value: unknown): boolean {
    // Subclasses keep the ordinary prototype check (`this` is the class on the right of instanceof).
    // biome-ignore lint/complexity/noThisInStatic: which class is asked is the point
    if (this !== CrawlEngineError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
  }

  constructor(code: CrawlEngineErrorCode, message: string, options: { cause?: unknown; errors?: FieldError[] } = {}) {
    super(message.startsWith('[crawl-engine]') ? message : `[crawl-engine] ${message}`, {
      cause: options.cause,
    });
    this.name = this.constructor.name;
    Object.defineProperty(this, BRAND, { value: true });
    this.code = code;
    this.errors = options.errors;
  }
}

/** Turns zod issues into field errors with dotted paths (`fetch.timeoutMs`). */
export function fieldErrors(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): FieldError[] {
  return issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(root)',
    message: issue.message,
  }));
}

export function invalid(code: 'invalid_input' | 'invalid_options', what: string, errors: FieldError[]): CrawlEngineError {
  const detail = errors.map((e) => `${e.path}: ${e.message}`).join('; ');
  return new CrawlEngineError(code, `invalid ${what}: ${detail}`, { errors });
}

/**
 * Parses a pagination cursor made of digits (what every built-in adapter hands out); null for
 * none. Anything else is the caller's mistake: `invalid_input` naming the `cursor` field.
 */
export function parseDigitsCursor(cursor: string | null | undefined, maxDigits = 18): string | null {
  if (cursor === undefined || cursor === null || cursor === '') return null;
  if (new RegExp(`^\\d{1,${maxDigits}}$`).test(cursor)) return cursor;
  throw new CrawlEngineError('invalid_input', `invalid cursor ${JSON.stringify(cursor.slice(0, 100))}: expected a cursor returned by a previous page`, {
    errors: [{ path: 'cursor', message: 'expected a cursor returned by a previous page' }],
  });
}
