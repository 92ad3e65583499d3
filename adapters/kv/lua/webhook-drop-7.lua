-- Removes a job's webhook registration and every delivery of it (after its job was deleted,
-- delete-13.lua). A live lease of one of them settles nothing afterwards.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  jobs     sorted set: registered job ids by registration number
--   KEYS[2]  job      hash: this job's registration
--   KEYS[3]  list     sorted set: the job's delivery numbers
--   KEYS[4]  ids      hash: delivery id -> delivery number
--   KEYS[5]  dprefix  prefix of the delivery hashes; a delivery is KEYS[5] .. number (read from KEYS[3])
--   KEYS[6]  due      sorted set: pending deliveries not leased
--   KEYS[7]  leased   sorted set: leased deliveries
--
-- ARGV:
--   ARGV[1]  job id
--
-- Returns '~<number of deliveries removed>'.

--- @include "includes/values"

local K = { jobs = KEYS[1], reg = KEYS[2], list = KEYS[3], ids = KEYS[4], dprefix = KEYS[5], due = KEYS[6], leased = KEYS[7] }

redis.call('ZREM', K.jobs, ARGV[1])
redis.call('DEL', K.reg)
local members = redis.call('ZRANGE', K.list, 0, -1)
for i = 1, #members do
  local key = K.dprefix .. members[i]
  local id = redis.call('HGET', key, 'id')
  if not missing(id) then redis.call('HDEL', K.ids, id) end
  redis.call('ZREM', K.due, members[i])
  redis.call('ZREM', K.leased, members[i])
  redis.call('UNLINK', key)
end
redis.call('DEL', K.list)
return '~' .. #members
