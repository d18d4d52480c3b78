-- Outbox enqueue rate with durability on: N messages queued through
-- store.outbox:enqueue_many in transactions of BATCH, with PRAGMA synchronous =
-- FULL (WAL: one fsync per commit), as `telua campaign` queues them.
-- usage: lua bench/outbox_enqueue.lua DBFILE [N] [BATCH]
local core = require "telua.core"
local store = assert(require("telua.store").open("sqlite:" .. arg[1]))
local n, batch = tonumber(arg[2] or 100000), tonumber(arg[3] or 500)
store.db:exec("PRAGMA synchronous = FULL")
local t0, list, done = core.monotonic(), {}, 0
for i = 1, n do
  list[#list + 1] = { { to = ("+1415555%04d"):format(i % 10000), from = "+15005550006",
                        body = "Your order " .. i .. " has shipped" },
                      { dedupe = "bench:" .. i, campaign = "bench", rate = 50, segments = 1 } }
  if #list == batch or i == n then
    done = done + assert(store.outbox:enqueue_many(list))
    list = {}
  end
end
local s = core.monotonic() - t0
print(("outbox enqueue, synchronous=FULL, %d per transaction: %d messages in %.2f s = %.0f messages/s (%.0f fsync'd commits/s)")
  :format(batch, done, s, done / s, math.ceil(n / batch) / s))
store:close()
