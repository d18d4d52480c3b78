-- The Lua side of one inbound-SMS webhook, in a process of its own:
-- router:handle on the bench rule (bench/rules) with a SQLite store in WAL
-- mode (the host's default), and its parts. The request comes in the
-- host's forms (src/host/driver.c: params, form_raw, header_lines, a ctx
-- with room for what the router records); a second row gives it as a
-- plain Lua caller would (form pairs and a headers table: telua.ngx).
-- Compare with the host's figures in bench/RESULTS.md.
-- usage: LUA_PATH="lua/?.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 bench/router_handle.lua [N] [memory]
--        (or luajit with build/luajit)
local rules = require "telua.rules"
local store_mod = require "telua.store"
local e164 = require "telua.e164"
local twiml = require "telua.twiml"
local clock = os.clock
local N = tonumber(arg[1]) or 200000
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
local store = assert(store_mod.open(arg[2] == "memory" and "memory" or "sqlite:" .. dir .. "/bench.db"))
local router = assert(rules.load("bench/rules", nil, { store = store, log = function() end }))
local constant = assert(rules.load("bench/rules_const", nil, { store = store, log = function() end }))

local BODY = "MessageSid=SM0123456789abcdef0123456789abcdef&AccountSid=AC0123456789abcdef0123456789abcdef" ..
  "&From=%2B14155550199&To=%2B14155550100&Body=Hello+there%2C+is+my+order+1234+on+its+way%3F&NumMedia=0" ..
  "&NumSegments=1&SmsStatus=received"
local HEADERS = "host: 127.0.0.1\ncontent-type: application/x-www-form-urlencoded\nx-twilio-signature: abc\n" ..
  "content-length: 239\nuser-agent: wrk\n"

-- as the host builds it (driver.c start_request)
-- (the nils make the room the host makes with lua_createtable(L, 0, 24))
local function host_request()
  return { method = "POST", path = "/sms/incoming", query = "", url = "http://127.0.0.1:1/sms/incoming",
    store = nil, log = nil, default_region = nil, settings = nil, from = nil, to = nil, text = nil, call_sid = nil,
    message_sid = nil, digits = nil, opted_out = nil, args = nil, send = nil, body = nil,
    params = { MessageSid = "SM0123456789abcdef0123456789abcdef", AccountSid = "AC0123456789abcdef0123456789abcdef",
               From = "+14155550199", To = "+14155550100", Body = "Hello there, is my order 1234 on its way?",
               NumMedia = "0", NumSegments = "1", SmsStatus = "received" },
    form_raw = BODY, header_lines = HEADERS }
end
local function ctx() return { kind = nil, rule = nil, route = nil, replayed = nil } end

-- as a plain Lua caller gives it (telua.ngx)
local function lua_request()
  return { method = "POST", path = "/sms/incoming", query = "", url = "http://127.0.0.1:1/sms/incoming",
    form = { { "MessageSid", "SM0123456789abcdef0123456789abcdef" }, { "AccountSid", "AC0123456789abcdef0123456789abcdef" },
             { "From", "+14155550199" }, { "To", "+14155550100" }, { "Body", "Hello there, is my order 1234 on its way?" },
             { "NumMedia", "0" }, { "NumSegments", "1" }, { "SmsStatus", "received" } },
    headers = { host = "127.0.0.1", ["content-type"] = "application/x-www-form-urlencoded",
                ["x-twilio-signature"] = "abc", ["content-length"] = "239", ["user-agent"] = "wrk" } }
end

local function time(name, fn)
  fn() -- once before timing
  local t = clock()
  for _ = 1, N do fn() end
  print(("%-52s %7.2f us"):format(name, (clock() - t) / N * 1e6))
end

assert(router:handle(host_request(), ctx()).body:find("Thanks +14155550199, we got: Hello", 1, true))
assert(router:handle(lua_request(), ctx()).body:find("Thanks +14155550199, we got: Hello", 1, true))
print(("%s, %d calls each, store %s"):format(jit and jit.version or _VERSION, N, store.path))
do -- this machine's speed today, to compare runs made on other days: an empty numeric loop
  local t, x = clock(), 0
  for i = 1, 2e7 do x = x + i end
  print(("%-52s %7.2f ns"):format("calibration: one iteration of an empty numeric loop", (clock() - t) / 2e7 * 1e9))
end
time("router:handle, the host's request (with building it)", function() router:handle(host_request(), ctx()) end)
time("  the same, rule answering a constant", function() constant:handle(host_request(), ctx()) end)
time("  building the host's request and ctx", function() return host_request(), ctx() end)
time("router:handle, a Lua caller's request (with building it)", function() router:handle(lua_request(), ctx()) end)
time("  building a Lua caller's request", lua_request)
time("e164.normalize", function() e164.normalize("+14155550199") end)
time("store:is_opted_out", function() store:is_opted_out("+14155550100", "+14155550199") end)
time("TwiML: one <Message>, built and rendered", function()
  local r = twiml.messaging()
  r:message("Thanks +14155550199, we got: Hello there, is my order 1234 on its way?")
  return tostring(r)
end)
store:close()
os.execute("rm -rf " .. dir)
