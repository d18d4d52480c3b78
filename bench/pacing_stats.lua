-- Pacing statistics from `telua sandbox`'s records: the achieved rate over
-- the receive times of the messages to numbers with a prefix, its error
-- against the target, and the largest count in any one-second window.
-- With WIRE_TIMES (one epoch time per line: tcpdump's times of the POSTs
-- to the sandbox), the same figures on the wire.
-- usage: lua bench/pacing_stats.lua MESSAGES_JSON PREFIX TARGET_MPS [WIRE_TIMES]
local cjson = require "cjson"
local f = assert(io.open(arg[1], "rb"))
local all = cjson.decode(f:read("*a")).messages
f:close()
local prefix, target = arg[2], tonumber(arg[3])
local t = {}
for _, m in ipairs(all) do
  if m.to:sub(1, #prefix) == prefix then t[#t + 1] = m.received_at end
end
local burst = math.max(1, math.ceil(target / 50)) -- telua.sender.campaign_burst

local function report(what, times)
  table.sort(times)
  local span = times[#times] - times[1]
  local rate = (#times - 1) / span
  local j, worst, at = 1, 0, 0
  for i = 1, #times do
    while times[i] - times[j] >= 1.0 do j = j + 1 end
    if i - j + 1 > worst then worst, at = i - j + 1, times[j] - times[1] end
  end
  print(("%-8s target %7.1f MPS: %6d messages over %7.3f s = %9.3f MPS, error %+.3f %%, busiest second %d at +%.1f s (rate + burst = %d)")
    :format(what, target, #times, span, rate, (rate - target) / target * 100, worst, at, math.floor(target) + burst))
end

report("sandbox", t)
if arg[4] then
  local w = {}
  for line in io.lines(arg[4]) do w[#w + 1] = tonumber(line) end
  report("wire", w)
end
