-- Parking: a claim that finds nothing ready parks the job, so claims across all jobs skip it until
-- its time comes or something wakes it. Uses K.job.
--
-- Job hash fields (keys.ts):
--   pk    '1' | '0'   1 while parked
--   pv    (integer)   park version, bumped on every park and wake; the index applies only newer ones
--   pat   (ms epoch)  parked until: the earliest host delay end, backoff end or live lease end;
--                     9000000000000000 (never) when only a wake can help
--   pwt   (ms epoch)  the earliest end of a wait on the clock alone, 0 if none
--
--- @include "job"

-- Unparks a parked job; returns the reply fragment `,"wake":<new pv>` that tells the index, or ''.
local function wakeUp(K)
  if field(K, 'pk') ~= '1' then return '' end
  redis.call('HSET', K.job, 'pk', '0')
  return ',"wake":' .. digits(redis.call('HINCRBY', K.job, 'pv', 1))
end
