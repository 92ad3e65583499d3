-- Claims up to `limit` URLs of one job: first leases that expired (their processor is gone), then
-- pending URLs, one host at a time round the host list from the cursor `hc`, within each host's
-- concurrency, delay and backoff. Due retries move to the front of their host's ready list first.
-- The first lease of a queued job starts it (job:started), or its admission (`start`).
--
-- A claim that finds nothing ready may park the job (see `force`, and includes/park.lua): it is
-- parked until the earliest host delay end, backoff end or live lease end, or until a wake when
-- none exists (9000000000000000, PARK_FOREVER). A claim that gives URLs wakes a parked job.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  job       hash: the job record
--   KEYS[2]  urls      hash: URL key -> URL entry
--   KEYS[3]  ready     key prefix of the per-host ready lists (list of URL keys); the list of a
--                      host is KEYS[3] .. host. Exception to "every key in KEYS": the hosts come
--                      from the host list read here.
--   KEYS[4]  hosts     hash: host -> host state
--   KEYS[5]  hostList  list: hosts in first-seen order
--   KEYS[6]  leased    sorted set: leased URL keys by lease end (ms epoch)
--   KEYS[7]  delayed   sorted set: URL keys waiting for a retry backoff, by its end (ms epoch)
--   KEYS[8]  events    list: event JSON, oldest first
--   KEYS[9]  push      pub/sub channel (not a key) that wakes subscribers
--
-- ARGV:
--   ARGV[1]  limit (integer): most leases to give
--   ARGV[2]  leaseMs (ms): lease length
--   ARGV[3]  now (ms epoch)
--   ARGV[4]  now (ISO time), for job:started
--   ARGV[5]  maxEvents (integer): events kept per job
--   ARGV[6]  tokenBase (random string); lease tokens are tokenBase:1, tokenBase:2, ...
--   ARGV[7]  force: '1' on a claim's first visit of the job (it may park it, and a park is always
--            reported); '0' on a claim of this job alone (never parks: it visits the job anyway,
--            so a park would only cost a wake on the next complete); '-1' on a second visit of a
--            job that already gave URLs in this claim (never parks)
--   ARGV[8]  start: '1' when the index just admitted the job: a queued job starts now (running,
--            job:started) even if it gives no URL (limit 0: the claim was full); '0' otherwise
--            (a queued job starts with its first lease)
--
-- Returns '~{"leases":[<Lease>...],"events":[...],"nextReadyAt":<ms epoch|null>}' plus
-- ',"park":{"v":<pv>,"at":<pat>,"wait":<pwt>}' when it parked the job, or ',"wake":<pv>' when it
-- woke it; '~{..., "inactive":true}' when the job is not queued or running (or does not exist).
-- nextReadyAt: the earliest time a pending URL becomes ready (host delay or backoff), null if none.
--
-- Job hash fields (keys.ts):
--   status started     'queued' -> 'running' with started (ISO time) at the first lease
--   id                 the job id, in each lease
--   phc  (integer)     perHostConcurrency: leases per host at once (1 while the host has a delay)
--   phd  (ms)          perHostDelayMs, between the end of one fetch and the next lease on a host
--   hc   (integer)     host cursor: the hostList index where the next claim starts
--   queued inprog      counts moved by new leases (re-leased expired ones stay in progress)
--   pk pv pat pwt      parking: see includes/park.lua
--
--- @include "includes/entries"
--- @include "includes/events"
--- @include "includes/park"

local K = {
  job = KEYS[1], urls = KEYS[2], ready = KEYS[3], hosts = KEYS[4], hostList = KEYS[5], leased = KEYS[6], delayed = KEYS[7], events = KEYS[8], push = KEYS[9],
}
local PARK_FOREVER = 9000000000000000
local limit, leaseMs, now, nowIso, maxEvents, tokenBase, force, start = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8]

if not isActive(K) then return '~{"leases":[],"events":[],"nextReadyAt":null,"inactive":true}' end
local leases, events, took, fresh, n = {}, {}, 0, 0, 0

-- Leases the URL `key` (entry e); wasPending: it was queued (not a re-lease of an expired lease).
local function lease(key, e, wasPending)
  n = n + 1
  e.state = 'l'; e.token = tokenBase .. ':' .. n; e.attempts = e.attempts + 1; e.leaseUntil = now + leaseMs
  redis.call('HSET', K.urls, key, encodeEntry(e))
  redis.call('ZADD', K.leased, digits(e.leaseUntil), key)
  leases[#leases + 1] = '{"jobId":' .. jsonString(field(K, 'id')) .. ',"url":' .. jsonString(e.url) .. ',"key":' .. jsonString(key) ..
    ',"depth":' .. digits(e.depth) .. ',"host":' .. jsonString(e.host) .. ',"token":' .. jsonString(e.token) ..
    ',"attempts":' .. digits(e.attempts) .. ',"expiresAt":' .. digits(e.leaseUntil) .. lastmodJson(e) .. '}'
  took = took + 1
  if wasPending then fresh = fresh + 1 end
end

-- Expired leases: the processor that held them is gone.
local expired = {}
if limit > 0 then expired = redis.call('ZRANGEBYSCORE', K.leased, '-inf', digits(now), 'LIMIT', '0', digits(limit)) end
for x = 1, #expired do
  local key = expired[x]
  local e = decodeEntry(redis.call('HGET', K.urls, key))
  if e.state == 'l' then lease(key, e, false) end
end

-- Retries whose backoff has passed go to the front of their host's queue.
local due = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', digits(now))
for x = 1, #due do
  local key = due[x]
  redis.call('ZREM', K.delayed, key)
  local e = decodeEntry(redis.call('HGET', K.urls, key))
  if e.state == 'p' then
    e.notBefore = 0
    redis.call('HSET', K.urls, key, encodeEntry(e))
    redis.call('LPUSH', K.ready .. e.host, key)
  end
end

-- Round the hosts from the cursor, one lease per host per turn, until the limit or no progress.
local perHostConcurrency, perHostDelay = num(field(K, 'phc')), num(field(K, 'phd'))
local hosts = redis.call('LRANGE', K.hostList, '0', '-1')
local nh = #hosts
local cursor = num(field(K, 'hc'))
local nextReady = nil
local progressed = true
while took < limit and progressed and nh > 0 do
  progressed = false
  for i = 0, nh - 1 do
    if took >= limit then break end
    local host = hosts[((cursor + i) % nh) + 1]
    local h = decodeHost(redis.call('HGET', K.hosts, host))
    local delay = math.max(perHostDelay, h.crawlDelay)
    local slots = perHostConcurrency
    if delay > 0 then slots = 1 end
    if h.inFlight < slots then
      if h.nextStart > now then
        if redis.call('LLEN', K.ready .. host) > 0 and (nextReady == nil or h.nextStart < nextReady) then nextReady = h.nextStart end
      else
        local key = redis.call('LPOP', K.ready .. host)
        while key do
          -- A URL in a ready list is ready, whatever this claim's clock says (another processor's
          -- clock moved it there); only entries no longer pending (leased again, cancelled) drop out.
          local e = decodeEntry(redis.call('HGET', K.urls, key))
          if e.state == 'p' then
            lease(key, e, true)
            h.inFlight = h.inFlight + 1; h.lastPick = now
            redis.call('HSET', K.hosts, host, encodeHost(h))
            progressed = true
            cursor = (cursor + i + 1) % nh
            break
          end
          key = redis.call('LPOP', K.ready .. host)
        end
        if progressed then break end
      end
    end
  end
end
redis.call('HSET', K.job, 'hc', digits(cursor))

if fresh > 0 then
  redis.call('HINCRBY', K.job, 'queued', digits(-fresh))
  redis.call('HINCRBY', K.job, 'inprog', digits(fresh))
end
if took > 0 or start == '1' then
  if field(K, 'status') == 'queued' then
    redis.call('HSET', K.job, 'status', 'running', 'started', nowIso)
    events[#events + 1] = appendEvent(K, 'job:started', nowIso, '', '', maxEvents)
  end
end
if took < limit then
  local waiting = redis.call('ZRANGE', K.delayed, '0', '0', 'WITHSCORES')
  if #waiting >= 2 and (nextReady == nil or tonumber(waiting[2]) < nextReady) then nextReady = tonumber(waiting[2]) end
end
local nr = 'null'
if nextReady ~= nil then nr = digits(nextReady) end

local parking = ''
if took == 0 and limit > 0 and force == '1' then
  -- Nothing ready: every host was looked at, so each pending URL waits on its host's delay, on its
  -- backoff or on a host slot held by a live lease. Park the job until the earliest of those ends.
  local at = nextReady
  local held = redis.call('ZRANGE', K.leased, '0', '0', 'WITHSCORES')
  if #held >= 2 and (at == nil or tonumber(held[2]) < at) then at = tonumber(held[2]) end
  if at == nil then at = PARK_FOREVER end
  local wait = 0
  if nextReady ~= nil then wait = nextReady end
  if at > now then
    local v = redis.call('HINCRBY', K.job, 'pv', 1)
    redis.call('HSET', K.job, 'pk', '1', 'pat', digits(at), 'pwt', digits(wait))
    parking = ',"park":{"v":' .. digits(v) .. ',"at":' .. digits(at) .. ',"wait":' .. digits(wait) .. '}'
  end
elseif took > 0 then
  parking = wakeUp(K)
end
return '~{"leases":[' .. table.concat(leases, ',') .. '],"events":[' .. table.concat(events, ',') .. '],"nextReadyAt":' .. nr .. parking .. '}'
