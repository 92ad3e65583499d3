-- Records how a try of a delivery ended, only while the lease's token is current.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  ids      hash: delivery id -> delivery number
--   KEYS[2]  dprefix  prefix of the delivery hashes; a delivery is KEYS[2] .. number (read from KEYS[1])
--   KEYS[3]  due      sorted set: pending deliveries not leased, by nextAttemptAt
--   KEYS[4]  leased   sorted set: leased deliveries by lease end
--
-- ARGV:
--   ARGV[1]  delivery id
--   ARGV[2]  the lease's token
--   ARGV[3]  outcome: 'delivered', 'pending', 'released' (handed back untried: the claim's attempt
--            given back, the last error kept) or 'failed'
--   ARGV[4]  delivered: deliveredAt (ms epoch); pending, released: nextAttemptAt (ms epoch); failed: ''
--   ARGV[5]  the error (JSON), '' when delivered or released
--
-- Returns '~true', or '~false' when the token is not current (settled, claimed again, deleted).
--
--- @include "includes/values"

local ids, dprefix, due, leased = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, token, outcome, at, err = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

local member = redis.call('HGET', ids, id)
if missing(member) then return '~false' end
local key = dprefix .. member
local f = redis.call('HMGET', key, 'st', 'tok')
if f[1] ~= 'pending' or missing(f[2]) or f[2] == '' or f[2] ~= token then return '~false' end
redis.call('ZREM', leased, member)
if outcome == 'delivered' then
  redis.call('HSET', key, 'st', 'delivered', 'da', at, 'tok', '')
  redis.call('ZREM', due, member)
elseif outcome == 'pending' then
  redis.call('HSET', key, 'nx', at, 'le', err, 'tok', '')
  redis.call('ZADD', due, at, member)
elseif outcome == 'released' then
  if tonumber(redis.call('HGET', key, 'att') or '0') > 0 then redis.call('HINCRBY', key, 'att', -1) end
  redis.call('HSET', key, 'nx', at, 'tok', '')
  redis.call('ZADD', due, at, member)
else
  redis.call('HSET', key, 'st', 'failed', 'le', err, 'tok', '')
  redis.call('ZREM', due, member)
end
return '~true'
