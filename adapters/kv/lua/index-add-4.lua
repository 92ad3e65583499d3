-- Adds a job to the global index (before its data is written): it gets the next ordinal and is
-- active (claims across all jobs visit it). An id already indexed keeps its ordinal and state, so
-- a create that is then refused (the job exists) moves nothing.
--
-- KEYS (adapters/kv/keys.ts; the index keys share the hash tag {index}):
--   KEYS[1]  jobs     sorted set: every job id by ordinal
--   KEYS[2]  ordinal  string: the ordinal counter (integer)
--   KEYS[3]  active   sorted set: job ids claims visit, by last claim or wake (ms epoch, 0 = new)
--   KEYS[4]  state    string: the job's index state `<version>|<where>|<in waits>` (keys.ts)
--
-- ARGV:
--   ARGV[1]  job id
--
-- Returns the job's ordinal (integer): the new one, or the one it already had.

local jobsKey, ordinalKey, activeKey, stateKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]

local existing = redis.call('ZSCORE', jobsKey, id)
if existing then return tonumber(existing) end
local o = redis.call('INCR', ordinalKey)
redis.call('ZADD', jobsKey, o, id)
redis.call('ZADD', activeKey, 0, id)
redis.call('SET', stateKey, '0|a|0')
return o
