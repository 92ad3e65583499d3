-- Lists a job's deliveries in enqueue order.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  list     sorted set: the job's delivery numbers in enqueue order
--   KEYS[2]  dprefix  prefix of the delivery hashes; a delivery is KEYS[2] .. number (read from KEYS[1])
--
-- ARGV:
--   ARGV[1]  after: the delivery number (the cursor) after which to start, 0 from the first
--   ARGV[2]  count (integer >= 1)
--
-- Returns '~[[number,doc,"state",attempts,nextAttemptAt,deliveredAt|null,lastError|null], ...]'.
--
--- @include "includes/values"

local list, dprefix = KEYS[1], KEYS[2]
local after, count = ARGV[1], tonumber(ARGV[2])

local members = redis.call('ZRANGEBYSCORE', list, '(' .. after, '+inf', 'LIMIT', 0, count)
local out = {}
for i = 1, #members do
  local f = redis.call('HMGET', dprefix .. members[i], 'doc', 'st', 'att', 'nx', 'da', 'le')
  if not missing(f[1]) then
    local da = f[5]
    if missing(da) or da == '' then da = 'null' end
    out[#out + 1] = '[' .. digits(tonumber(members[i])) .. ',' .. f[1] .. ',"' .. f[2] .. '",' .. f[3] .. ',' .. f[4] .. ',' .. da .. ',' .. jsonOrNull(f[6]) .. ']'
  end
end
return '~[' .. table.concat(out, ',') .. ']'
