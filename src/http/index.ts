/**
 * `createCrawlHandler`: the whole HTTP API as one fetch-style function,
 * `(req: Request) => Promise<Response>`, which Next.js route handlers, Express, Hono, Bun or Deno
 * can serve as they are.
 *
 * @module crawl-engine/http
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { CrawlEngine } from '../core/engine.js';
import { CrawlEngineError, fieldErrors, invalid } from '../core/errors.js';
import { JOB_ID_PATTERN } from '../core/jobs.js';
import { TERMINAL_STATUSES, type Job } from '../core/types.js';
import { problem } from './problem.js';
import { progressStream } from './sse.js';

export { problem, type ProblemCode } from './problem.js';
export { sseMessage } from './sse.js';

/** What a request wants to do, for `authorize`. */
export type CrawlAction = 'create' | 'list' | 'read' | 'cancel' | 'results' | 'events' | 'process';

export interface CrawlHandlerOptions {
  /**
   * Path prefix of every route.
   * @default '/api/crawl'
   */
  basePath?: string;
  /**
   * Bearer secret of the process route (`Authorization: Bearer <secret>`), compared in constant
   * time; at least 16 characters. Vercel Cron sends `CRON_SECRET` this way. Without it the process
   * route runs only when `authorize` allows the action `'process'`; with neither it answers 401.
   */
  cronSecret?: string;
  /**
   * Your user auth. Called for every route (the process route only when no `cronSecret` is set)
   * with the action; return true to allow, false for a 401, or a Response of your own (a 403, a
   * redirect).
   */
  authorize?: (req: Request, context: { action: CrawlAction; jobId?: string }) => boolean | Response | Promise<boolean | Response>;
  /**
   * Lets anyone create, list, read and cancel jobs when there is no `authorize`. Needed when
   * `NODE_ENV` is `production`: a handler with neither `authorize` nor `public: true` is a
   * configuration error there (in development everything is allowed without it). Does not open
   * the process route, which always needs `cronSecret` or `authorize`.
   * @default false
   */
  public?: boolean;
  /**
   * How long one SSE response stays open; the browser then reconnects and resumes.
   * @default 120000
   */
  maxStreamMs?: number;
  /** @default 15000 */
  heartbeatMs?: number;
  /**
   * The reconnection delay sent to browsers (`retry:`).
   * @default 2000
   */
  retryMs?: number;
  /**
   * How often SSE reads the event log when the storage cannot push.
   * @default 500
   */
  pollMs?: number;
  /**
   * Largest request body accepted.
   * @default 65536
   */
  maxBodyBytes?: number;
  /**
   * Time budget of a run started by the process route.
   * @default 50000
   */
  processBudgetMs?: number;
  /** @default 20 */
  processConcurrency?: number;
  /** Called after a job is created (Next.js uses it to start processing with `after()`). */
  onJobCreated?: (job: Job, req: Request) => void | Promise<void>;
  /** Called with unexpected errors (the client gets a 500 without details). @default console.error */
  onError?: (error: unknown, req: Request) => void;
}

export type CrawlHandler = (req: Request) => Promise<Response>;

const numberParam = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,9}$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().min(min).max(max));
const cursorParam = z.string().min(1).max(200);
const listQuery = z.object({
  status: z.enum(['queued', 'running', 'completed', 'cancelled', 'failed']).optional(),
  limit: numberParam(1, 100).optional(),
  cursor: cursorParam.optional(),
});
const resultsQuery = z.object({ limit: numberParam(1, 1000).optional(), cursor: cursorParam.optional() });
const afterParam = z.string().regex(/^\d{1,20}$/, 'expected an event id (digits)');

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  });
}

function sameSecret(given: string, expected: string): boolean {
  // Hash both so the comparison takes the same time whatever the lengths.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}

class HttpProblem extends Error {
  constructor(readonly response: Response) {
    super('http problem');
  }
}

function queryOf<S extends z.ZodType>(schema: S, url: URL): z.output<S> {
  const raw: Record<string, string> = {};
  for (const [key, value] of url.searchParams) raw[key] = value;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const errors = fieldErrors(parsed.error.issues);
    throw new HttpProblem(problem(400, 'invalid_input', `invalid query: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { errors }));
  }
  return parsed.data;
}

async function readJson(req: Request, maxBytes: number): Promise<unknown> {
  const type = (req.headers.get('content-type') ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (type !== 'application/json' && !/^application\/[\w.+-]+\+json$/.test(type)) {
    throw new HttpProblem(
      problem(415, 'unsupported_media_type', `expected a JSON body (content-type: application/json), got ${type === '' ? 'none' : JSON.stringify(type)}`),
    );
  }
  const declared = Number(req.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) throw new HttpProblem(problem(413, 'payload_too_large', `body is ${declared} bytes; at most ${maxBytes} are accepted`));
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body !== null) {
    const reader = req.body.getReader();
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        // The client went away mid-body, or sent a malformed one (a bad chunk, a short body).
        throw new HttpProblem(problem(400, 'invalid_input', 'the request body could not be read (the client aborted or sent a malformed body)'));
      }
      const { done, value } = chunk;
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new HttpProblem(problem(413, 'payload_too_large', `body is larger than ${maxBytes} bytes`));
      }
      chunks.push(value);
    }
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new HttpProblem(problem(400, 'invalid_json', 'expected a JSON body, got an empty one'));
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpProblem(problem(400, 'invalid_json', `body is not valid JSON: ${(error as Error).message}`));
  }
}

const ROUTES: Array<{ pattern: RegExp; allow: string[] }> = [
  { pattern: /^\/jobs\/?$/, allow: ['GET', 'POST'] },
  { pattern: /^\/jobs\/([^/]+)\/?$/, allow: ['GET', 'DELETE'] },
  { pattern: /^\/jobs\/([^/]+)\/results\/?$/, allow: ['GET'] },
  { pattern: /^\/jobs\/([^/]+)\/events\/?$/, allow: ['GET'] },
  { pattern: /^\/process\/?$/, allow: ['GET', 'POST'] },
];

/** Creates the fetch-style handler of the crawl API. */
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

/** Decodes a path segment; null when its percent-encoding is malformed (`%ZZ`, a lone `%`). */
function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

export function createCrawlHandler(engine: CrawlEngine, options: CrawlHandlerOptions = {}): CrawlHandler {
  checkOptions(options);
  const basePath = (options.basePath ?? '/api/crawl').replace(/\/+$/, '');
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
  const onError = options.onError ?? ((error: unknown) => console.error('[crawl-engine] http handler error:', error));

  async function authorize(req: Request, action: CrawlAction, jobId?: string): Promise<void> {
    if (options.authorize === undefined) return;
    const verdict = await options.authorize(req, jobId === undefined ? { action } : { action, jobId });
    if (verdict instanceof Response) throw new HttpProblem(verdict);
    if (verdict !== true) throw new HttpProblem(problem(401, 'unauthorized', 'authorize() refused this request'));
  }

  const notFoundJob = (id: string) => problem(404, 'not_found', `job ${JSON.stringify(id)} does not exist`);

  async function existingJob(id: string): Promise<Job> {
    const job = JOB_ID_PATTERN.test(id) ? await engine.jobs.get(id) : null;
    if (job === null) throw new HttpProblem(notFoundJob(id));
    return job;
  }

  async function route(req: Request, url: URL, path: string): Promise<Response> {
    const method = req.method.toUpperCase();
    const match = ROUTES.map((r) => ({ ...r, m: r.pattern.exec(path) })).find((r) => r.m !== null);
    if (match === undefined) return problem(404, 'not_found', `no route for ${method} ${url.pathname}`);
    const allowed = method === 'HEAD' ? 'GET' : method;
    if (!match.allow.includes(allowed)) {
      return problem(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}; use ${match.allow.join(' or ')}`, {
        headers: { allow: match.allow.join(', ') },
      });
    }
    const id = match.m![1] === undefined ? undefined : decodeSegment(match.m![1]);
    if (id === null) {
      return problem(400, 'invalid_input', `the job id in ${JSON.stringify(url.pathname.slice(0, 200))} has malformed percent-encoding`, {
        errors: [{ path: 'id', message: 'expected a job id (letters, digits, _ and -)' }],
      });
    }

    if (match.pattern === ROUTES[0]!.pattern) {
      if (allowed === 'POST') {
        await authorize(req, 'create');
        const input = await readJson(req, maxBodyBytes);
        const job = await engine.jobs.create(input as never);
        if (options.onJobCreated) {
          try {
            await options.onJobCreated(job, req);
          } catch (error) {
            onError(error, req);
          }
        }
        return json(job, 201, { location: `${basePath}/jobs/${job.id}` });
      }
      await authorize(req, 'list');
      const query = queryOf(listQuery, url);
      return json(await engine.jobs.list(query));
    }

    if (match.pattern === ROUTES[4]!.pattern) {
      if (options.cronSecret !== undefined) {
        const header = req.headers.get('authorization') ?? '';
        const given = /^Bearer\s+(.+)$/i.exec(header)?.[1] ?? '';
        if (!sameSecret(given, options.cronSecret)) {
          return problem(401, 'unauthorized', 'the process route needs Authorization: Bearer <cronSecret>', { headers: { 'www-authenticate': 'Bearer' } });
        }
      } else if (options.authorize !== undefined) {
        await authorize(req, 'process');
      } else {
        return problem(
          401,
          'unauthorized',
          'the process route is closed: set cronSecret (e.g. process.env.CRON_SECRET), or an authorize function that allows the action "process"',
          {
            headers: { 'www-authenticate': 'Bearer' },
          },
        );
      }
      const jobId = url.searchParams.get('jobId');
      if (jobId !== null && !JOB_ID_PATTERN.test(jobId))
        return problem(400, 'invalid_input', 'jobId: expected a job id', { errors: [{ path: 'jobId', message: 'expected a job id' }] });
      const report = await engine.processor.run({
        budgetMs: options.processBudgetMs ?? 50_000,
        concurrency: options.processConcurrency ?? 20,
        ...(jobId === null ? {} : { jobId }),
      });
      return json(report);
    }

    const jobId = id!;
    if (match.pattern === ROUTES[1]!.pattern) {
      if (allowed === 'DELETE') {
        await authorize(req, 'cancel', jobId);
        const job = await existingJob(jobId);
        if (job.status === 'completed' || job.status === 'failed') {
          return problem(409, 'conflict', `job ${jobId} already ${job.status}; only queued or running jobs can be cancelled`);
        }
        return json(await engine.jobs.cancel(jobId));
      }
      await authorize(req, 'read', jobId);
      return json(await existingJob(jobId));
    }

    if (match.pattern === ROUTES[2]!.pattern) {
      await authorize(req, 'results', jobId);
      const query = queryOf(resultsQuery, url);
      await existingJob(jobId);
      return json(await engine.jobs.results(jobId, query));
    }

    // Events.
    await authorize(req, 'events', jobId);
    const rawAfter = req.headers.get('last-event-id') ?? url.searchParams.get('after');
    let after: string | null = null;
    if (rawAfter !== null && rawAfter !== '') {
      const parsed = afterParam.safeParse(rawAfter);
      if (!parsed.success)
        return problem(400, 'invalid_input', `after: expected an event id (digits), got ${JSON.stringify(rawAfter.slice(0, 40))}`, {
          errors: [{ path: 'after', message: 'expected an event id (digits)' }],
        });
      after = parsed.data;
    }
    const job = await existingJob(jobId);
    if (TERMINAL_STATUSES.has(job.status) && after !== null && (await engine.storage.readEvents(jobId, after, 1)).length === 0) {
      // Nothing left to send for a finished job: 204 tells EventSource to stop reconnecting.
      return new Response(null, { status: 204, headers: { 'cache-control': 'no-store' } });
    }
    return progressStream(engine, jobId, {
      after,
      signal: req.signal,
      maxStreamMs: options.maxStreamMs ?? 120_000,
      heartbeatMs: options.heartbeatMs ?? 15_000,
      retryMs: options.retryMs ?? 2000,
      pollMs: options.pollMs ?? 500,
    });
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
      }
      // A client that went away is not a server fault: nobody reads the answer, nothing to log.
      if (req.signal?.aborted === true) return problem(400, 'invalid_input', 'the client aborted the request');
      onError(error, req);
      return problem(500, 'internal', 'the crawl API failed to handle this request; see the server logs');
    }
  };
}
