-- GCRA decisions through the store's shared pacer (one Redis script per
-- decision over two limits: the sender's and the account's), on one
-- connection, blocking, one at a time: decisions/s, and Redis round trips
-- per decision from the server's own count of read events
-- (INFO stats total_reads_processed). Beside it the process-wide C store
-- (telua.gcra) making the same decisions, which is what a host uses
-- without a shared store.
--   lua5.4 bench/store_gcra.lua REDIS_URL [decisions]
local store = require "telua.store"
local gcra = require "telua.gcra"
local core = require "telua.core"
local url, n = assert(arg[1], "usage: store_gcra.lua REDIS_URL [decisions]"), tonumber(arg[2]) or 50000

local s = assert(store.open(url))
local pacer = assert(s:pacer(), "not a shared store")
local probe = assert(core.redis_connect(assert(require("telua.store.redis").parse(url))))
local function reads()
  local info = assert(probe:call("INFO", "stats"))
  return tonumber(info:match("total_reads_processed:(%d+)"))
end

local keys = {}
for k = 1, 1000 do keys[k] = ("+1415555%04d"):format(k - 1) end
local acct = { key = "account", rate = 2000000, burst = 1000, queue = 36000 }
local r0, t0 = reads(), core.time()
local taken = 0
for i = 1, n do
  local lims = { { key = keys[i % 1000 + 1], rate = 1000000, burst = 10, queue = 36000 }, acct }
  local d, _, took = pacer:decide(lims, 1, 0.25)
  assert(d, _)
  if took then taken = taken + 1 end
end
local dt = core.time() - t0
local trips = (reads() - r0 - 1) / n -- less the INFO that reads the count
print(("%-40s%10.0f decisions/s   %.3f round trips each   (%d of %d took a slot)"):format(
  "Redis pacer (store:pacer():decide)", n / dt, trips, taken, n))

local lim = gcra.new{ rate = 1000000, burst = 10, queue = 36000 }
local m = n * 20
t0 = os.clock()
for i = 1, m do lim:incoming(keys[i % 1000 + 1], 1, true) end
print(("%-40s%10.0f decisions/s   (no round trip)"):format("process-wide C store (telua.gcra)", m / (os.clock() - t0)))
s:close()
