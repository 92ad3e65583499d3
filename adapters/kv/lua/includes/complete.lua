-- Completing one lease, shared by complete-13.lua (one page) and complete-many-13.lua (several
-- pages of one job): records the page result, admits its links within maxPages, records links
-- robots.txt disallows as skipped, appends the page event, and finishes the job (completed, or
-- failed when no page succeeded) once nothing is queued or in progress.
--
-- maxPages is charged per admitted URL. A URL skipped for robots.txt after it was admitted gives
-- its charge back (`refd`): to the oldest spare link (kept past maxPages for that), or as room.
-- Skipped links recorded without admission are free (`rfree`). Both are capped at maxp, and the
-- charged URLs are disc - rfree - refd. Jobs written by older versions have neither field, nor
-- `spares` or `unsure`, which is how they were counted.
--
-- Uses every key of complete-13.lua's KEYS (K.job, K.urls, K.ready, K.hosts, K.hostList, K.leased,
-- K.delayed, K.spares, K.unsure, K.events, K.push, K.results, K.robots), and K.results .. 'ix', the
-- hash of each result's URL -> its index in K.results (keys.ts `resultIndexKey`; same hash slot).
--
-- Job hash fields (keys.ts):
--   disc queued inprog succ fail skip   counts (integers)
--   firsterr (JSON)      the first page error; the job's error if no page succeeded
--   maxp     (integer)   maxPages
--   rfree    (integer)   skipped links recorded without a charge, at most maxp
--   refd     (integer)   charges given back, at most maxp
--   status finished error   set when the job finishes
--
--- @include "lease"
--- @include "events"
--- @include "park"
--- @include "expire"

-- Records a result: appended to K.results, its index kept under its URL (getResults).
local function pushResult(K, url, json)
  local n = redis.call('RPUSH', K.results, json)
  redis.call('HSET', K.results .. 'ix', url, digits(n - 1))
end

-- Completes one lease. `c` holds the item, decoded by the script from its ARGV:
--   key, token                 the lease
--   ok, skipped (booleans)     the page succeeded; it failed with a skip code
--   resultJson, errorJson      the page result JSON; its error JSON, or '' when ok
--   now (ms epoch), nowIso     the time of the completion
--   maxEvents, ttl             events kept per job; expiry (seconds) of a job this finishes, 0 keeps it
--   nlinks, linksAt            the number of links, and the index in A of the first one's key; each
--                              link is 5 values: key, url, depth, host, and unsure ('1' or '0')
--                              followed by the link's sitemap lastmod, if it has one
--   skipsAt, skipsEnd          the index in A of the first disallowed link, and the index after
--                              the last one; each is 6 values: key, url, depth, host, result JSON,
--                              error JSON
-- A is the script's ARGV. Returns the reply object (JSON, without the leading `~`):
-- '{"ok":false,"admitted":0,"events":[]}' when the lease is no longer live, else
-- '{"ok":true,"admitted":<n>,"finished":<bool>[,"wake":<pv>],"events":[...]}'.
local function completeOne(K, A, c)
  local key, token, ok, skipped = c.key, c.token, c.ok, c.skipped
  local resultJson, errorJson, now, nowIso, maxEvents, ttl = c.resultJson, c.errorJson, c.now, c.nowIso, c.maxEvents, c.ttl
  local nlinks = c.nlinks

  local e = currentLease(K, key, token)
  if e == nil then return '{"ok":false,"admitted":0,"events":[]}' end
  e.state = 'd'; e.token = ''
  if not ok then e.state = 'f' end
  redis.call('HSET', K.urls, key, encodeEntry(e))
  redis.call('SREM', K.unsure, key)
  endLease(K, key, e, now, not skipped)
  pushResult(K, e.url, resultJson)
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
    local i = c.linksAt + x * 5
    local linkKey, linkUrl, linkDepth, linkHost, linkUnsure = A[i], A[i + 1], A[i + 2], A[i + 3], A[i + 4]
    local linkLastmod = string.sub(linkUnsure, 2)
    linkUnsure = string.sub(linkUnsure, 1, 1)
    if room > 0 then
      if redis.call('HSETNX', K.urls, linkKey, encodeEntry(newEntry('p', tonumber(linkDepth), linkHost, linkUrl, linkLastmod))) == 1 then
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
      if redis.call('HSETNX', K.urls, linkKey, encodeEntry(newEntry('r', tonumber(linkDepth), linkHost, linkUrl, linkLastmod))) == 1 then
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
  local i = c.skipsAt
  while i < c.skipsEnd and rfree < maxp do
    local skipKey, skipUrl, skipDepth, skipHost = A[i], A[i + 1], A[i + 2], A[i + 3]
    if redis.call('HSETNX', K.urls, skipKey, encodeEntry(newEntry('f', tonumber(skipDepth), skipHost, skipUrl))) == 1 then
      pushResult(K, skipUrl, A[i + 4])
      redis.call('HINCRBY', K.job, 'disc', 1)
      redis.call('HINCRBY', K.job, 'skip', 1)
      rfree = rfree + 1
      redis.call('HSET', K.job, 'rfree', digits(rfree))
      events[#events + 1] = appendEvent(K, 'page:skipped', nowIso, jsonString(skipUrl), A[i + 5], maxEvents)
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
  return '{"ok":true,"admitted":' .. digits(admitted) .. ',"finished":' .. fin .. woke .. ',"events":[' .. table.concat(events, ',') .. ']}'
end
