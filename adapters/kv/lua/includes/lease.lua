-- Ending a lease (complete, retry, release). Uses K.job, K.urls, K.leased and K.hosts.
--
-- Job hash fields (keys.ts):
--   phd      (ms)       perHostDelayMs
--   inprog   (integer)  URLs in progress
--
--- @include "entries"
--- @include "job"

-- The entry of a live lease (state l, same token), or nil when the job, the URL or the lease is
-- gone (expired and claimed again, cancelled).
local function currentLease(K, key, token)
  if redis.call('EXISTS', K.job) == 0 then return nil end
  local raw = redis.call('HGET', K.urls, key)
  if missing(raw) then return nil end
  local e = decodeEntry(raw)
  if e.state ~= 'l' or e.token ~= token then return nil end
  return e
end

-- Frees the lease's host slot; when the fetch started (now, in ms), the host's delay starts too.
-- The caller sets the entry's new state.
local function endLease(K, key, e, now, started)
  redis.call('ZREM', K.leased, key)
  local h = decodeHost(redis.call('HGET', K.hosts, e.host))
  h.inFlight = math.max(0, h.inFlight - 1)
  local delay = math.max(num(field(K, 'phd')), h.crawlDelay)
  if started and delay > 0 then h.nextStart = math.max(h.nextStart, now + delay) end
  redis.call('HSET', K.hosts, e.host, encodeHost(h))
  redis.call('HINCRBY', K.job, 'inprog', -1)
end
