/**
 * Lua scripts of the KV adapter. Each storage operation that reads and writes is one script, so it
 * is atomic on Redis, Upstash and Vercel KV alike. No cjson and no Streams (ioredis-mock has
 * neither): JSON is assembled by concatenation from fragments encoded by the caller, and replies
 * start with `~` so that Upstash's automatic JSON parsing leaves them as strings.
 *
 * All keys of a job share the hash tag `{job:<id>}`; KEYS[1] is the job's hash, and the job's other
 * keys are derived from it by replacing the trailing `job`.
 */

const PRELUDE = `
local J = string.sub(KEYS[1], 1, -4)
-- ioredis-mock returns missing HMGET fields as userdata and arrays as userdata (indexable, with #).
local function missing(v) return v == false or v == nil or type(v) == 'userdata' end
local function num(v) if missing(v) then return 0 end return tonumber(v) end
local function fmt(n) return string.format('%.0f', n) end
local function jstr(s)
  return '"' .. string.gsub(s, '[%c"\\\\]', function(c)
    if c == '"' then return '\\\\"' elseif c == '\\\\' then return '\\\\\\\\' end
    return string.format('\\\\u%04x', string.byte(c))
  end) .. '"'
end
local function nz(v) if missing(v) or v == '' then return 'null' end return v end
local function dec(s)
  local st, tok, att, lu, nb, dp, host, url = string.match(s, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  return { st = st, tok = tok, att = tonumber(att), lu = tonumber(lu), nb = tonumber(nb), dp = tonumber(dp), host = host, url = url }
end
local function enc(e)
  return e.st .. '|' .. e.tok .. '|' .. fmt(e.att) .. '|' .. fmt(e.lu) .. '|' .. fmt(e.nb) .. '|' .. fmt(e.dp) .. '|' .. e.host .. '|' .. e.url
end
local function hdec(s)
  if missing(s) then return { inf = 0, nxt = 0, cd = 0, pick = 0 } end
  local a, b, c, d = string.match(s, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  return { inf = tonumber(a), nxt = tonumber(b), cd = tonumber(c), pick = tonumber(d) }
end
local function henc(h) return fmt(h.inf) .. '|' .. fmt(h.nxt) .. '|' .. fmt(h.cd) .. '|' .. fmt(h.pick) end
local function getf(f) return redis.call('HGET', KEYS[1], f) end
local function counts()
  local v = redis.call('HMGET', KEYS[1], 'disc', 'queued', 'inprog', 'succ', 'fail', 'skip')
  return '{"discovered":' .. num(v[1]) .. ',"queued":' .. num(v[2]) .. ',"inProgress":' .. num(v[3]) ..
    ',"succeeded":' .. num(v[4]) .. ',"failed":' .. num(v[5]) .. ',"skipped":' .. num(v[6]) .. '}'
end
local function jobjson()
  local v = redis.call('HMGET', KEYS[1], 'doc', 'status', 'started', 'finished', 'error')
  if missing(v[1]) then return 'null' end
  local function s(x) if missing(x) or x == '' then return 'null' end return jstr(x) end
  return '{"status":' .. jstr(v[2]) .. ',"counts":' .. counts() .. ',"startedAt":' .. s(v[3]) ..
    ',"finishedAt":' .. s(v[4]) .. ',"error":' .. nz(v[5]) .. ',' .. string.sub(v[1], 2)
end
-- Appends an event (url and error are JSON fragments or ''); trims the log; returns its JSON.
local function event(typ, at, urljson, errjson, maxev)
  local id = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  local jid = getf('id')
  local e = '{"id":"' .. fmt(id) .. '","jobId":' .. jstr(jid) .. ',"type":"' .. typ .. '","at":' .. jstr(at) .. ',"counts":' .. counts()
  if urljson ~= '' then e = e .. ',"url":' .. urljson end
  if errjson ~= '' then e = e .. ',"error":' .. errjson end
  e = e .. '}'
  redis.call('RPUSH', J .. 'ev', e)
  -- Wakes subscribers that listen (pub/sub); a channel nobody listens to costs nothing.
  redis.call('PUBLISH', J .. 'push', fmt(id))
  local first = num(getf('evfirst'))
  if first == 0 then first = 1; redis.call('HSET', KEYS[1], 'evfirst', '1') end
  local slack = math.max(16, math.floor(maxev / 8))
  local len = id - first + 1
  if len > maxev + slack then
    local drop = len - maxev
    local last = redis.call('LINDEX', J .. 'ev', fmt(drop - 1))
    redis.call('LTRIM', J .. 'ev', fmt(drop), '-1')
    redis.call('HSET', KEYS[1], 'evfirst', fmt(first + drop), 'trimmed', last)
  end
  return e
end
local function active() local s = getf('status') return s == 'queued' or s == 'running' end
-- Unparks a parked job; returns the reply fragment that tells the index (with the new version).
local function wakeup()
  if getf('pk') ~= '1' then return '' end
  redis.call('HSET', KEYS[1], 'pk', '0')
  return ',"wake":' .. fmt(redis.call('HINCRBY', KEYS[1], 'pv', 1))
end
-- A finished job's keys expire after ttl seconds (0: kept).
local function expire(ttl)
  if ttl <= 0 then return end
  local names = { 'job', 'u', 'ev', 'res', 'robots', 'hosts', 'hostlist', 'leased', 'delayed', 'spares', 'unsure' }
  for x = 1, #names do redis.call('EXPIRE', J .. names[x], fmt(ttl)) end
end
`;

const script = (body: string) => `${PRELUDE}\n${body}`;

/** Parked until woken: a time no clock reaches. */
export const PARK_FOREVER = 9_000_000_000_000_000;

/** ARGV: doc, url, key, host, maxPages, perHostConcurrency, perHostDelayMs, createdAt, maxEvents, id, ordinal */
export const CREATE = script(`
if redis.call('EXISTS', KEYS[1]) == 1 then return '~exists' end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'id', ARGV[10], 'status', 'queued', 'disc', 1, 'queued', 1, 'inprog', 0, 'succ', 0, 'fail', 0, 'skip', 0,
  'seq', 0, 'evfirst', 0, 'maxp', ARGV[5], 'phc', ARGV[6], 'phd', ARGV[7], 'ordinal', ARGV[11], 'hc', 0)
redis.call('HSET', J .. 'u', ARGV[3], enc({ st = 'p', tok = '', att = 0, lu = 0, nb = 0, dp = 0, host = ARGV[4], url = ARGV[2] }))
redis.call('RPUSH', J .. 'r:' .. ARGV[4], ARGV[3])
redis.call('HSET', J .. 'hosts', ARGV[4], henc(hdec(false)))
redis.call('RPUSH', J .. 'hostlist', ARGV[4])
local e = event('job:created', ARGV[8], jstr(ARGV[2]), '', tonumber(ARGV[9]))
return '~{"job":' .. jobjson() .. ',"events":[' .. e .. ']}'
`);

export const READ_JOB = script(`return '~' .. jobjson()`);

/**
 * ARGV: limit, leaseMs, now, nowIso, maxEvents, tokenBase, force.
 *
 * A claim that finds nothing ready parks the job: fields `pk` (1 while parked), `pat` (parked
 * until: the earliest end of a host delay, a retry backoff or a live lease; a far sentinel when
 * only a wake can help), `pwt` (the earliest end of a wait on the clock alone, 0 if none) and the
 * version `pv`, bumped on every park and wake. The reply then carries `park` (or `wake` when a
 * parked job gave URLs) for the index, which applies only versions newer than it has seen.
 * `force`: 1 on a claim's first visit of the job (it may park it, and a park is always reported),
 * 0 on a claim of this job alone (it visits the job anyway, so it never parks it: a park would only
 * cost a wake on the next complete), -1 on a second visit of a job that already gave URLs in this
 * claim (not parked).
 */
export const CLAIM = script(`
local limit, leasems, now, maxev = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
if not active() then return '~{"leases":[],"events":[],"nextReadyAt":null,"inactive":true}' end
local leases, events, took, fresh, n = {}, {}, 0, 0, 0
local function lease(key, e, wasPending)
  n = n + 1
  e.st = 'l'; e.tok = ARGV[6] .. ':' .. n; e.att = e.att + 1; e.lu = now + leasems
  redis.call('HSET', J .. 'u', key, enc(e))
  redis.call('ZADD', J .. 'leased', fmt(e.lu), key)
  leases[#leases + 1] = '{"jobId":' .. jstr(getf('id')) .. ',"url":' .. jstr(e.url) .. ',"key":' .. jstr(key) .. ',"depth":' .. fmt(e.dp) ..
    ',"host":' .. jstr(e.host) .. ',"token":' .. jstr(e.tok) .. ',"attempts":' .. fmt(e.att) .. ',"expiresAt":' .. fmt(e.lu) .. '}'
  took = took + 1
  if wasPending then fresh = fresh + 1 end
end
-- Expired leases: the processor that held them is gone.
local expired = redis.call('ZRANGEBYSCORE', J .. 'leased', '-inf', fmt(now), 'LIMIT', '0', fmt(limit))
for x = 1, #expired do
  local key = expired[x]
  local e = dec(redis.call('HGET', J .. 'u', key))
  if e.st == 'l' then lease(key, e, false) end
end
-- Retries whose backoff has passed go to the front of their host's queue.
local due = redis.call('ZRANGEBYSCORE', J .. 'delayed', '-inf', fmt(now))
for x = 1, #due do
  local key = due[x]
  redis.call('ZREM', J .. 'delayed', key)
  local e = dec(redis.call('HGET', J .. 'u', key))
  if e.st == 'p' then
    e.nb = 0
    redis.call('HSET', J .. 'u', key, enc(e))
    redis.call('LPUSH', J .. 'r:' .. e.host, key)
  end
end
local phc, phd = num(getf('phc')), num(getf('phd'))
local hosts = redis.call('LRANGE', J .. 'hostlist', '0', '-1')
local nh = #hosts
local cursor = num(getf('hc'))
local nextReady = nil
local progressed = true
while took < limit and progressed and nh > 0 do
  progressed = false
  for i = 0, nh - 1 do
    if took >= limit then break end
    local host = hosts[((cursor + i) % nh) + 1]
    local h = hdec(redis.call('HGET', J .. 'hosts', host))
    local delay = math.max(phd, h.cd)
    local slots = phc
    if delay > 0 then slots = 1 end
    if h.inf < slots then
      if h.nxt > now then
        if redis.call('LLEN', J .. 'r:' .. host) > 0 and (nextReady == nil or h.nxt < nextReady) then nextReady = h.nxt end
      else
        local key = redis.call('LPOP', J .. 'r:' .. host)
        while key do
          -- A URL in a ready list is ready, whatever this claim's clock says (another processor's
          -- clock moved it there); only entries no longer pending (leased again, cancelled) drop out.
          local e = dec(redis.call('HGET', J .. 'u', key))
          if e.st == 'p' then
            lease(key, e, true)
            h.inf = h.inf + 1; h.pick = now
            redis.call('HSET', J .. 'hosts', host, henc(h))
            progressed = true
            cursor = (cursor + i + 1) % nh
            break
          end
          key = redis.call('LPOP', J .. 'r:' .. host)
        end
        if progressed then break end
      end
    end
  end
end
redis.call('HSET', KEYS[1], 'hc', fmt(cursor))
if took > 0 then
  if fresh > 0 then
    redis.call('HINCRBY', KEYS[1], 'queued', fmt(-fresh))
    redis.call('HINCRBY', KEYS[1], 'inprog', fmt(fresh))
  end
  if getf('status') == 'queued' then
    redis.call('HSET', KEYS[1], 'status', 'running', 'started', ARGV[4])
    events[#events + 1] = event('job:started', ARGV[4], '', '', maxev)
  end
end
if took < limit then
  local waiting = redis.call('ZRANGE', J .. 'delayed', '0', '0', 'WITHSCORES')
  if #waiting >= 2 and (nextReady == nil or tonumber(waiting[2]) < nextReady) then nextReady = tonumber(waiting[2]) end
end
local nr = 'null'
if nextReady ~= nil then nr = fmt(nextReady) end
local parking = ''
if took == 0 and limit > 0 and ARGV[7] == '1' then
  -- Nothing ready: every host was looked at, so each pending URL waits on its host's delay, on its
  -- backoff or on a host slot held by a live lease. Park the job until the earliest of those ends.
  local at = nextReady
  local held = redis.call('ZRANGE', J .. 'leased', '0', '0', 'WITHSCORES')
  if #held >= 2 and (at == nil or tonumber(held[2]) < at) then at = tonumber(held[2]) end
  if at == nil then at = ${PARK_FOREVER} end
  local wait = 0
  if nextReady ~= nil then wait = nextReady end
  if at > now then
    local v = redis.call('HINCRBY', KEYS[1], 'pv', 1)
    redis.call('HSET', KEYS[1], 'pk', '1', 'pat', fmt(at), 'pwt', fmt(wait))
    parking = ',"park":{"v":' .. fmt(v) .. ',"at":' .. fmt(at) .. ',"wait":' .. fmt(wait) .. '}'
  end
elseif took > 0 then
  parking = wakeup()
end
return '~{"leases":[' .. table.concat(leases, ',') .. '],"events":[' .. table.concat(events, ',') .. '],"nextReadyAt":' .. nr .. parking .. '}'
`);

/** Shared by complete / retry / release: the current entry of a lease, or nil. */
const CURRENT = `
local function current(key, token)
  if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
  local raw = redis.call('HGET', J .. 'u', key)
  if missing(raw) then return nil end
  local e = dec(raw)
  if e.st ~= 'l' or e.tok ~= token then return nil end
  return e
end
local function endlease(key, e, now, started)
  redis.call('ZREM', J .. 'leased', key)
  local h = hdec(redis.call('HGET', J .. 'hosts', e.host))
  h.inf = math.max(0, h.inf - 1)
  local delay = math.max(num(getf('phd')), h.cd)
  if started and delay > 0 then h.nxt = math.max(h.nxt, now + delay) end
  redis.call('HSET', J .. 'hosts', e.host, henc(h))
  redis.call('HINCRBY', KEYS[1], 'inprog', -1)
end
`;

/**
 * ARGV: key, token, ok, skipped, resultJson, errorJson, now, nowIso, maxEvents, ttl, number of
 * links, then key/url/depth/host/unsure ('1' when its robots.txt was unknown) per link, then
 * key/url/depth/host/resultJson/errorJson per skipped link (robots.txt disallows it).
 *
 * The charges of maxPages: job fields `rfree` (skipped links recorded without a charge) and `refd`
 * (charges given back by URLs skipped for robots.txt after admission), each at most maxp; the
 * charged URLs are disc - rfree - refd. The set `unsure` holds the unfinished admitted URLs whose
 * robots.txt was unknown, and the list `spares` the links kept past maxp (entries in state `r`),
 * each as '1' or '0' (unsure or not) followed by its key. Jobs of an older version have none of
 * these, which is how they were counted.
 */
export const COMPLETE = script(`${CURRENT}
local key, ok, skipped, now, maxev = ARGV[1], ARGV[3] == '1', ARGV[4] == '1', tonumber(ARGV[7]), tonumber(ARGV[9])
local e = current(key, ARGV[2])
if e == nil then return '~{"ok":false,"admitted":0,"events":[]}' end
e.st = 'd'; e.tok = ''
if not ok then e.st = 'f' end
redis.call('HSET', J .. 'u', key, enc(e))
redis.call('SREM', J .. 'unsure', key)
endlease(key, e, now, not skipped)
redis.call('RPUSH', J .. 'res', ARGV[5])
if ok then redis.call('HINCRBY', KEYS[1], 'succ', 1)
elseif skipped then redis.call('HINCRBY', KEYS[1], 'skip', 1)
else redis.call('HINCRBY', KEYS[1], 'fail', 1) end
if not ok and missing(getf('firsterr')) then redis.call('HSET', KEYS[1], 'firsterr', ARGV[6]) end
local maxp = num(getf('maxp'))
local refd = num(getf('refd'))
-- Skipped for robots.txt after it was admitted: its charge goes to the oldest spare, or frees room.
if skipped and refd < maxp then
  refd = refd + 1
  redis.call('HSET', KEYS[1], 'refd', fmt(refd))
  local item = redis.call('LPOP', J .. 'spares')
  if not missing(item) then
    local skey = string.sub(item, 2)
    local s = dec(redis.call('HGET', J .. 'u', skey))
    s.st = 'p'
    redis.call('HSET', J .. 'u', skey, enc(s))
    redis.call('RPUSH', J .. 'r:' .. s.host, skey)
    if redis.call('HSETNX', J .. 'hosts', s.host, henc(hdec(false))) == 1 then redis.call('RPUSH', J .. 'hostlist', s.host) end
    if string.sub(item, 1, 1) == '1' then redis.call('SADD', J .. 'unsure', skey) end
    redis.call('HINCRBY', KEYS[1], 'disc', 1)
    redis.call('HINCRBY', KEYS[1], 'queued', 1)
  end
end
local admitted = 0
local room = maxp - (num(getf('disc')) - num(getf('rfree')) - refd)
local spareRoom = nil
local nlinks = tonumber(ARGV[11])
for x = 0, nlinks - 1 do
  local i = 12 + x * 5
  local lkey, lurl, ldepth, lhost, lunsure = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if room > 0 then
    if redis.call('HSETNX', J .. 'u', lkey, enc({ st = 'p', tok = '', att = 0, lu = 0, nb = 0, dp = tonumber(ldepth), host = lhost, url = lurl })) == 1 then
      redis.call('RPUSH', J .. 'r:' .. lhost, lkey)
      if redis.call('HSETNX', J .. 'hosts', lhost, henc(hdec(false))) == 1 then redis.call('RPUSH', J .. 'hostlist', lhost) end
      if lunsure == '1' then redis.call('SADD', J .. 'unsure', lkey) end
      admitted = admitted + 1
      room = room - 1
    end
  else
    -- No room left: spares, as many as unfinished unsure URLs (which may yet be refunded) and refunds left.
    if spareRoom == nil then
      spareRoom = math.min(redis.call('SCARD', J .. 'unsure'), maxp - refd) - redis.call('LLEN', J .. 'spares')
    end
    if spareRoom <= 0 then break end
    if redis.call('HSETNX', J .. 'u', lkey, enc({ st = 'r', tok = '', att = 0, lu = 0, nb = 0, dp = tonumber(ldepth), host = lhost, url = lurl })) == 1 then
      redis.call('RPUSH', J .. 'spares', lunsure .. lkey)
      spareRoom = spareRoom - 1
    end
  end
end
redis.call('HINCRBY', KEYS[1], 'disc', fmt(admitted))
redis.call('HINCRBY', KEYS[1], 'queued', fmt(admitted))
local kind = 'page:done'
local err = ''
if not ok then err = ARGV[6]; if skipped then kind = 'page:skipped' else kind = 'page:failed' end end
local events = { event(kind, ARGV[8], jstr(e.url), err, maxev) }
-- Links robots.txt disallows: recorded as skipped at once, new ones only, at most maxp per job.
local rfree = num(getf('rfree'))
local i = 12 + nlinks * 5
while ARGV[i] and rfree < maxp do
  local skey, surl, sdepth, shost = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('HSETNX', J .. 'u', skey, enc({ st = 'f', tok = '', att = 0, lu = 0, nb = 0, dp = tonumber(sdepth), host = shost, url = surl })) == 1 then
    redis.call('RPUSH', J .. 'res', ARGV[i + 4])
    redis.call('HINCRBY', KEYS[1], 'disc', 1)
    redis.call('HINCRBY', KEYS[1], 'skip', 1)
    rfree = rfree + 1
    redis.call('HSET', KEYS[1], 'rfree', fmt(rfree))
    events[#events + 1] = event('page:skipped', ARGV[8], jstr(surl), ARGV[i + 5], maxev)
  end
  i = i + 6
end
local finished = false
if num(getf('queued')) == 0 and num(getf('inprog')) == 0 and active() then
  finished = true
  if num(getf('succ')) == 0 then
    local fe = getf('firsterr')
    if missing(fe) then fe = '{"code":"failed","message":"no page could be fetched"}' end
    redis.call('HSET', KEYS[1], 'status', 'failed', 'finished', ARGV[8], 'error', fe)
    events[#events + 1] = event('job:failed', ARGV[8], '', fe, maxev)
  else
    redis.call('HSET', KEYS[1], 'status', 'completed', 'finished', ARGV[8])
    events[#events + 1] = event('job:completed', ARGV[8], '', '', maxev)
  end
end
local fin = 'false'
local woke = ''
if finished then fin = 'true'; expire(tonumber(ARGV[10]))
-- A freed host slot or new links may make a parked job ready sooner.
else woke = wakeup() end
return '~{"ok":true,"admitted":' .. fmt(admitted) .. ',"finished":' .. fin .. woke .. ',"events":[' .. table.concat(events, ',') .. ']}'
`);

/** ARGV: key, token, notBefore, now. Wakes a parked job (the retry may be due before its park ends). */
export const RETRY = script(`${CURRENT}
local key = ARGV[1]
local e = current(key, ARGV[2])
if e == nil then return '~{"ok":false}' end
endlease(key, e, tonumber(ARGV[4]), true)
e.st = 'p'; e.tok = ''; e.nb = math.max(tonumber(ARGV[3]), 1)
redis.call('HSET', J .. 'u', key, enc(e))
redis.call('ZADD', J .. 'delayed', fmt(e.nb), key)
redis.call('HINCRBY', KEYS[1], 'queued', 1)
return '~{"ok":true' .. wakeup() .. '}'
`);

/** ARGV: key, token (one lease). Wakes a parked job (the URL is ready at once). */
export const RELEASE = script(`${CURRENT}
local key = ARGV[1]
local e = current(key, ARGV[2])
if e == nil then return '~{"ok":false}' end
endlease(key, e, 0, false)
e.st = 'p'; e.tok = ''; e.att = math.max(0, e.att - 1); e.nb = 0
redis.call('HSET', J .. 'u', key, enc(e))
redis.call('LPUSH', J .. 'r:' .. e.host, key)
redis.call('HINCRBY', KEYS[1], 'queued', 1)
return '~{"ok":true' .. wakeup() .. '}'
`);

/** ARGV: nowIso, maxEvents, ttl */
export const CANCEL = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return '~{"job":null,"events":[]}' end
if not active() then return '~{"job":' .. jobjson() .. ',"events":[]}' end
local entries = redis.call('HGETALL', J .. 'u')
for i = 1, #entries - 1, 2 do
  local e = dec(entries[i + 1])
  if e.st == 'p' or e.st == 'l' then e.st = 'c'; e.tok = ''; redis.call('HSET', J .. 'u', entries[i], enc(e)) end
end
local hosts = redis.call('LRANGE', J .. 'hostlist', '0', '-1')
for x = 1, #hosts do
  local host = hosts[x]
  redis.call('DEL', J .. 'r:' .. host)
  local h = hdec(redis.call('HGET', J .. 'hosts', host)); h.inf = 0
  redis.call('HSET', J .. 'hosts', host, henc(h))
end
redis.call('DEL', J .. 'leased', J .. 'delayed', J .. 'spares', J .. 'unsure')
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished', ARGV[1], 'queued', 0, 'inprog', 0)
local e = event('job:cancelled', ARGV[1], '', '', tonumber(ARGV[2]))
expire(tonumber(ARGV[3]))
return '~{"job":' .. jobjson() .. ',"events":[' .. e .. ']}'
`);

/** ARGV: maxEvents, then type/at/urlJson/errorJson per event */
export const APPEND_EVENTS = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return '~null' end
local out = {}
local i = 2
while ARGV[i] do
  out[#out + 1] = event(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[1]))
  i = i + 4
end
return '~[' .. table.concat(out, ',') .. ']'
`);

/** ARGV: after, limit */
export const READ_EVENTS = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return '~[]' end
local after, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
local first = num(getf('evfirst'))
local trimmed = getf('trimmed')
local from = after
if not missing(trimmed) and first > 0 and after < first - 1 then
  out[1] = string.gsub(trimmed, '"type":"[^"]*"', '"type":"progress"', 1)
  from = first - 1
end
if first == 0 then return '~[]' end
local start = from - first + 1
if start < 0 then start = 0 end
local want = limit - #out
if want > 0 then
  local rows = redis.call('LRANGE', J .. 'ev', fmt(start), fmt(start + want - 1))
  for x = 1, #rows do out[#out + 1] = rows[x] end
end
return '~[' .. table.concat(out, ',') .. ']'
`);

/** ARGV: start, count */
export const READ_RESULTS = script(`
local rows = redis.call('LRANGE', J .. 'res', ARGV[1], fmt(tonumber(ARGV[1]) + tonumber(ARGV[2]) - 1))
local out = {}
for x = 1, #rows do out[x] = rows[x] end
return '~[' .. table.concat(out, ',') .. ']'
`);

/** ARGV: origin, recordJson, host, crawlDelayMs */
export const PUT_ROBOTS = script(`
redis.call('HSET', J .. 'robots', ARGV[1], ARGV[2])
local h = hdec(redis.call('HGET', J .. 'hosts', ARGV[3]))
if redis.call('HEXISTS', J .. 'hosts', ARGV[3]) == 0 then redis.call('RPUSH', J .. 'hostlist', ARGV[3]) end
h.cd = tonumber(ARGV[4])
redis.call('HSET', J .. 'hosts', ARGV[3], henc(h))
return 1
`);

/** ARGV: origin */
export const GET_ROBOTS = script(`
local v = redis.call('HGET', J .. 'robots', ARGV[1])
if missing(v) then return '~null' end
return '~' .. v
`);

/**
 * The global index (its own hash tag): KEYS[1] all jobs by ordinal, KEYS[2] active jobs that claims
 * visit, by last claim (or wake), KEYS[3] the ordinal counter, KEYS[4] parked jobs by the time their
 * park ends, KEYS[5] parked jobs by the time their first URL waiting on the clock is ready, and
 * KEYS[6] the prefix of one small key per indexed job, `<version>|<where>|<in waits>`: the newest
 * park/wake version applied, `a` (in KEYS[2]) or `p` (in KEYS[4]), and 1 when in KEYS[5].
 */
export const INDEX_ADD = `local o = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], o, ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('SET', KEYS[6] .. ARGV[1], '0|a|0')
return o`;
/**
 * ARGV: limit, now. Returns `~{"next":…,"ids":[…]}`: the earliest wait of a parked job still to
 * come (null if none), and up to `limit` job ids to visit: active ones and parked ones whose time
 * has come, longest idle first. (JSON, because ioredis-mock mangles tables built in Lua.)
 */
export const INDEX_ACTIVE = `local function jstr(s)
  return '"' .. string.gsub(s, '[%c"\\\\]', function(c)
    if c == '"' then return '\\\\"' elseif c == '\\\\' then return '\\\\\\\\' end
    return string.format('\\\\u%04x', string.byte(c))
  end) .. '"'
end
local limit = tonumber(ARGV[1])
local act = redis.call('ZRANGE', KEYS[2], 0, limit - 1, 'WITHSCORES')
local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0, limit)
local w = redis.call('ZRANGEBYSCORE', KEYS[5], '(' .. ARGV[2], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local out = {}
local a, d = 1, 1
while #out < limit and (a < #act or d < #due) do
  if d >= #due or (a < #act and tonumber(act[a + 1]) <= tonumber(due[d + 1])) then
    out[#out + 1] = jstr(act[a]); a = a + 2
  else
    out[#out + 1] = jstr(due[d]); d = d + 2
  end
end
local head = 'null'
if #w >= 2 then head = string.format('%.0f', tonumber(w[2])) end
return '~{"next":' .. head .. ',"ids":[' .. table.concat(out, ',') .. ']}'`;
/**
 * ARGV: groups of op, id, version, score, wait. `touch`: a job that gave URLs moves to the back
 * (if active). `park` / `wake`: moves the job between active and parked, if it is still indexed
 * and the version is newer than the last applied (so a late write never undoes a newer decision).
 * `remove`: the job finished or was cancelled.
 */
export const INDEX_APPLY = `local function absent(v) return v == false or v == nil or type(v) == 'userdata' end
local i = 1
while ARGV[i] do
  local op, id, v, score, wait = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], tonumber(ARGV[i + 4])
  local state = KEYS[6] .. id
  if op == 'touch' then
    redis.call('ZADD', KEYS[2], 'XX', score, id)
  elseif op == 'remove' then
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[4], id)
    redis.call('ZREM', KEYS[5], id)
    redis.call('DEL', state)
  else
    local seen, where, waits = nil, nil, nil
    local cur = redis.call('GET', state)
    if not absent(cur) then
      local a, b, c = string.match(cur, '^(%d+)|(%a)|(%d)$')
      seen, where, waits = tonumber(a), b, c
    elseif not absent(redis.call('ZSCORE', KEYS[2], id)) then
      seen, where, waits = 0, 'a', '1'
    elseif not absent(redis.call('ZSCORE', KEYS[4], id)) then
      seen, where, waits = 0, 'p', '1'
    end
    -- Not indexed (finished, cancelled, or unknown): nothing to do.
    if seen ~= nil and v > seen then
      if op == 'park' then
        if where == 'a' then redis.call('ZREM', KEYS[2], id) end
        redis.call('ZADD', KEYS[4], score, id)
        where = 'p'
        if wait > 0 then
          redis.call('ZADD', KEYS[5], wait, id)
          waits = '1'
        elseif waits == '1' then
          redis.call('ZREM', KEYS[5], id)
          waits = '0'
        end
      else
        if where == 'p' then redis.call('ZREM', KEYS[4], id) end
        if waits == '1' then redis.call('ZREM', KEYS[5], id) end
        redis.call('ZADD', KEYS[2], score, id)
        where, waits = 'a', '0'
      end
      redis.call('SET', state, ARGV[i + 2] .. '|' .. where .. '|' .. waits)
    end
  end
  i = i + 5
end
return 1`;
/** ARGV: beforeOrdinal (exclusive, or 'inf'), count — ids and ordinals, newest first. */
export const INDEX_LIST = `local max = '(' .. ARGV[1]
if ARGV[1] == 'inf' then max = '+inf' end
return redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '-inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))`;
/** ARGV: id — forgets a job whose data expired. */
export const INDEX_DROP = `redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('DEL', KEYS[6] .. ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])`;
