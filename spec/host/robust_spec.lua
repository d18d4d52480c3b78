-- No rule can crash, wedge or unbound the host (issue 11): each case runs
-- against the real binary, and after each the host must still answer.
local socket = require "socket"
local cjson = require "cjson"
local h = require "spec.helpers"
local H = require "spec.helpers.host"

local BUILD = H.BUILD
local sh, q = h.sh, h.quote

local FAULTS = [[
local twiml = require "telua.twiml"
local function say(t) local r = twiml.voice() r:say(t) return r end
-- a coroutine made at load time, run later from a handler
local spinner = coroutine.wrap(function() while true do end end)
local kept = {}
return { voice = {
  ["/voice/ok"] = function() return say("ok") end,
  ["/voice/status-abc"] = function() return { status = "abc", body = "x" } end,
  ["/voice/status-float"] = function() return { status = 1.5, body = "x" } end,
  ["/voice/status-huge"] = function() return { status = 99999, body = "x" } end,
  ["/voice/body-number"] = function() return { status = 200, body = 42 } end,
  ["/voice/ctype-crlf"] = function() return { body = "x", content_type = "text/xml\r\nSet-Cookie: a=b" } end,
  ["/voice/fill"] = function() local t = {} for i = 1, 1e9 do t[i] = { i } end end,
  ["/voice/fill-kept"] = function() for i = 1, 1e9 do kept[#kept + 1] = { i } end end,
  ["/voice/load-co"] = function() spinner() return say("no") end,
  ["/voice/new-co"] = function() local co = coroutine.create(function() while true do end end)
    coroutine.resume(co) return say("no") end,
  ["/voice/pattern"] = function() return say(tostring(("a"):rep(400):find((".-"):rep(8) .. "b"))) end,
  ["/voice/pcall-pattern"] = function()
    for _ = 1, 1e6 do pcall(string.find, ("a"):rep(400), (".-"):rep(8) .. "b") end return say("no") end,
  ["/voice/spin"] = function() local t0 = os.clock() while os.clock() - t0 < 2 do end return say("spun") end,
  ["/voice/http-in-co"] = function()
    local http = require "telua.http"
    local ok, err = coroutine.wrap(function() return pcall(http.sleep, 1000) end)()
    return say(tostring(ok) .. " " .. tostring(err):match("waits only inside a request's handler") ) end,
  ["/voice/sleep-long"] = function() require("telua.http").sleep(1e6) return say("woke") end,
} }
]]

-- Reports, as JSON, what the rules' globals hold
local ESCAPES = [[
local cjson = require "cjson"
local function kind(f) local ok, v = pcall(f) if not ok then return "error: " .. tostring(v) end return type(v) end
return { voice = { ["/voice/escapes"] = function()
  local r = {
    debug = type(debug), os_exit = kind(function() return os.exit end),
    os_execute = kind(function() return os.execute end), io_popen = kind(function() return io.popen end),
    os_remove = kind(function() return os.remove end), package = type(package),
    dofile = type(dofile), load = type(load),
    token = tostring(os.getenv("TWILIO_AUTH_TOKEN")), sid = tostring(os.getenv("TWILIO_ACCOUNT_SID")),
    home = tostring(os.getenv("HOME") ~= nil),
  }
  r.write = tostring((select(2, pcall(io.open, "/dev/null", "w"))))
  r.read_outside = tostring((select(2, pcall(io.open, "/etc/passwd"))))
  r.read_proc = tostring((select(2, pcall(io.open, "../../proc/self/environ"))))
  local f = io.open("data.txt")
  r.read_inside = f and f:read("a") or "nil"
  r.binary = tostring((select(2, pcall(load, string.dump and string.dump(function() end) or "\27Lua", "x", "b"))))
  r.string_dump = type(string.dump)
  r.set_string = tostring((select(2, pcall(function() string.format = nil end))))
  r.string_mt = tostring(getmetatable(""))
  r.core = tostring((select(2, pcall(require, "telua.core"))))
  r.sethook = tostring((select(2, pcall(function() return debug.sethook() end))))
  r.gc_stop = tostring((select(2, pcall(collectgarbage, "stop"))))
  local env = {}
  r.load_env = tostring(load("return os", "x", "t")() == os)
  return { status = 200, content_type = "application/json", body = cjson.encode(r) }
end } }
]]

local function fresh_rules(files)
  local dir = h.tmpdir()
  for name, text in pairs(files) do H.write(dir .. "/" .. name, text) end
  return dir
end

local started = H.started

local function elapsed(fn)
  local t0 = socket.gettime()
  local a, b, c = fn()
  return socket.gettime() - t0, a, b, c
end

describe("a bad rule", function()
  after_each(H.clean_up)
  local dir, host

  setup(function()
    dir = fresh_rules{ ["faults.lua"] = FAULTS }
    host = assert(H.start{ rules = dir, cpu_ms = 100, args = "--mem-mb 12" }) -- filling 12 MiB takes about 40 ms of the 100 ms budget here
  end)

  teardown(function()
    if host then host:stop() end
    os.execute("rm -rf " .. dir)
  end)

  local function still_serving()
    for _ = 1, 4 do -- both workers
      local code, body = host:twilio("/voice/ok", H.CALL)
      assert.are.equal(200, code)
      assert.matches("<Say>ok</Say>", body, 1, true)
    end
    assert.is_true(host:alive())
  end

  it("answering a status that is no HTTP status gets a 500, logged with its file:line", function()
    for _, path in ipairs{ "/voice/status-abc", "/voice/status-float", "/voice/status-huge", "/voice/body-number",
                           "/voice/ctype-crlf" } do
      local code, body, headers = host:twilio(path, H.CALL)
      assert.are.equal(500, code, path)
      assert.are.equal("rule answered a bad result\n", body)
      assert.is_nil(headers["set-cookie"])
    end
    local logs = host:logs()
    assert.matches("faults.lua:8 answered POST /voice/status-abc (generation 1) with a bad result: the answer's " ..
                   "status is \"abc\" (want an integer from 100 to 599)", logs, 1, true)
    assert.matches("status is 1.5 ", logs, 1, true)
    assert.matches("status is 99999 ", logs, 1, true)
    assert.matches("body is a number (want a string)", logs, 1, true)
    assert.matches("content_type is", logs, 1, true)
    still_serving()
  end)

  it("filling the memory cap with small allocations gets the fallback, and the host lives on", function()
    local t, code, body = elapsed(function() return host:twilio("/voice/fill", H.CALL) end)
    assert.are.equal(200, code)
    assert.are.equal(h.canonical_xml(H.FALLBACK_VOICE), h.canonical_xml(body))
    assert.is_true(t < 30)
    local logs = host:logs()
    assert.matches("faults.lua:%d+: not enough memory %(the state's cap is 12 MiB%)", logs)
    assert.is_nil(logs:find("CPU budget", 1, true)) -- the memory cap stopped it, not the budget
    still_serving()
    assert.is_true(host:status().memory_cap_hits >= 1)
  end)

  it("keeping the memory gets the fallback, and the generation is rebuilt with fresh states", function()
    local gen = host:status().generation
    local code, body = host:twilio("/voice/fill-kept", H.CALL)
    assert.are.equal(200, code)
    assert.are.equal(h.canonical_xml(H.FALLBACK_VOICE), h.canonical_xml(body))
    assert.is_true(H.wait_for(function() return host:status().generation == gen + 1 end))
    assert.matches("fresh states", host:logs(), 1, true)
    still_serving()
  end)

  it("a loop in a coroutine made at load time, or made by the rule, stops at the CPU budget", function()
    for _, path in ipairs{ "/voice/load-co", "/voice/new-co" } do
      local t, code, body = elapsed(function() return host:twilio(path, H.CALL) end)
      assert.are.equal(200, code)
      assert.are.equal(h.canonical_xml(H.FALLBACK_VOICE), h.canonical_xml(body))
      assert.is_true(t < 1.5, path .. " took " .. t)
    end
    assert.matches("CPU budget of " .. 100 * H.CPU_FACTOR .. " ms ran out at [^\n]*faults.lua:4", host:logs())
    still_serving()
  end)

  it("a pattern that backtracks for years stops at the CPU budget, pcall or not", function()
    for _, path in ipairs{ "/voice/pattern", "/voice/pcall-pattern" } do
      local t, code, body = elapsed(function() return host:twilio(path, H.CALL) end)
      assert.are.equal(200, code)
      assert.are.equal(h.canonical_xml(H.FALLBACK_VOICE), h.canonical_xml(body))
      assert.is_true(t < 1.5, path .. " took " .. t)
    end
    assert.matches("pattern matching exceeded the CPU budget of " .. 100 * H.CPU_FACTOR .. " ms", host:logs(), 1, true)
    still_serving()
  end)

  it("a 2 s loop stops at a 100 ms budget (no debug.sethook to switch it off)", function()
    local t, code, body = elapsed(function() return host:twilio("/voice/spin", H.CALL) end)
    assert.are.equal(200, code)
    assert.are.equal(h.canonical_xml(H.FALLBACK_VOICE), h.canonical_xml(body))
    assert.is_true(t < 1, "took " .. t)
  end)

  it("telua.http cannot block the worker from a rule's own coroutine", function()
    local code, body = host:twilio("/voice/http-in-co", H.CALL)
    assert.are.equal(200, code)
    assert.matches("<Say>false waits only inside a request's handler</Say>", body, 1, true)
  end)
end)

-- (--unsafe-rules: the rule reads debug.gethook. A hook set from C reads
-- as "external hook", none as nil.)
local HOOKS = [[
local twiml = require "telua.twiml"
local function say(t) local r = twiml.voice() r:say(t) return r end
return { voice = {
  ["/voice/hook"] = function()
    local co = coroutine.create(function() return tostring(debug.gethook()) end)
    local _, inner = coroutine.resume(co)
    return say(tostring(debug.gethook()) .. " " .. inner)
  end,
  ["/voice/spin-caught"] = function()
    local n = 0
    for _ = 1, 1e9 do pcall(function() while true do n = n + 1 end end) end
    return say("caught " .. n)
  end,
} }
]]

describe("the CPU budget's watchdog", function()
  after_each(H.clean_up)
  it("runs a rule with no instruction hook until its budget has passed, then stops it through pcalls", function()
    local dir = fresh_rules{ ["hooks.lua"] = HOOKS }
    local host = started{ rules = dir, cpu_ms = 100, args = "--unsafe-rules" }
    local code, body = host:twilio("/voice/hook", H.CALL)
    local t, scode, sbody = elapsed(function() return host:twilio("/voice/spin-caught", H.CALL) end)
    local code2, body2 = host:twilio("/voice/hook", H.CALL) -- the hook set past the budget is gone again
    local logs = host:logs()
    host:stop()
    os.execute("rm -rf " .. dir)
    assert.are.equal(200, code, logs)
    assert.matches("<Say>nil nil</Say>", body, 1, true)
    assert.are.equal(200, scode)
    assert.are.equal(h.canonical_xml(H.FALLBACK_VOICE), h.canonical_xml(sbody))
    assert.is_true(t < 1.5, "took " .. t)
    assert.matches("CPU budget of " .. 100 * H.CPU_FACTOR .. " ms ran out at [^\n]*hooks.lua:1[12]", logs)
    assert.are.equal(200, code2)
    assert.matches("<Say>nil nil</Say>", body2, 1, true)
    assert.is_nil(logs:find("watchdog", 1, true), logs) -- no warning that it could not start
  end)
end)

describe("the request deadline", function()
  after_each(H.clean_up)
  it("wakes a rule that sleeps past --request-timeout", function()
    local dir = fresh_rules{ ["faults.lua"] = FAULTS }
    local host = started{ rules = dir, args = "--request-timeout 1" }
    local t, code, body = elapsed(function() return host:twilio("/voice/sleep-long", H.CALL) end)
    host:stop()
    os.execute("rm -rf " .. dir)
    assert.are.equal(200, code)
    assert.matches("<Say>woke</Say>", body, 1, true)
    assert.is_true(t > 0.9 and t < 3, "took " .. t)
  end)
end)

describe("the rules sandbox", function()
  after_each(H.clean_up)
  local function escapes(extra)
    local dir = fresh_rules{ ["escapes.lua"] = ESCAPES, ["data.txt"] = "inside" }
    local host = started{ rules = dir, args = extra, env = "TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef" }
    local code, body = host:twilio("/voice/escapes", H.CALL)
    local logs = host:logs()
    host:stop()
    os.execute("rm -rf " .. dir)
    assert.are.equal(200, code, logs)
    return cjson.decode(body), logs
  end

  it("offers none of the listed functions", function()
    local r = escapes()
    assert.are.equal("nil", r.debug)
    assert.are.equal("nil", r.os_exit)
    assert.are.equal("nil", r.os_execute)
    assert.are.equal("nil", r.io_popen)
    assert.are.equal("nil", r.os_remove)
    assert.are.equal("nil", r.package)
    assert.are.equal("nil", r.token)                      -- the secret is not in reach
    assert.are.equal("nil", r.sid)                        -- nor any TWILIO_* / TELUA_*
    assert.are.equal("true", r.home)                      -- other variables are
    assert.matches("open files for reading only", r.write, 1, true)
    assert.matches("inside the rules folder only", r.read_outside, 1, true)
    assert.matches("'..' is not allowed", r.read_proc, 1, true)
    assert.are.equal("inside", r.read_inside)
    assert.matches("text chunks only", r.binary, 1, true)
    assert.are.equal("nil", r.string_dump)
    assert.matches("string is read-only to rules", r.set_string, 1, true)
    assert.are.equal("false", r.string_mt)
    assert.matches("module 'telua.core' is not available to rules", r.core, 1, true)
    assert.matches("attempt to index a nil value", r.sethook, 1, true)
    assert.matches("\"count\", \"step\", \"collect\" and \"isrunning\" only", r.gc_stop, 1, true)
    assert.are.equal("true", r.load_env)                  -- load'ed code sees the sandbox too
  end)

  it("--unsafe-rules gives the whole standard library back", function()
    local r = escapes("--unsafe-rules")
    assert.are.equal("table", r.debug)
    assert.are.equal("function", r.os_exit)
    assert.are.equal("function", r.os_execute)
    assert.are.equal("function", r.io_popen)
    assert.are.equal("table", r.package)
    assert.are.equal("function", r.string_dump)
    assert.are.equal("AC0123456789abcdef0123456789abcdef", r.sid)
    assert.are.equal("nil", r.token) -- removed from the environment once read, sandbox or not
  end)

  it("keeps the auth token out of the process environment", function()
    local dir = fresh_rules{ ["faults.lua"] = FAULTS }
    local host = started{ rules = dir }
    local environ = h.read_file("/proc/" .. host.pid .. "/environ")
    host:stop()
    os.execute("rm -rf " .. dir)
    assert.is_nil(environ:find(H.TOKEN, 1, true))
  end)
end)

describe("rules code at load time", function()
  after_each(H.clean_up)
  local LOOP = "local x = 0\nwhile true do x = x + 1 end\nreturn {}\n"

  it("is bounded in `telua check`, with file and line", function()
    local dir = fresh_rules{ ["loop.lua"] = LOOP }
    local t, out = elapsed(function() return sh(BUILD .. "/telua check --load-ms 300 " .. dir .. "; echo rc=$?") end)
    os.execute("rm -rf " .. dir)
    assert.is_true(t < 3, "took " .. t)
    assert.matches("loop.lua:2: the rules' top-level code ran past the load budget of 300 ms (--load-ms)", out, 1, true)
    assert.matches("rc=1", out, 1, true)
  end)

  it("is bounded at start-up, and a stop signal works while the rules load", function()
    local dir = fresh_rules{ ["loop.lua"] = LOOP }
    local t, host, log = elapsed(function() return H.start{ rules = dir, args = "--load-ms 300" } end)
    assert.is_nil(host)
    assert.matches("loop.lua:2: the rules' top-level code ran past the load budget of 300 ms", log, 1, true)
    assert.is_true(t < 3, "took " .. t)
    -- a long budget: SIGTERM ends the start-up at once
    local out = os.tmpname()
    local pid = sh("sh -c " .. q("TWILIO_AUTH_TOKEN=x " .. BUILD .. "/telua serve --rules " .. dir ..
      " --public-url https://x --listen 127.0.0.1:0 --load-ms 60000 >" .. out .. " 2>&1 & echo $!")):match("%d+")
    socket.sleep(0.5)
    local t0 = socket.gettime()
    os.execute("kill -TERM " .. pid)
    local function gone() -- exited: no process, or a zombie its new parent has not reaped yet
      local f = io.open("/proc/" .. pid .. "/stat")
      if not f then return true end
      local stat = f:read("a")
      f:close()
      return stat:match("^%d+ %b() (%a)") == "Z"
    end
    assert.is_true(H.wait_for(gone, 3))
    assert.is_true(socket.gettime() - t0 < 2)
    assert.matches("signal 15 while starting: exiting", h.read_file(out), 1, true)
    os.execute("rm -rf " .. dir .. " " .. out)
  end)

  it("in a reload fails like a syntax error, and the old generation keeps serving", function()
    local dir = fresh_rules{ ["faults.lua"] = FAULTS }
    local host = started{ rules = dir, args = "--load-ms 300 --debounce-ms 20" }
    H.write(dir .. "/loop.lua", LOOP)
    assert.is_true(H.wait_for(function() return host:status().last_reload_error ~= cjson.null end))
    local err = host:status().last_reload_error
    assert.matches("loop.lua$", err.file)
    assert.are.equal(2, err.line)
    assert.are.equal(200, (host:twilio("/voice/ok", H.CALL)))
    os.remove(dir .. "/loop.lua") -- the fix loads
    assert.is_true(H.wait_for(function() return host:status().last_reload_error == cjson.null end))
    assert.are.equal(1, host:status().generation)
    H.write(dir .. "/more.lua", "return { voice = { ['/voice/more'] = function() return 'x' end } }")
    assert.is_true(H.wait_for(function() return host:status().generation == 2 end))
    host:stop()
    os.execute("rm -rf " .. dir)
  end)
end)

describe("the rules folder emptied by a deploy", function()
  after_each(H.clean_up)
  it("is refused as a generation: the old one keeps serving", function()
    local dir = fresh_rules{ ["faults.lua"] = FAULTS }
    local host = started{ rules = dir, args = "--debounce-ms 20" }
    os.remove(dir .. "/faults.lua")
    assert.is_true(H.wait_for(function() return host:status().last_reload_error ~= cjson.null end))
    assert.matches("empty rules folder is refused", host:status().last_reload_error.message, 1, true)
    local code, body = host:twilio("/voice/ok", H.CALL)
    assert.are.equal(200, code)
    assert.matches("<Say>ok</Say>", body, 1, true)
    H.write(dir .. "/faults.lua", FAULTS) -- the deploy's copy lands
    assert.is_true(H.wait_for(function() return host:status().last_reload_error == cjson.null end))
    host:stop()
    local out = sh(BUILD .. "/telua check " .. h.tmpdir() .. "; echo rc=$?")
    assert.matches("empty rules folder is refused", out, 1, true)
    assert.matches("rc=1", out, 1, true)
    os.execute("rm -rf " .. dir)
  end)
end)

describe("a store on a full disk", function()
  after_each(H.clean_up)
  -- a real full file system: a 2 MiB tmpfs, filled up once the host runs
  -- (mounting needs root, which `make test` runs as in CI)
  local root = sh("id -u"):match("%d+") == "0"
  local it_root = root and it or pending
  it_root("answers STOP with 503, so Twilio's fallback and alerts fire, and says why", function()
    local dir = fresh_rules{ ["sms.lua"] = "return { messages = { { handler = function() return nil end } } }" }
    local mnt = dir .. "/disk"
    assert(os.execute("mkdir -p " .. mnt .. " && mount -t tmpfs -o size=2m tmpfs " .. mnt),
           "cannot mount a tmpfs for the full-disk case")
    local host, log = H.start{ rules = dir, store = "sqlite:" .. mnt .. "/state.db" }
    local ok, err = pcall(function()
      assert(host, log)
      assert.are.equal(200, (host:twilio("/sms/incoming", H.sms("STOP", "+14155550111"))))
      os.execute("dd if=/dev/zero of=" .. mnt .. "/fill bs=4k 2>/dev/null")
      local code, body = host:twilio("/sms/incoming", H.sms("STOP"))
      assert.are.equal(503, code)
      assert.matches("opt-out of +14155550199 (STOP) failed", body, 1, true)
      assert.matches("opt-out of +14155550199 (STOP) failed, answering 503: sqlite: database or disk is full",
                     host:logs(), 1, true)
      assert.is_true(host:status().store_failures >= 1)
      -- room again: the same STOP (Twilio's retry) is recorded and answered
      os.remove(mnt .. "/fill")
      code, body = host:twilio("/sms/incoming", H.sms("STOP"))
      assert.are.equal(200, code)
      assert.matches("unsubscribed", body, 1, true)
      code, body = host:twilio("/sms/incoming", H.sms("hello"))
      assert.are.equal(200, code)
      assert.are.equal(h.canonical_xml(H.DECL .. "<Response/>"), h.canonical_xml(body))
    end)
    if host then host:stop() end
    socket.sleep(0.2)
    os.execute("umount " .. mnt .. "; rm -rf " .. dir)
    assert(ok, err)
  end)
end)
