-- Claims due deliveries: pending, nextAttemptAt <= now, no live lease; earliest nextAttemptAt
-- first (enqueue order on ties), each with a new token and one more attempt. Expired leases go
-- back to `due` first (at their nextAttemptAt); their token stays current until a claim takes them.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  due      sorted set: pending deliveries not leased, by nextAttemptAt
--   KEYS[2]  leased   sorted set: leased deliveries by lease end (ms epoch)
--   KEYS[3]  dprefix  prefix of the delivery hashes; a delivery is KEYS[3] .. number. Exception to
--                     "every key in KEYS": the numbers come from KEYS[1] and KEYS[2].
--
-- ARGV:
--   ARGV[1]  now (ms epoch)
--   ARGV[2]  lease end (ms epoch): now + leaseMs
--   ARGV[3]  limit (integer >= 1)
--   ARGV[4]  token base (a random id): the tokens are <base>.<1..limit>
--
-- Returns '~[[doc,"pending",attempts,nextAttemptAt,null,lastError|null,"token"], ...]'.
--
--- @include "includes/values"

local due, leased, dprefix = KEYS[1], KEYS[2], KEYS[3]
local now, leaseEnd, limit, base = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local expired = redis.call('ZRANGEBYSCORE', leased, '-inf', now, 'LIMIT', 0, 1000)
for i = 1, #expired do
  local nx = redis.call('HGET', dprefix .. expired[i], 'nx')
  redis.call('ZREM', leased, expired[i])
  if not missing(nx) then redis.call('ZADD', due, nx, expired[i]) end
end

local picked = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit)
local out = {}
for i = 1, #picked do
  local key = dprefix .. picked[i]
  local token = base .. '.' .. i
  -- A member without its delivery (never left behind by these scripts) is dropped, not revived.
  if redis.call('EXISTS', key) == 0 then
    redis.call('ZREM', due, picked[i])
  else
    local attempts = redis.call('HINCRBY', key, 'att', 1)
    redis.call('HSET', key, 'tok', token, 'lu', leaseEnd)
    redis.call('ZREM', due, picked[i])
    redis.call('ZADD', leased, leaseEnd, picked[i])
    local f = redis.call('HMGET', key, 'doc', 'nx', 'le')
    out[#out + 1] = '[' .. f[1] .. ',"pending",' .. digits(attempts) .. ',' .. f[2] .. ',null,' .. jsonOrNull(f[3]) .. ',"' .. token .. '"]'
  end
end
return '~[' .. table.concat(out, ',') .. ']'
