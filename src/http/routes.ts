/**
 * The crawl API's routes: one table row per method and path, each with its handler. Handlers
 * throw {@link HttpProblem} for an answer other than success; `createCrawlHandler` maps that and
 * engine errors to problem+json.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { BUDGETS, JOB_STATUSES } from '../core/constants.js';
import type { CrawlEngine } from '../core/engine.js';
import { fieldErrors } from '../core/errors.js';
import { type ExportFormat, exportChunks } from '../core/export.js';
import { JOB_ID_PATTERN } from '../core/jobs.js';
import { TERMINAL_STATUSES, type Job } from '../core/types.js';
import type { CrawlAction, CrawlHandlerOptions } from './options.js';
import { problem } from './problem.js';
import type { RouteDefinition } from './router.js';
import { progressStream } from './sse.js';

/** A request matched to a route, with its percent-decoded path parameters. */
export interface RouteRequest {
  req: Request;
  url: URL;
  params: Readonly<Record<string, string>>;
}

export type RouteHandler = (request: RouteRequest) => Promise<Response>;

/** An answer other than success, thrown from anywhere in a handler. */
export class HttpProblem extends Error {
  constructor(readonly response: Response) {
    super('http problem');
  }
}

/** What each path parameter holds, for the 400 of one with malformed percent-encoding. */
export const PATH_PARAMS: Record<string, { label: string; expected: string }> = {
  id: { label: 'job id', expected: 'expected a job id (letters, digits, _ and -)' },
};

const numberParam = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,9}$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().min(min).max(max));
const cursorParam = z.string().min(1).max(200);
const listQuery = z.object({
  status: z.enum(JOB_STATUSES).optional(),
  limit: numberParam(1, 100).optional(),
  cursor: cursorParam.optional(),
});
const resultsQuery = z.object({ limit: numberParam(1, 1000).optional(), cursor: cursorParam.optional() });
const linksQuery = z.object({
  broken: z.enum(['true', 'false'], { error: 'expected true or false' }).optional(),
  limit: numberParam(1, 1000).optional(),
  cursor: z.string().min(1).max(220).optional(),
});
/** What each export answers with. */
const EXPORT_TYPES: Record<ExportFormat, string> = {
  jsonl: 'application/jsonl; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
};
const afterParam = z.string().regex(/^\d{1,20}$/, 'expected an event id (digits)');
const purgeQuery = z.object({ purge: z.enum(['true', 'false'], { error: 'expected true or false' }).optional() });

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

/** Settings of the handler that the routes read, with defaults applied. */
export interface RouteSettings {
  basePath: string;
  maxBodyBytes: number;
  onError: (error: unknown, req: Request) => void;
}

/** The route table of the crawl API. */
export function crawlRoutes(engine: CrawlEngine, options: CrawlHandlerOptions, settings: RouteSettings): Array<RouteDefinition<RouteHandler>> {
  const { basePath, maxBodyBytes, onError } = settings;

  async function authorize(req: Request, action: CrawlAction, jobId?: string): Promise<void> {
    if (options.authorize === undefined) return;
    const verdict = await options.authorize(req, jobId === undefined ? { action } : { action, jobId });
    if (verdict instanceof Response) throw new HttpProblem(verdict);
    if (verdict !== true) throw new HttpProblem(problem(401, 'unauthorized', 'authorize() refused this request'));
  }

  async function existingJob(id: string): Promise<Job> {
    const job = JOB_ID_PATTERN.test(id) ? await engine.jobs.get(id) : null;
    if (job === null) throw new HttpProblem(problem(404, 'not_found', `job ${JSON.stringify(id)} does not exist`));
    return job;
  }

  /** 201 with a job just created (by POST /jobs or a recrawl), after `onJobCreated` (whose errors are reported, not answered). */
  async function created(job: Job, req: Request): Promise<Response> {
    if (options.onJobCreated) {
      try {
        await options.onJobCreated(job, req);
      } catch (error) {
        onError(error, req);
      }
    }
    return json(job, 201, { location: `${basePath}/jobs/${job.id}` });
  }

  const createJob: RouteHandler = async ({ req }) => {
    await authorize(req, 'create');
    const input = await readJson(req, maxBodyBytes);
    const job = await engine.jobs.create(input as never);
    return created(job, req);
  };

  /**
   * `POST /jobs/:id/recrawl`: a new job that crawls the finished job again with conditional
   * requests (`engine.jobs.recrawl`). The body, optional, holds option overrides as JSON. Allowed
   * when `authorize` allows both `read` of the job and `create`. 201 with the new job; 404 for an
   * unknown job; 409 while it is queued or running; 400 naming the field for bad overrides.
   */
  const recrawlJob: RouteHandler = async ({ req, params }) => {
    const jobId = params.id!;
    await authorize(req, 'read', jobId);
    await authorize(req, 'create', jobId);
    await existingJob(jobId);
    const empty = req.body === null || req.headers.get('content-length') === '0';
    const overrides = empty && req.headers.get('content-type') === null ? {} : await readJson(req, maxBodyBytes);
    if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
      throw new HttpProblem(problem(400, 'invalid_input', 'expected a JSON object of option overrides such as {"maxPages": 500}, or no body'));
    }
    const job = await engine.jobs.recrawl(jobId, overrides as never);
    return created(job, req);
  };

  const listJobs: RouteHandler = async ({ req, url }) => {
    await authorize(req, 'list');
    return json(await engine.jobs.list(queryOf(listQuery, url)));
  };

  const readJob: RouteHandler = async ({ req, params }) => {
    await authorize(req, 'read', params.id!);
    return json(await existingJob(params.id!));
  };

  const cancelJob: RouteHandler = async ({ req, url, params }) => {
    const jobId = params.id!;
    // Read first: it decides the action authorize() is asked about.
    const { purge } = queryOf(purgeQuery, url);
    if (purge === 'true') {
      await authorize(req, 'delete', jobId);
      // 404 for a malformed id too, as on every job route; one deleted meanwhile is gone as well.
      const deleted = JOB_ID_PATTERN.test(jobId) && (await engine.jobs.delete(jobId));
      if (!deleted) throw new HttpProblem(problem(404, 'not_found', `job ${JSON.stringify(jobId)} does not exist`));
      return json({ id: jobId, deleted: true });
    }
    await authorize(req, 'cancel', jobId);
    const job = await existingJob(jobId);
    if (job.status === 'completed' || job.status === 'failed') {
      return problem(409, 'conflict', `job ${jobId} already ${job.status}; only queued or running jobs can be cancelled`);
    }
    return json(await engine.jobs.cancel(jobId));
  };

  const listResults: RouteHandler = async ({ req, url, params }) => {
    const jobId = params.id!;
    await authorize(req, 'results', jobId);
    const query = queryOf(resultsQuery, url);
    await existingJob(jobId);
    return json(await engine.jobs.results(jobId, query));
  };

  const listLinks: RouteHandler = async ({ req, url, params }) => {
    const jobId = params.id!;
    await authorize(req, 'results', jobId);
    const { broken, ...query } = queryOf(linksQuery, url);
    await existingJob(jobId);
    return json(await engine.jobs.links(jobId, { ...query, broken: broken === 'true' }));
  };

  const listDeliveries: RouteHandler = async ({ req, url, params }) => {
    const jobId = params.id!;
    await authorize(req, 'results', jobId);
    const query = queryOf(resultsQuery, url);
    await existingJob(jobId);
    return json(await engine.jobs.deliveries(jobId, query));
  };

  /**
   * The job's results as one streamed file: each read of the body reads the next batch of results
   * from storage, so a slow client slows the reads down (backpressure) and no whole job is held.
   */
  const exportResults =
    (format: ExportFormat): RouteHandler =>
    async ({ req, params }) => {
      const jobId = params.id!;
      await authorize(req, 'results', jobId);
      const job = await existingJob(jobId);
      const chunks = exportChunks(engine.jobs, job, format);
      const encoder = new TextEncoder();
      const body = new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            try {
              const next = await chunks.next();
              if (next.done === true) controller.close();
              else controller.enqueue(encoder.encode(next.value));
            } catch (error) {
              // Too late for a problem answer: the body ends early, as an error, and it is logged.
              if (!req.signal?.aborted) onError(error, req);
              controller.error(error);
            }
          },
          async cancel() {
            await chunks.return(undefined);
          },
        },
        { highWaterMark: 0 },
      );
      return new Response(body, {
        status: 200,
        headers: {
          'content-type': EXPORT_TYPES[format],
          'content-disposition': `attachment; filename="${job.id}.${format}"`,
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
        },
      });
    };

  const streamEvents: RouteHandler = async ({ req, url, params }) => {
    const jobId = params.id!;
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
    if (TERMINAL_STATUSES.has(job.status) && after !== null && !(await engine.progress.hasEventsAfter(jobId, after))) {
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
  };

  /** `POST /map`: `{ url, ...MapOptions }` in, `MapResult` out; nothing stored. */
  const mapSite: RouteHandler = async ({ req }) => {
    await authorize(req, 'map');
    const body = await readJson(req, maxBodyBytes);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpProblem(problem(400, 'invalid_input', 'expected a JSON object such as {"url": "https://example.com/", "limit": 100}'));
    }
    const { url, ...options } = body as Record<string, unknown>;
    return json(await engine.map(url as string, options));
  };

  const processRun: RouteHandler = async ({ req, url }) => {
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
        { headers: { 'www-authenticate': 'Bearer' } },
      );
    }
    const jobId = url.searchParams.get('jobId');
    if (jobId !== null && !JOB_ID_PATTERN.test(jobId))
      return problem(400, 'invalid_input', 'jobId: expected a job id', { errors: [{ path: 'jobId', message: 'expected a job id' }] });
    const report = await engine.processor.run({
      budgetMs: options.processBudgetMs ?? BUDGETS.httpProcessMs,
      concurrency: options.processConcurrency ?? 20,
      ...(jobId === null ? {} : { jobId }),
    });
    return json(report);
  };

  // Rows of one path, in this order, are its `Allow` header.
  return [
    { method: 'GET', pattern: '/jobs', handler: listJobs },
    { method: 'POST', pattern: '/jobs', handler: createJob },
    { method: 'GET', pattern: '/jobs/:id', handler: readJob },
    { method: 'DELETE', pattern: '/jobs/:id', handler: cancelJob },
    { method: 'POST', pattern: '/jobs/:id/recrawl', handler: recrawlJob },
    { method: 'GET', pattern: '/jobs/:id/results', handler: listResults },
    { method: 'GET', pattern: '/jobs/:id/results.jsonl', handler: exportResults('jsonl') },
    { method: 'GET', pattern: '/jobs/:id/results.csv', handler: exportResults('csv') },
    { method: 'GET', pattern: '/jobs/:id/links', handler: listLinks },
    { method: 'GET', pattern: '/jobs/:id/webhooks', handler: listDeliveries },
    { method: 'GET', pattern: '/jobs/:id/events', handler: streamEvents },
    { method: 'POST', pattern: '/map', handler: mapSite },
    { method: 'GET', pattern: '/process', handler: processRun },
    { method: 'POST', pattern: '/process', handler: processRun },
  ];
}
