-- Reads a job.
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  job  hash: the job record (fields: see includes/job.lua)
--
-- ARGV: none.
--
-- Returns '~<Job JSON>', or '~null' when the job does not exist.
--
--- @include "includes/job"

local K = { job = KEYS[1] }
return '~' .. jobJson(K)
