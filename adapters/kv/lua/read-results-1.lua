-- Reads a page of results.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  results  list: page result JSON, in completion order
--
-- ARGV:
--   ARGV[1]  start (integer): index of the first result, 0-based
--   ARGV[2]  count (integer): most results to return
--
-- Returns '~[<PageResult JSON>...]' ('~[]' past the end or when the job does not exist).
--
--- @include "includes/values"

local resultsKey = KEYS[1]
local start, count = ARGV[1], tonumber(ARGV[2])

local rows = redis.call('LRANGE', resultsKey, start, digits(tonumber(start) + count - 1))
local out = {}
for x = 1, #rows do out[x] = rows[x] end
return '~[' .. table.concat(out, ',') .. ']'
