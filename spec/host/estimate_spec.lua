-- The campaign estimate is the time the sender takes: `telua campaign
-- --dry-run` for a long code, a toll-free number and a short code against a
-- host at its default pacing (1, 3 and 100 segments a second, a burst of
-- max(10, rate)), then the three campaigns sent at once through the
-- sandbox. The sandbox's receive times are the measure; each campaign's
-- span must be within 5 % of its estimate.
local socket = require "socket"
local h = require "spec.helpers"
local H = require "spec.helpers.host"

local ROOT = h.root
local BUILD = os.getenv("TELUA_BUILD") or (ROOT .. "/build")
local SID = "AC" .. ("6"):rep(32)
local TOKEN = "estimate-spec-token"
local ENV = "env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " "

local CASES = {
  { name = "long", from = "+15005550006", prefix = "+1415556", count = 40 },   -- (40 - 10) / 1 s
  { name = "tollfree", from = "+18005550100", prefix = "+1628556", count = 100 }, -- (100 - 10) / 3 s
  { name = "short", from = "12345", prefix = "+1917556", count = 3100 },       -- (3100 - 100) / 100 s
}

describe("telua campaign's estimate", function()
  local dir, sandbox, host

  setup(function()
    dir = h.tmpdir()
    assert(os.execute("mkdir -p " .. dir .. "/rules && cp -r " .. ROOT .. "/rules/. " .. dir .. "/rules/"))
    sandbox = h.spawn(ENV .. BUILD .. "/telua sandbox --listen 127.0.0.1:0 --mps 100000 --delivery-ms 50",
                      dir .. "/sandbox.log")
    local hp = h.free_port()
    host = h.spawn(ENV .. "TELUA_TWILIO_BASE_URL=http://127.0.0.1:" .. sandbox.port .. " " .. BUILD ..
      "/telua serve --rules " .. dir .. "/rules --listen 127.0.0.1:" .. hp .. " --public-url http://127.0.0.1:" .. hp ..
      " --store sqlite:" .. dir .. "/telua.db", dir .. "/host.log")
  end)

  teardown(function()
    if host then h.kill(host) end
    h.kill(sandbox)
    os.execute("rm -rf " .. dir)
  end)

  local function campaign(c, extra)
    return h.sh(ENV .. BUILD .. "/telua campaign --quiet-hours off --store sqlite:" .. dir .. "/telua.db --templates " ..
                dir .. "/rules/templates --csv " .. dir .. "/" .. c.name .. ".csv --name " .. c.name ..
                " --template order_shipped --from " .. c.from .. " " .. extra .. " 2>&1; echo rc=$?")
  end

  it("for a long code, a toll-free number and a short code is the time the sender takes, within 5 %", function()
    for _, c in ipairs(CASES) do
      local f = assert(io.open(dir .. "/" .. c.name .. ".csv", "wb"))
      f:write("phone,name,order\n")
      for i = 1, c.count do f:write(("%s%04d,N%d,%d\n"):format(c.prefix, i, i, i)) end
      f:close()
      local out = campaign(c, "--dry-run")
      assert.matches("rc=0", out, 1, true)
      c.estimate = tonumber(out:match("estimate: about [%d:]+ %(([%d.]+) s%)"))
      assert.is_number(c.estimate, out)
    end
    -- the three at once: each sender type is paced on its own
    for _, c in ipairs(CASES) do
      assert.matches("rc=0", campaign(c, "--no-wait"), 1, true)
    end
    local deadline = socket.gettime() + 90
    for _, c in ipairs(CASES) do
      local got
      repeat
        got = H.received(sandbox.port, c.prefix)
        if #got < c.count then socket.sleep(0.5) end
      until #got >= c.count or socket.gettime() > deadline
      assert.are.equal(c.count, #got, c.name)
      -- (receive times are on the sandbox's monotonic clock: the span from
      -- the first, which goes at once, to the last)
      local first, last = math.huge, 0
      for _, m in ipairs(got) do
        first, last = math.min(first, m.received_at), math.max(last, m.received_at)
      end
      c.took = last - first
    end
    for _, c in ipairs(CASES) do
      io.stderr:write(("\n  %s: estimate %.1f s, took %.2f s"):format(c.name, c.estimate, c.took))
      assert.is_true(math.abs(c.took - c.estimate) <= 0.05 * c.estimate,
        ("%s: estimate %.1f s, the sender took %.2f s"):format(c.name, c.estimate, c.took))
    end
  end)
end)
