-- Lists registered jobs (not done), oldest registration first.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  jobs       sorted set: registered job ids by registration number
--   KEYS[2]  jobPrefix  prefix of the registrations; a job's is KEYS[2] .. id. Exception to "every key
--                       in KEYS": the ids come from KEYS[1].
--
-- ARGV:
--   ARGV[1]  limit (integer >= 1)
--
-- Returns '~[{"jobId":..,"registeredAt":..,"state":..|null}, ...]'.
--
--- @include "includes/values"

local jobsKey, jobPrefix = KEYS[1], KEYS[2]
local limit = tonumber(ARGV[1])

local ids = redis.call('ZRANGE', jobsKey, 0, limit - 1)
local out = {}
for i = 1, #ids do
  local f = redis.call('HMGET', jobPrefix .. ids[i], 'j', 'at', 'state')
  if not missing(f[1]) then
    out[#out + 1] = '{"jobId":' .. f[1] .. ',"registeredAt":' .. f[2] .. ',"state":' .. jsonOrNull(f[3]) .. '}'
  end
end
return '~[' .. table.concat(out, ',') .. ']'
