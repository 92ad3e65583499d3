-- Completes a lease: records the page result, admits its links within maxPages, records links
-- robots.txt disallows as skipped, appends the page event, and finishes the job (completed, or
-- failed when no page succeeded) once nothing is queued or in progress.
--
-- maxPages is charged per admitted URL. A URL skipped for robots.txt after it was admitted gives
-- its charge back (`refd`): to the oldest spare link (kept past maxPages for that), or as room.
-- Skipped links recorded without admission are free (`rfree`). Both are capped at maxp, and the
-- charged URLs are disc - rfree - refd. Jobs written by older versions have neither field, nor
-- `spares` or `unsure`, which is how they were counted.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]   job       hash: the job record
--   KEYS[2]   urls      hash: URL key -> URL entry
--   KEYS[3]   ready     key prefix of the per-host ready lists (list of URL keys); a host's list is
--                       KEYS[3] .. host. Exception to "every key in KEYS": a spare's host is read here.
--   KEYS[4]   hosts     hash: host -> host state
--   KEYS[5]   hostList  list: hosts in first-seen order
--   KEYS[6]   leased    sorted set: leased URL keys by lease end (ms epoch)
--   KEYS[7]   delayed   sorted set: URL keys waiting for a retry backoff (only expired here)
--   KEYS[8]   spares    list: links kept past maxPages, each '1' or '0' (robots.txt unknown or not)
--                       followed by the URL key; their entries are in state r
--   KEYS[9]   unsure    set: admitted, unfinished URL keys whose robots.txt was unknown (they may
--                       yet be refunded)
--   KEYS[10]  events    list: event JSON, oldest first
--   KEYS[11]  push      pub/sub channel (not a key) that wakes subscribers
--   KEYS[12]  results   list: page result JSON, in completion order
--   KEYS[13]  robots    hash: robots.txt records (only expired here)
--
-- ARGV:
--   ARGV[1]   URL key of the lease
--   ARGV[2]   lease token
--   ARGV[3]   ok: '1' when the page succeeded
--   ARGV[4]   skipped: '1' when it failed with a skip code (robots.txt, not HTML, ...)
--   ARGV[5]   page result JSON
--   ARGV[6]   error JSON, or '' when ok
--   ARGV[7]   now (ms epoch)
--   ARGV[8]   now (ISO time)
--   ARGV[9]   maxEvents (integer): events kept per job
--   ARGV[10]  ttl (seconds): expiry of a job this finishes, 0 keeps it
--   ARGV[11]  number of links (L)
--   then L groups of 5, from ARGV[12]: key, url, depth (integer), host, unsure ('1' when its
--            robots.txt was unknown, else '0')
--   then groups of 6, to the end: key, url, depth, host, result JSON, error JSON of a link
--            robots.txt disallows (skipped at once)
--
-- Returns '~{"ok":false,"admitted":0,"events":[]}' when the lease is no longer live, else
-- '~{"ok":true,"admitted":<n>,"finished":<bool>[,"wake":<pv>],"events":[...]}'.
--
-- Job hash fields (keys.ts):
--   disc queued inprog succ fail skip   counts (integers)
--   firsterr (JSON)      the first page error; the job's error if no page succeeded
--   maxp     (integer)   maxPages
--   rfree    (integer)   skipped links recorded without a charge, at most maxp
--   refd     (integer)   charges given back, at most maxp
--   status finished error   set when the job finishes
--
--- @include "includes/lease"
--- @include "includes/events"
--- @include "includes/park"
--- @include "includes/expire"

local K = {
  job = KEYS[1], urls = KEYS[2], ready = KEYS[3], hosts = KEYS[4], hostList = KEYS[5], leased = KEYS[6], delayed = KEYS[7],
  spares = KEYS[8], unsure = KEYS[9], events = KEYS[10], push = KEYS[11], results = KEYS[12], robots = KEYS[13],
}
local key, token, ok, skipped = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4] == '1'
local resultJson, errorJson, now, nowIso, maxEvents, ttl = ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
local nlinks = tonumber(ARGV[11])

local e = currentLease(K, key, token)
if e == nil then return '~{"ok":false,"admitted":0,"events":[]}' end
e.state = 'd'; e.token = ''
if not ok then e.state = 'f' end
redis.call('HSET', K.urls, key, encodeEntry(e))
redis.call('SREM', K.unsure, key)
endLease(K, key, e, now, not skipped)
redis.call('RPUSH', K.results, resultJson)
if ok then redis.call('HINCRBY', K.job, 'succ', 1)
elseif skipped then redis.call('HINCRBY', K.job, 'skip', 1)
else redis.call('HINCRBY', K.job, 'fail', 1) end
if not ok and missing(field(K, 'firsterr')) then redis.call('HSET', K.job, 'firsterr', errorJson) end

local maxp = num(field(K, 'maxp'))
local refd = num(field(K, 'refd'))
-- Skipped for robots.txt after it was admitted: its charge goes to the oldest spare, or frees room.
if skipped and refd < maxp then
  refd = refd + 1
  redis.call('HSET', K.job, 'refd', digits(refd))
  local item = redis.call('LPOP', K.spares)
  if not missing(item) then
    local spareKey = string.sub(item, 2)
    local s = decodeEntry(redis.call('HGET', K.urls, spareKey))
    s.state = 'p'
    redis.call('HSET', K.urls, spareKey, encodeEntry(s))
    redis.call('RPUSH', K.ready .. s.host, spareKey)
    if redis.call('HSETNX', K.hosts, s.host, encodeHost(newHost())) == 1 then redis.call('RPUSH', K.hostList, s.host) end
    if string.sub(item, 1, 1) == '1' then redis.call('SADD', K.unsure, spareKey) end
    redis.call('HINCRBY', K.job, 'disc', 1)
    redis.call('HINCRBY', K.job, 'queued', 1)
  end
end

-- Links: new ones are admitted while there is room, then kept as spares.
local admitted = 0
local room = maxp - (num(field(K, 'disc')) - num(field(K, 'rfree')) - refd)
local spareRoom = nil
for x = 0, nlinks - 1 do
  local i = 12 + x * 5
  local linkKey, linkUrl, linkDepth, linkHost, linkUnsure = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if room > 0 then
    if redis.call('HSETNX', K.urls, linkKey, encodeEntry(newEntry('p', tonumber(linkDepth), linkHost, linkUrl))) == 1 then
      redis.call('RPUSH', K.ready .. linkHost, linkKey)
      if redis.call('HSETNX', K.hosts, linkHost, encodeHost(newHost())) == 1 then redis.call('RPUSH', K.hostList, linkHost) end
      if linkUnsure == '1' then redis.call('SADD', K.unsure, linkKey) end
      admitted = admitted + 1
      room = room - 1
    end
  else
    -- No room left: spares, as many as unfinished unsure URLs (which may yet be refunded) and refunds left.
    if spareRoom == nil then
      spareRoom = math.min(redis.call('SCARD', K.unsure), maxp - refd) - redis.call('LLEN', K.spares)
    end
    if spareRoom <= 0 then break end
    if redis.call('HSETNX', K.urls, linkKey, encodeEntry(newEntry('r', tonumber(linkDepth), linkHost, linkUrl))) == 1 then
      redis.call('RPUSH', K.spares, linkUnsure .. linkKey)
      spareRoom = spareRoom - 1
    end
  end
end
redis.call('HINCRBY', K.job, 'disc', digits(admitted))
redis.call('HINCRBY', K.job, 'queued', digits(admitted))

local kind = 'page:done'
local err = ''
if not ok then err = errorJson; if skipped then kind = 'page:skipped' else kind = 'page:failed' end end
local events = { appendEvent(K, kind, nowIso, jsonString(e.url), err, maxEvents) }

-- Links robots.txt disallows: recorded as skipped at once, new ones only, at most maxp per job.
local rfree = num(field(K, 'rfree'))
local i = 12 + nlinks * 5
while ARGV[i] and rfree < maxp do
  local skipKey, skipUrl, skipDepth, skipHost = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('HSETNX', K.urls, skipKey, encodeEntry(newEntry('f', tonumber(skipDepth), skipHost, skipUrl))) == 1 then
    redis.call('RPUSH', K.results, ARGV[i + 4])
    redis.call('HINCRBY', K.job, 'disc', 1)
    redis.call('HINCRBY', K.job, 'skip', 1)
    rfree = rfree + 1
    redis.call('HSET', K.job, 'rfree', digits(rfree))
    events[#events + 1] = appendEvent(K, 'page:skipped', nowIso, jsonString(skipUrl), ARGV[i + 5], maxEvents)
  end
  i = i + 6
end

-- Nothing queued or in progress: the job is over.
local finished = false
if num(field(K, 'queued')) == 0 and num(field(K, 'inprog')) == 0 and isActive(K) then
  finished = true
  if num(field(K, 'succ')) == 0 then
    local fe = field(K, 'firsterr')
    if missing(fe) then fe = '{"code":"failed","message":"no page could be fetched"}' end
    redis.call('HSET', K.job, 'status', 'failed', 'finished', nowIso, 'error', fe)
    events[#events + 1] = appendEvent(K, 'job:failed', nowIso, '', fe, maxEvents)
  else
    redis.call('HSET', K.job, 'status', 'completed', 'finished', nowIso)
    events[#events + 1] = appendEvent(K, 'job:completed', nowIso, '', '', maxEvents)
  end
end
local fin = 'false'
local woke = ''
if finished then fin = 'true'; expireJob(K, ttl)
-- A freed host slot or new links may make a parked job ready sooner.
else woke = wakeUp(K) end
return '~{"ok":true,"admitted":' .. digits(admitted) .. ',"finished":' .. fin .. woke .. ',"events":[' .. table.concat(events, ',') .. ']}'
