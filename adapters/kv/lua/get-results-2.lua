-- Reads the results of some URLs of a job (getResults: recrawls), through the index of results by URL.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  results   list: page result JSON, in completion order
--   KEYS[2]  resultIx  hash: result URL -> its index in the results list
--
-- ARGV: the URLs (at most 1,000).
--
-- Returns '~[<PageResult JSON or null>...]', one per URL in order (null where the job has no
-- result for it, or does not exist). LINDEX walks the list's nodes (about 8 kB of results each)
-- from its nearer end, so a lookup in a job of a million results costs about a millisecond.

local resultsKey, indexKey = KEYS[1], KEYS[2]
local out = {}
if #ARGV > 0 then
  local at = redis.call('HMGET', indexKey, unpack(ARGV))
  for x = 1, #ARGV do
    local json = nil
    if at[x] then json = redis.call('LINDEX', resultsKey, at[x]) end
    if json then out[x] = json else out[x] = 'null' end
  end
end
return '~[' .. table.concat(out, ',') .. ']'
