-- Stores a robots.txt record and its Crawl-delay as the host's delay (a new host joins the list);
-- nothing for a job that does not exist.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  hosts     hash: host -> host state (`cd`: Crawl-delay in ms)
--   KEYS[2]  hostList  list: hosts in first-seen order
--   KEYS[3]  robots    hash: origin -> robots.txt record JSON
--   KEYS[4]  job       hash: the job (only its existence is read)
--
-- ARGV:
--   ARGV[1]  origin (scheme://host[:port])
--   ARGV[2]  record JSON (RobotsRecord)
--   ARGV[3]  host (the origin's hostname)
--   ARGV[4]  crawlDelayMs (ms), 0 when none
--
-- Returns 1, or 0 when the job does not exist.
--
--- @include "includes/entries"

local K = { hosts = KEYS[1], hostList = KEYS[2], robots = KEYS[3], job = KEYS[4] }
local origin, record, host, crawlDelay = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

if redis.call('EXISTS', K.job) == 0 then return 0 end
redis.call('HSET', K.robots, origin, record)
local h = decodeHost(redis.call('HGET', K.hosts, host))
if redis.call('HEXISTS', K.hosts, host) == 0 then redis.call('RPUSH', K.hostList, host) end
h.crawlDelay = crawlDelay
redis.call('HSET', K.hosts, host, encodeHost(h))
return 1
