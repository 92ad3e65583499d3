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
import type { CrawlEngine } from './engine.js';
import { createCrawlHandler, type CrawlHandler, type CrawlHandlerOptions } from './http/index.js';

export type ExpressRouterOptions = Omit<CrawlHandlerOptions, 'basePath'>;

type Bridge = typeof import('@remix-run/node-fetch-server');
let bridge: Promise<Bridge> | null = null;
const loadBridge = () => (bridge ??= import('@remix-run/node-fetch-server'));

export function createExpressRouter(engine: CrawlEngine, options: ExpressRouterOptions = {}): Router {
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

  router.use((req, res, next) => {
    void (async () => {
      const { createRequest, createHeaders, sendResponse } = await loadBridge();
      const incoming = req as unknown as IncomingMessage & { originalUrl: string; baseUrl: string; body?: unknown; _body?: boolean };
      let request: Request;
      // body-parser 1 marks `_body`; 2 leaves the stream read to its end.
      const alreadyRead = incoming._body === true || (incoming.body !== undefined && incoming.readableEnded);
      if (alreadyRead) {
        // A body parser already read the stream: rebuild the body from what it parsed.
        const headers = createHeaders(incoming);
        const origin = `${(req as { protocol?: string }).protocol ?? 'http'}://${headers.get('host') ?? 'localhost'}`;
        const body = typeof incoming.body === 'string' ? incoming.body : JSON.stringify(incoming.body ?? null);
        headers.delete('content-length');
        request = new Request(new URL(incoming.originalUrl, origin), { method: req.method, headers, ...(req.method === 'GET' || req.method === 'HEAD' ? {} : { body }) });
      } else {
        const relative = incoming.url;
        incoming.url = incoming.originalUrl;
        try {
          request = createRequest(incoming, res as unknown as ServerResponse);
        } finally {
          incoming.url = relative;
        }
      }
      const response = await handlerFor(incoming.baseUrl)(request);
      await sendResponse(res as unknown as ServerResponse, response);
    })().catch(next);
  });
  return router;
}
