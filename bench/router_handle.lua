-- The Lua side of one inbound-SMS webhook, in a process of its own:
-- router:handle on the bench rule (bench/rules) with a memory store, and
-- its parts. Compare with the host's figures in bench/RESULTS.md.
-- usage: LUA_PATH="lua/?.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 bench/router_handle.lua [N]
--        (or luajit with build/luajit)
local rules = require "telua.rules"
local store_mod = require "telua.store"
local e164 = require "telua.e164"
local twiml = require "telua.twiml"
local clock = os.clock
local N = tonumber(arg[1]) or 200000
local store = assert(store_mod.open("memory"))
local router = assert(rules.load("bench/rules", nil, { store = store, log = function() end }))

local function request()
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
  print(("%-44s %7.2f us"):format(name, (clock() - t) / N * 1e6))
end

assert(router:handle(request(), {}).body:find("Thanks", 1, true))
print(("%s, %d calls each"):format(jit and jit.version or _VERSION, N))
time("router:handle (with building the request)", function() router:handle(request(), {}) end)
time("building the request table", request)
time("e164.normalize", function() e164.normalize("+14155550199") end)
time("store:is_opted_out (memory)", function() store:is_opted_out("+14155550100", "+14155550199") end)
time("TwiML: one <Message>, built and rendered", function()
  local r = twiml.messaging()
  r:message("Thanks +14155550199, we got: Hello there, is my order 1234 on its way?")
  return tostring(r)
end)
