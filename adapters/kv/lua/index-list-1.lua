-- Lists job ids, newest first.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  jobs  sorted set: every job id by ordinal
--
-- ARGV:
--   ARGV[1]  before: ordinal (exclusive), or 'inf' for the newest
--   ARGV[2]  count (integer)
--
-- Returns a flat array: id, ordinal, id, ordinal, ... (not JSON: ids and numbers survive Upstash).

local jobsKey = KEYS[1]
local before, count = ARGV[1], tonumber(ARGV[2])

local max = '(' .. before
if before == 'inf' then max = '+inf' end
return redis.call('ZREVRANGEBYSCORE', jobsKey, max, '-inf', 'WITHSCORES', 'LIMIT', 0, count)
