-- telua.segments through Lua on the benchmark bodies: count for every line
-- of FILE, best of five runs of PASSES passes; characters are code points.
--   lua5.4|luajit bench/segments_lua.lua FILE [passes]
local segments = require "telua.segments"
local texts, chars = {}, 0
for line in io.lines(arg[1]) do
  if line ~= "" then
    texts[#texts + 1] = line
    chars = chars + select(2, line:gsub("[^\128-\191]", ""))
  end
end
local passes, count, best, total = tonumber(arg[2]) or 20, segments.count, math.huge, 0
for _ = 1, 5 do
  local t0 = os.clock()
  for _ = 1, passes do
    total = 0
    for i = 1, #texts do total = total + count(texts[i]).segments end
  end
  local dt = os.clock() - t0
  if dt < best then best = dt end
end
local name = (jit and jit.version or _VERSION) .. " (telua.segments.count)"
print(("%-34s%12.0f chars/s   segments %d"):format(name, chars * passes / best, total))
