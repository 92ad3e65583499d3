-- The jobs a claim across all jobs visits: first admission (queued jobs leave the line for
-- `active`, in line order: while fewer than `bound` are admitted, counted in `admitted`; without a
-- bound, up to `limit` of them, uncounted, as before the bound existed), then the active ones and
-- the parked ones whose park has ended, longest idle first (merged by score; jobs just admitted
-- have score 0, so come first), and the earliest time a parked job's wait ends. Reads the line
-- only as far as it admits: a claim costs the same however many jobs are queued.
--
-- KEYS (adapters/kv/keys.ts; the index keys share the hash tag {index}):
--   KEYS[1]  active    sorted set: job ids claims visit, by last claim or wake (ms epoch)
--   KEYS[2]  parked    sorted set: parked job ids by park end (ms epoch; 9000000000000000 = until woken)
--   KEYS[3]  waits     sorted set: parked job ids by the end of their first wait on the clock (ms epoch)
--   KEYS[4]  line      sorted set: queued job ids awaiting admission, by priority then ordinal
--   KEYS[5]  admitted  set: running job ids started by admission
--   KEYS[6]  state     key prefix of the per-job index states; a job's is KEYS[6] .. id. Exception to
--                      "every key in KEYS": the jobs admitted come from the line read here.
--
-- ARGV:
--   ARGV[1]  limit (integer): most job ids to return
--   ARGV[2]  now (ms epoch)
--   ARGV[3]  bound (integer, maxActiveJobs), or '' for none
--
-- Returns '~{"next":<ms epoch|null>,"ids":[<job id>...],"admitted":[<job id>...]}': the earliest
-- wait still to come, the ids, and the jobs this call admitted under the bound (the claim starts
-- them). JSON, because ioredis-mock mangles tables built in Lua.
--
--- @include "includes/values"

local activeKey, parkedKey, waitsKey, lineKey, admittedKey, statePrefix = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local limit, now, bound = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])

local room = limit
if bound ~= nil then room = bound - redis.call('SCARD', admittedKey) end
local admitted = {}
if room > 0 then
  local next = redis.call('ZRANGE', lineKey, 0, room - 1)
  for x = 1, #next do
    local id = next[x]
    redis.call('ZREM', lineKey, id)
    redis.call('ZADD', activeKey, 0, id)
    redis.call('SET', statePrefix .. id, '0|a|0')
    if bound ~= nil then
      redis.call('SADD', admittedKey, id)
      admitted[#admitted + 1] = jsonString(id)
    end
  end
end

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
return '~{"next":' .. head .. ',"ids":[' .. table.concat(out, ',') .. '],"admitted":[' .. table.concat(admitted, ',') .. ']}'
