-- Completes several leases of one job in one call (group commit): each item exactly as
-- complete-13.lua completes it (completeOne() in includes/complete.lua), in the order given, so an
-- item sees everything the items before it stored. A stale lease gets ok false and changes
-- nothing; the others are stored. One script per job: every key has the job's hash tag, so the
-- call stays in one Redis Cluster slot.
--
-- KEYS (adapters/kv/keys.ts), as complete-13.lua's:
--   KEYS[1]   job       hash: the job record
--   KEYS[2]   urls      hash: URL key -> URL entry
--   KEYS[3]   ready     key prefix of the per-host ready lists (list of URL keys); a host's list is
--                       KEYS[3] .. host. Exception to "every key in KEYS": a spare's host is read here.
--   KEYS[4]   hosts     hash: host -> host state
--   KEYS[5]   hostList  list: hosts in first-seen order
--   KEYS[6]   leased    sorted set: leased URL keys by lease end (ms epoch)
--   KEYS[7]   delayed   sorted set: URL keys waiting for a retry backoff (only expired here)
--   KEYS[8]   spares    list: links kept past maxPages, each '1' or '0' (robots.txt unknown or not)
--                       followed by the URL key; their entries are in state r
--   KEYS[9]   unsure    set: admitted, unfinished URL keys whose robots.txt was unknown
--   KEYS[10]  events    list: event JSON, oldest first
--   KEYS[11]  push      pub/sub channel (not a key) that wakes subscribers
--   KEYS[12]  results   list: page result JSON, in completion order
--   KEYS[13]  robots    hash: robots.txt records (only expired here)
--
-- ARGV: flat, a count then each item's fields (no cjson: ioredis-mock has none, and reading ARGV
-- by index costs nothing to decode):
--   ARGV[1]   maxEvents (integer): events kept per job
--   ARGV[2]   ttl (seconds): expiry of the job when an item finishes it, 0 keeps it
--   ARGV[3]   number of items (N)
--   then N items, the first from ARGV[4], each:
--     10 values: URL key of the lease, lease token, ok ('1' when the page succeeded), skipped ('1'
--                when it failed with a skip code), page result JSON, error JSON or '', now (ms
--                epoch), now (ISO time), number of links (L), number of disallowed links (D)
--     L groups of 5: key, url, depth (integer), host, unsure ('1' when its robots.txt was unknown)
--     D groups of 6: key, url, depth, host, result JSON, error JSON of a link robots.txt disallows
-- ARGV that does not add up to N items is an error before anything is written.
--
-- Returns '~[<item>,...]', one reply per item in order, each as complete-13.lua's without the `~`:
-- '{"ok":false,"admitted":0,"events":[]}' when its lease is no longer live, else
-- '{"ok":true,"admitted":<n>,"finished":<bool>[,"wake":<pv>],"events":[...]}'.
--
-- Job hash fields (keys.ts): see includes/complete.lua.
--
--- @include "includes/complete"

local K = {
  job = KEYS[1], urls = KEYS[2], ready = KEYS[3], hosts = KEYS[4], hostList = KEYS[5], leased = KEYS[6], delayed = KEYS[7],
  spares = KEYS[8], unsure = KEYS[9], events = KEYS[10], push = KEYS[11], results = KEYS[12], robots = KEYS[13],
}
local maxEvents, ttl, count = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]) or -1

-- Where each item starts: checked against #ARGV before the first write (a script is not rolled back).
local starts = {}
local at = 4
for n = 1, count do
  local nlinks, nskips = tonumber(ARGV[at + 8]), tonumber(ARGV[at + 9])
  if nlinks == nil or nskips == nil or nlinks < 0 or nskips < 0 then break end
  starts[n] = at
  at = at + 10 + nlinks * 5 + nskips * 6
end
if #starts ~= count or at ~= #ARGV + 1 then error('complete-many: ARGV does not hold ' .. digits(count) .. ' items') end

local replies = {}
for n = 1, count do
  local a = starts[n]
  local nlinks, nskips = tonumber(ARGV[a + 8]), tonumber(ARGV[a + 9])
  local skipsAt = a + 10 + nlinks * 5
  replies[n] = completeOne(K, ARGV, {
    key = ARGV[a], token = ARGV[a + 1], ok = ARGV[a + 2] == '1', skipped = ARGV[a + 3] == '1', resultJson = ARGV[a + 4], errorJson = ARGV[a + 5],
    now = tonumber(ARGV[a + 6]), nowIso = ARGV[a + 7], maxEvents = maxEvents, ttl = ttl,
    nlinks = nlinks, linksAt = a + 10, skipsAt = skipsAt, skipsEnd = skipsAt + nskips * 6,
  })
end
return '~[' .. table.concat(replies, ',') .. ']'
