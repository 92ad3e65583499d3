-- Forgets a registration, and nothing else (a job that was never created).
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  jobs  sorted set: registered job ids by registration number
--   KEYS[2]  job   hash: this job's registration
--
-- ARGV:
--   ARGV[1]  job id
--
-- Returns '~true'.

redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return '~true'
