-- Creates a job with its seed URL, pending, and the job:created event.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  job       hash: the job record
--   KEYS[2]  urls      hash: URL key -> URL entry
--   KEYS[3]  ready     list: the seed host's ready list (the host is known: ARGV[4])
--   KEYS[4]  hosts     hash: host -> host state
--   KEYS[5]  hostList  list: hosts in first-seen order (claims go round it)
--   KEYS[6]  events    list: event JSON, oldest first
--   KEYS[7]  push      pub/sub channel (not a key) that wakes subscribers
--
-- ARGV:
--   ARGV[1]   doc: JSON {id, url, options, createdAt, metadata} (starts with `{`)
--   ARGV[2]   seed URL
--   ARGV[3]   seed URL key (the dedup key)
--   ARGV[4]   seed host
--   ARGV[5]   maxPages (integer)
--   ARGV[6]   perHostConcurrency (integer)
--   ARGV[7]   perHostDelayMs (ms)
--   ARGV[8]   createdAt (ISO time)
--   ARGV[9]   maxEvents (integer): events kept per job
--   ARGV[10]  job id
--   ARGV[11]  ordinal (integer; 0 since the index entry is written after the data, see createJob)
--   ARGV[12]  the seed's sitemap lastmod, '' (or absent) when it has none
--
-- Returns '~exists' when the job exists, else '~{"job":<Job>,"events":[<job:created>]}'.
--
-- Job hash fields written (keys.ts):
--   doc id status      the record; status 'queued'
--   disc queued inprog succ fail skip   counts: 1 1 0 0 0 0
--   seq evfirst        event ids: 0 0
--   maxp phc phd       maxPages, perHostConcurrency, perHostDelayMs (ms)
--   ordinal            position in the index (integer; 0 since createJob indexes after; never read)
--   hc                 host cursor: the hostList index where the next claim starts, 0
--
--- @include "includes/entries"
--- @include "includes/events"

local K = { job = KEYS[1], urls = KEYS[2], hosts = KEYS[4], hostList = KEYS[5], events = KEYS[6], push = KEYS[7] }
local readyKey = KEYS[3]
local doc, url, key, host, createdAt, maxEvents = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[8], tonumber(ARGV[9])

if redis.call('EXISTS', K.job) == 1 then return '~exists' end
redis.call('HSET', K.job, 'doc', doc, 'id', ARGV[10], 'status', 'queued', 'disc', 1, 'queued', 1, 'inprog', 0, 'succ', 0, 'fail', 0, 'skip', 0,
  'seq', 0, 'evfirst', 0, 'maxp', ARGV[5], 'phc', ARGV[6], 'phd', ARGV[7], 'ordinal', ARGV[11], 'hc', 0)
redis.call('HSET', K.urls, key, encodeEntry(newEntry('p', 0, host, url, ARGV[12])))
redis.call('RPUSH', readyKey, key)
redis.call('HSET', K.hosts, host, encodeHost(newHost()))
redis.call('RPUSH', K.hostList, host)
local e = appendEvent(K, 'job:created', createdAt, jsonString(url), '', maxEvents)
return '~{"job":' .. jobJson(K) .. ',"events":[' .. e .. ']}'
