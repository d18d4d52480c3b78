-- Rules that do HTTP inside the host: the call yields, the worker's I/O
-- thread runs it, and the worker serves other requests meanwhile. One
-- worker only, so a blocked worker would show.
local socket = require "socket"
local cjson = require "cjson"
local h = require "spec.helpers"

local ROOT = h.root
local BUILD = os.getenv("TELUA_BUILD") or (ROOT .. "/build")
local SID = "AC" .. ("2"):rep(32)
local TOKEN = "yield-spec-token"

local q, sh, spawn, kill, free_port = h.quote, h.sh, h.spawn, h.kill, h.free_port

-- a signed POST (signature by the official twilio library), timed
local function call(base, path, out)
  local url = base .. path
  local params = { { "CallSid", "CA" .. ("3"):rep(32) }, { "From", "+14155550100" }, { "To", "+15005550006" } }
  local sig = sh("node " .. ROOT .. "/spec/oracle/sign.js " .. q(TOKEN) .. " " .. q(url) .. " " .. q(cjson.encode(params)))
  local cmd = "curl -s -o " .. out .. " -w '%{http_code} %{time_total}' -H " .. q("X-Twilio-Signature: " .. sig) ..
    " --data 'CallSid=CA" .. ("3"):rep(32) .. "&From=%2B14155550100&To=%2B15005550006' " .. q(url)
  return cmd
end
local function get(base, path)
  local out = os.tmpname()
  local res = sh(call(base, path, out))
  local code, t = res:match("^(%d+) ([%d.]+)")
  local body = h.read_file(out)
  os.remove(out)
  return tonumber(code), body, tonumber(t)
end

describe("rules doing HTTP in the host", function()
  local dir, slow, sandbox, host, base

  setup(function()
    dir = h.tmpdir()
    local f = assert(io.open(dir .. "/slow.js", "wb"))
    f:write([[
const http = require('http');
const s = http.createServer((q, r) => setTimeout(() => { r.end('slow answer'); }, 1000));
s.listen(0, '127.0.0.1', () => console.log('port ' + s.address().port));
]])
    f:close()
    slow = spawn("node " .. dir .. "/slow.js", dir .. "/slow.log")
    sandbox = spawn("env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " " .. BUILD ..
                    "/telua sandbox --listen 127.0.0.1:0", dir .. "/sandbox.log")
    local rules = dir .. "/rules"
    assert(os.execute("mkdir -p " .. rules))
    f = assert(io.open(rules .. "/r.lua", "wb"))
    f:write(([[
local http = require "telua.http"
local twiml = require "telua.twiml"
local client = require("telua.client").new{ account_sid = "%s", auth_token = "%s", base_url = "http://127.0.0.1:%d" }
local function say(text) local r = twiml.voice(); r:say(text); return r end
return { voice = {
  ["/voice/slow"] = function() local res, err = http.request{ url = "http://127.0.0.1:%d/" }; return say(res and res.body or err) end,
  ["/voice/fast"] = function() return say("fast") end,
  ["/voice/sleep"] = function() http.sleep(0.3); return say("slept") end,
  ["/voice/batch"] = function()
    local rs = http.batch{ { url = "http://127.0.0.1:%d/" }, { url = "http://127.0.0.1:%d/" } }
    return say(rs[1].body .. " + " .. rs[2].body)
  end,
  ["/voice/client"] = function(req)
    local m, err = client.messages.create{ to = req.from, from = "+15005550006", body = "on its way" }
    return say(m and m.sid or tostring(err))
  end,
  ["/voice/bad"] = function() local res, err, code = http.request{ url = "ftp://x" }; return say(tostring(code)) end,
  ["/voice/yield"] = function() coroutine.yield("something") return say("no") end,
} }
]]):format(SID, TOKEN, sandbox.port, slow.port, slow.port, slow.port))
    f:close()
    local hp = free_port()
    base = "http://127.0.0.1:" .. hp
    host = spawn("env TWILIO_AUTH_TOKEN=" .. TOKEN .. " " .. BUILD .. "/telua serve --rules " .. rules ..
                 " --listen 127.0.0.1:" .. hp .. " --public-url " .. base .. " --workers 1 --cpu-ms 100",
                 dir .. "/host.log")
  end)

  teardown(function()
    if host then kill(host) end
    kill(sandbox)
    kill(slow)
  end)

  it("answers others while a rule waits on a slow upstream (one worker)", function()
    local out = os.tmpname()
    local bg = assert(io.popen(call(base, "/voice/slow", out)))
    socket.sleep(0.2)
    local code, body, t = get(base, "/voice/fast")
    assert.equal(200, code)
    assert.matches("<Say>fast</Say>", body)
    assert.is_true(t < 0.5, "the fast request waited " .. t .. " s behind the slow one")
    local res = bg:read("*a")
    bg:close()
    local scode, st = res:match("^(%d+) ([%d.]+)")
    assert.equal("200", scode)
    assert.is_true(tonumber(st) >= 0.9)
    -- the wait did not count against the 100 ms CPU budget
    assert.matches("<Say>slow answer</Say>", h.read_file(out))
    os.remove(out)
  end)

  it("sleeps without blocking, and runs a batch", function()
    local code, body, t = get(base, "/voice/sleep")
    assert.equal(200, code)
    assert.matches("slept", body)
    assert.is_true(t >= 0.29)
    code, body, t = get(base, "/voice/batch")
    assert.equal(200, code)
    assert.matches("slow answer %+ slow answer", body)
    assert.is_true(t < 1.9, "the two requests of a batch run at once")
  end)

  it("lets a rule use telua.client (the sandbox gets the message)", function()
    local code, body = get(base, "/voice/client")
    assert.equal(200, code)
    local sid = body:match("<Say>(SM%x+)</Say>")
    assert.truthy(sid, body)
    local res = cjson.decode(sh("curl -s http://127.0.0.1:" .. sandbox.port .. "/-/sandbox/messages"))
    assert.equal(sid, res.messages[#res.messages].sid)
  end)

  it("gives bad options back as an error value, and a stray yield the fallback", function()
    local _, body = get(base, "/voice/bad")
    assert.matches("<Say>bad_request</Say>", body)
    local code, fb = get(base, "/voice/yield")
    assert.equal(200, code)
    assert.matches("application error", fb)
    assert.matches("only telua.http", h.read_file(dir .. "/host.log"))
  end)

  it("stops cleanly while a rule waits: no new connections, the waiting request answered", function()
    local out = os.tmpname()
    local bg = assert(io.popen(call(base, "/voice/slow", out)))
    socket.sleep(0.2)
    local t0 = socket.gettime()
    os.execute("kill " .. host.pid) -- not kill(): that waits for the exit
    socket.sleep(0.2)
    assert.is_true(os.execute("kill -0 " .. host.pid .. " 2>/dev/null") == true, "the host is draining")
    local refused = sh("curl -s -o /dev/null -w '%{http_code}' " .. q(base .. "/-/health") .. "; true")
    assert.equal("000", refused)
    local res = bg:read("*a")
    bg:close()
    assert.equal("200", res:match("^(%d+)"))
    assert.matches("<Say>slow answer</Say>", h.read_file(out))
    os.remove(out)
    host.pipe:close()
    assert.is_true(socket.gettime() - t0 < 5)
    local deadline = socket.gettime() + 5
    local alive = true
    while socket.gettime() < deadline do
      alive = os.execute("kill -0 " .. host.pid .. " 2>/dev/null") == true
      if not alive then break end
      socket.sleep(0.1)
    end
    assert.is_false(alive)
    assert.not_matches("AddressSanitizer", h.read_file(dir .. "/host.log"))
    host = nil
  end)
end)

describe("rules doing Redis in the host", function()
  local dir, redis, host, base
  local R = require "spec.helpers.redis"

  setup(function()
    dir = h.tmpdir()
    redis = R.start{ appendonly = true, args = { "--enable-debug-command", "local" } }
    assert(assert(require("telua.store").open(redis.url)):kv_set("greeting", "text", "hello from redis"))
    local rules = dir .. "/rules"
    assert(os.execute("mkdir -p " .. rules))
    local f = assert(io.open(rules .. "/r.lua", "wb"))
    f:write([[
local twiml = require "telua.twiml"
local function say(text) local r = twiml.voice(); r:say(text); return r end
return { voice = {
  ["/voice/store"] = function(req)
    local v, err = req.store:kv_get("greeting", "text")
    return say(tostring(v or err))
  end,
  ["/voice/must"] = function(req) return say(assert(req.store:kv_get("greeting", "text"))) end,
  ["/voice/fast"] = function() return say("fast") end,
} }
]])
    f:close()
    local hp = free_port()
    base = "http://127.0.0.1:" .. hp
    host = spawn("env TWILIO_AUTH_TOKEN=" .. TOKEN .. " " .. BUILD .. "/telua serve --rules " .. rules ..
                 " --listen 127.0.0.1:" .. hp .. " --public-url " .. base .. " --workers 1 --cpu-ms 100 --store " ..
                 q(redis.url .. "?timeout=3"), dir .. "/host.log")
  end)

  teardown(function()
    if host then kill(host) end
    redis:destroy()
  end)

  it("a rule's store call waits for Redis without holding the worker (one worker)", function()
    assert.matches("<Say>hello from redis</Say>", (select(2, get(base, "/voice/store"))))
    -- Redis busy for 1.5 s (DEBUG SLEEP on another connection): the rule waits, the worker does not.
    -- (Long enough that on a loaded machine, where starting redis-cli and curl takes a few
    -- hundred ms, the rule's call still lands well inside the sleep.)
    local busy = assert(io.popen("redis-cli -p " .. redis.port .. " DEBUG SLEEP 1.5"))
    socket.sleep(0.3)
    local out = os.tmpname()
    local bg = assert(io.popen(call(base, "/voice/store", out)))
    socket.sleep(0.1)
    local code, body, t = get(base, "/voice/fast")
    assert.equal(200, code)
    assert.matches("<Say>fast</Say>", body)
    assert.is_true(t < 0.4, "the fast request waited " .. t .. " s behind the one waiting on Redis")
    local res = bg:read("*a")
    bg:close()
    busy:close()
    local scode, st = res:match("^(%d+) ([%d.]+)")
    assert.equal("200", scode)
    assert.is_true(tonumber(st) >= 0.5, "the store call did not wait for Redis (" .. st .. " s)")
    -- the wait did not count against the 100 ms CPU budget
    assert.matches("<Say>hello from redis</Say>", h.read_file(out))
    os.remove(out)
  end)

  it("Redis down: a store call gets nil, err; a rule that raises on it gets the fallback TwiML", function()
    redis:stop()
    local code, body = get(base, "/voice/store")
    assert.equal(200, code)
    assert.matches("<Say>redis: [^<]+</Say>", body)
    code, body = get(base, "/voice/must")
    assert.equal(200, code)
    assert.matches("an application error has occurred", body)
    assert.matches("<Say>fast</Say>", (select(2, get(base, "/voice/fast"))))
    redis:start_again()
    -- back by itself (a failed connect makes the worker's calls fail at once for 250 ms)
    local back
    for _ = 1, 20 do
      back = select(2, get(base, "/voice/store"))
      if back:find("hello from redis", 1, true) then break end
      socket.sleep(0.1)
    end
    assert.matches("<Say>hello from redis</Say>", back)
  end)
end)
