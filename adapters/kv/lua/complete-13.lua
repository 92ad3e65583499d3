-- Completes a lease: records the page result, admits its links within maxPages, records links
-- robots.txt disallows as skipped, appends the page event, and finishes the job (completed, or
-- failed when no page succeeded) once nothing is queued or in progress. The work is
-- completeOne() in includes/complete.lua (shared with complete-many-13.lua), where the maxPages
-- accounting is described.
--
-- KEYS (adapters/kv/keys.ts):
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
--   KEYS[9]   unsure    set: admitted, unfinished URL keys whose robots.txt was unknown (they may
--                       yet be refunded)
--   KEYS[10]  events    list: event JSON, oldest first
--   KEYS[11]  push      pub/sub channel (not a key) that wakes subscribers
--   KEYS[12]  results   list: page result JSON, in completion order
--   KEYS[13]  robots    hash: robots.txt records (only expired here)
--
-- ARGV:
--   ARGV[1]   URL key of the lease
--   ARGV[2]   lease token
--   ARGV[3]   ok: '1' when the page succeeded
--   ARGV[4]   skipped: '1' when it failed with a skip code (robots.txt, not HTML, ...)
--   ARGV[5]   page result JSON
--   ARGV[6]   error JSON, or '' when ok
--   ARGV[7]   now (ms epoch)
--   ARGV[8]   now (ISO time)
--   ARGV[9]   maxEvents (integer): events kept per job
--   ARGV[10]  ttl (seconds): expiry of a job this finishes, 0 keeps it
--   ARGV[11]  number of links (L)
--   then L groups of 5, from ARGV[12]: key, url, depth (integer), host, unsure ('1' when its
--            robots.txt was unknown, else '0')
--   then groups of 6, to the end: key, url, depth, host, result JSON, error JSON of a link
--            robots.txt disallows (skipped at once)
--
-- Returns '~{"ok":false,"admitted":0,"events":[]}' when the lease is no longer live, else
-- '~{"ok":true,"admitted":<n>,"finished":<bool>[,"wake":<pv>],"events":[...]}'.
--
-- Job hash fields (keys.ts): see includes/complete.lua.
--
--- @include "includes/complete"

local K = {
  job = KEYS[1], urls = KEYS[2], ready = KEYS[3], hosts = KEYS[4], hostList = KEYS[5], leased = KEYS[6], delayed = KEYS[7],
  spares = KEYS[8], unsure = KEYS[9], events = KEYS[10], push = KEYS[11], results = KEYS[12], robots = KEYS[13],
}
local nlinks = tonumber(ARGV[11])
return '~' .. completeOne(K, ARGV, {
  key = ARGV[1], token = ARGV[2], ok = ARGV[3] == '1', skipped = ARGV[4] == '1', resultJson = ARGV[5], errorJson = ARGV[6],
  now = tonumber(ARGV[7]), nowIso = ARGV[8], maxEvents = tonumber(ARGV[9]), ttl = tonumber(ARGV[10]),
  nlinks = nlinks, linksAt = 12, skipsAt = 12 + nlinks * 5, skipsEnd = #ARGV + 1,
})
