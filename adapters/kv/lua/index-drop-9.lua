-- Forgets a job: one deleted (delete-13.lua), or whose data expired (finishedTtlSeconds).
--
-- KEYS (adapters/kv/keys.ts; the index keys share the hash tag {index}):
--   KEYS[1]  jobs      sorted set: every job id by ordinal
--   KEYS[2]  active    sorted set: job ids claims visit
--   KEYS[3]  parked    sorted set: parked job ids
--   KEYS[4]  waits     sorted set: parked job ids waiting on the clock
--   KEYS[5]  state     string: the job's index state
--   KEYS[6]  line      sorted set: queued job ids awaiting admission
--   KEYS[7]  admitted  set: running job ids started by admission
--   KEYS[8]  finished  sorted set: finished job ids by finish time
--   KEYS[9]  requeues  hash: job id -> how many times admission found it without data
--
-- ARGV:
--   ARGV[1]  job id
--
-- Returns 1 when the job was in `jobs`, else 0.

local jobsKey, activeKey, parkedKey, waitsKey, stateKey, lineKey, admittedKey, finishedKey, requeuesKey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local id = ARGV[1]

redis.call('ZREM', activeKey, id)
redis.call('ZREM', parkedKey, id)
redis.call('ZREM', waitsKey, id)
redis.call('ZREM', lineKey, id)
redis.call('SREM', admittedKey, id)
redis.call('ZREM', finishedKey, id)
redis.call('HDEL', requeuesKey, id)
redis.call('DEL', stateKey)
return redis.call('ZREM', jobsKey, id)
