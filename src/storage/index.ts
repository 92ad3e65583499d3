/**
 * `crawl-engine/storage`: the storage contract for adapter authors. Everything a `CrawlStorage`
 * implementation needs, and nothing else: the interface and its input and output types, the
 * records it stores, the skip rule, the cursor parser and the error class. The built-in adapters
 * import from here only. The guide is docs/adapters.md; the test suite is `crawl-engine/testing`.
 *
 * @module crawl-engine/storage
 */

// Runtime helpers. Nothing here pulls in the fetcher, the parser or any driver.
export { SKIP_CODE_LIST } from '../core/constants.js';
export { CrawlEngineError, parseDigitsCursor } from '../core/errors.js';
export type { CrawlEngineErrorCode, FieldError } from '../core/errors.js';
export { SKIP_CODES, TERMINAL_EVENTS, TERMINAL_STATUSES } from '../core/types.js';

// The contract and its operations' inputs and outputs.
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
} from '../core/storage.js';

// The records an adapter stores and hands back.
export type { RobotsRule } from '../crawl/robots.js';
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
} from '../core/types.js';
