-- Follows a queued campaign to its end for bench/store.sh: polls the
-- store's figures for it (outbox:progress) until every message is sent and
-- has its final status, then takes the sandbox's receive times of the
-- messages to the campaign's prefix.
--   lua5.4 bench/store_outbox.lua SANDBOX_URL N STORE CAMPAIGN PREFIX
-- prints "row ..." (the figures) and "polls K" (the store calls it made)
local store = require "telua.store"
local core = require "telua.core"
local http = require "telua.http"
local cjson = require "cjson"
local sb, n, spec, camp, prefix = arg[1], tonumber(arg[2]), arg[3], arg[4], arg[5]

local s = assert(store.open(spec))
local t0, polls, sent_at, final_at = core.time(), 0, nil, nil
while core.time() - t0 < 300 do
  local p = assert(s.outbox:progress(camp))
  polls = polls + 1
  if not sent_at and (p.sent or 0) + (p.failed or 0) >= n then sent_at = core.time() end
  if sent_at and (p.delivered or 0) + (p.undelivered or 0) + (p.msg_failed or 0) >= n then
    final_at = core.time()
    break
  end
  core.sleep(0.1)
end
assert(final_at, "the campaign did not end within 300 s")
local res = assert(http.request{ url = sb .. "/-/sandbox/messages", timeout = 30 })
local times = {}
for _, m in ipairs(cjson.decode(res.body).messages) do
  if m.to:sub(1, #prefix) == prefix then times[#times + 1] = m.received_at end
end
table.sort(times)
assert(#times == n, ("the sandbox got %d of %d"):format(#times, n))
print(("row %d sent: %.0f sends/s (first to last at the sandbox), every final status %.1f s after queueing"):format(
  n, (n - 1) / (times[#times] - times[1]), final_at - t0))
print("polls " .. polls)
s:close()
