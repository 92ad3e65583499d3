-- The jobs a claim across all jobs visits: active ones and parked ones whose park has ended,
-- longest idle first (merged by score), and the earliest time a parked job's wait ends.
--
-- KEYS (adapters/kv/keys.ts; the index keys share the hash tag {index}):
--   KEYS[1]  active  sorted set: job ids claims visit, by last claim or wake (ms epoch)
--   KEYS[2]  parked  sorted set: parked job ids by park end (ms epoch; 9000000000000000 = until woken)
--   KEYS[3]  waits   sorted set: parked job ids by the end of their first wait on the clock (ms epoch)
--
-- ARGV:
--   ARGV[1]  limit (integer): most job ids to return
--   ARGV[2]  now (ms epoch)
--
-- Returns '~{"next":<ms epoch|null>,"ids":[<job id>...]}': the earliest wait still to come, and
-- the ids. JSON, because ioredis-mock mangles tables built in Lua.
--
--- @include "includes/values"

local activeKey, parkedKey, waitsKey = KEYS[1], KEYS[2], KEYS[3]
local limit, now = tonumber(ARGV[1]), ARGV[2]

local act = redis.call('ZRANGE', activeKey, 0, limit - 1, 'WITHSCORES')
local due = redis.call('ZRANGEBYSCORE', parkedKey, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
local w = redis.call('ZRANGEBYSCORE', waitsKey, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local out = {}
local a, d = 1, 1
while #out < limit and (a < #act or d < #due) do
  if d >= #due or (a < #act and tonumber(act[a + 1]) <= tonumber(due[d + 1])) then
    out[#out + 1] = jsonString(act[a]); a = a + 2
  else
    out[#out + 1] = jsonString(due[d]); d = d + 2
  end
end
local head = 'null'
if #w >= 2 then head = digits(tonumber(w[2])) end
return '~{"next":' .. head .. ',"ids":[' .. table.concat(out, ',') .. ']}'
