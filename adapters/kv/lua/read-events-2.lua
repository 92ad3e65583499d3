-- Reads events after an event id. A reader behind the trimmed part of the log first gets the last
-- trimmed event as a `progress` snapshot (its counts are then current enough to continue from).
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  job     hash: the job record
--   KEYS[2]  events  list: event JSON, oldest first; its first item has id `evfirst`
--
-- ARGV:
--   ARGV[1]  after (integer): the last event id the reader has, 0 for all
--   ARGV[2]  limit (integer): most events to return
--
-- Returns '~[<event JSON>...]', '~[]' when the job does not exist.
--
-- Job hash fields (keys.ts):
--   evfirst  (integer)  id of the first event still in KEYS[2]; 0 before the first event
--   trimmed  (JSON)     the last event trimmed off KEYS[2]
--
--- @include "includes/job"

local K = { job = KEYS[1], events = KEYS[2] }
local after, limit = tonumber(ARGV[1]), tonumber(ARGV[2])

if redis.call('EXISTS', K.job) == 0 then return '~[]' end
local out = {}
local first = num(field(K, 'evfirst'))
local trimmed = field(K, 'trimmed')
local from = after
if not missing(trimmed) and first > 0 and after < first - 1 then
  out[1] = string.gsub(trimmed, '"type":"[^"]*"', '"type":"progress"', 1)
  from = first - 1
end
if first == 0 then return '~[]' end
local start = from - first + 1
if start < 0 then start = 0 end
local want = limit - #out
if want > 0 then
  local rows = redis.call('LRANGE', K.events, digits(start), digits(start + want - 1))
  for x = 1, #rows do out[#out + 1] = rows[x] end
end
return '~[' .. table.concat(out, ',') .. ']'
