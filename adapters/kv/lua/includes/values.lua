-- Helpers on values, with no keys: missing replies, numbers, JSON fragments.
--
-- Replies are JSON assembled by concatenation (no cjson: ioredis-mock has none), from fragments
-- the caller encoded (ARGV) or stored (fields holding JSON).

-- A missing field or key. ioredis-mock returns missing HMGET fields, and arrays, as userdata.
local function missing(v) return v == false or v == nil or type(v) == 'userdata' end

-- A stored number, 0 when missing.
local function num(v) if missing(v) then return 0 end return tonumber(v) end

-- An integer as plain digits (no exponent, no decimals), for replies and stored numbers.
local function digits(n) return string.format('%.0f', n) end

-- A JSON string literal of s.
local function jsonString(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == '\\' then return '\\\\' end
    return string.format('\\u%04x', string.byte(c))
  end) .. '"'
end

-- A stored JSON fragment, or null when missing or empty.
local function jsonOrNull(v) if missing(v) or v == '' then return 'null' end return v end
