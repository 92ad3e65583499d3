-- Gives a lease back unused (a processor stopping before the fetch): the URL goes to the front of
-- its host's ready list, its attempt is not counted and the host's delay does not start. Wakes a
-- parked job: the URL is ready at once.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  job     hash: the job record
--   KEYS[2]  urls    hash: URL key -> URL entry
--   KEYS[3]  ready   key prefix of the per-host ready lists (list of URL keys); a host's list is
--                    KEYS[3] .. host. Exception to "every key in KEYS": the host is the one stored
--                    in the URL entry read here.
--   KEYS[4]  hosts   hash: host -> host state
--   KEYS[5]  leased  sorted set: leased URL keys by lease end (ms epoch)
--
-- ARGV:
--   ARGV[1]  URL key of the lease
--   ARGV[2]  lease token
--
-- Returns '~{"ok":false}' when the lease is no longer live, else '~{"ok":true[,"wake":<pv>]}'.
--
-- Job hash fields (keys.ts): queued (integer, +1); inprog, phd (includes/lease.lua); pk, pv
-- (includes/park.lua).
--
--- @include "includes/lease"
--- @include "includes/park"

local K = { job = KEYS[1], urls = KEYS[2], ready = KEYS[3], hosts = KEYS[4], leased = KEYS[5] }
local key, token = ARGV[1], ARGV[2]

local e = currentLease(K, key, token)
if e == nil then return '~{"ok":false}' end
endLease(K, key, e, 0, false)
e.state = 'p'; e.token = ''; e.attempts = math.max(0, e.attempts - 1); e.notBefore = 0
redis.call('HSET', K.urls, key, encodeEntry(e))
redis.call('LPUSH', K.ready .. e.host, key)
redis.call('HINCRBY', K.job, 'queued', 1)
return '~{"ok":true' .. wakeUp(K) .. '}'
