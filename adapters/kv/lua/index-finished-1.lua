-- Lists finished job ids that finished before a time, oldest finish first (the retention sweep).
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  finished  sorted set: finished job ids by finish time (ms epoch)
--
-- ARGV:
--   ARGV[1]  before: finish time (ms epoch, exclusive)
--   ARGV[2]  count (integer)
--
-- Returns an array of job ids (not JSON: ids survive Upstash).

local finishedKey = KEYS[1]
local before, count = ARGV[1], tonumber(ARGV[2])

return redis.call('ZRANGEBYSCORE', finishedKey, '-inf', '(' .. before, 'LIMIT', 0, count)
