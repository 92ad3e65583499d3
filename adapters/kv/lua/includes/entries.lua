-- The two packed values of a job: URL entries (values of the `urls` hash) and host states (values
-- of the `hosts` hash), decoded into tables with readable names. The stored form is unchanged
-- (existing data must keep working); adapters/kv/keys.ts documents it.
--
-- URL entry, `st|tok|att|lu|nb|dp|host|url` (the url last: it may contain `|`):
--   st    state                    p pending, l leased, d done, f failed or skipped, c cancelled,
--                                  r spare (kept past maxPages, in `spares`, not queued)
--   tok   token      (string)      the live lease's token, '' when not leased
--   att   attempts   (integer)     leases given so far
--   lu    leaseUntil (ms epoch)    when the live lease expires (kept after it ends)
--   nb    notBefore  (ms epoch)    a retry's backoff end, 0 when ready
--   dp    depth      (integer)     link depth from the seed (0)
--   host  host       (string)      the URL's host (the key of its ready list)
--   url   url        (string)      the URL to fetch
--
-- An entry with a sitemap `lastmod` has `dp~n` in place of `dp` (n: the lastmod's length in bytes)
-- and its last part is the lastmod followed by the url: `st|tok|att|lu|nb|dp~n|host|<lastmod><url>`.
-- Entries without one keep the form above, so entries written before lastmod existed read as ever.
--
-- Host state, `inf|nxt|cd|pick`:
--   inf   inFlight   (integer)     live leases on the host
--   nxt   nextStart  (ms epoch)    no new lease before this (per-host delay), 0 when none
--   cd    crawlDelay (ms)          robots.txt Crawl-delay, 0 when none
--   pick  lastPick   (ms epoch)    when a claim last leased a URL of the host
--
--- @include "values"

local function decodeEntry(s)
  local st, tok, att, lu, nb, dp, host, url = string.match(s, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  local lastmod = nil
  local cut = string.find(dp, '~', 1, true)
  if cut then
    local n = tonumber(string.sub(dp, cut + 1))
    lastmod = string.sub(url, 1, n)
    url = string.sub(url, n + 1)
    dp = string.sub(dp, 1, cut - 1)
  end
  return {
    state = st, token = tok, attempts = tonumber(att), leaseUntil = tonumber(lu), notBefore = tonumber(nb), depth = tonumber(dp), host = host, url = url,
    lastmod = lastmod,
  }
end

local function encodeEntry(e)
  local dp, tail = digits(e.depth), e.url
  if e.lastmod then dp = dp .. '~' .. #e.lastmod; tail = e.lastmod .. e.url end
  return e.state .. '|' .. e.token .. '|' .. digits(e.attempts) .. '|' .. digits(e.leaseUntil) .. '|' .. digits(e.notBefore) .. '|' ..
    dp .. '|' .. e.host .. '|' .. tail
end

-- A URL never leased: no token, attempt, lease or backoff. `lastmod`: its sitemap lastmod, or nil
-- (or '') when it has none.
local function newEntry(state, depth, host, url, lastmod)
  if lastmod == '' then lastmod = nil end
  return { state = state, token = '', attempts = 0, leaseUntil = 0, notBefore = 0, depth = depth, host = host, url = url, lastmod = lastmod }
end

-- The lease's `lastmod` member (with its leading comma), or '' when the entry has none.
local function lastmodJson(e)
  if e.lastmod then return ',"lastmod":' .. jsonString(e.lastmod) end
  return ''
end

-- A host seen for the first time: nothing in flight, no delay.
local function newHost() return { inFlight = 0, nextStart = 0, crawlDelay = 0, lastPick = 0 } end

-- The state of a host; a missing one (false) is a new host.
local function decodeHost(s)
  if missing(s) then return newHost() end
  local inf, nxt, cd, pick = string.match(s, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  return { inFlight = tonumber(inf), nextStart = tonumber(nxt), crawlDelay = tonumber(cd), lastPick = tonumber(pick) }
end

local function encodeHost(h) return digits(h.inFlight) .. '|' .. digits(h.nextStart) .. '|' .. digits(h.crawlDelay) .. '|' .. digits(h.lastPick) end
