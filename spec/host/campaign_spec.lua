-- Campaigns end to end: `telua campaign` queues into the host's outbox, the
-- host's sender sends to `telua sandbox`, and the sandbox's receive times and
-- records are the measure: pacing, exactly-once across kill -9, opt-outs
-- during a campaign, WhatsApp windows and templates, the verification
-- limit, and the progress output on a terminal and in a pipe.
local socket = require "socket"
local cjson = require "cjson"
local h = require "spec.helpers"
local H = require "spec.helpers.host"

local ROOT = h.root
local BUILD = os.getenv("TELUA_BUILD") or (ROOT .. "/build")
local SID = "AC" .. ("4"):rep(32)
local TOKEN = "campaign-spec-token"
local q, sh = h.quote, h.sh
local ENV = "env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " "

local function wait_for(fn, seconds)
  local deadline = socket.gettime() + (seconds or 10)
  while socket.gettime() < deadline do
    local v = fn()
    if v then return v end
    socket.sleep(0.1)
  end
  return nil
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function csv(path, numbers, extra)
  local lines = { "phone,name,order" .. (extra and ",locale" or "") }
  for i, n in ipairs(numbers) do lines[#lines + 1] = n .. ",Name" .. i .. "," .. (1000 + i) .. (extra and ("," .. extra) or "") end
  write(path, table.concat(lines, "\n") .. "\n")
end

describe("telua campaign", function()
  local dir, db, sandbox, host, base, hp

  local function start_host()
    host = h.spawn(ENV .. "TELUA_RECONCILE_GRACE=1 TELUA_TWILIO_BASE_URL=http://127.0.0.1:" .. sandbox.port .. " " ..
      BUILD .. "/telua serve --rules " .. dir .. "/rules --listen 127.0.0.1:" .. hp .. " --public-url " .. base ..
      " --store sqlite:" .. db .. " --send-rates long_code=0 --send-concurrency 16", dir .. "/host.log")
  end

  local function campaign(args)
    return sh(ENV .. BUILD .. "/telua campaign --quiet-hours off --store sqlite:" .. db .. " --templates " .. dir ..
              "/rules/templates --status-callback " .. base .. "/status/messages " .. args .. " 2>&1; echo rc=$?")
  end

  local function received(prefix) return H.received(sandbox.port, prefix) end

  local function inbound(from, body, number)
    return sh(ENV .. BUILD .. "/telua sandbox inbound --to " .. base .. "/sms/incoming --from " .. q(from) ..
              " --body " .. q(body) .. " --number " .. q(number or "+15005550006") .. " 2>&1")
  end

  setup(function()
    dir = h.tmpdir()
    assert(os.execute("mkdir -p " .. dir .. "/rules && cp -r " .. ROOT .. "/rules/. " .. dir .. "/rules/"))
    db = dir .. "/telua.db"
    sandbox = h.spawn(ENV .. BUILD .. "/telua sandbox --listen 127.0.0.1:0 --mps 100000 --delivery-ms 100",
                      dir .. "/sandbox.log")
    hp = h.free_port()
    base = "http://127.0.0.1:" .. hp
    start_host()
  end)

  teardown(function()
    if host then h.kill(host) end
    h.kill(sandbox)
  end)

  it("sends 2,000 at 50 MPS within 2 % of the rate, never more than rate + burst in a second", function()
    local numbers = {}
    for i = 1, 2000 do numbers[i] = "+1415555" .. (1000 + i) end
    csv(dir .. "/big.csv", numbers)
    local out = campaign("--csv " .. dir .. "/big.csv --template order_shipped --from +15005550006 --rate 50")
    assert.matches("rc=0", out, 1, true)
    assert.matches("summary: 2000 sent, 2000 delivered", out, 1, true)
    assert.matches("%d%d:%d%d sent %d+/2000", out) -- plain progress lines in a pipe
    local msgs = received("+1415555")
    assert.equal(2000, #msgs)
    local seen, t = {}, {}
    for i, m in ipairs(msgs) do
      assert.is_nil(seen[m.to])
      seen[m.to] = true
      t[i] = m.received_at
    end
    table.sort(t)
    local rate = (#t - 1) / (t[#t] - t[1])
    assert.is_true(math.abs(rate - 50) / 50 <= 0.02, ("achieved %.3f MPS"):format(rate))
    local worst = H.busiest_second(t, 50)
    assert.is_true(worst <= 51, "a one-second window held " .. worst .. " messages")
  end)

  it("sends each recipient exactly one message across a kill -9 of the host, and none to opted-out numbers", function()
    local numbers = {}
    for i = 1, 400 do numbers[i] = "+1628555" .. (1000 + i) end
    for i = 10, 50, 10 do assert.matches("unsubscribed", inbound(numbers[i], "STOP")) end
    csv(dir .. "/kill.csv", numbers)
    local out = campaign("--csv " .. dir .. "/kill.csv --template order_shipped --from +15005550006 --rate 100 --no-wait")
    assert.matches("395 to send", out, 1, true)
    assert.matches("5 opted out", out, 1, true)
    assert.truthy(wait_for(function() return #received("+1628555") >= 120 end))
    h.kill(host) -- first a polite stop would be too kind: kill -9 the restarted one below
    start_host()
    assert.truthy(wait_for(function() return #received("+1628555") >= 200 end))
    os.execute("kill -9 " .. host.pid)
    host.pipe:close()
    start_host()
    out = campaign("--csv " .. dir .. "/kill.csv --template order_shipped --from +15005550006 --rate 100")
    assert.matches("queued 0 new messages (395 were queued by an earlier run)", out, 1, true)
    assert.matches("rc=0", out, 1, true)
    assert.matches("summary: 395 sent, 395 delivered", out, 1, true)
    local got = {}
    for _, m in ipairs(received("+1628555")) do got[m.to] = (got[m.to] or 0) + 1 end
    for i, n in ipairs(numbers) do
      if i % 10 == 0 and i <= 50 then
        assert.is_nil(got[n], n .. " opted out but got a message")
      else
        assert.equal(1, got[n], n .. " got " .. tostring(got[n]) .. " messages")
      end
    end
  end)

  it("lets a second campaign send while the first one's backlog waits its turn", function()
    local a, b = {}, {}
    for i = 1, 3000 do a[i] = "+1212555" .. (1000 + i) end
    for i = 1, 10 do b[i] = "+1305555" .. (1000 + i) end
    csv(dir .. "/first.csv", a)
    csv(dir .. "/second.csv", b)
    local out = campaign("--name first --csv " .. dir .. "/first.csv --template order_shipped --from +15005550006 " ..
                         "--rate 300 --no-wait")
    assert.matches("rc=0", out, 1, true)
    assert.truthy(wait_for(function() return #received("+1212555") >= 50 end))
    -- the sandbox's clock (received_at is monotonic): the first campaign's
    -- latest message stands for "now", as it sends one every 3.3 ms
    local started = 0
    for _, m in ipairs(received("+1212555")) do started = math.max(started, m.received_at) end
    out = campaign("--name second --csv " .. dir .. "/second.csv --template order_shipped --from +15005550006 " ..
                   "--rate 20 --no-wait")
    assert.matches("rc=0", out, 1, true)
    assert.truthy(wait_for(function() return #received("+1305555") >= 10 end))
    local first_b = math.huge
    for _, m in ipairs(received("+1305555")) do first_b = math.min(first_b, m.received_at) end
    -- (the campaign command itself starts within that: slower under the sanitizers)
    local slow = tonumber(os.getenv("TELUA_SPEC_CPU_FACTOR")) and 2 or 1
    assert.is_true(first_b - started < 0.7 * slow, ("the second campaign's first message came %.2f s after it was started")
                   :format(first_b - started))
    assert.is_true(#received("+1212555") < 3000, "the first campaign was over before the second one sent")
    assert.truthy(wait_for(function() return #received("+1212555") == 3000 end, 20))
  end)

  it("sends nothing to a number that texts STOP during the campaign", function()
    local numbers = {}
    for i = 1, 60 do numbers[i] = "+1415555" .. (5000 + i) end
    csv(dir .. "/stop.csv", numbers)
    campaign("--csv " .. dir .. "/stop.csv --template order_shipped --from +15005550006 --rate 20 --no-wait")
    assert.truthy(wait_for(function() return #received("+14155555") >= 5 end))
    inbound(numbers[55], "STOP")
    local out = campaign("--csv " .. dir .. "/stop.csv --template order_shipped --from +15005550006 --rate 20")
    assert.matches("summary: 59 sent", out, 1, true)
    assert.matches("1 skipped", out, 1, true)
    local got = {}
    for _, m in ipairs(received("+14155555")) do got[m.to] = true end
    assert.is_nil(got[numbers[55]])
    assert.truthy(got[numbers[54]])
  end)

  it("sends free-form WhatsApp inside the 24-hour window and the content template outside it", function()
    write(dir .. "/wa.csv", "phone,name,order\n+14155556001,Ana,1\n+14155556002,Bo,2\n")
    inbound("whatsapp:+14155556001", "hi", "whatsapp:+15005550006") -- opens Ana's window
    local out = campaign("--csv " .. dir .. "/wa.csv --template order_shipped --from whatsapp:+15005550006 --rate 10")
    assert.matches("summary: 2 sent", out, 1, true)
    local by = {}
    for _, m in ipairs(received("whatsapp:+141555560")) do by[m.to] = m end
    local ana, bo = by["whatsapp:+14155556001"], by["whatsapp:+14155556002"]
    assert.equal("Hi Ana, your order 1 has shipped. Reply STOP to opt out.", ana.body)
    assert.equal(cjson.null, ana.content_sid)
    assert.equal("HX0a1b2c3d4e5f60718293a4b5c6d7e8f9", bo.content_sid)
    assert.same({ ["1"] = "Bo", ["2"] = "2" }, cjson.decode(bo.content_variables))
  end)

  it("limits verification codes to 3 per number per 10 minutes and says how long to wait", function()
    for _ = 1, 3 do assert.matches("<Response%s*/>", inbound("+14155557001", "CODE")) end
    local reply = inbound("+14155557001", "CODE")
    assert.matches("try again in 10 minutes", reply, 1, true)
    local v = cjson.decode(sh("curl -s 'http://127.0.0.1:" .. sandbox.port ..
                              "/-/sandbox/verifications?To=%2B14155557001'")).verifications
    assert.equal(1, #v)
    assert.equal(3, v[1].send_attempts)
    assert.matches("your number is verified", inbound("+14155557001", "VERIFY " .. v[1].code), 1, true)
  end)

  it("draws a moving progress bar on a terminal", function()
    local numbers = {}
    for i = 1, 40 do numbers[i] = "+1415555" .. (8000 + i) end
    csv(dir .. "/tty.csv", numbers)
    local out = sh("script -qfec " .. q(ENV .. BUILD .. "/telua campaign --quiet-hours off --store sqlite:" .. db .. " --templates " ..
      dir .. "/rules/templates --csv " .. dir .. "/tty.csv --template order_shipped --from +15005550006 --rate 20") ..
      " /dev/null")
    local bars = {}
    for pct in out:gmatch("\r%[[#%-]+%]%s+(%d+)%%") do bars[#bars + 1] = tonumber(pct) end
    assert.is_true(#bars >= 3, out)
    assert.is_true(bars[#bars] == 100 and bars[1] < 100, "the bar did not move: " .. table.concat(bars, ","))
    assert.matches("summary: 40 sent", out, 1, true)
    assert.matches("\027[K", out, 1, true)
  end)

  it("reports a dry run without queueing anything", function()
    write(dir .. "/dry.csv", "phone,name,order,locale\n(415) 555-9001,Ana,1,es\nnope,Bo,2,en\n")
    local before = sh("sqlite3 " .. db .. " 'SELECT count(*) FROM outbox'")
    local out = campaign("--csv " .. dir .. "/dry.csv --template order_shipped --from +15005550006 --region US --dry-run")
    assert.matches("1 to send (2 segments)", out, 1, true)
    assert.matches("1 invalid", out, 1, true)
    assert.matches("line 3: nope is not a valid number", out, 1, true)
    assert.matches("forces UCS-2", out, 1, true)
    assert.matches("dry run: would send 1 messages, 2 segments, estimated cost $0.02", out, 1, true)
    assert.equal(before, sh("sqlite3 " .. db .. " 'SELECT count(*) FROM outbox'"))
  end)
end)
