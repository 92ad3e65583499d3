-- Lists registered jobs (not done) in registration order, from the first whose registration number
-- (its ordinal) is greater than ARGV[2].
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  jobs       sorted set: registered job ids by registration number
--   KEYS[2]  jobPrefix  prefix of the registrations; a job's is KEYS[2] .. id. Exception to "every key
--                       in KEYS": the ids come from KEYS[1].
--
-- ARGV:
--   ARGV[1]  limit (integer >= 1)
--   ARGV[2]  after: an ordinal (integer >= 0)
--
-- Returns '~[{"jobId":..,"ordinal":..,"registeredAt":..,"state":..|null}, ...]'.
--
--- @include "includes/values"

local jobsKey, jobPrefix = KEYS[1], KEYS[2]
local limit, after = tonumber(ARGV[1]), ARGV[2]

local ids = redis.call('ZRANGEBYSCORE', jobsKey, '(' .. after, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
local out = {}
for i = 1, #ids, 2 do
  local f = redis.call('HMGET', jobPrefix .. ids[i], 'j', 'at', 'state')
  if not missing(f[1]) then
    out[#out + 1] = '{"jobId":' .. f[1] .. ',"ordinal":' .. ids[i + 1] .. ',"registeredAt":' .. f[2] .. ',"state":' .. jsonOrNull(f[3]) .. '}'
  end
end
return '~[' .. table.concat(out, ',') .. ']'
