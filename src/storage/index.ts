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
  ClaimWebhookQuery,
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
  ListWebhookDeliveriesQuery,
  NewEvent,
  NewWebhookDelivery,
  RetryInput,
  RobotsRecord,
  SkippedLink,
  StorageCapabilities,
  WebhookDelivery,
  WebhookDeliveryLease,
  WebhookDeliveryOutcome,
  WebhookEventType,
  WebhookJob,
  WebhookPumpState,
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

/**
 * The loop of a retention sweep that removes jobs one at a time (`deleteFinishedJobs()`): it stops
 * between two jobs once `query.deadline` is past (after at least one, so that sweeps progress), and
 * a job whose removal fails is skipped, so that one cannot hold back every later sweep (the next
 * sweep tries it again). It rejects only when every removal it tried failed.
 */
export async function sweepEach(
  ids: readonly string[],
  query: { deadline?: number | undefined },
  remove: (id: string) => Promise<boolean>,
): Promise<{ deleted: number }> {
  let deleted = 0;
  let tried = 0;
  let failed = 0;
  let firstError: unknown = null;
  for (const id of ids) {
    if (tried > 0 && query.deadline !== undefined && Date.now() >= query.deadline) break;
    tried++;
    try {
      if (await remove(id)) deleted++;
    } catch (error) {
      if (failed++ === 0) firstError = error;
    }
  }
  if (failed > 0 && failed === tried) throw firstError;
  return { deleted };
}
