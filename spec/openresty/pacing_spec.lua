-- Pacing inside nginx: the GCRA store shared by all workers (telua.gcra.share
-- in init_by_lua, decisions atomic across processes), and the store's Redis
-- pacer spoken to over cosockets, one schedule with another host.
local h = require "spec.helpers"
local nginx = require "spec.helpers.nginx"
local redis_helper = require "spec.helpers.redis"
local socket = require "socket"

local q = h.quote

-- N requests over `parallel` connections at once (curl --parallel); the bodies.
local function hammer(srv, target, n, parallel)
  local cfg = os.tmpname()
  local f = assert(io.open(cfg, "w"))
  for _ = 1, n do f:write('url = "', srv.base, target, '"\n') end
  f:close()
  local out = h.sh("curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max " .. parallel ..
                   " -K " .. q(cfg) .. " 2>/dev/null")
  os.remove(cfg)
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines
end

-- what the workers answered: admitted count, and the set of worker pids that answered
local function tally(lines)
  local admitted, pids, n = 0, {}, 0
  for _, l in ipairs(lines) do
    local verdict, pid = l:match("^(%a+) (%d+)$")
    if verdict then
      n = n + 1
      pids[pid] = true
      if verdict == "ok" then admitted = admitted + 1 end
    end
  end
  local workers = 0
  for _ in pairs(pids) do workers = workers + 1 end
  return admitted, workers, n
end

-- One limit (10/s, burst 1000) decided at one instant: exactly the burst
-- goes, however the workers interleave.
local TAKE = [[
  location = /take {
    content_by_lua_block {
      local gcra = require "telua.gcra"
      local ok, lim = pcall(gcra.new, { rate = 10, burst = 1000, per_process = PER_PROCESS })
      if not ok then ngx.say("error ", lim) return end
      local d = lim:incoming_at(7000, "+14155550100")
      ngx.say(d and "ok " or "no ", ngx.worker.pid())
    }
  }
]]

describe("pacing inside nginx", function()
  it("shares one schedule across 2 workers: 3,000 racing requests admit exactly the burst", function()
    local srv = nginx.start{ workers = 2, init = 'PER_PROCESS = false assert(require("telua.gcra").share())',
                             server = TAKE, reuseport = true }
    local lines = hammer(srv, "/take", 3000, 64)
    local admitted, workers, n = tally(lines)
    srv:clean_up()
    assert.are.equal(3000, n, lines[1])
    print(("# shared: %d admitted of %d, answered by %d workers"):format(admitted, n, workers))
    assert.are.equal(2, workers, "both workers must have answered for the test to mean something")
    assert.are.equal(1000, admitted)
  end)

  it("per process (no share), each worker admits the whole burst: what share() prevents", function()
    local srv = nginx.start{ workers = 2, init = "PER_PROCESS = true", server = TAKE, reuseport = true }
    local lines = hammer(srv, "/take", 3000, 64)
    local admitted, workers, n = tally(lines)
    srv:clean_up()
    assert.are.equal(3000, n)
    print(("# per process: %d admitted of %d, answered by %d workers"):format(admitted, n, workers))
    assert.are.equal(2, workers)
    assert.is_true(admitted > 1000, tostring(admitted))
  end)

  it("keeps the schedule across nginx -s reload (the master keeps the shared store)", function()
    local srv = nginx.start{ workers = 1, init = 'PER_PROCESS = false assert(require("telua.gcra").share())',
                             server = TAKE }
    local before = tally(hammer(srv, "/take", 1500, 8))
    os.execute("kill -HUP " .. srv.pid)
    local old = srv:workers()[1]
    assert.is_true(require("spec.helpers.host").wait_for(function()
      local w = srv:workers()
      return #w == 1 and w[1] ~= old
    end, 5), "no new worker after the reload")
    local after = tally(hammer(srv, "/take", 500, 8))
    srv:clean_up()
    assert.are.equal(1000, before)
    assert.are.equal(0, after)
  end)

  it("refuses a per-process limiter inside nginx unless asked for, saying what to do", function()
    local srv = nginx.start{ workers = 1, init = "PER_PROCESS = nil", server = TAKE }
    local _, body = srv:request("GET", "/take")
    srv:clean_up()
    assert.matches("each worker would pace alone", body, 1, true)
    assert.matches("share()", body, 1, true)
  end)
end)

-- Each of 2 workers polls two limits (1/s and 80/s, burst 2) every
-- millisecond for 20 s from a timer, and records what it was admitted.
local POLL = [[
  local gcra = require "telua.gcra"
  local function poll(premature)
    if premature then return end
    local limits = { { "r1", gcra.new{ rate = 1, burst = 2 } }, { "r80", gcra.new{ rate = 80, burst = 2 } } }
    local d, id = ngx.shared.admitted, ngx.worker.id()
    local stop = gcra.now() + DURATION
    while gcra.now() < stop do
      for _, l in ipairs(limits) do
        if l[2]:incoming("+14155550100") == 0 then d:rpush(l[1], string.format("%.6f %d", gcra.now(), id)) end
      end
      ngx.sleep(0.001)
    end
    d:set("done" .. id, true)
  end
  assert(ngx.timer.at(0, poll))
]]

describe("pacing across 2 nginx workers over time", function()
  it("holds 1/s and 80/s within 1 % over 20 s, both workers sending", function()
    local srv = nginx.start{
      workers = 2, http = "lua_shared_dict admitted 4m;",
      init = 'DURATION = 20 assert(require("telua.gcra").share())', init_worker = POLL,
      server = [[
        location = /admitted {
          content_by_lua_block {
            local d = ngx.shared.admitted
            if not (d:get("done0") and d:get("done1")) then ngx.say("running") return end
            for _, k in ipairs({ "r1", "r80" }) do
              ngx.say(k, " ", d:llen(k))
              while true do local v = d:lpop(k) if not v then break end ngx.say(v) end
            end
          }
        }
      ]],
    }
    local out
    local done = require("spec.helpers.host").wait_for(function()
      local _, body = srv:request("GET", "/admitted")
      out = body
      return body ~= "running\n"
    end, 40)
    srv:clean_up()
    assert.is_true(done, "the workers did not finish")
    local times, by_worker, key = { r1 = {}, r80 = {} }, { r1 = {}, r80 = {} }, nil
    for line in out:gmatch("[^\n]+") do
      local k = line:match("^(r%d+) %d+$")
      if k then key = k else
        local t, id = line:match("^([%d.]+) (%d)$")
        times[key][#times[key] + 1] = tonumber(t)
        by_worker[key][id] = (by_worker[key][id] or 0) + 1
      end
    end
    for k, rate in pairs({ r1 = 1, r80 = 80 }) do
      local a = times[k]
      table.sort(a)
      -- burst 2 at the start, then one per interval: admitted k at a[2] + (k - 2) / rate
      local measured = (#a - 2) / (a[#a] - a[2])
      print(("# %s: %d admitted, %.4f/s (%d and %d by the two workers)"):format(k, #a, measured,
            by_worker[k]["0"] or 0, by_worker[k]["1"] or 0))
      assert.is_true(math.abs(measured - rate) / rate < 0.01, k .. ": " .. measured)
      assert.is_true((by_worker[k]["0"] or 0) > 0 and (by_worker[k]["1"] or 0) > 0, k .. ": one worker only")
      assert.is_true(#a >= 2 + rate * 19, k .. ": " .. #a) -- admitted over the whole 20 s
    end
  end)
end)

describe("the Redis store inside nginx (cosockets)", function()
  local redis, srv, dir

  setup(function()
    redis = redis_helper.start{ password = "s3cret-pw" }
    dir = h.tmpdir()
    srv = nginx.start{
      workers = 2, reuseport = true,
      init = ("S = {} URL = %q"):format(("redis://:s3cret-pw@127.0.0.1:%d/2?prefix=ngx:"):format(redis.port)),
      server = [[
        location = /pace {
          content_by_lua_block {
            S.store = S.store or assert(require("telua.store").open(URL, { connect = false }))
            local d, _, taken = S.store:pacer():decide({ { key = "+14155550100", rate = 10, burst = 1, queue = 3600 } }, 1, 3600)
            ngx.update_time()
            ngx.say(string.format("%.6f %s %s", ngx.now() + (d or -1), tostring(taken), ngx.worker.pid()))
          }
        }
        location = /optout {
          content_by_lua_block {
            S.store = S.store or assert(require("telua.store").open(URL, { connect = false }))
            local n = ngx.unescape_uri(ngx.var.arg_n)
            assert(S.store:optout_add("+14155550100", n, "STOP"))
            local out, err = S.store:is_opted_out("+14155550100", n)
            ngx.print(tostring(out), " ", tostring(err), " ", ngx.get_phase())
          }
        }
        location = /down {
          content_by_lua_block {
            local s = assert(require("telua.store").open("redis://127.0.0.1:1/0", { connect = false }))
            local out, err, code = s:is_opted_out("+14155550100", "+14155550101")
            ngx.print(tostring(out), "|", tostring(err), "|", tostring(code))
          }
        }
      ]],
    }
  end)
  teardown(function()
    if srv then srv:clean_up() end
    if redis then redis:destroy() end
    os.execute("rm -rf " .. q(dir))
  end)

  it("writes and reads the store (AUTH and SELECT on a new pooled connection)", function()
    local _, body = srv:request("GET", "/optout?n=%2B14155550123")
    assert.are.equal("true nil content", body)
    -- read apart from nginx, in db 2 under the prefix
    local store = assert(require("telua.store").open(("redis://:s3cret-pw@127.0.0.1:%d/2?prefix=ngx:"):format(redis.port)))
    assert.is_true(store:is_opted_out("+14155550100", "+14155550123"))
    store:close()
  end)

  it("answers nil, message, code when Redis cannot be reached", function()
    local _, body = srv:request("GET", "/down")
    assert.matches("^nil|redis: cannot connect to .-|connect$", body)
  end)

  it("hands out one schedule to nginx's workers and another host together", function()
    local slots = {}
    local lines = hammer(srv, "/pace", 60, 16)
    for _, l in ipairs(lines) do
      local at, taken = l:match("^([%d.]+) (%a+) %d+$")
      assert(at, l)
      assert.are.equal("true", taken)
      slots[#slots + 1] = tonumber(at)
    end
    -- the other host: this process, on the same Redis and keys
    local store = assert(require("telua.store").open(("redis://:s3cret-pw@127.0.0.1:%d/2?prefix=ngx:"):format(redis.port)))
    local p = store:pacer()
    for _ = 1, 40 do
      local d, _, taken = p:decide({ { key = "+14155550100", rate = 10, burst = 1, queue = 3600 } }, 1, 3600)
      assert.is_true(taken)
      slots[#slots + 1] = socket.gettime() + d
    end
    store:close()
    table.sort(slots)
    assert.are.equal(100, #slots)
    -- one schedule at 10/s: consecutive slots 0.1 s apart, less the skew of reading
    -- two clocks after the answer (ms, tens of ms on a loaded machine). Two schedules
    -- side by side would put some slot within 0.05 s of another (two grids 0.1 s apart
    -- are never further apart than that), and would span about 6 s, not 9.9.
    local closest = math.huge
    for i = 2, #slots do closest = math.min(closest, slots[i] - slots[i - 1]) end
    print(("# closest two of 100 slots: %.4f s apart (10/s: 0.1)"):format(closest))
    assert.is_true(closest > 0.06, tostring(closest))
    assert.is_true(slots[#slots] - slots[1] > 9.8)
  end)
end)

describe("the Redis store over TLS inside nginx", function()
  it("verifies the server against lua_ssl_trusted_certificate, and refuses it without", function()
    local redis = redis_helper.start{ tls = true }
    -- (the certificate names localhost; cosockets connect to the IP and check the name given)
    local url = "rediss://127.0.0.1:" .. redis.tls_port .. "/0?servername=localhost"
    local location = [[
      location = /tls {
        content_by_lua_block {
          local s = assert(require("telua.store").open(URL, { connect = false }))
          local out, err, code = s:is_opted_out("+14155550100", "+14155550101")
          ngx.print(tostring(out), "|", tostring(err), "|", tostring(code))
        }
      }
    ]]
    local trusted = nginx.start{ http = "lua_ssl_trusted_certificate " .. redis.cainfo .. ";",
                                 init = ("URL = %q"):format(url), server = location }
    local _, ok_body = trusted:request("GET", "/tls")
    trusted:clean_up()
    local bare = nginx.start{ init = ("URL = %q"):format(url), server = location }
    local _, bad_body = bare:request("GET", "/tls")
    bare:clean_up()
    redis:destroy()
    assert.are.equal("false|nil|nil", ok_body)
    assert.matches("^nil|redis: TLS handshake failed.-|tls$", bad_body)
  end)
end)
