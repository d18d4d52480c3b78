-- telua.sender's pacing decisions (Sender:pace), on its GCRA limiters.
-- Expected values come from the GCRA definition: at rate r with burst b,
-- b events pass at once and event k (k > b) is due (k - b) / r seconds on.
local sender_mod = require "telua.sender"

local FROM = "+14155550177" -- a US long code

-- (GCRA state is process-wide per key and parameters: each test has its own sender number)
local function entry(i, from)
  return { id = i, reserved = 0, sender = from or FROM, params = { to = "+1415555" .. (2000 + i) } }
end

describe("telua.sender pacing", function()
  it("sends the burst, holds slots up to a second ahead, and spreads the rest over their turns", function()
    -- long code at 10/s: burst max(10, rate) = 10; no account limit
    local s = sender_mod.new{ store = {}, client = {}, rates = { long_code = 10 } }
    local now = 1000000
    local go, held, later = 0, {}, {}
    for i = 1, 100 do
      local at, reserved = s:pace(entry(i), 1, now)
      if at == 0 then go = go + 1
      elseif reserved then held[#held + 1] = at - now
      else later[#later + 1] = at - now end
    end
    assert.are.equal(10, go)
    -- slots 0.1 s apart, the last one second out
    assert.are.equal(10, #held)
    for k, t in ipairs(held) do assert.is_true(math.abs(t - 0.1 * k) < 0.01, ("slot %d at %.4f"):format(k, t)) end
    -- the 80 others: each looked at again half a second before its own turn
    -- (entry 21 is due at 1.1 s, entry 100 at 9.0 s), not all at once
    assert.are.equal(80, #later)
    for k, t in ipairs(later) do
      local turn = 1.0 + 0.1 * k
      assert.is_true(math.abs(t - (turn - 0.5)) < 0.01, ("entry %d looked at again at %.4f"):format(20 + k, t))
    end
  end)

  it("counts a message's segments in its turn", function()
    local s = sender_mod.new{ store = {}, client = {}, rates = { long_code = 10 } }
    local now = 2000000
    local from = "+14155550178"
    for i = 1, 20 do s:pace(entry(i, from), 1, now) end -- burst and a second of slots taken
    -- 3 segments take the slots at 1.1, 1.2 and 1.3 s: it may go at 1.3 s
    local a = s:pace(entry(21, from), 3, now)
    -- the next one's slot is 1.4 s
    local b = s:pace(entry(22, from), 1, now)
    assert.is_true(math.abs((a - now) - 0.8) < 0.01, ("%.4f"):format(a - now))
    assert.is_true(math.abs((b - now) - 0.9) < 0.01, ("%.4f"):format(b - now))
  end)
end)

describe("telua.sender pacing on a shared store (Redis)", function()
  local srv
  setup(function() srv = require("spec.helpers.redis").start() end)
  teardown(function() srv:destroy() end)

  it("two senders on one Redis hand out one schedule: the burst once, then one slot per 1/rate", function()
    local store_mod = require "telua.store"
    local core = require "telua.core"
    local a = sender_mod.new{ store = assert(store_mod.open(srv.url)), client = {}, rates = { long_code = 10 } }
    local b = sender_mod.new{ store = assert(store_mod.open(srv.url)), client = {}, rates = { long_code = 10 } }
    assert.is_truthy(a.pacer and b.pacer)
    local from = "+14155550179"
    local t0 = core.time()
    local go, held, later = 0, {}, 0
    for i = 1, 60 do
      local s = i % 2 == 1 and a or b -- the hosts take turns
      local now = core.time()
      local at, reserved = s:pace(entry(i, from), 1, now)
      if at == 0 then go = go + 1
      elseif reserved then held[#held + 1] = at - t0
      else later = later + 1 end
    end
    -- as one sender would (the spec above): 10 at once, 10 slots 0.1 s apart up to a second out
    assert.are.equal(10, go)
    assert.are.equal(10, #held)
    table.sort(held)
    for k, t in ipairs(held) do assert.is_true(math.abs(t - 0.1 * k) < 0.03, ("slot %d at %.4f"):format(k, t)) end
    assert.are.equal(40, later)
    a.store:close()
    b.store:close()
  end)
end)
