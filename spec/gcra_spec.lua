-- telua.gcra. Expected values are worked by hand from the GCRA definition
-- (ITU-T I.371 virtual scheduling, as redis-cell documents it: T = period /
-- count, an event of cost q at t is admitted when max(TAT, t) + q*T - b*T
-- <= t), not taken from the code under test.
local gcra = require "telua.gcra"

local n = 0
local function key() n = n + 1; return "spec-key-" .. n end -- the store is process-wide

describe("telua.gcra", function()
  it("admits the burst back to back, then one per interval, and says how long to wait", function()
    local lim, k = gcra.new{ rate = 1, burst = 2 }, key()
    assert.are.equal(0, lim:incoming_at(100, k))   -- TAT 101
    assert.are.equal(0, lim:incoming_at(100, k))   -- TAT 102
    assert.are.same({ nil, "rejected", 1 }, { lim:incoming_at(100, k) }) -- 103 - 2 = 101: 1 s to wait
    assert.are.same({ nil, "rejected", 0.5 }, { lim:incoming_at(100.5, k) })
    assert.are.equal(0, lim:incoming_at(101, k))   -- TAT 103
    assert.are.equal(0, lim:incoming_at(110, k))   -- idle: TAT restarts from now
    assert.are.equal(0, lim:incoming_at(110, k))
  end)

  it("charges the cost: a 3-segment message takes three intervals", function()
    local lim, k = gcra.new{ rate = 10, burst = 3 }, key()
    assert.are.equal(0, lim:incoming_at(5, k, 3))   -- TAT 5.3, allowed from 5.0
    assert.are.same({ nil, "rejected", 0.1 }, { lim:incoming_at(5, k, 1) })
    assert.are.equal(0, lim:incoming_at(5.1, k, 1))
    assert.are.same({ nil, "too_large" }, { lim:incoming_at(6, k, 4) }) -- 4 > burst 3, no queue
  end)

  it("shapes: within the queue budget it answers when the event may go, exactly", function()
    local lim, k = gcra.new{ rate = 3, queue = 1 }, key()
    -- T = 1/3 s; ceil to the nanosecond: 333333334 ns, 666666667 ns, 1 s
    assert.are.equal(0, lim:incoming_at(50, k))
    assert.are.equal(0.333333334, lim:incoming_at(50, k))
    assert.are.equal(0.666666667, lim:incoming_at(50, k))
    assert.are.equal(1, lim:incoming_at(50, k))
    assert.are.same({ nil, "rejected", 0.333333334 }, { lim:incoming_at(50, k) }) -- due in 4/3 s: 1/3 s over budget
  end)

  it("paces 1, 3, 80 and 1,000 per second within 0.5 % over 30 s, with no drift", function()
    for _, rate in ipairs({ 1, 3, 80, 1000 }) do
      local lim, k = gcra.new{ rate = rate, queue = 3600 }, key()
      local t0, last = 1000, nil
      for _ = 1, rate * 30 do last = t0 + lim:incoming_at(t0, k) end
      -- rate*30 events from t0, the first at t0: the last is due at t0 + 30 - 1/rate
      local achieved = (rate * 30 - 1) / (last - t0)
      assert.is_true(math.abs(achieved - rate) / rate < 0.005, rate .. "/s paced at " .. achieved)
      assert.is_true(math.abs(last - (t0 + 30 - 1 / rate)) < 1e-6, "drift at " .. rate .. "/s: " .. (last - t0))
    end
  end)

  it("never puts more than rate + burst of cost into any second, whatever the costs", function()
    local lim, k = gcra.new{ rate = 50, burst = 3, queue = 3600 }, key()
    local sends, x = {}, 7
    for _ = 1, 2000 do
      x = (x * 69069 + 1) % 4294967296
      local cost = 1 + x % 3
      sends[#sends + 1] = { at = 100 + lim:incoming_at(100, k, cost), cost = cost }
    end
    local j, window, worst = 1, 0, 0
    for i = 1, #sends do -- sliding one-second window over send times
      window = window + sends[i].cost
      while sends[i].at - sends[j].at >= 1 do window = window - sends[j].cost; j = j + 1 end
      if window > worst then worst = window end
    end
    assert.is_true(worst <= 50 + 3, "a second held " .. worst)
  end)

  it("looks without committing, and gives back with uncommit", function()
    local lim, k = gcra.new{ rate = 1 }, key()
    assert.are.equal(0, lim:incoming_at(10, k, 1, false))
    assert.are.equal(0, lim:incoming_at(10, k))
    assert.is_nil((lim:incoming_at(10, k)))
    lim:uncommit(k)
    assert.are.equal(0, lim:incoming_at(10, k))
  end)

  it("keeps the parameters in the key: the same limit shares state, another starts afresh", function()
    local a, b, c, k = gcra.new{ rate = 1 }, gcra.new{ rate = 1 }, gcra.new{ rate = 2 }, key()
    assert.are.equal(0, a:incoming_at(20, k))
    assert.is_nil((b:incoming_at(20, k)))            -- same parameters, same state
    assert.are.equal(0, c:incoming_at(20, k))        -- a new rate: fresh
    assert.are.equal(0, gcra.new{ count = 1, period = 1 }:incoming_at(20, key()))
  end)

  it("accepts fractional rates and count/period", function()
    local lim, k = gcra.new{ rate = 0.5 }, key()       -- one per 2 s
    assert.are.equal(0, lim:incoming_at(0, k))
    assert.are.same({ nil, "rejected", 2 }, { lim:incoming_at(0, k) })
    local per_min, k2 = gcra.new{ count = 30, period = 60, burst = 1 }, key()
    assert.are.equal(0, per_min:incoming_at(0, k2))
    assert.are.same({ nil, "rejected", 2 }, { per_min:incoming_at(0, k2) })
  end)

  it("refuses bad parameters and arguments with clear errors", function()
    assert.has_error(function() gcra.new{ rate = 0 } end, "gcra: rate must be a number of events per second > 0")
    assert.has_error(function() gcra.new{ rate = 1, burst = 0 } end, "gcra: rate and burst must be positive")
    assert.has_error(function() gcra.new{ rate = 1, queue = -1 } end, "gcra: queue must be seconds >= 0")
    assert.has_error(function() gcra.new{ count = 1.5, period = 1 } end)
    assert.has_error(function() gcra.new{ rate = 1 }:incoming("k", 1.5) end)
    assert.has_error(function() gcra.new{ rate = 1 }:incoming(nil) end)
  end)

  it("uses the monotonic clock by default", function()
    local lim, k = gcra.new{ rate = 1 }, key()
    local t = gcra.now()
    assert.is_true(t > 0)
    assert.are.equal(0, lim:incoming(k))
    local _, why, wait = lim:incoming(k)
    assert.are.equal("rejected", why)
    assert.is_true(wait > 0.9 and wait <= 1)
    assert.is_true(gcra.stats().keys >= 1)
  end)

  it("refuses to share a store that decisions were made on (nginx: share in init_by_lua)", function()
    assert.are.equal(0, gcra.new{ rate = 5 }:incoming(key())) -- this process's store is in use
    local ok, err = gcra.share()
    assert.is_nil(ok)
    assert.matches("in use already", err, 1, true)
    assert.is_false(gcra.shared())
    assert.is_false(gcra.stats().shared)
  end)

  it("limits concurrency per key", function()
    local c = gcra.concurrency{ max = 2 }
    assert.is_true(c:enter("AC1"))
    assert.is_true(c:enter("AC1"))
    assert.are.same({ nil, "rejected", 2 }, { c:enter("AC1") })
    assert.is_true(c:enter("AC2"))
    assert.are.equal(1, c:leave("AC1"))
    assert.is_true(c:enter("AC1"))
    c:leave("AC1"); c:leave("AC1")
    assert.has_error(function() c:leave("AC1") end, "gcra: leave(AC1) without enter")
  end)
end)
