-- Adds a job to the global index (after its data is written: an entry is never without data while
-- the job is being created): it gets the next ordinal and joins the admission line (claims across
-- jobs start it in its turn). An id already indexed keeps its ordinal and state.
--
-- KEYS (adapters/kv/keys.ts; the index keys share the hash tag {index}):
--   KEYS[1]  jobs     sorted set: every job id by ordinal
--   KEYS[2]  ordinal  string: the ordinal counter (integer)
--   KEYS[3]  line     sorted set: queued job ids awaiting admission, by priority then ordinal
--   KEYS[4]  state    string: the job's index state `<version>|<where>|<in waits>` (keys.ts)
--
-- ARGV:
--   ARGV[1]  job id
--   ARGV[2]  priority (integer, -1000 to 1000; higher is admitted first)
--
-- Returns the job's ordinal (integer): the new one, or the one it already had.
--
--- @include "includes/values"

local jobsKey, ordinalKey, lineKey, stateKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, priority = ARGV[1], tonumber(ARGV[2]) or 0

local existing = redis.call('ZSCORE', jobsKey, id)
if existing then return tonumber(existing) end
local o = redis.call('INCR', ordinalKey)
redis.call('ZADD', jobsKey, o, id)
-- Lowest first: priority highest first, then creation; exact while ordinals stay below 2^40.
redis.call('ZADD', lineKey, digits((1000 - priority) * 1099511627776 + o), id)
redis.call('SET', stateKey, '0|q|0')
return o
