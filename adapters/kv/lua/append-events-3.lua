-- Appends events the caller made (job:started by a processor, page events of a plain job, ...).
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  job     hash: the job record (seq, evfirst, trimmed, id: includes/events.lua)
--   KEYS[2]  events  list: event JSON, oldest first
--   KEYS[3]  push    pub/sub channel (not a key) that wakes subscribers
--
-- ARGV:
--   ARGV[1]  maxEvents (integer): events kept per job
--   then groups of 4, from ARGV[2], one per event: type, at (ISO time), url (JSON string or ''),
--            error (JSON or '')
--
-- Returns '~null' when the job does not exist, else '~[<event JSON>...]' in order.
--
--- @include "includes/events"

local K = { job = KEYS[1], events = KEYS[2], push = KEYS[3] }
local maxEvents = tonumber(ARGV[1])

if redis.call('EXISTS', K.job) == 0 then return '~null' end
local out = {}
local i = 2
while ARGV[i] do
  out[#out + 1] = appendEvent(K, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], maxEvents)
  i = i + 4
end
return '~[' .. table.concat(out, ',') .. ']'
