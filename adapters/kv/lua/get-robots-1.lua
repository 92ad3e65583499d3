-- Reads a stored robots.txt record.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  robots  hash: origin -> robots.txt record JSON
--
-- ARGV:
--   ARGV[1]  origin (scheme://host[:port])
--
-- Returns '~<RobotsRecord JSON>', or '~null' when none is stored.
--
--- @include "includes/values"

local robotsKey = KEYS[1]
local origin = ARGV[1]

local v = redis.call('HGET', robotsKey, origin)
if missing(v) then return '~null' end
return '~' .. v
