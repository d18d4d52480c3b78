--- Quiet hours: when a message may reach a recipient, by their local time.
--
-- A quiet window is a span of local clock time, `{ from = "21:00", to =
-- "08:00" }` (it may wrap past midnight). A number's zones are
-- libphonenumber's (`telua.e164.time_zones`), and local time comes from the
-- system's tzdata (`telua.core.tz_at`, TZif files under /usr/share/zoneinfo
-- read by telua itself: no process-wide TZ is touched). A number that may
-- be in several zones may be reached only at a time outside the window in
-- every one of them.
--
-- The default window, 21:00 to 08:00, is the TCPA's: telephone
-- solicitations only between 8 am and 9 pm at the called party's location
-- (47 U.S.C. § 227, 47 CFR § 64.1200(c)(1)). Some US states are stricter
-- (Florida's § 501.059: 8 am to 8 pm): give those windows explicitly.
--
--     local quiet = require "telua.quiet"
--     local w = quiet.window{ from = "21:00", to = "08:00" }
--     quiet.next_allowed(quiet.zones("+18085550100"), w, os.time())
--       --> the first time past 08:00 in Honolulu (or now, when it is day there)
--
-- @module telua.quiet

local core = require "telua.core"
local e164 = require "telua.e164"

local type, ipairs, tonumber, format, floor = type, ipairs, tonumber, string.format, math.floor
local tz_at = core.tz_at

local _M = { _VERSION = "0.1.0" }

--- The TCPA's calling hours as a quiet window: quiet from 21:00 to 08:00.
_M.DEFAULT = { from = "21:00", to = "08:00" }

local function minutes(s, what)
  if type(s) ~= "string" then return nil, format("quiet_hours.%s must be a time \"HH:MM\"", what) end
  local h, m = s:match("^(%d%d?):(%d%d)$")
  h, m = tonumber(h), tonumber(m)
  if not h or h > 23 or m > 59 then
    return nil, format("quiet_hours.%s must be a time \"HH:MM\" (00:00 to 23:59), got %q", what, s)
  end
  return h * 60 + m
end

--- Checks a quiet-hours setting and gives its window.
-- @param spec `true` (the default window), a table `{ from = "HH:MM",
--   to = "HH:MM" }` (local times; from > to wraps past midnight), or
--   `false`/`nil` (no quiet hours)
-- @treturn table|boolean `{ from = MINUTES, to = MINUTES }` (minutes after
--   local midnight), or `false` for none
-- @return or `nil, message` when the setting is not one of those (a
--   window whose from equals its to is refused: it would mean no hours at
--   all, or every hour)
function _M.window(spec)
  if spec == nil or spec == false then return false end
  if spec == true then spec = _M.DEFAULT end
  if type(spec) ~= "table" then
    return nil, "quiet_hours must be true, false or a table { from = \"HH:MM\", to = \"HH:MM\" }"
  end
  local f, err = minutes(spec.from, "from")
  if not f then return nil, err end
  local t, terr = minutes(spec.to, "to")
  if not t then return nil, terr end
  if f == t then return nil, "quiet_hours.from and quiet_hours.to must differ" end
  return { from = f, to = t }
end

--- The window as text, `"21:00-08:00"`.
function _M.format(w)
  return format("%02d:%02d-%02d:%02d", floor(w.from / 60), w.from % 60, floor(w.to / 60), w.to % 60)
end

--- The zones a recipient may be in (`telua.e164.time_zones`); a
-- `whatsapp:` or other channel prefix is taken off first.
-- @tparam string to the recipient
-- @treturn table zone names (empty when none is known)
function _M.zones(to)
  local z = e164.time_zones((to:gsub("^%a+:", "")))
  return z or {}
end

-- Whether local minute m is inside the window.
local function inside(w, m)
  if w.from < w.to then return m >= w.from and m < w.to end
  return m >= w.from or m < w.to
end

--- When the quiet window of one zone ends, if t is inside it.
-- @tparam string zone an IANA zone name
-- @tparam table w a window from `window`
-- @tparam number t epoch seconds
-- @treturn number|nil the end of the window (epoch seconds), nil when t is
--   not inside it
-- @return or `nil, message, code` (the codes of `telua.core.tz_at`) when the
--   zone is not in the tzdata
function _M.quiet_until(zone, w, t)
  local off, msg, code = tz_at(zone, t)
  if not off then return nil, msg, code end
  local loc = floor(t) + off
  local m = floor(loc / 60) % 1440
  if not inside(w, m) then return nil end
  local day = loc - loc % 86400
  local stop = day + w.to * 60
  if m >= w.to then stop = stop + 86400 end -- it ends tomorrow
  -- the local end back to UTC, with the offset in force then (a DST change
  -- inside the window moves it)
  local e = stop - off
  local off2 = tz_at(zone, e)
  if off2 and off2 ~= off then e = stop - off2 end
  return e
end

--- The first time at or after t outside the window in every zone.
-- @tparam table zones zone names (`zones`); none: t itself
-- @tparam table w a window from `window`
-- @tparam number t epoch seconds
-- @treturn number the time (t when it may go now), then whether it had to
--   wait; or `nil, "never"` when no hour is outside the window in all the
--   zones at once (zones 12 or more hours apart, a long window). A zone the
--   tzdata does not have is passed over.
function _M.next_allowed(zones, w, t)
  if not w or #zones == 0 then return t, false end
  local at = t
  for _ = 1, 100 do
    local moved = false
    for _, z in ipairs(zones) do
      local e = _M.quiet_until(z, w, at)
      if e and e > at then at, moved = e, true end
    end
    if not moved then return at, at > t end
    if at - t > 2 * 86400 then break end
  end
  return nil, "never"
end

return _M
