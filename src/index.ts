/**
 * crawl-engine: website crawls as durable jobs for serverless and ordinary Node apps.
 *
 * @module crawl-engine
 */
export { createCrawlEngine, DEFAULT_USER_AGENT } from './engine.js';
export type { CrawlEngine, CrawlEngineOptions, CrawlOptions, FetchSettings } from './engine.js';
export { CrawlEngineError } from './errors.js';
export type { CrawlEngineErrorCode, FieldError } from './errors.js';
export { jobInputSchema, JOB_ID_PATTERN } from './jobs.js';
export type { JobInput, JobsApi, ListJobsOptions, ListResultsOptions } from './jobs.js';
export type { ExtractContext, ExtractFunction, Processor, RunOptions, StartOptions, Worker } from './processor.js';
export type { CrawlEmitter, CrawlEvents, ProgressApi, SubscribeOptions } from './progress.js';
export type {
  CancelResult,
  ClaimQuery,
  ClaimResult,
  CompleteInput,
  CompleteResult,
  CrawlStorage,
  FrontierLink,
  Lease,
  ListJobsQuery,
  ListResultsQuery,
  NewEvent,
  RetryInput,
  SkippedLink,
  StorageCapabilities,
} from './storage.js';
export { TERMINAL_EVENTS, TERMINAL_STATUSES } from './types.js';
export type {
  CrawlScope,
  ErrorInfo,
  Job,
  JobCounts,
  JobOptions,
  JobStatus,
  PageErrorCode,
  PageResult,
  Paginated,
  ProgressEvent,
  ProgressEventType,
  RunReport,
} from './types.js';
export { normalizeUrl } from './url.js';
