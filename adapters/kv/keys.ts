/**
 * Every Redis key (and the pub/sub channel) the KV adapter uses, one function each, and the map of
 * what is stored in them. The Lua scripts (./lua/*.lua) get their keys in KEYS from here; the only
 * names they build themselves are `<ready prefix><host>` and `<state prefix><job id>`, from a prefix
 * passed in KEYS (the host or job comes from data the script reads, or from a batch of any size).
 *
 * Stored names are short and must stay as they are: there is no migration for KV data, and jobs
 * written by an older version must keep working. `p` is the `prefix` option (default `crawl:`).
 * Each job's keys share the hash tag `{job:<id>}` and the index's share `{index}`, so that every
 * script touches one cluster slot.
 *
 * Per job:
 *
 * | key                       | type       | holds                                                               |
 * | ------------------------- | ---------- | ------------------------------------------------------------------- |
 * | `p{job:<id>}:job`         | hash       | the job record, counts and bookkeeping: {@link JOB_FIELDS}          |
 * | `p{job:<id>}:u`           | hash       | URL key -> URL entry `st\|tok\|att\|lu\|nb\|dp\|host\|url`: {@link URL_ENTRY} |
 * | `p{job:<id>}:r:<host>`    | list       | URL keys of the host ready to lease, in order                       |
 * | `p{job:<id>}:hosts`       | hash       | host -> host state `inf\|nxt\|cd\|pick`: {@link HOST_STATE}          |
 * | `p{job:<id>}:hostlist`    | list       | hosts in first-seen order (claims go round it from field `hc`)      |
 * | `p{job:<id>}:leased`      | sorted set | leased URL keys by lease end (ms epoch)                             |
 * | `p{job:<id>}:delayed`     | sorted set | URL keys waiting for a retry backoff, by its end (ms epoch)         |
 * | `p{job:<id>}:spares`      | list       | links kept past maxPages: `1` or `0` (robots.txt unknown) + URL key |
 * | `p{job:<id>}:unsure`      | set        | admitted, unfinished URL keys whose robots.txt was unknown          |
 * | `p{job:<id>}:ev`          | list       | event JSON, oldest first; the first has id `evfirst`                |
 * | `p{job:<id>}:push`        | channel    | pub/sub: each new event id (wakes subscribers)                      |
 * | `p{job:<id>}:res`         | list       | page result JSON, in completion order                               |
 * | `p{job:<id>}:resix`       | hash       | result URL -> its index in `res` (getResults); named `res` .. `ix`  |
 * | `p{job:<id>}:robots`      | hash       | origin -> robots.txt record JSON                                    |
 *
 * Index (all jobs):
 *
 * | key                       | type       | holds                                                               |
 * | ------------------------- | ---------- | ------------------------------------------------------------------- |
 * | `p{index}:jobs`           | sorted set | every job id by ordinal (listJobs, newest first)                    |
 * | `p{index}:ordinal`        | string     | the ordinal counter                                                 |
 * | `p{index}:line`           | sorted set | queued job ids awaiting admission, by priority then ordinal         |
 * | `p{index}:admitted`       | set        | admitted running job ids, counted; out when parked on the clock     |
 * | `p{index}:active`         | sorted set | job ids claims visit, by last claim or wake (ms epoch; 0 = new)     |
 * | `p{index}:parked`         | sorted set | parked job ids by park end (ms epoch)                               |
 * | `p{index}:waits`          | sorted set | parked job ids by the end of their first wait on the clock (ms)     |
 * | `p{index}:finished`       | sorted set | finished job ids by finish time (ms epoch), for the retention sweep |
 * | `p{index}:state:<id>`     | string     | `<version>\|<where>\|<in waits>`: see {@link indexStateKey}         |
 *
 * @module
 */

/**
 * Fields of the job hash `p{job:<id>}:job`. Numbers are stored as decimal strings.
 *
 * | field      | type           | meaning                                                                              |
 * | ---------- | -------------- | ------------------------------------------------------------------------------------ |
 * | `doc`      | JSON           | `{id, url, options, createdAt, metadata}` as created; spliced into the job's JSON    |
 * | `id`       | string         | the job id (in events and leases)                                                    |
 * | `status`   | string         | `queued`, `running`, `completed`, `failed` or `cancelled`                            |
 * | `started`  | ISO time       | when the first URL was leased (absent before)                                        |
 * | `finished` | ISO time       | when the job completed, failed or was cancelled (absent before)                      |
 * | `error`    | JSON           | the error of a failed job (absent otherwise)                                         |
 * | `firsterr` | JSON           | the first page error; a job where no page succeeded fails with it                    |
 * | `disc`     | integer        | counts.discovered: URLs admitted (plus skipped links recorded, see `rfree`)          |
 * | `queued`   | integer        | counts.queued: pending URLs (ready, waiting for a host or for a backoff)             |
 * | `inprog`   | integer        | counts.inProgress: leased URLs                                                       |
 * | `succ`     | integer        | counts.succeeded                                                                     |
 * | `fail`     | integer        | counts.failed                                                                        |
 * | `skip`     | integer        | counts.skipped                                                                       |
 * | `maxp`     | integer        | options.maxPages                                                                     |
 * | `phc`      | integer        | options.perHostConcurrency: leases per host at once (1 while the host has a delay)   |
 * | `phd`      | ms             | options.perHostDelayMs: from the end of a fetch to the next lease on its host        |
 * | `ordinal`  | integer        | the job's ordinal in `p{index}:jobs`                                                 |
 * | `hc`       | integer        | host cursor: the `hostlist` index where the next claim starts                        |
 * | `seq`      | integer        | the last event id given (ids are 1, 2, 3, ... per job)                               |
 * | `evfirst`  | integer        | the id of the first event still in `ev`; 0 before the first event                    |
 * | `trimmed`  | JSON           | the last event trimmed off `ev` (a late reader's `progress` snapshot)                |
 * | `rfree`    | integer        | skipped links recorded without a maxPages charge, at most `maxp` (absent: 0)         |
 * | `refd`     | integer        | maxPages charges given back by URLs skipped after admission, at most `maxp` (absent: 0) |
 * | `pk`       | `'1'` / `'0'`  | 1 while the job is parked                                                            |
 * | `pv`       | integer        | park version, bumped on every park and wake; the index applies only newer ones       |
 * | `pat`      | ms epoch       | parked until (9000000000000000: until woken)                                         |
 * | `pwt`      | ms epoch       | the earliest end of a wait on the clock alone when parked, 0 if none                 |
 *
 * URLs charged against maxPages: `disc - rfree - refd`.
 */
export const JOB_FIELDS = [
  ...['doc', 'id', 'status', 'started', 'finished', 'error', 'firsterr'],
  ...['disc', 'queued', 'inprog', 'succ', 'fail', 'skip', 'maxp', 'phc', 'phd', 'ordinal', 'hc'],
  ...['seq', 'evfirst', 'trimmed', 'rfree', 'refd', 'pk', 'pv', 'pat', 'pwt'],
] as const;

/**
 * A URL entry, the value of `p{job:<id>}:u` under the URL's key: `st|tok|att|lu|nb|dp|host|url`
 * (the url last, since it may contain `|`). Decoded by `decodeEntry` in lua/includes/entries.lua.
 *
 * | part   | Lua name     | type      | meaning                                                                            |
 * | ------ | ------------ | --------- | ---------------------------------------------------------------------------------- |
 * | `st`   | `state`      | letter    | `p` pending, `l` leased, `d` done, `f` failed or skipped, `c` cancelled, `r` spare |
 * | `tok`  | `token`      | string    | the live lease's token, '' when not leased                                         |
 * | `att`  | `attempts`   | integer   | leases given so far (a release gives one back)                                     |
 * | `lu`   | `leaseUntil` | ms epoch  | when the last lease expires                                                        |
 * | `nb`   | `notBefore`  | ms epoch  | a retry's backoff end, 0 when none                                                 |
 * | `dp`   | `depth`      | integer   | link depth from the seed (0)                                                       |
 * | `host` | `host`       | string    | the URL's host (its ready list is `r:<host>`)                                      |
 * | `url`  | `url`        | string    | the URL                                                                            |
 *
 * A URL with a sitemap `lastmod` (`FrontierLink.lastmod`) has `dp~n` in place of `dp`, `n` the
 * lastmod's length in bytes, and the lastmod in front of the url in the last part:
 * `st|tok|att|lu|nb|dp~n|host|<lastmod><url>`. Entries without one (all entries written before
 * lastmod existed) keep the form above and read as they did.
 */
export const URL_ENTRY = ['st', 'tok', 'att', 'lu', 'nb', 'dp', 'host', 'url'] as const;

/**
 * A host state, the value of `p{job:<id>}:hosts` under the host: `inf|nxt|cd|pick`. Decoded by
 * `decodeHost` in lua/includes/entries.lua.
 *
 * | part   | Lua name     | type     | meaning                                                          |
 * | ------ | ------------ | -------- | ---------------------------------------------------------------- |
 * | `inf`  | `inFlight`   | integer  | live leases on the host                                          |
 * | `nxt`  | `nextStart`  | ms epoch | no new lease on the host before this (its delay), 0 when none    |
 * | `cd`   | `crawlDelay` | ms       | robots.txt Crawl-delay, 0 when none                              |
 * | `pick` | `lastPick`   | ms epoch | when a claim last leased one of its URLs                         |
 */
export const HOST_STATE = ['inf', 'nxt', 'cd', 'pick'] as const;

/**
 * Fields of a webhook registration, the hash `p{webhooks}:job:<id>`.
 *
 * | field   | type     | meaning                                                                  |
 * | ------- | -------- | ------------------------------------------------------------------------ |
 * | `j`     | JSON     | the job id as a JSON string (replies are assembled from it)              |
 * | `at`    | ms epoch | registeredAt                                                             |
 * | `seq`   | integer  | the pump state's `seq`, compared by enqueues (absent: no state yet)      |
 * | `state` | JSON     | the pump state as the engine gave it (absent: none yet)                  |
 */
export const WEBHOOK_JOB_FIELDS = ['j', 'at', 'seq', 'state'] as const;

/**
 * Fields of a webhook delivery, the hash `p{webhooks}:d:<n>`.
 *
 * | field | type     | meaning                                                                          |
 * | ----- | -------- | -------------------------------------------------------------------------------- |
 * | `id`  | string   | the delivery id (its entry in `p{webhooks}:ids`)                                  |
 * | `doc` | JSON     | `{id, jobId, event, url, payload, createdAt}` as enqueued (the payload byte-exact) |
 * | `st`  | string   | `pending`, `delivered` or `failed`                                                |
 * | `att` | integer  | attempts (claims)                                                                 |
 * | `nx`  | ms epoch | nextAttemptAt                                                                     |
 * | `da`  | ms epoch | deliveredAt (absent before)                                                       |
 * | `le`  | JSON     | lastError (absent: none)                                                          |
 * | `tok` | string   | the current lease's token ('' or absent: none)                                    |
 * | `lu`  | ms epoch | when the current lease ends                                                       |
 */
export const WEBHOOK_DELIVERY_FIELDS = ['id', 'doc', 'st', 'att', 'nx', 'da', 'le', 'tok', 'lu'] as const;

const job = (prefix: string, jobId: string) => `${prefix}{job:${jobId}}:`;

/** Hash: the job record, counts and bookkeeping ({@link JOB_FIELDS}). */
export const jobHashKey = (prefix: string, jobId: string) => `${job(prefix, jobId)}job`;
/** Hash: URL key -> URL entry ({@link URL_ENTRY}), every URL the job has seen. */
export const urlsKey = (prefix: string, jobId: string) => `${job(prefix, jobId)}u`;
/** List: the URL keys of one host that are ready to lease, in order. */
export const readyKey = (prefix: string, jobId: string, host: string) => `${readyPrefix(prefix, jobId)}${host}`;
/**
 * The prefix of the ready lists: `readyKey(p, id, host)` is `readyPrefix(p, id) + host`. Passed in
 * KEYS to the scripts that find the host in stored data (claim, complete, complete-many, release, cancel).
 */
export const readyPrefix = (prefix: string, jobId: string) => `${job(prefix, jobId)}r:`;
/** Hash: host -> host state ({@link HOST_STATE}). */
export const hostsKey = (prefix: string, jobId: string) => `${job(prefix, jobId)}hosts`;
/** List: the job's hosts in first-seen order; claims go round it from the job's `hc`. */
export const hostListKey = (prefix: string, jobId: string) => `${job(prefix, jobId)}hostlist`;
/** Sorted set: leased URL keys by lease end (ms epoch). */
export const leasedKey = (prefix: string, jobId: string) => `${job(prefix, jobId)}leased`;
/** Sorted set: URL keys waiting for a retry backoff, by its end (ms epoch). */
export const delayedKey = (prefix: string, jobId: string) => `${job(prefix, jobId)}delayed`;
/** List: links kept past maxPages (entries in state `r`), each `1` or `0` (robots.txt unknown or not) followed by the URL key. */
export const sparesKey = (prefix: string, jobId: string) => `${job(prefix, jobId)}spares`;
/** Set: admitted, unfinished URL keys whose robots.txt was unknown (they may yet give their charge back). */
export const unsureKey = (prefix: string, jobId: string) => `${job(prefix, jobId)}unsure`;
/** List: event JSON, oldest first; the first item has the id in the job's `evfirst`. */
export const eventsKey = (prefix: string, jobId: string) => `${job(prefix, jobId)}ev`;
/** Pub/sub channel (not a key): each new event's id is published on it, to wake subscribers. */
export const pushChannel = (prefix: string, jobId: string) => `${job(prefix, jobId)}push`;
/** List: page result JSON, in completion order. */
export const resultsKey = (prefix: string, jobId: string) => `${job(prefix, jobId)}res`;
/**
 * Hash: a result's URL -> its index in the results list (`getResults`: recrawls). The complete and
 * delete scripts, which have the results list in KEYS, name it as the list's key followed by `ix`
 * (same hash slot), rather than taking one more key.
 */
export const resultIndexKey = (prefix: string, jobId: string) => `${resultsKey(prefix, jobId)}ix`;
/** Hash: origin -> robots.txt record JSON. */
export const robotsKey = (prefix: string, jobId: string) => `${job(prefix, jobId)}robots`;

/** The names of one job, as the scripts call them (`K.job`, `K.urls`, ... in Lua). */
export interface JobKeys {
  job: string;
  urls: string;
  /** The ready list of one host. */
  ready(host: string): string;
  readyPrefix: string;
  hosts: string;
  hostList: string;
  leased: string;
  delayed: string;
  spares: string;
  unsure: string;
  events: string;
  push: string;
  results: string;
  /** Hash: result URL -> its index in `results` (scripts with `results` name it `results .. 'ix'`). */
  resultIndex: string;
  robots: string;
}

export function jobKeys(prefix: string, jobId: string): JobKeys {
  return {
    job: jobHashKey(prefix, jobId),
    urls: urlsKey(prefix, jobId),
    ready: (host) => readyKey(prefix, jobId, host),
    readyPrefix: readyPrefix(prefix, jobId),
    hosts: hostsKey(prefix, jobId),
    hostList: hostListKey(prefix, jobId),
    leased: leasedKey(prefix, jobId),
    delayed: delayedKey(prefix, jobId),
    spares: sparesKey(prefix, jobId),
    unsure: unsureKey(prefix, jobId),
    events: eventsKey(prefix, jobId),
    push: pushChannel(prefix, jobId),
    results: resultsKey(prefix, jobId),
    resultIndex: resultIndexKey(prefix, jobId),
    robots: robotsKey(prefix, jobId),
  };
}

/** Sorted set: every job id by ordinal. */
export const indexJobsKey = (prefix: string) => `${prefix}{index}:jobs`;
/** String: the ordinal counter (INCR). */
export const indexOrdinalKey = (prefix: string) => `${prefix}{index}:ordinal`;
/**
 * Sorted set: queued job ids that claims across jobs have not visited yet, in admission order: score
 * `(1000 - priority) * 2^40 + ordinal`, lowest first (priority highest first, then creation; exact
 * while ordinals stay below 2^40). A claim with a bound moves the first ones to `active` (and `admitted`) while fewer
 * than the bound are admitted; one without moves them all, a window at a time. Jobs indexed by an
 * older version went to `active` at once and are never here.
 */
export const indexLineKey = (prefix: string) => `${prefix}{index}:line`;
/** Set: running job ids started by admission, counted against `maxActiveJobs` until they end. */
export const indexAdmittedKey = (prefix: string) => `${prefix}{index}:admitted`;
/** Sorted set: job ids claims across all jobs visit, by last claim or wake (ms epoch; 0 = new). */
export const indexActiveKey = (prefix: string) => `${prefix}{index}:active`;
/** Sorted set: parked job ids by park end (ms epoch; 9000000000000000 = until woken). */
export const indexParkedKey = (prefix: string) => `${prefix}{index}:parked`;
/** Sorted set: parked job ids by the end of their first wait on the clock alone (ms epoch). */
export const indexWaitsKey = (prefix: string) => `${prefix}{index}:waits`;
/**
 * Sorted set: finished (completed, failed, cancelled) job ids by finish time (ms epoch), which the
 * retention sweep reads oldest first. Jobs that finished before this set existed are not in it.
 */
export const indexFinishedKey = (prefix: string) => `${prefix}{index}:finished`;
/** Hash: job id -> how many times admission took the job before its data was written (index-apply's requeue). */
export const indexRequeuesKey = (prefix: string) => `${prefix}{index}:requeues`;
/**
 * String: a job's index state `<version>|<where>|<in waits>`: the newest park/wake version applied
 * (the job's `pv`), `q` (in `line`), `a` (in `active`) or `p` (in `parked`), and `1` when in
 * `waits`, else `0`.
 * Jobs indexed by an older version have none; their place is read from the sets.
 */
export const indexStateKey = (prefix: string, jobId: string) => `${indexStatePrefix(prefix)}${jobId}`;
/** The prefix of the index states, passed in KEYS to index-apply (one call updates any number of jobs). */
export const indexStatePrefix = (prefix: string) => `${prefix}{index}:state:`;

/** The index's names, as the scripts call them. */
export interface IndexKeys {
  jobs: string;
  ordinal: string;
  active: string;
  parked: string;
  waits: string;
  finished: string;
  requeues: string;
  line: string;
  admitted: string;
  state(jobId: string): string;
  statePrefix: string;
}

export function indexKeys(prefix: string): IndexKeys {
  return {
    jobs: indexJobsKey(prefix),
    ordinal: indexOrdinalKey(prefix),
    active: indexActiveKey(prefix),
    parked: indexParkedKey(prefix),
    waits: indexWaitsKey(prefix),
    finished: indexFinishedKey(prefix),
    requeues: indexRequeuesKey(prefix),
    line: indexLineKey(prefix),
    admitted: indexAdmittedKey(prefix),
    state: (jobId) => indexStateKey(prefix, jobId),
    statePrefix: indexStatePrefix(prefix),
  };
}

/** The webhook outbox's names (hash tag `{webhooks}`), as the scripts call them. */
export interface WebhookKeys {
  /** Sorted set: registered job ids by registration number. */
  jobs: string;
  /** String: the registration and delivery number counter. */
  seq: string;
  /** Hash: one job's registration ({@link WEBHOOK_JOB_FIELDS}). */
  job(jobId: string): string;
  /** The prefix of the registrations: `job(id)` is `jobPrefix + id`. */
  jobPrefix: string;
  /** Sorted set: one job's delivery numbers in enqueue order. */
  list(jobId: string): string;
  /** Hash: delivery id -> delivery number. */
  ids: string;
  /** The prefix of the delivery hashes: a delivery is `deliveryPrefix + <number>` ({@link WEBHOOK_DELIVERY_FIELDS}). */
  deliveryPrefix: string;
  /** Sorted set: pending deliveries not under a claim's lease, by nextAttemptAt. */
  due: string;
  /** Sorted set: leased deliveries by lease end. */
  leased: string;
}

export function webhookKeys(prefix: string): WebhookKeys {
  const w = `${prefix}{webhooks}:`;
  return {
    jobs: `${w}jobs`,
    seq: `${w}seq`,
    job: (jobId) => `${w}job:${jobId}`,
    jobPrefix: `${w}job:`,
    list: (jobId) => `${w}list:${jobId}`,
    ids: `${w}ids`,
    deliveryPrefix: `${w}d:`,
    due: `${w}due`,
    leased: `${w}leased`,
  };
}
