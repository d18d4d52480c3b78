-- A rule that sends through telua.client inside nginx does not hold its
-- worker: while one webhook's rule waits 2 s on a slow Twilio, 100 other
-- requests on the same single worker are answered, the slowest within
-- 50 ms. With the libcurl transport forced (`http.use("libcurl")`) the
-- same requests wait for the send: that is what the cosocket transport
-- exists to avoid, and the second case shows it.
local h = require "spec.helpers"
local hh = require "spec.helpers.host"
local nginx = require "spec.helpers.nginx"
local socket = require "socket"

local q = h.quote
local SID, TOKEN, PUBLIC = "AC" .. ("2"):rep(32), hh.TOKEN, hh.PUBLIC

local RULE = [[
local client = require "telua.client"
local twiml = require "telua.twiml"
return {
  messages = {
    { path = "/sms/slow", handler = function(req)
        local c = assert(client.new{ account_sid = %q, auth_token = "x", base_url = %q, max_retries = 0 })
        local m, err = c.messages.create{ to = "+14155550100", from = "+15005550006", body = "slow" }
        local r = twiml.messaging()
        r:message(m and ("sent " .. m.sid) or ("failed " .. tostring(err)))
        return r
      end },
  },
}
]]

describe("a rule's send inside nginx", function()
  local dir, twilio

  setup(function()
    dir = h.tmpdir()
    assert(os.execute("chmod 777 " .. q(dir)))
    -- the slow "Twilio": answers a message create after 2 s
    twilio = nginx.start{
      server = [[
        location ~ ^/2010-04-01/Accounts/[^/]+/Messages.json$ {
          content_by_lua_block {
            ngx.sleep(2)
            ngx.status = 201
            ngx.header["Content-Type"] = "application/json"
            ngx.print('{"sid": "SM00000000000000000000000000000001", "status": "queued", "num_segments": "1"}')
          }
        }
      ]],
    }
  end)
  teardown(function()
    if twilio then twilio:clean_up() end
    os.execute("rm -rf " .. q(dir))
  end)

  -- One worker serving the rule; returns the slowest of 100 pings sent
  -- while the rule waits, the slow webhook's answer, and its time.
  local function run(force_libcurl)
    local rules = dir .. (force_libcurl and "/rules-curl" or "/rules-cosocket")
    assert(os.execute("mkdir -p " .. q(rules)))
    local f = assert(io.open(rules .. "/slow.lua", "w"))
    f:write(RULE:format(SID, twilio.base))
    f:close()
    local srv = nginx.start{
      workers = 1,
      init = ([[
        %s
        assert(require("telua.ngx").init{ rules = %q, store = %q, public_url = %q, auth_token = %q, sender = false })
      ]]):format(force_libcurl and 'require("telua.http").use("libcurl")' or "", rules,
                 "sqlite:" .. rules .. ".db", PUBLIC, TOKEN),
      init_worker = [[ assert(require("telua.ngx").init_worker()) ]],
      server = [[
        location = /ping { return 200 "pong"; }
        location / { content_by_lua_block { require("telua.ngx").serve() } }
      ]],
    }
    local fields = hh.sms("hello")
    local body = hh.form(fields)
    local sig = hh.sign(PUBLIC .. "/sms/slow", fields)
    -- the slow webhook, in the background
    local out = dir .. "/slow.out"
    local t0 = socket.gettime()
    os.execute(("curl -s -o %s -w '%%{time_total}' -H 'X-Twilio-Signature: %s' -d %s %s/sms/slow > %s.time 2>&1 &")
               :format(q(out), sig, q(body), srv.base, q(out)))
    socket.sleep(0.3)
    -- 100 pings at once from one curl (--parallel), each timed by curl itself
    local cfg = dir .. "/pings.cfg"
    local c = assert(io.open(cfg, "w"))
    for _ = 1, 100 do c:write('url = "', srv.base, '/ping"\noutput = "/dev/null"\n') end
    c:close()
    local times = h.sh("curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max 100 -w '%{time_total}\\n' -K " .. q(cfg) .. " 2>/dev/null")
    local t_pings = socket.gettime() - t0
    local slowest, n = 0, 0
    for t in times:gmatch("[%d.]+") do
      n = n + 1
      slowest = math.max(slowest, tonumber(t))
    end
    assert(hh.wait_for(function() return (h.read_file(out .. ".time") or "") ~= "" end, 10), "the slow webhook did not end")
    local answer = h.read_file(out) or ""
    local slow_took = tonumber(h.read_file(out .. ".time"))
    local log = srv:error_log()
    srv:clean_up()
    return { slowest = slowest, n = n, answer = answer, slow_took = slow_took, pings_done = t_pings, log = log }
  end

  it("answers 100 other requests on the same worker while the rule waits on cosockets, within 50 ms", function()
    local r = run(false)
    print(("# slowest of %d pings: %.4f s (cosocket)"):format(r.n, r.slowest))
    assert.are.equal(100, r.n)
    assert.matches("sent SM00000000000000000000000000000001", r.answer, 1, true)
    assert.is_true(r.slow_took >= 1.9, "the slow send took " .. r.slow_took .. " s")
    assert.is_true(r.pings_done < 1.9, "the pings ended after the slow send: " .. r.pings_done)
    assert.is_true(r.slowest < 0.05, ("slowest ping %.3f s"):format(r.slowest))
  end)

  it("with the libcurl transport forced, the same pings wait for the send (the worker is held)", function()
    local r = run(true)
    print(("# slowest of %d pings: %.4f s (libcurl forced)"):format(r.n, r.slowest))
    assert.are.equal(100, r.n)
    assert.matches("sent SM00000000000000000000000000000001", r.answer, 1, true)
    assert.is_true(r.slowest > 1.0, ("slowest ping %.3f s"):format(r.slowest))
  end)
end)
