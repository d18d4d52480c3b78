-- GCRA decisions per second through Lua: lim:incoming_at over 10,000
-- sender keys, cost 1-3, the clock advancing 1 us per decision (as
-- gcrabench.c). Best of five runs.   lua5.4|luajit bench/gcra_lua.lua [decisions]
local gcra = require "telua.gcra"
local n = tonumber(arg[1]) or 2000000
local keys = {}
for k = 1, 10000 do keys[k] = ("+1415555%04d"):format(k - 1) end
local lim = gcra.new{ rate = 10, burst = 5 }
local best, accepted, t = math.huge, 0, 2000 -- the clock goes on across runs
for _ = 1, 5 do
  local x, t0 = 12345, os.clock()
  accepted = 0
  for _ = 1, n do
    x = (x * 69069 + 1) % 4294967296 -- stays exact in doubles (LuaJIT)
    local d = lim:incoming_at(t, keys[math.floor(x / 256) % 10000 + 1], 1 + math.floor(x / 268435456) % 3)
    if d == 0 then accepted = accepted + 1 end
    t = t + 1e-6
  end
  local dt = os.clock() - t0
  if dt < best then best = dt end
end
print(("%-34s%12.0f decisions/s   (%d of %d accepted in the last run)"):format(
  (jit and jit.version or _VERSION) .. " (lim:incoming_at)", n / best, accepted, n))
