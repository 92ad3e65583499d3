-- The job hash: fields, counts and the job's JSON. Uses K.job (the job hash, see keys.ts).
--
-- Fields read here (all in keys.ts):
--   status                             queued | running | completed | failed | cancelled
--   disc queued inprog succ fail skip  counts (integers): discovered, queued, in progress,
--                                      succeeded, failed, skipped
--   doc                                JSON {id, url, options, createdAt, metadata}, spliced into the job's JSON
--   started finished                   ISO times ('' or missing: null)
--   error                              JSON error of a failed job ('' or missing: null)
--
--- @include "values"

-- One field of the job hash (false when missing).
local function field(K, name) return redis.call('HGET', K.job, name) end

-- The job's counts as JSON.
local function counts(K)
  local v = redis.call('HMGET', K.job, 'disc', 'queued', 'inprog', 'succ', 'fail', 'skip')
  return '{"discovered":' .. num(v[1]) .. ',"queued":' .. num(v[2]) .. ',"inProgress":' .. num(v[3]) ..
    ',"succeeded":' .. num(v[4]) .. ',"failed":' .. num(v[5]) .. ',"skipped":' .. num(v[6]) .. '}'
end

-- The job as JSON (the Job type), or null when it does not exist.
local function jobJson(K)
  local v = redis.call('HMGET', K.job, 'doc', 'status', 'started', 'finished', 'error')
  if missing(v[1]) then return 'null' end
  local function s(x) if missing(x) or x == '' then return 'null' end return jsonString(x) end
  return '{"status":' .. jsonString(v[2]) .. ',"counts":' .. counts(K) .. ',"startedAt":' .. s(v[3]) ..
    ',"finishedAt":' .. s(v[4]) .. ',"error":' .. jsonOrNull(v[5]) .. ',' .. string.sub(v[1], 2)
end

-- Whether the job may still hand out URLs (queued or running).
local function isActive(K) local s = field(K, 'status') return s == 'queued' or s == 'running' end
