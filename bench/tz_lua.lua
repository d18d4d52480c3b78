-- telua's time-zone lookups and quiet hours, per call, on the numbers of
-- spec/fixtures/tz_corpus.json: e164.time_zones, core.tz_at (a zone file
-- already read), quiet.next_allowed (the zones given), and the campaign
-- estimate (sender.schedule) of 100,000 rows with quiet hours.
-- usage: LUA_PATH="lua/?.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 bench/tz_lua.lua [N]
local cjson = require "cjson"
local core = require "telua.core"
local e164 = require "telua.e164"
local quiet = require "telua.quiet"
local sender = require "telua.sender"
local N = tonumber(arg[1]) or 200000
local f = assert(io.open("spec/fixtures/tz_corpus.json", "rb"))
local rows = cjson.decode(f:read("*a")).rows
f:close()
local inputs, zones = {}, {}
for i, r in ipairs(rows) do
  inputs[i] = r.input
  if r.zones[1] then zones[#zones + 1] = r.zones end
end
local function row(name, n, fn)
  local t0 = os.clock()
  fn(n)
  local dt = os.clock() - t0
  print(("%-44s %10.0f /s  %8.3f us"):format(name, n / dt, dt / n * 1e6))
end
row("e164.time_zones (E.164 input)", N, function(n)
  for i = 1, n do e164.time_zones(inputs[i % #inputs + 1]) end
end)
local T = 1796644800
row("core.tz_at", N, function(n)
  for i = 1, n do core.tz_at(zones[i % #zones + 1][1], T + i * 37) end
end)
local w = quiet.window(true)
row("quiet.next_allowed (zones of a number)", N, function(n)
  for i = 1, n do quiet.next_allowed(zones[i % #zones + 1], w, T + i * 37) end
end)
local list = {}
for i = 1, 100000 do
  list[i] = { sender = "12345", to = inputs[i % #inputs + 1], segments = 1, policy = { quiet = w } }
end
row("sender.schedule, 100,000 rows (rows/s)", #list, function()
  sender.schedule(list, { start = T })
end)
