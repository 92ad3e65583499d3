-- Deletes a job and every key it owns (the index entries go next, by index-drop-6.lua). A queued or
-- running job is cancelled first: its status, finish time and counts as cancel-13.lua leaves them,
-- and job:cancelled appended (published, so watchers wake and find the job gone). Its leases die with
-- the URL entries: a late complete, retry or release finds no job. UNLINK frees large values off the
-- main thread, so a job of any size is deleted in time proportional to its number of hosts.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]   job       hash: the job record
--   KEYS[2]   urls      hash: URL key -> URL entry
--   KEYS[3]   ready     key prefix of the per-host ready lists; a host's list is KEYS[3] .. host.
--                       Exception to "every key in KEYS": the hosts come from the host list read here.
--   KEYS[4]   hosts     hash: host -> host state
--   KEYS[5]   hostList  list: hosts in first-seen order
--   KEYS[6]   leased    sorted set: leased URL keys
--   KEYS[7]   delayed   sorted set: URL keys waiting for a retry backoff
--   KEYS[8]   spares    list: links kept past maxPages
--   KEYS[9]   unsure    set: admitted URLs whose robots.txt was unknown
--   KEYS[10]  events    list: event JSON, oldest first
--   KEYS[11]  push      pub/sub channel (not a key) that wakes subscribers
--   KEYS[12]  results   list: page result JSON. Its index by URL (hash) is KEYS[12] .. 'ix'
--                       (keys.ts `resultIndexKey`; same hash slot), deleted with it.
--   KEYS[13]  robots    hash: robots.txt records
--
-- ARGV:
--   ARGV[1]  now (ISO time): the finish time of a job cancelled here
--   ARGV[2]  maxEvents (integer): events kept per job
--   ARGV[3]  finishedBefore (ISO time), or '': with one, only a finished job that finished before it
--            is deleted (the retention sweep)
--
-- Returns '~{"deleted":false,"events":[]}' when the job does not exist (or, with finishedBefore, is
-- not finished before it), else '~{"deleted":true,"events":[]}', with job:cancelled in `events`
-- when the job was queued or running.
--
-- Job hash fields (keys.ts): status ('cancelled'), finished (ISO time), queued and inprog (0), read
-- and written before the hash goes.
--
--- @include "includes/events"

local K = {
  job = KEYS[1], urls = KEYS[2], ready = KEYS[3], hosts = KEYS[4], hostList = KEYS[5], leased = KEYS[6], delayed = KEYS[7],
  spares = KEYS[8], unsure = KEYS[9], events = KEYS[10], push = KEYS[11], results = KEYS[12], robots = KEYS[13],
}
local nowIso, maxEvents, finishedBefore = ARGV[1], tonumber(ARGV[2]), ARGV[3]

if redis.call('EXISTS', K.job) == 0 then return '~{"deleted":false,"events":[]}' end
local active = isActive(K)
if finishedBefore ~= '' then
  local finished = field(K, 'finished')
  if active or missing(finished) or finished >= finishedBefore then return '~{"deleted":false,"events":[]}' end
end
local e = ''
if active then
  redis.call('HSET', K.job, 'status', 'cancelled', 'finished', nowIso, 'queued', 0, 'inprog', 0)
  e = appendEvent(K, 'job:cancelled', nowIso, '', '', maxEvents)
end
local hosts = redis.call('LRANGE', K.hostList, '0', '-1')
for x = 1, #hosts do redis.call('UNLINK', K.ready .. hosts[x]) end
redis.call('UNLINK', K.job, K.urls, K.hosts, K.hostList, K.leased, K.delayed, K.spares, K.unsure, K.events, K.results, K.results .. 'ix', K.robots)
return '~{"deleted":true,"events":[' .. e .. ']}'
