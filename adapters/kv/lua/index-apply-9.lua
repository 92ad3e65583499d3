-- Applies index updates from claims and completes, in one round trip:
--   touch   a job that gave URLs moves to the back of the active line (if active)
--   park    the job moves from active to parked (and to waits when it waits on the clock, which
--           also takes it out of `admitted`: a job waiting on a delay or backoff is not counted)
--   wake    the job moves back to active
--   remove  the job is no longer active: it leaves the index's sets (not `jobs`), freeing its
--           admission place if it held one
--   finish  the job finished or was cancelled: as remove, and it joins `finished` at its finish
--           time if it is still in `jobs` (a late finish of a deleted job adds nothing)
--   start   a claim of the job alone started it: out of the admission line into active, uncounted
--   requeue admission took a job whose data is not written yet (createJob indexes a job first):
--           back to the head of the line, out of `active` and `admitted`; after 20 such tries its
--           create is taken to have died between its two steps, and the job leaves the index
-- park and wake apply only when the job is still indexed, out of the line, and the version is newer
-- than the last one applied, so a late write never undoes a newer decision.
--
-- KEYS (adapters/kv/keys.ts; the index keys share the hash tag {index}):
--   KEYS[1]  active  sorted set: job ids claims visit, by last claim or wake (ms epoch)
--   KEYS[2]  parked  sorted set: parked job ids by park end (ms epoch)
--   KEYS[3]  waits   sorted set: parked job ids by the end of their first wait on the clock (ms epoch)
--   KEYS[4]  state   key prefix of the per-job index states; a job's is KEYS[4] .. id. Exception to
--                    "every key in KEYS": one call carries a variable number of jobs.
--   KEYS[5]  line    sorted set: queued job ids awaiting admission
--   KEYS[6]  admitted  set: running job ids started by admission
--   KEYS[7]  finished  sorted set: finished job ids by finish time (ms epoch), for the retention sweep
--   KEYS[8]  jobs      sorted set: every job id by ordinal
--   KEYS[9]  requeues  hash: job id -> how many times admission found it without data
--
-- Index state, a string `<version>|<where>|<in waits>`: the newest park/wake version applied
-- (integer), `q` (in line), `a` (in active) or `p` (in parked), and '1' when in waits, else '0'. Jobs indexed by
-- an older version have none: their place is read from the sets.
--
-- ARGV: groups of 5, one per update: op (touch | park | wake | remove | finish | start | requeue), job id,
-- version (integer, the job's `pv`), score (ms epoch: the new place in active or parked; for finish,
-- the finish time), wait (ms epoch, 0 if none).
--
-- Returns how many jobs parked on the clock gave up their admission places, 0 when no queued job
-- waits in line.
--
--- @include "includes/values"

local activeKey, parkedKey, waitsKey, statePrefix, lineKey, admittedKey, finishedKey, jobsKey, requeuesKey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]

local i, freed = 1, 0
while ARGV[i] do
  local op, id, v, score, wait = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], tonumber(ARGV[i + 4])
  local state = statePrefix .. id
  if op == 'touch' then
    redis.call('ZADD', activeKey, 'XX', score, id)
  elseif op == 'remove' or op == 'finish' then
    redis.call('ZREM', activeKey, id)
    redis.call('ZREM', parkedKey, id)
    redis.call('ZREM', waitsKey, id)
    redis.call('ZREM', lineKey, id)
    redis.call('SREM', admittedKey, id)
    redis.call('HDEL', requeuesKey, id)
    redis.call('DEL', state)
    if op == 'finish' and not missing(redis.call('ZSCORE', jobsKey, id)) then redis.call('ZADD', finishedKey, score, id) end
  elseif op == 'requeue' then
    if not missing(redis.call('ZSCORE', activeKey, id)) and not missing(redis.call('ZSCORE', jobsKey, id)) then
      redis.call('ZREM', activeKey, id)
      redis.call('SREM', admittedKey, id)
      if redis.call('HINCRBY', requeuesKey, id, 1) > 20 then
        redis.call('HDEL', requeuesKey, id)
        redis.call('ZREM', jobsKey, id)
        redis.call('DEL', state)
      else
        local head = redis.call('ZRANGE', lineKey, 0, 0, 'WITHSCORES')
        local at = 0
        if #head >= 2 then at = tonumber(head[2]) - 1 end
        redis.call('ZADD', lineKey, digits(at), id)
        redis.call('SET', state, '0|q|0')
      end
    end
  elseif op == 'start' then
    if redis.call('ZREM', lineKey, id) == 1 then
      redis.call('ZADD', activeKey, score, id)
      redis.call('SET', state, '0|a|0')
    end
  else
    local seen, where, waits = nil, nil, nil
    local cur = redis.call('GET', state)
    if not missing(cur) then
      local a, b, c = string.match(cur, '^(%d+)|(%a)|(%d)$')
      seen, where, waits = tonumber(a), b, c
    elseif not missing(redis.call('ZSCORE', activeKey, id)) then
      seen, where, waits = 0, 'a', '1'
    elseif not missing(redis.call('ZSCORE', parkedKey, id)) then
      seen, where, waits = 0, 'p', '1'
    end
    -- Not indexed (finished, cancelled, or unknown), or still in line: nothing to do.
    if seen ~= nil and where ~= 'q' and v > seen then
      if op == 'park' then
        if where == 'a' then redis.call('ZREM', activeKey, id) end
        redis.call('ZADD', parkedKey, score, id)
        where = 'p'
        if wait > 0 then
          redis.call('ZADD', waitsKey, wait, id)
          -- Waiting on the clock, it gives up its admission place and runs on uncounted.
          freed = freed + redis.call('SREM', admittedKey, id)
          waits = '1'
        elseif waits == '1' then
          redis.call('ZREM', waitsKey, id)
          waits = '0'
        end
      else
        if where == 'p' then redis.call('ZREM', parkedKey, id) end
        if waits == '1' then redis.call('ZREM', waitsKey, id) end
        redis.call('ZADD', activeKey, score, id)
        where, waits = 'a', '0'
      end
      redis.call('SET', state, ARGV[i + 2] .. '|' .. where .. '|' .. waits)
    end
  end
  i = i + 5
end
-- Places given up while queued jobs wait: the claim asks for the next claim at once.
if freed > 0 and redis.call('ZCARD', lineKey) == 0 then freed = 0 end
return freed
