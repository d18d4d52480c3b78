-- telua.client creating messages against `telua sandbox`: create_many over
-- lists of 2,000 with CONC connections in flight (libcurl multi, keep-alive),
-- every message checked (E.164, segments) before it leaves.
-- usage: lua bench/client_lua.lua BASE_URL SID TOKEN N CONC
local core = require "telua.core"
local base, sid, token, n, conc = arg[1], arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5])
local client = assert(require("telua.client").new{ account_sid = sid, auth_token = token, base_url = base,
                                           concurrency = conc })
local function batch(from, count)
  local list = {}
  for i = from, from + count - 1 do
    list[#list + 1] = { to = "+14155550" .. tostring(100 + i % 900), from = "+15005550006",
                        body = "Your code is " .. tostring(100000 + i) }
  end
  return client.messages.create_many(list)
end
batch(0, conc) -- warm up the connections
local ok, failed = 0, 0
local t0 = core.monotonic()
local i = 0
while i < n do
  local k = math.min(2000, n - i)
  for _, r in ipairs(batch(i, k)) do if r[1] then ok = ok + 1 else failed = failed + 1 end end
  i = i + k
end
local s = core.monotonic() - t0
print(("telua.client %s (%s, concurrency %d): %d created, %d failed in %.2f s = %.0f messages/s")
  :format(require("telua.client")._VERSION, jit and jit.version or _VERSION, conc, ok, failed, s, ok / s))
