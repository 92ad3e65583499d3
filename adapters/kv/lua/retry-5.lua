-- Ends a lease for a retry: the URL waits in `delayed` until its backoff ends (a claim then moves it
-- to the front of its host's ready list). The host's delay starts (the fetch was made). Wakes a
-- parked job: the retry may be due before its park ends.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  job      hash: the job record
--   KEYS[2]  urls     hash: URL key -> URL entry
--   KEYS[3]  hosts    hash: host -> host state
--   KEYS[4]  leased   sorted set: leased URL keys by lease end (ms epoch)
--   KEYS[5]  delayed  sorted set: URL keys waiting for a retry backoff, by its end (ms epoch)
--
-- ARGV:
--   ARGV[1]  URL key of the lease
--   ARGV[2]  lease token
--   ARGV[3]  notBefore (ms epoch): the backoff end (at least 1)
--   ARGV[4]  now (ms epoch)
--
-- Returns '~{"ok":false}' when the lease is no longer live, else '~{"ok":true[,"wake":<pv>]}'.
--
-- Job hash fields (keys.ts): queued (integer, +1); inprog, phd (includes/lease.lua); pk, pv
-- (includes/park.lua).
--
--- @include "includes/lease"
--- @include "includes/park"

local K = { job = KEYS[1], urls = KEYS[2], hosts = KEYS[3], leased = KEYS[4], delayed = KEYS[5] }
local key, token, notBefore, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local e = currentLease(K, key, token)
if e == nil then return '~{"ok":false}' end
endLease(K, key, e, now, true)
e.state = 'p'; e.token = ''; e.notBefore = math.max(notBefore, 1)
redis.call('HSET', K.urls, key, encodeEntry(e))
redis.call('ZADD', K.delayed, digits(e.notBefore), key)
redis.call('HINCRBY', K.job, 'queued', 1)
return '~{"ok":true' .. wakeUp(K) .. '}'
