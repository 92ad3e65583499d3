/**
 * `createCrawlHandler`: the whole HTTP API as one fetch-style function,
 * `(req: Request) => Promise<Response>`, which Next.js route handlers, Express, Hono, Bun or Deno
 * can serve as they are.
 *
 * @module crawl-engine/http
 */
import type { CrawlEngine } from '../core/engine.js';
import { CrawlEngineError, invalid } from '../core/errors.js';
import { type CrawlHandler, type CrawlHandlerOptions, errorReporter } from './options.js';
import { problem } from './problem.js';
import { createRouter } from './router.js';
import { crawlRoutes, HttpProblem, PATH_PARAMS } from './routes.js';

export { problem, type ProblemCode } from './problem.js';
export { sseMessage } from './sse.js';
export type { CrawlAction, CrawlHandler, CrawlHandlerOptions } from './options.js';

/** Shortest `cronSecret` accepted: a guessable secret is no secret. */
export const MIN_CRON_SECRET_LENGTH = 16;

/** Throws `invalid_options` for settings that would leave the API open by mistake. */
function checkOptions(options: CrawlHandlerOptions): void {
  const errors: Array<{ path: string; message: string }> = [];
  const secret = options.cronSecret as unknown;
  if (typeof secret === 'string' && secret.length >= MIN_CRON_SECRET_LENGTH && secret.trim() !== secret) {
    errors.push({
      path: 'cronSecret',
      message: 'expected no leading or trailing whitespace (a secret read from a file often ends with a newline): it could never match an Authorization header',
    });
  } else if (secret !== undefined && (typeof secret !== 'string' || secret.length < MIN_CRON_SECRET_LENGTH)) {
    errors.push({
      path: 'cronSecret',
      message: `expected a string of at least ${MIN_CRON_SECRET_LENGTH} characters (got ${typeof secret === 'string' ? `${secret.length}` : typeof secret}); leave it undefined to have no secret, e.g. generate one with \`openssl rand -hex 32\``,
    });
  }
  if (options.authorize !== undefined && typeof options.authorize !== 'function') errors.push({ path: 'authorize', message: 'expected a function' });
  if (options.public !== undefined && typeof options.public !== 'boolean') errors.push({ path: 'public', message: 'expected a boolean' });
  if (options.authorize === undefined && options.public !== true && process.env.NODE_ENV === 'production') {
    errors.push({
      path: 'authorize',
      message:
        'expected an authorize(req, { action, jobId }) function when NODE_ENV is "production": without it anyone could create, list, read and cancel jobs. Pass authorize, or public: true to allow that on purpose',
    });
  }
  if (errors.length > 0) throw invalid('invalid_options', 'crawl handler options', errors);
}

/** Creates the fetch-style handler of the crawl API. */
export function createCrawlHandler(engine: CrawlEngine, options: CrawlHandlerOptions = {}): CrawlHandler {
  checkOptions(options);
  const basePath = (options.basePath ?? '/api/crawl').replace(/\/+$/, '');
  const onError = errorReporter(options.onError, 'http handler');
  const resolve = createRouter(crawlRoutes(engine, options, { basePath, maxBodyBytes: options.maxBodyBytes ?? 64 * 1024, onError }));

  async function route(req: Request, url: URL, path: string): Promise<Response> {
    const method = req.method.toUpperCase();
    const found = resolve(method, path);
    switch (found.kind) {
      case 'not_found':
        return problem(404, 'not_found', `no route for ${method} ${url.pathname}`);
      case 'method_not_allowed':
        return problem(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}; use ${found.allow.join(' or ')}`, {
          headers: { allow: found.allow.join(', ') },
        });
      case 'bad_param': {
        const param = PATH_PARAMS[found.param] ?? { label: found.param, expected: 'expected a well-formed path segment' };
        return problem(400, 'invalid_input', `the ${param.label} in ${JSON.stringify(url.pathname.slice(0, 200))} has malformed percent-encoding`, {
          errors: [{ path: found.param, message: param.expected }],
        });
      }
      case 'found':
        return found.handler({ req, url, params: found.params });
    }
  }

  return async (req) => {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      return problem(400, 'invalid_input', 'the request URL could not be parsed');
    }
    if (url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`)) {
      return problem(404, 'not_found', `no route for ${req.method} ${url.pathname} (the crawl API lives under ${basePath || '/'})`);
    }
    try {
      return await route(req, url, url.pathname.slice(basePath.length));
    } catch (error) {
      if (error instanceof HttpProblem) return error.response;
      if (error instanceof CrawlEngineError) {
        if (error.code === 'invalid_input')
          return problem(400, 'invalid_input', error.message.replace(/^\[crawl-engine\] /, ''), error.errors ? { errors: error.errors } : {});
        if (error.code === 'not_found') return problem(404, 'not_found', error.message.replace(/^\[crawl-engine\] /, ''));
        if (error.code === 'conflict') return problem(409, 'conflict', error.message.replace(/^\[crawl-engine\] /, ''));
        // What the configured storage cannot do (e.g. purge on an adapter without deleteJob()).
        if (error.code === 'unsupported') return problem(501, 'not_implemented', error.message.replace(/^\[crawl-engine\] /, ''));
      }
      // A client that went away is not a server fault: nobody reads the answer, nothing to log.
      if (req.signal?.aborted === true) return problem(400, 'invalid_input', 'the client aborted the request');
      onError(error, req);
      return problem(500, 'internal', 'the crawl API failed to handle this request; see the server logs');
    }
  };
}
