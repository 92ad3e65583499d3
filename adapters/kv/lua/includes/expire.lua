-- A finished job's keys expire. Uses K.job, K.urls, K.events, K.results (and K.results .. 'ix', the
-- index of its results by URL: keys.ts `resultIndexKey`), K.robots, K.hosts,
-- K.hostList, K.leased, K.delayed, K.spares and K.unsure. The per-host ready lists are not
-- included: a finished job has none left (they are empty, or deleted by a cancel).
--
--- @include "values"

-- Sets a TTL of ttl seconds on the job's keys; 0 (or less) keeps them.
local function expireJob(K, ttl)
  if ttl <= 0 then return end
  local keys = { K.job, K.urls, K.events, K.results, K.results .. 'ix', K.robots, K.hosts, K.hostList, K.leased, K.delayed, K.spares, K.unsure }
  for x = 1, #keys do redis.call('EXPIRE', keys[x], digits(ttl)) end
end
