/**
 * crawl-engine: website crawls as durable jobs for serverless and ordinary Node apps.
 *
 * @module crawl-engine
 */
export { createCrawlEngine, DEFAULT_USER_AGENT } from './core/engine.js';
export type { CrawlEngine, CrawlEngineOptions, CrawlOptions, FetchSettings, RenderSettings, RetentionOptions, WebhookSettings } from './core/engine.js';
export { CrawlEngineError } from './core/errors.js';
export type { CrawlEngineErrorCode, FieldError } from './core/errors.js';
export { jobInputSchema, JOB_ID_PATTERN } from './core/jobs.js';
export type { JobInput, JobsApi, ListDeliveriesOptions, ListJobsOptions, ListResultsOptions, RecrawlOverrides } from './core/jobs.js';
export type { ListLinksOptions } from './core/links.js';
export type { MapOptions, MapResult, MapUrl } from './core/map.js';
export type { BatchOptions, ExtractContext, ExtractFunction, Processor, RunOptions, StartOptions, Worker } from './core/processor/index.js';
export type { CrawlEmitter, CrawlEvents, ProgressApi, SubscribeOptions } from './core/progress.js';
export type {
  CancelResult,
  ClaimQuery,
  ClaimResult,
  CompleteInput,
  CompleteItem,
  CompleteResult,
  CrawlStorage,
  DeleteFinishedQuery,
  DeleteFinishedResult,
  DeleteResult,
  FrontierLink,
  Lease,
  ListJobsQuery,
  ListResultsQuery,
  NewEvent,
  RetryInput,
  RobotsRecord,
  SkippedLink,
  StorageCapabilities,
  WebhookDelivery,
} from './core/storage.js';
export { TERMINAL_EVENTS, TERMINAL_STATUSES } from './core/types.js';
export type {
  CrawlScope,
  ErrorInfo,
  Job,
  JobCounts,
  JobLink,
  JobOptions,
  JobStatus,
  PageErrorCode,
  PageLink,
  PageResult,
  RenderMode,
  ResultChange,
  ResultFormat,
  SitemapMode,
  SitemapSummary,
  Paginated,
  ProgressEvent,
  ProgressEventType,
  RunReport,
  JobWebhook,
  WebhookEvent,
  WebhookJobSummary,
  WebhookPage,
  WebhookPayload,
} from './core/types.js';
export { createWebhookSecret, verifyWebhook, WebhookVerificationError } from './core/webhooks/sign.js';
export type { WebhookHeaders } from './core/webhooks/sign.js';
export type { RobotsRule } from './crawl/robots.js';
export { normalizeUrl } from './crawl/url.js';
export { looksClientRendered, RenderError, shellSignals } from './crawl/render.js';
export type { Renderer, RenderLoad, RenderRequest, RenderResult, RenderWaitUntil, ShellSignals } from './crawl/render.js';
export type { ResourceResult } from './crawl/fetcher.js';
