-- The job's progress events. Uses K.job (fields below), K.events (the list of event JSON, oldest
-- first) and K.push (the pub/sub channel that wakes subscribers).
--
-- Job hash fields (keys.ts):
--   id        (string)   the job id
--   seq       (integer)  the last event id given; ids are 1, 2, 3, ... per job
--   evfirst   (integer)  the id of the first event still in K.events; 0 before the first event
--   trimmed   (JSON)     the last event trimmed off K.events (a late reader's progress snapshot)
--
--- @include "job"

-- Appends an event and returns its JSON. urlJson and errorJson are JSON fragments or '' (left
-- out). Keeps the newest maxEvents events, trimming in batches of slack (maxEvents / 8, at least 16).
local function appendEvent(K, kind, at, urlJson, errorJson, maxEvents)
  local id = redis.call('HINCRBY', K.job, 'seq', 1)
  local jobId = field(K, 'id')
  local e = '{"id":"' .. digits(id) .. '","jobId":' .. jsonString(jobId) .. ',"type":"' .. kind .. '","at":' .. jsonString(at) .. ',"counts":' .. counts(K)
  if urlJson ~= '' then e = e .. ',"url":' .. urlJson end
  if errorJson ~= '' then e = e .. ',"error":' .. errorJson end
  e = e .. '}'
  redis.call('RPUSH', K.events, e)
  -- Wakes subscribers that listen (pub/sub); a channel nobody listens to costs nothing.
  redis.call('PUBLISH', K.push, digits(id))
  local first = num(field(K, 'evfirst'))
  if first == 0 then first = 1; redis.call('HSET', K.job, 'evfirst', '1') end
  local slack = math.max(16, math.floor(maxEvents / 8))
  local len = id - first + 1
  if len > maxEvents + slack then
    local drop = len - maxEvents
    local last = redis.call('LINDEX', K.events, digits(drop - 1))
    redis.call('LTRIM', K.events, digits(drop), '-1')
    redis.call('HSET', K.job, 'evfirst', digits(first + drop), 'trimmed', last)
  end
  return e
end
