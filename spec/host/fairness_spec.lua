-- The sender under a slow network: a proxy between the host and the sandbox
-- (spec/helpers/holdproxy.js) holds chosen requests back. One held send
-- must hold only its own slot, and after a kill -9 the reconciliation
-- lookups (answered late) must not hold back new sends. The sandbox's own
-- receive times are the measure.
local socket = require "socket"
local cjson = require "cjson"
local h = require "spec.helpers"
local H = require "spec.helpers.host"

local ROOT = h.root
local BUILD = os.getenv("TELUA_BUILD") or (ROOT .. "/build")
local SID = "AC" .. ("5"):rep(32)
local TOKEN = "fairness-spec-token"
local ENV = "env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " "

local wait_for = H.wait_for

local function csv(path, numbers)
  local f = assert(io.open(path, "wb"))
  f:write("phone,name,order\n")
  for i, n in ipairs(numbers) do f:write(n, ",N", i, ",", i, "\n") end
  f:close()
end

describe("the sender on a slow network", function()
  local dir, sandbox, proxy, host, hp

  local function start_host(proxy_port)
    hp = h.free_port()
    host = h.spawn(ENV .. "TELUA_RECONCILE_GRACE=1 TELUA_TWILIO_BASE_URL=http://127.0.0.1:" .. proxy_port .. " " ..
      BUILD .. "/telua serve --rules " .. dir .. "/rules --listen 127.0.0.1:" .. hp .. " --public-url http://127.0.0.1:" ..
      hp .. " --store sqlite:" .. dir .. "/telua.db --send-rates long_code=0 --send-concurrency 4", dir .. "/host.log")
  end

  local function campaign(name, file)
    return h.sh(ENV .. BUILD .. "/telua campaign --quiet-hours off --no-wait --store sqlite:" .. dir .. "/telua.db" ..
                " --templates " .. dir .. "/rules/templates --csv " .. file .. " --name " .. name ..
                " --template order_shipped --from +15005550006 2>&1; echo rc=$?")
  end

  local function start_proxy(hold_to, hold_ms, list_ms)
    local p = h.spawn("node " .. ROOT .. "/spec/helpers/holdproxy.js " .. sandbox.port .. " " .. hold_to .. " " ..
                      hold_ms .. " " .. list_ms, dir .. "/proxy.log")
    return p
  end

  local function proxy_stats(p)
    return cjson.decode(h.sh("curl -s http://127.0.0.1:" .. p.port .. "/-/proxy"))
  end

  before_each(function()
    dir = h.tmpdir()
    assert(os.execute("mkdir -p " .. dir .. "/rules && cp -r " .. ROOT .. "/rules/. " .. dir .. "/rules/"))
    sandbox = h.spawn(ENV .. BUILD .. "/telua sandbox --listen 127.0.0.1:0 --mps 100000 --delivery-ms 50",
                      dir .. "/sandbox.log")
  end)

  after_each(function()
    if host then h.kill(host) end
    if proxy then h.kill(proxy) end
    h.kill(sandbox)
    host, proxy = nil, nil
    os.execute("rm -rf " .. dir)
  end)

  it("a send the network holds for 8 s holds only its own slot: the 20 after it go at once", function()
    proxy = start_proxy("+14155550999", 8000, 0)
    start_host(proxy.port)
    local numbers = { "+14155550999" }
    for i = 1, 20 do numbers[#numbers + 1] = "+1415555" .. (3000 + i) end
    csv(dir .. "/held.csv", numbers)
    local t0 = socket.gettime()
    assert.matches("rc=0", campaign("held", dir .. "/held.csv"), 1, true)
    -- all 20 others are at the sandbox while the held one is still out
    local got = wait_for(function()
      local n = #H.received(sandbox.port, "+1415555300") + #H.received(sandbox.port, "+1415555301") +
                #H.received(sandbox.port, "+1415555302")
      return n >= 20 and n
    end, 6)
    local t_all = socket.gettime() - t0
    io.stderr:write(("\n  20 sends behind a held one: %.2f s"):format(t_all))
    assert.are.equal(20, got, "the sends after the held one waited for it")
    assert.are.equal(0, #H.received(sandbox.port, "+14155550999"))
    assert.are.equal(1, proxy_stats(proxy).held)
    assert.is_true(t_all < 4, ("the 20 took %.2f s"):format(t_all))
    -- and the held one is filed when its answer comes, sent once
    assert.truthy(wait_for(function() return #H.received(sandbox.port, "+14155550999") == 1 end, 15))
    assert.truthy(wait_for(function()
      local out = h.sh("sqlite3 " .. dir .. "/telua.db \"SELECT count(*) FROM outbox WHERE state = 'sent'\"")
      return tonumber(out) == 21
    end, 10))
  end)

  it("after a kill -9, the lookups of what was in flight (answered 3 s late) do not hold back new sends", function()
    proxy = start_proxy("+1628555", 3000, 3000)
    start_host(proxy.port)
    local first = {}
    for i = 1, 4 do first[i] = "+1628555" .. (4000 + i) end
    csv(dir .. "/first.csv", first)
    assert.matches("rc=0", campaign("first", dir .. "/first.csv"), 1, true)
    -- the four are out (held by the network) when the host dies
    assert.truthy(wait_for(function() return proxy_stats(proxy).held == 4 end, 10))
    os.execute("kill -9 " .. host.pid)
    host.pipe:close()
    host = nil
    start_host(proxy.port)
    local later = {}
    for i = 1, 20 do later[i] = "+1415555" .. (5000 + i) end
    csv(dir .. "/later.csv", later)
    local t0 = socket.gettime()
    assert.matches("rc=0", campaign("later", dir .. "/later.csv"), 1, true)
    local got = wait_for(function()
      local n = #H.received(sandbox.port, "+14155555")
      return n >= 20 and n
    end, 6)
    local t_all = socket.gettime() - t0
    io.stderr:write(("\n  20 new sends beside the lookups after a kill -9: %.2f s"):format(t_all))
    assert.are.equal(20, got)
    assert.is_true(t_all < 2.5, ("the new sends took %.2f s behind the lookups"):format(t_all))
    assert.is_true(proxy_stats(proxy).lists >= 1) -- the lookups were out meanwhile
    -- the four were at Twilio (the network let them through): found, not resent
    assert.truthy(wait_for(function()
      local out = h.sh("sqlite3 " .. dir .. "/telua.db \"SELECT count(*) FROM outbox WHERE state = 'sent' " ..
                       "AND error = 'reconciled after a restart'\"")
      return tonumber(out) == 4
    end, 20))
    for _, n in ipairs(first) do assert.are.equal(1, #H.received(sandbox.port, n), n) end
  end)
end)
