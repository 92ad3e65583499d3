/**
 * The Postgres schema as versioned migrations. Every storage operation that reads and writes is
 * one SQL function, so each is one round trip and atomic on its own (it works over Neon's HTTP
 * driver too). Every function that touches a job locks that job's row first, so the operations of
 * one job never interleave: exact `maxPages`, completion exactly once, no deadlocks.
 *
 * A migration is a frozen snapshot: once released, the SQL it runs never changes (a database
 * migrated then must equal one migrated now). The builders in `./sql/` are named after the version
 * that introduced them; a change is a new builder run by a new migration, never an edit of one that
 * a migration below already uses.
 */
import { SKIP_CODE_LIST } from '../../src/storage/index.js';
import { claimFunctionsV8, claimFunctionV1, claimFunctionV2, claimFunctionV7 } from './sql/claim.js';
import { completeFunctionV1, completeFunctionV2, completeFunctionV3, completeFunctionV8, completeV2SignatureFunction } from './sql/complete.js';
import { completeManyFunction, completeManyFunctionV5, completeManyFunctionV8 } from './sql/complete-many.js';
import { appendEventFunction, appendEventsFunction, readEventsFunction } from './sql/events.js';
import { cancelFunction, createJobFunction, createJobFunctionV8, jobJsonFunction } from './sql/jobs.js';
import { endLeaseFunction, endLeaseFunctionV5, releaseFunctionV1, releaseFunctionV2, retryFunctionV1, retryFunctionV2 } from './sql/leases.js';
import type { Names } from './sql/names.js';
import { deleteJobFunctionV6, jobsFinishedIndexV6 } from './sql/retention.js';
import * as tables from './sql/tables.js';
import * as webhooks from './sql/webhooks.js';

export { type Names, qualified } from './sql/names.js';

export interface Migration {
  version: number;
  name: string;
  statements: (n: Names) => string[];
}

/**
 * The skip codes versions 1 to 5 and 8 were built with (they emitted `= 'robots'`), taken from the
 * skip rule. If `SKIP_CODE_LIST` changes this fails to compile: pin these versions to `['robots']`
 * and add a migration that replaces `complete` built from the new list.
 */
const SKIP_CODES_FROZEN = SKIP_CODE_LIST satisfies readonly ['robots'];

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'jobs, frontier, hosts, results, events, robots',
    statements: (n) => [
      tables.jobsTable(n),
      tables.jobsActiveIndex(n),
      tables.jobsStatusIndex(n),
      tables.frontierTable(n),
      tables.frontierReadyIndex(n),
      tables.frontierLeasedIndex(n),
      tables.frontierWaitingIndex(n),
      tables.hostsTable(n),
      tables.resultsTable(n),
      tables.eventsTable(n),
      tables.robotsTable(n),
      jobJsonFunction(n),
      appendEventFunction(n),
      createJobFunction(n),
      claimFunctionV1(n),
      endLeaseFunction(n),
      completeFunctionV1(n, SKIP_CODES_FROZEN),
      retryFunctionV1(n),
      releaseFunctionV1(n),
      cancelFunction(n),
      appendEventsFunction(n),
      readEventsFunction(n),
    ],
  },
  {
    version: 2,
    name: 'parked jobs: claims skip jobs with nothing ready until their time comes or they are woken',
    statements: (n) => [
      ...tables.parkColumns(n),
      tables.dropJobsActiveIndex(n),
      tables.jobsEligibleIndex(n),
      tables.jobsParkedIndex(n),
      tables.jobsWaitingIndex(n),
      claimFunctionV2(n),
      completeFunctionV2(n, SKIP_CODES_FROZEN),
      retryFunctionV2(n),
      releaseFunctionV2(n),
    ],
  },
  {
    version: 3,
    name: 'maxPages counts pages fetched: robots.txt skips recorded without a charge, refunds, spare links',
    statements: (n) => [...tables.accountingColumns(n), tables.frontierSpareIndex(n), completeFunctionV3(n, SKIP_CODES_FROZEN), completeV2SignatureFunction(n)],
  },
  {
    version: 4,
    name: 'group commit: complete_many stores several pages in one statement',
    statements: (n) => [completeManyFunction(n)],
  },
  {
    version: 5,
    name: 'set-based complete_many: a batch of one job costs a few statements, not a few per page',
    statements: (n) => [endLeaseFunctionV5(n), completeManyFunctionV5(n, SKIP_CODES_FROZEN)],
  },
  {
    version: 6,
    name: 'deleting jobs: delete_job, and finished jobs indexed by finish time for the retention sweep',
    statements: (n) => [jobsFinishedIndexV6(n), deleteJobFunctionV6(n)],
  },
  {
    version: 7,
    name: 'admission: claims with a bound start queued jobs by priority, then creation, and visit running jobs only',
    statements: (n) => [
      ...tables.admissionColumnsV7(n),
      tables.jobsLineIndexV7(n),
      tables.jobsAdmittedIndexV7(n),
      ...tables.jobsRunningIndexesV7(n),
      claimFunctionV7(n),
    ],
  },
  {
    version: 8,
    name: "frontier lastmod: a link's sitemap <lastmod> is stored with its frontier row and handed back on its leases",
    statements: (n) => [
      tables.frontierLastmodColumnV8(n),
      createJobFunctionV8(n),
      ...claimFunctionsV8(n),
      completeFunctionV8(n, SKIP_CODES_FROZEN),
      completeManyFunctionV8(n, SKIP_CODES_FROZEN),
    ],
  },
  {
    version: 9,
    name: 'webhook outbox: registered jobs with their pump state, deliveries claimed with leases; delete_job removes both',
    statements: (n) => [
      webhooks.webhookJobsTableV9(n),
      webhooks.webhookJobsOrderIndexV9(n),
      webhooks.webhookDeliveriesTableV9(n),
      webhooks.webhookDeliveriesDueIndexV9(n),
      webhooks.webhookDeliveriesJobIndexV9(n),
      webhooks.enqueueWebhooksFunctionV9(n),
      webhooks.claimWebhooksFunctionV9(n),
      webhooks.deleteJobFunctionV9(n),
    ],
  },
  {
    version: 10,
    name: 'recrawls: results indexed by URL within their job, for getResults',
    statements: (n) => [tables.resultsUrlIndexV10(n)],
  },
];
