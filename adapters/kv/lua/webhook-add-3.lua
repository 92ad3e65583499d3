-- Registers a job for webhook deliveries; idempotent (a registration that exists keeps its time).
--
-- KEYS (adapters/kv/keys.ts; the outbox keys share the hash tag {webhooks}):
--   KEYS[1]  jobs  sorted set: registered job ids by registration number
--   KEYS[2]  seq   string: the registration and delivery number counter
--   KEYS[3]  job   hash: this job's registration (WEBHOOK_JOB_FIELDS)
--
-- ARGV:
--   ARGV[1]  job id
--   ARGV[2]  job id as a JSON string
--   ARGV[3]  now (ms epoch): registeredAt
--
-- Returns '~true' when registered here, '~false' when it was already.

local jobsKey, seqKey, jobKey = KEYS[1], KEYS[2], KEYS[3]
local id, idJson, now = ARGV[1], ARGV[2], ARGV[3]

if redis.call('EXISTS', jobKey) == 1 then return '~false' end
local n = redis.call('INCR', seqKey)
redis.call('HSET', jobKey, 'j', idJson, 'at', now)
redis.call('ZADD', jobsKey, n, id)
return '~true'
