/**
 * `createExpressRouter`: the crawl API as an Express 5 (or 4) router, bridged to the fetch-style
 * handler with `@remix-run/node-fetch-server`, which streams the response body (SSE included)
 * and aborts `request.signal` when the client goes away.
 *
 * Mount it anywhere: `app.use('/api/crawl', createExpressRouter(engine))`. Mount it before
 * `express.json()`; if a body parser ran first, the parsed body is passed on.
 *
 * @module crawl-engine/express
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Router } from 'express';
import type { CrawlEngine } from '../core/engine.js';
import { createCrawlHandler, problem, type CrawlHandler, type CrawlHandlerOptions } from './index.js';
import { errorReporter } from './options.js';

export type ExpressRouterOptions = Omit<CrawlHandlerOptions, 'basePath'>;

type Bridge = typeof import('@remix-run/node-fetch-server');
let bridge: Promise<Bridge> | null = null;
const loadBridge = () => (bridge ??= import('@remix-run/node-fetch-server'));

/** Methods that the fetch `Request` refuses to carry. */
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

export function createExpressRouter(engine: CrawlEngine, options: ExpressRouterOptions = {}): Router {
  // Checks the options now (a configuration error surfaces at start-up, not on the first request).
  createCrawlHandler(engine, { ...options, basePath: '' });
  const onError = errorReporter(options.onError, 'express router');
  const router = express.Router();
  // One handler per mount path, so Location headers and routes carry the real prefix.
  const handlers = new Map<string, CrawlHandler>();
  const handlerFor = (basePath: string) => {
    let handler = handlers.get(basePath);
    if (handler === undefined) {
      handler = createCrawlHandler(engine, { ...options, basePath });
      handlers.set(basePath, handler);
    }
    return handler;
  };

  router.use((req, res) => {
    void (async () => {
      const { createRequest, createHeaders, sendResponse } = await loadBridge();
      const incoming = req as unknown as IncomingMessage & { originalUrl: string; baseUrl: string; body?: unknown; _body?: boolean };
      const out = res as unknown as ServerResponse;
      // Requests that a fetch Request cannot represent (TRACE, CONNECT, a malformed Host) are
      // answered here, as the handler would: problem+json, never a stack trace.
      if (FORBIDDEN_METHODS.has(req.method.toUpperCase())) {
        await sendResponse(
          out,
          problem(405, 'method_not_allowed', `${req.method} is not allowed; use GET, POST or DELETE`, { headers: { allow: 'GET, POST, DELETE' } }),
        );
        return;
      }
      let request: Request;
      try {
        // body-parser 1 marks `_body`; 2 leaves the stream read to its end.
        const alreadyRead = incoming._body === true || (incoming.body !== undefined && incoming.readableEnded);
        if (alreadyRead) {
          // A body parser already read the stream: rebuild the body from what it parsed.
          const headers = createHeaders(incoming);
          const origin = `${(req as { protocol?: string }).protocol ?? 'http'}://${headers.get('host') ?? 'localhost'}`;
          const body = typeof incoming.body === 'string' ? incoming.body : JSON.stringify(incoming.body ?? null);
          headers.delete('content-length');
          request = new Request(new URL(incoming.originalUrl, origin), {
            method: req.method,
            headers,
            ...(req.method === 'GET' || req.method === 'HEAD' ? {} : { body }),
          });
        } else {
          const relative = incoming.url;
          incoming.url = incoming.originalUrl;
          try {
            request = createRequest(incoming, out);
          } finally {
            incoming.url = relative;
          }
        }
      } catch (error) {
        await sendResponse(
          out,
          problem(
            400,
            'invalid_input',
            `the request could not be read: ${error instanceof Error ? error.message.slice(0, 200) : 'malformed request'} (check the method, the Host header and the URL)`,
          ),
        );
        return;
      }
      const response = await handlerFor(incoming.baseUrl)(request);
      await sendResponse(out, response);
    })().catch((error: unknown) => {
      // Past this point the handler itself answers every failure; what is left (a client gone
      // while the response was sent) is reported, and the client gets no stack trace.
      onError(error, req as unknown as Request);
      if (!res.headersSent) {
        res
          .status(500)
          .type('application/problem+json')
          .send(
            JSON.stringify({
              type: 'urn:crawl-engine:problem:internal',
              title: 'Internal error',
              status: 500,
              code: 'internal',
              detail: 'the crawl API failed to handle this request; see the server logs',
            }),
          );
      } else res.destroy();
    });
  });
  return router;
}
