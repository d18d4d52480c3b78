-- telua.e164 through Lua on the benchmark inputs: normalize (parse,
-- validate, E.164) for every line "input<TAB>region" of FILE, repeated;
-- best of five runs.  lua5.4|luajit bench/e164_lua.lua FILE [passes]
local e164 = require "telua.e164"
local clock = os.clock
local inputs, regions = {}, {}
for line in io.lines(arg[1]) do
  local s, r = line:match("^(.-)\t(.*)$")
  if s then inputs[#inputs + 1], regions[#regions + 1] = s, r end
end
local passes = tonumber(arg[2]) or 20
local normalize, n = e164.normalize, #inputs
local best, valid = math.huge, 0
normalize(inputs[1], regions[1])
for _ = 1, 5 do
  local t0 = clock()
  for _ = 1, passes do
    valid = 0
    for i = 1, n do
      if normalize(inputs[i], regions[i]) then valid = valid + 1 end
    end
  end
  local dt = clock() - t0
  if dt < best then best = dt end
end
local name = (jit and jit.version or _VERSION) .. " (telua.e164.normalize)"
print(("%-29s%10.0f numbers/s   valid %d of %d"):format(name, n * passes / best, valid, n))
