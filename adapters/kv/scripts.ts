/**
 * The KV adapter's Lua scripts (./lua/<name>-<number of KEYS>.lua) and the KEYS each is called
 * with. Each storage operation that reads and writes is one script, so it is atomic on Redis,
 * Upstash and Vercel KV alike. No cjson and no Streams (ioredis-mock has neither): JSON is
 * assembled by concatenation from fragments encoded by the caller, and replies start with `~` so
 * that Upstash's automatic JSON parsing leaves them as strings.
 *
 * The `.lua` imports are strings, includes expanded, inlined at build time (scripts/lua.mjs): the
 * adapter reads no file at run time. Each file's header lists its KEYS, ARGV and reply; keys.ts
 * names every key and documents every stored field.
 */
import appendEvents from './lua/append-events-3.lua';
import cancel from './lua/cancel-13.lua';
import claim from './lua/claim-9.lua';
import complete from './lua/complete-13.lua';
import completeMany from './lua/complete-many-13.lua';
import create from './lua/create-7.lua';
import deleteJob from './lua/delete-13.lua';
import getResults from './lua/get-results-2.lua';
import getRobots from './lua/get-robots-1.lua';
import indexActive from './lua/index-active-6.lua';
import indexAdd from './lua/index-add-4.lua';
import indexApply from './lua/index-apply-9.lua';
import indexDrop from './lua/index-drop-9.lua';
import indexFinished from './lua/index-finished-1.lua';
import indexList from './lua/index-list-1.lua';
import putRobots from './lua/put-robots-4.lua';
import readEvents from './lua/read-events-2.lua';
import readJob from './lua/read-job-1.lua';
import readResults from './lua/read-results-1.lua';
import release from './lua/release-5.lua';
import retry from './lua/retry-5.lua';
import webhookAdd from './lua/webhook-add-3.lua';
import webhookClaim from './lua/webhook-claim-3.lua';
import webhookDrop from './lua/webhook-drop-7.lua';
import webhookEnqueue from './lua/webhook-enqueue-7.lua';
import webhookJobs from './lua/webhook-jobs-2.lua';
import webhookList from './lua/webhook-list-2.lua';
import webhookRemove from './lua/webhook-remove-2.lua';
import webhookSettle from './lua/webhook-settle-4.lua';
import type { IndexKeys, JobKeys, WebhookKeys } from './keys.js';

/** One call's script and KEYS; `name` is the file's (lua/<name>-<keys.length>.lua). */
export interface ScriptCall {
  name: string;
  lua: string;
  keys: string[];
}

/** The script of an operation on one job. */
export type JobScript = (k: JobKeys) => ScriptCall;

// KEYS lists follow the order of keys.ts (job, urls, ready, hosts, hostList, leased, delayed,
// spares, unsure, events, push, results, robots; index: jobs, ordinal, active, parked, waits, state,
// line, admitted, finished, requeues).

export const CREATE = (k: JobKeys, seedHost: string): ScriptCall => ({
  name: 'create',
  lua: create,
  keys: [k.job, k.urls, k.ready(seedHost), k.hosts, k.hostList, k.events, k.push],
});

export const READ_JOB: JobScript = (k) => ({ name: 'read-job', lua: readJob, keys: [k.job] });

export const CLAIM: JobScript = (k) => ({
  name: 'claim',
  lua: claim,
  keys: [k.job, k.urls, k.readyPrefix, k.hosts, k.hostList, k.leased, k.delayed, k.events, k.push],
});

export const COMPLETE: JobScript = (k) => ({
  name: 'complete',
  lua: complete,
  keys: [k.job, k.urls, k.readyPrefix, k.hosts, k.hostList, k.leased, k.delayed, k.spares, k.unsure, k.events, k.push, k.results, k.robots],
});

/** Several completes of one job in one call (group commit); the same KEYS as COMPLETE. */
export const COMPLETE_MANY: JobScript = (k) => ({ ...COMPLETE(k), name: 'complete-many', lua: completeMany });

export const RETRY: JobScript = (k) => ({ name: 'retry', lua: retry, keys: [k.job, k.urls, k.hosts, k.leased, k.delayed] });

export const RELEASE: JobScript = (k) => ({ name: 'release', lua: release, keys: [k.job, k.urls, k.readyPrefix, k.hosts, k.leased] });

export const CANCEL: JobScript = (k) => ({
  name: 'cancel',
  lua: cancel,
  keys: [k.job, k.urls, k.readyPrefix, k.hosts, k.hostList, k.leased, k.delayed, k.spares, k.unsure, k.events, k.push, k.results, k.robots],
});

/** Deletes the job's keys (cancelling an active job first); the same KEYS as CANCEL. */
export const DELETE: JobScript = (k) => ({ ...CANCEL(k), name: 'delete', lua: deleteJob });

export const APPEND_EVENTS: JobScript = (k) => ({ name: 'append-events', lua: appendEvents, keys: [k.job, k.events, k.push] });

export const READ_EVENTS: JobScript = (k) => ({ name: 'read-events', lua: readEvents, keys: [k.job, k.events] });

export const READ_RESULTS: JobScript = (k) => ({ name: 'read-results', lua: readResults, keys: [k.results] });

/** Results by URL (recrawls), through the index the complete scripts keep. */
export const GET_RESULTS: JobScript = (k) => ({ name: 'get-results', lua: getResults, keys: [k.results, k.resultIndex] });

export const PUT_ROBOTS: JobScript = (k) => ({ name: 'put-robots', lua: putRobots, keys: [k.hosts, k.hostList, k.robots, k.job] });

export const GET_ROBOTS: JobScript = (k) => ({ name: 'get-robots', lua: getRobots, keys: [k.robots] });

export const INDEX_ADD = (ix: IndexKeys, jobId: string): ScriptCall => ({
  name: 'index-add',
  lua: indexAdd,
  keys: [ix.jobs, ix.ordinal, ix.line, ix.state(jobId)],
});

export const INDEX_ACTIVE = (ix: IndexKeys): ScriptCall => ({
  name: 'index-active',
  lua: indexActive,
  keys: [ix.active, ix.parked, ix.waits, ix.line, ix.admitted, ix.statePrefix],
});

export const INDEX_APPLY = (ix: IndexKeys): ScriptCall => ({
  name: 'index-apply',
  lua: indexApply,
  keys: [ix.active, ix.parked, ix.waits, ix.statePrefix, ix.line, ix.admitted, ix.finished, ix.jobs, ix.requeues],
});

export const INDEX_LIST = (ix: IndexKeys): ScriptCall => ({ name: 'index-list', lua: indexList, keys: [ix.jobs] });

export const INDEX_DROP = (ix: IndexKeys, jobId: string): ScriptCall => ({
  name: 'index-drop',
  lua: indexDrop,
  keys: [ix.jobs, ix.active, ix.parked, ix.waits, ix.state(jobId), ix.line, ix.admitted, ix.finished, ix.requeues],
});

export const INDEX_FINISHED = (ix: IndexKeys): ScriptCall => ({ name: 'index-finished', lua: indexFinished, keys: [ix.finished] });

// The webhook outbox: every key under the hash tag {webhooks} (keys.ts).

export const WEBHOOK_ADD = (w: WebhookKeys, jobId: string): ScriptCall => ({ name: 'webhook-add', lua: webhookAdd, keys: [w.jobs, w.seq, w.job(jobId)] });

export const WEBHOOK_JOBS = (w: WebhookKeys): ScriptCall => ({ name: 'webhook-jobs', lua: webhookJobs, keys: [w.jobs, w.jobPrefix] });

export const WEBHOOK_REMOVE = (w: WebhookKeys, jobId: string): ScriptCall => ({ name: 'webhook-remove', lua: webhookRemove, keys: [w.jobs, w.job(jobId)] });

export const WEBHOOK_ENQUEUE = (w: WebhookKeys, jobId: string): ScriptCall => ({
  name: 'webhook-enqueue',
  lua: webhookEnqueue,
  keys: [w.job(jobId), w.jobs, w.seq, w.ids, w.deliveryPrefix, w.due, w.list(jobId)],
});

export const WEBHOOK_CLAIM = (w: WebhookKeys): ScriptCall => ({ name: 'webhook-claim', lua: webhookClaim, keys: [w.due, w.leased, w.deliveryPrefix] });

export const WEBHOOK_SETTLE = (w: WebhookKeys): ScriptCall => ({
  name: 'webhook-settle',
  lua: webhookSettle,
  keys: [w.ids, w.deliveryPrefix, w.due, w.leased],
});

export const WEBHOOK_LIST = (w: WebhookKeys, jobId: string): ScriptCall => ({
  name: 'webhook-list',
  lua: webhookList,
  keys: [w.list(jobId), w.deliveryPrefix],
});

/** Removes a job's registration and deliveries (after its own keys, by DELETE). */
export const WEBHOOK_DROP = (w: WebhookKeys, jobId: string): ScriptCall => ({
  name: 'webhook-drop',
  lua: webhookDrop,
  keys: [w.jobs, w.job(jobId), w.list(jobId), w.ids, w.deliveryPrefix, w.due, w.leased],
});
