-- Quiet hours end to end on a simulated clock: `telua campaign` plans and
-- queues a campaign to numbers in New York, Honolulu, London, Sydney and
-- Idaho (Boise or Los Angeles: two zones) at a fixed UTC time, and the
-- sender (its clock simulated, its requests real, to `telua sandbox`) sends
-- each one only once its quiet hours are over in every zone. When each may
-- go comes from Python's zoneinfo (spec/helpers/tzoracle.py, a minute-by-
-- minute scan), not from telua.
local cjson = require "cjson"
local h = require "spec.helpers"
local campaign = require "telua.campaign"
local client_mod = require "telua.client"
local sender_mod = require "telua.sender"
local store_mod = require "telua.store"
local e164 = require "telua.e164"

local BUILD = os.getenv("TELUA_BUILD") or (h.root .. "/build")
local SID = "AC" .. ("7"):rep(32)
local TOKEN = "quiet-spec-token"

local oracle = h.tz_oracle

local NUMBERS = { "+12125550100", "+18085550100", "+442079460958", "+61255504321", "+12085550100" }
local T0 = 1796644800 -- 2026-12-07 12:00:00 UTC, a Monday (date -u -d @1796644800)

describe("quiet hours", function()
  local dir, sandbox

  setup(function()
    dir = h.tmpdir()
    sandbox = h.spawn("env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " " .. BUILD ..
                      "/telua sandbox --listen 127.0.0.1:0 --mps 100000 --delivery-ms 50", dir .. "/sandbox.log")
  end)

  teardown(function()
    h.kill(sandbox)
    os.execute("rm -rf " .. dir)
  end)

  -- A sender on a clock that starts at T0 and moves `step` seconds at a
  -- time for `span`; after each step's rounds (their answers filed: the
  -- flight files them as they come), look(now).
  local function simulate(store, span, step, look)
    local now = T0
    local client = assert(client_mod.new{ account_sid = SID, auth_token = TOKEN,
                                          base_url = "http://127.0.0.1:" .. sandbox.port })
    local s = sender_mod.new{ store = store, client = client, clock = function() return now end }
    while now < T0 + span do
      for _ = 1, 5 do
        if s:step(now) <= 0 then break end
        s:settle(5)
      end
      look(now)
      now = now + step
    end
  end

  it("a campaign started at a fixed UTC time reaches each number only inside its day, two zones waiting for both", function()
    -- the plan: when each number may first be reached (21:00-08:00 quiet, the default)
    local req = {}
    for i, n in ipairs(NUMBERS) do req[i] = { e164.time_zones(n), 21 * 60, 8 * 60, T0 } end
    local allowed = oracle{ allowed = req }.allowed
    local waiting, last = 0, 0
    for _, t in ipairs(allowed) do
      if t > T0 then waiting = waiting + 1 end
      last = math.max(last, t)
    end
    assert.are.equal(4, waiting) -- only London is in its day at 12:00 UTC

    local csv = dir .. "/q.csv"
    local f = assert(io.open(csv, "wb"))
    f:write("phone,name,order\n")
    for i, n in ipairs(NUMBERS) do f:write(n, ",N", i, ",", i, "\n") end
    f:close()
    local out = {}
    local sink = { write = function(self, ...) for _, s in ipairs{ ... } do out[#out + 1] = s end return self end,
                   flush = function() end }
    local db = dir .. "/q.db"
    local function run(flag)
      out = {}
      local rc = campaign.main({ "--csv", csv, "--template", "order_shipped", "--from", "+15005550006",
                                 "--templates", h.root .. "/rules/templates", "--store", "sqlite:" .. db, flag },
                               { out = sink, err = sink, now = function() return T0 end })
      local text = table.concat(out)
      assert.are.equal(0, rc, text)
      return text
    end
    -- the estimate of the dry run: the last number's window end, as the sender will find it
    local estimate = tonumber(run("--dry-run"):match("estimate: about [%d:]+ %(([%d.]+) s%)"))
    local text = run("--no-wait")
    assert.matches(("quiet hours 21:00-08:00: %d messages wait for them to end, the last until %s"):format(
      waiting, os.date("!%Y-%m-%d %H:%M UTC", last)), text, 1, true)

    -- the sender on a simulated clock, 5 minutes a step, for 36 hours
    local store = assert(store_mod.open("sqlite:" .. db))
    -- (and the schedule the estimate comes from, entry by entry, for the same outbox)
    local queued = store.db:query("SELECT id, sender, to_addr, segments, not_before, policy FROM outbox ORDER BY id")
    local list = {}
    for i, r in ipairs(queued) do
      list[i] = { sender = r.sender, to = r.to_addr, segments = r.segments, not_before = r.not_before,
                  policy = cjson.decode(r.policy) }
    end
    local planned = sender_mod.schedule(list, { start = T0 })
    local sent_at = {}
    simulate(store, 36 * 3600, 300, function(now)
      for _, r in ipairs(store.db:query("SELECT to_addr, state FROM outbox WHERE state = 'sent'")) do
        sent_at[r.to_addr] = sent_at[r.to_addr] or now
      end
    end)
    local check = {}
    for i, n in ipairs(NUMBERS) do
      local t = sent_at[n]
      assert.is_number(t, n .. " was never sent")
      -- sent at the first step at or after the end of its quiet hours
      assert.is_true(t >= allowed[i] and t < allowed[i] + 300,
        ("%s sent at %s, may go from %s"):format(n, os.date("!%H:%M", t), os.date("!%H:%M", allowed[i])))
      check[i] = { e164.time_zones(n), 21 * 60, 8 * 60, t }
    end
    -- the schedule said when each would go (to the 5-minute step of the simulation)
    for i, r in ipairs(queued) do
      assert.is_true(sent_at[r.to_addr] >= planned[i] - 1 and sent_at[r.to_addr] < planned[i] + 300,
        ("%s planned at +%.0f s, sent at +%.0f s"):format(r.to_addr, planned[i] - T0, sent_at[r.to_addr] - T0))
    end
    -- the estimate was the time it took
    local last_sent = 0
    for _, t in pairs(sent_at) do last_sent = math.max(last_sent, t) end
    assert.is_true(last_sent - T0 >= estimate - 1 and last_sent - T0 < estimate + 300,
      ("estimate %.0f s, the last went at %.0f s"):format(estimate, last_sent - T0))
    -- and at that moment outside the window in every zone of the number
    local at_send = oracle{ allowed = check }.allowed
    for i, n in ipairs(NUMBERS) do assert.are.equal(sent_at[n], at_send[i], n) end
    -- the two-zone number waited for Los Angeles (08:00 PST), an hour after Boise's 08:00
    assert.are.equal(T0 + 4 * 3600, allowed[5])
    -- each reached Twilio (the sandbox) once
    local got = cjson.decode(h.sh("curl -s http://127.0.0.1:" .. sandbox.port .. "/-/sandbox/messages")).messages
    local count = {}
    for _, m in ipairs(got) do count[m.to] = (count[m.to] or 0) + 1 end
    for _, n in ipairs(NUMBERS) do assert.are.equal(1, count[n], n) end
    store:close()
  end)

  it("max_per_day: at most N a day to one recipient, the rest the next day (the store's 24-hour counter)", function()
    local router = require "telua.router"
    local store = assert(store_mod.open("sqlite:" .. dir .. "/cap.db"))
    local ids = {}
    for i = 1, 5 do
      ids[i] = assert(router.queue(store, { to = "+14155550160", from = "+15005550006", body = "update " .. i,
                                            max_per_day = 2 }))
    end
    local sent_at = {}
    simulate(store, 3 * 86400, 600, function(now)
      for _, id in ipairs(ids) do
        local e = store.outbox:get(id)
        if e.state == "sent" and not sent_at[id] then sent_at[id] = now end
      end
    end)
    -- two on the first day, two when its 24 hours are over, the fifth a day later
    local days = {}
    for i, id in ipairs(ids) do
      assert.is_number(sent_at[id], "message " .. i .. " was never sent")
      local d = math.floor((sent_at[id] - T0) / 86400)
      days[d] = (days[d] or 0) + 1
    end
    assert.are.same({ [0] = 2, [1] = 2, [2] = 1 }, days)
    store:close()
  end)

  it("req.send keeps quiet hours only when asked: its own, or the rules' settings, and false exempts", function()
    local router = require "telua.router"
    local store = assert(store_mod.open("sqlite:" .. dir .. "/send.db"))
    local base = { to = "+18085550100", from = "+15005550006", body = "hi" }
    local function with(t)
      local m = {}
      for k, v in pairs(base) do m[k] = v end
      for k, v in pairs(t) do m[k] = v end
      return m
    end
    -- transactional by default: no policy
    local id = assert(router.queue(store, with{}))
    assert.is_nil(store.outbox:get(id).policy)
    id = assert(router.queue(store, with{ quiet_hours = true }))
    assert.are.same({ quiet = { from = 21 * 60, to = 8 * 60 } }, store.outbox:get(id).policy)
    id = assert(router.queue(store, with{}, { quiet_hours = { from = "20:00", to = "09:00" } }))
    assert.are.same({ quiet = { from = 20 * 60, to = 9 * 60 } }, store.outbox:get(id).policy)
    id = assert(router.queue(store, with{ quiet_hours = false }, { quiet_hours = true }))
    assert.is_nil(store.outbox:get(id).policy)
    -- what is not a window, a cap or a chain is refused, and nothing is queued
    local before = store.outbox:counts().queued
    for _, bad in ipairs{ { quiet_hours = "night" }, { quiet_hours = { from = "21:00", to = "21:00" } },
                          { max_per_day = 0 }, { max_per_day = 1.5 }, { fallback = { { channel = "fax" } } },
                          { fallback = { { channel = "whatsapp" } } }, { fallback = { { channel = "voice", after = -1 } } } } do
      local ok, err = router.queue(store, with(bad))
      assert.is_nil(ok)
      assert.is_string(err.message)
    end
    assert.are.equal(before, store.outbox:counts().queued)
    -- and rules whose settings.quiet_hours is no window do not load
    local r = router.new{ store = store, log = function() end }
    local ok, err = r:add("bad.lua", { settings = { quiet_hours = { from = "9pm" } }, messages = {} })
    assert.is_nil(ok)
    assert.matches("bad.lua: settings.quiet_hours.from", err, 1, true)
    store:close()
  end)
end)
