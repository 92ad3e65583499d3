-- Stores deliveries and the job's next pump state, only while its stored state's seq is the
-- expected one (a compare-and-set: of two enqueues from one state, one wins).
--
-- KEYS (adapters/kv/keys.ts):
--   KEYS[1]  job       hash: this job's registration (WEBHOOK_JOB_FIELDS)
--   KEYS[2]  jobs      sorted set: registered job ids by registration number
--   KEYS[3]  seq       string: the registration and delivery number counter
--   KEYS[4]  ids       hash: delivery id -> delivery number
--   KEYS[5]  dprefix   prefix of the delivery hashes; a delivery is KEYS[5] .. number. Exception to
--                      "every key in KEYS": the numbers are made here.
--   KEYS[6]  due       sorted set: pending deliveries not leased, by nextAttemptAt
--   KEYS[7]  list      sorted set: this job's delivery numbers in enqueue order
--
-- ARGV:
--   ARGV[1]  job id
--   ARGV[2]  expected seq (digits), or '' for no state stored yet
--   ARGV[3]  next seq (digits)
--   ARGV[4]  next state (JSON)
--   ARGV[5]  '1' when the next state is done (the registration ends), else '0'
--   then per delivery, 3 values: id, doc (JSON of the delivery as enqueued), createdAt (ms epoch)
--
-- Returns '~false' (not registered, or the state moved on: nothing stored) or '~true'.
-- An id that exists already (this call included) is left as it is.

local K = { reg = KEYS[1], jobs = KEYS[2], seq = KEYS[3], ids = KEYS[4], dprefix = KEYS[5], due = KEYS[6], list = KEYS[7] }
local jobId, expected, nextSeq, nextState, done = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

if redis.call('EXISTS', K.reg) == 0 then return '~false' end
local stored = redis.call('HGET', K.reg, 'seq')
if stored == false or stored == nil or type(stored) == 'userdata' then stored = '' end
if stored ~= expected then return '~false' end

for i = 6, #ARGV, 3 do
  local id, doc, createdAt = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HEXISTS', K.ids, id) == 0 then
    local n = redis.call('INCR', K.seq)
    local member = string.format('%015d', n)
    redis.call('HSET', K.ids, id, member)
    redis.call('HSET', K.dprefix .. member, 'id', id, 'doc', doc, 'st', 'pending', 'att', 0, 'nx', createdAt)
    redis.call('ZADD', K.due, createdAt, member)
    redis.call('ZADD', K.list, n, member)
  end
end
if done == '1' then
  redis.call('DEL', K.reg)
  redis.call('ZREM', K.jobs, jobId)
else
  redis.call('HSET', K.reg, 'seq', nextSeq, 'state', nextState)
end
return '~true'
