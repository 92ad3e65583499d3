-- Cancels a queued or running job: pending and leased URLs become cancelled (state c), the ready
-- lists and the lease, backoff and spare bookkeeping go, counts of queued and in-progress URLs drop
-- to 0, and job:cancelled is appended. A job already finished is returned as it is.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]   job       hash: the job record
--   KEYS[2]   urls      hash: URL key -> URL entry
--   KEYS[3]   ready     key prefix of the per-host ready lists; a host's list is KEYS[3] .. host.
--                       Exception to "every key in KEYS": the hosts come from the host list read here.
--   KEYS[4]   hosts     hash: host -> host state
--   KEYS[5]   hostList  list: hosts in first-seen order
--   KEYS[6]   leased    sorted set: leased URL keys (deleted)
--   KEYS[7]   delayed   sorted set: URL keys waiting for a retry backoff (deleted)
--   KEYS[8]   spares    list: links kept past maxPages (deleted)
--   KEYS[9]   unsure    set: admitted URLs whose robots.txt was unknown (deleted)
--   KEYS[10]  events    list: event JSON, oldest first
--   KEYS[11]  push      pub/sub channel (not a key) that wakes subscribers
--   KEYS[12]  results   list: page result JSON (only expired here)
--   KEYS[13]  robots    hash: robots.txt records (only expired here)
--
-- ARGV:
--   ARGV[1]  now (ISO time)
--   ARGV[2]  maxEvents (integer): events kept per job
--   ARGV[3]  ttl (seconds): expiry of the cancelled job's keys, 0 keeps them
--
-- Returns '~{"job":null,"events":[]}' when the job does not exist, '~{"job":<Job>,"events":[]}'
-- when it is finished already, else '~{"job":<Job>,"events":[<job:cancelled>]}'.
--
-- Job hash fields (keys.ts): status ('cancelled'), finished (ISO time), queued and inprog (0).
--
--- @include "includes/entries"
--- @include "includes/events"
--- @include "includes/expire"

local K = {
  job = KEYS[1], urls = KEYS[2], ready = KEYS[3], hosts = KEYS[4], hostList = KEYS[5], leased = KEYS[6], delayed = KEYS[7],
  spares = KEYS[8], unsure = KEYS[9], events = KEYS[10], push = KEYS[11], results = KEYS[12], robots = KEYS[13],
}
local nowIso, maxEvents, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

if redis.call('EXISTS', K.job) == 0 then return '~{"job":null,"events":[]}' end
if not isActive(K) then return '~{"job":' .. jobJson(K) .. ',"events":[]}' end
local entries = redis.call('HGETALL', K.urls)
for i = 1, #entries - 1, 2 do
  local e = decodeEntry(entries[i + 1])
  if e.state == 'p' or e.state == 'l' then e.state = 'c'; e.token = ''; redis.call('HSET', K.urls, entries[i], encodeEntry(e)) end
end
local hosts = redis.call('LRANGE', K.hostList, '0', '-1')
for x = 1, #hosts do
  local host = hosts[x]
  redis.call('DEL', K.ready .. host)
  local h = decodeHost(redis.call('HGET', K.hosts, host)); h.inFlight = 0
  redis.call('HSET', K.hosts, host, encodeHost(h))
end
redis.call('DEL', K.leased, K.delayed, K.spares, K.unsure)
redis.call('HSET', K.job, 'status', 'cancelled', 'finished', nowIso, 'queued', 0, 'inprog', 0)
local e = appendEvent(K, 'job:cancelled', nowIso, '', '', maxEvents)
expireJob(K, ttl)
return '~{"job":' .. jobJson(K) .. ',"events":[' .. e .. ']}'
