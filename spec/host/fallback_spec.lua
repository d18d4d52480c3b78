-- Fallback channels end to end: `telua serve` and `telua sandbox`. A rule
-- sends an SMS with a fallback chain to the sandbox's number that ends
-- undelivered with 30003 (+15005559003); the signed status callback brings
-- the next channel: a voice call that says the text (its TwiML as the
-- official twilio library builds it, spec/oracle/say_twiml.js) or a
-- WhatsApp template. Each hop goes once, is linked to the first message in
-- the outbox, and a STOP stops the chain. telua.verify's call fallback goes
-- unless the code was approved first.
local socket = require "socket"
local cjson = require "cjson"
local h = require "spec.helpers"
local H = require "spec.helpers.host"
local wait_for = H.wait_for

local ROOT = h.root
local BUILD = os.getenv("TELUA_BUILD") or (ROOT .. "/build")
local SID = "AC" .. ("8"):rep(32)
local TOKEN = "fallback-spec-token"
local q, sh = h.quote, h.sh

local RULES = [[
local verify = require "telua.verify"
local SERVICE = "VA" .. ("0"):rep(32)
local TEXT = "Su paquete llega hoy & a las 5"
return {
  settings = { default_region = "US", status_callback = "/status/messages" },
  messages = {
    { path = "/sms/incoming", keyword = "ALERT", handler = function(req)
        local hop
        local after = req.args:match("^after ([%d.]+)$")
        if after then
          hop = { channel = "voice", from = "+15005550006", after = tonumber(after) }
        elseif req.args == "voice" then
          hop = { channel = "voice", from = "+15005550006", on = { 30003, 30005 } }
        else
          hop = { channel = "whatsapp", from = "whatsapp:+15005550006", on = { 30003 },
                  content_sid = "HX0a1b2c3d4e5f60718293a4b5c6d7e8f9", content_variables = { ["1"] = "5" } }
        end
        local id, err = req.send{ to = req.from, body = TEXT, locale = "es-MX", fallback = { hop } }
        assert(id, tostring(err))
        return nil
      end },
    { path = "/sms/incoming", keyword = "CALLME", handler = function(req)
        local v = assert(verify.new{ service_sid = SERVICE, store = req.store, default_region = "US" })
        local ver = assert(v:start(req.from, "sms", { fallback = { channel = "call", after = tonumber(req.args) } }))
        req.log("info", "verification " .. ver.sid)
        return nil
      end },
    { path = "/sms/incoming", keyword = "CHECK", handler = function(req)
        local v = assert(verify.new{ service_sid = SERVICE, store = req.store, default_region = "US" })
        local ok = v:check(req.from, req.args)
        req.log("info", "check " .. tostring(ok))
        return nil
      end },
  },
  status = {
    ["/status/messages"] = function() end, -- the router keeps the log (and the fallbacks)
  },
}
]]

describe("fallback channels", function()
  local dir, db, sandbox, host, base

  local function spawn(cmd, log)
    return h.spawn("env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " " .. cmd, log)
  end


  local function get(what, to)
    return cjson.decode(sh("curl -s " .. q("http://127.0.0.1:" .. sandbox.port .. "/-/sandbox/" .. what ..
                                           (to and ("?To=" .. to:gsub("%+", "%%2B")) or ""))))
  end

  local function inbound(from, body)
    return sh("TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " " .. BUILD ..
      "/telua sandbox inbound --to " .. base .. "/sms/incoming --from " .. q(from) .. " --body " .. q(body) ..
      " --number +15005550006 2>&1")
  end

  local function sqlite(sql)
    return (sh("sqlite3 -json " .. q(db) .. " " .. q(sql)):gsub("%s+$", ""))
  end

  local function rows(sql)
    local out = sqlite(sql)
    return out == "" and {} or cjson.decode(out)
  end

  before_each(function()
    dir = h.tmpdir()
    local f = assert(io.open(dir .. "/alert.lua", "wb"))
    f:write(RULES)
    f:close()
    db = dir .. "/telua.db"
    sandbox = spawn(BUILD .. "/telua sandbox --listen 127.0.0.1:0 --delivery-ms 800 --mps 1000", dir .. "/sandbox.log")
    local hp = h.free_port()
    base = "http://127.0.0.1:" .. hp
    host = spawn("TELUA_TWILIO_BASE_URL=http://127.0.0.1:" .. sandbox.port .. " " .. BUILD .. "/telua serve --rules " ..
      dir .. " --listen 127.0.0.1:" .. hp .. " --public-url " .. base .. " --store sqlite:" .. db, dir .. "/host.log")
  end)

  after_each(function()
    h.kill(host)
    h.kill(sandbox)
    os.execute("rm -rf " .. dir)
  end)

  it("an SMS undelivered with 30003 is followed once by a call that says it twice, in the send's locale", function()
    inbound("+15005559003", "ALERT voice")
    local calls = wait_for(function()
      local c = get("calls").calls
      return #c >= 1 and c
    end)
    assert.truthy(calls, "no call followed: " .. h.read_file(dir .. "/host.log"))
    local text = "Su paquete llega hoy & a las 5"
    local want = sh("node " .. ROOT .. "/spec/oracle/say_twiml.js " .. q(text) .. " es-MX")
    assert.are.equal("+15005559003", calls[1].to)
    assert.are.equal("+15005550006", calls[1].from)
    assert.are.equal(h.canonical_xml(want), h.canonical_xml(calls[1].twiml))
    -- the SMS ended undelivered with 30003 at the sandbox
    local msgs = get("messages", "+15005559003").messages
    assert.are.equal(1, #msgs)
    assert.are.equal("undelivered", msgs[1].status)
    -- in the outbox: the call is an entry of its own, linked to the first message, with the call's SID
    local entries = rows("SELECT id, state, sid, resend_of FROM outbox ORDER BY id")
    assert.are.equal(2, #entries)
    assert.are.equal(entries[1].id, entries[2].resend_of)
    assert.are.equal("sent", entries[2].state)
    assert.are.equal(calls[1].sid, entries[2].sid)
    assert.are.equal(msgs[1].sid, entries[1].sid)
    -- once: more callbacks for the SMS (the sandbox sends each step) bring nothing more
    socket.sleep(1.5)
    assert.are.equal(1, #get("calls").calls)
    assert.are.equal(2, #rows("SELECT id FROM outbox"))
  end)

  it("falls back to a WhatsApp template outside the 24-hour window, and a STOP stops the chain", function()
    inbound("+15005559003", "ALERT whatsapp")
    local wa = wait_for(function()
      local m = get("messages", "whatsapp:+15005559003").messages
      return #m >= 1 and m
    end)
    assert.truthy(wa, "no WhatsApp followed: " .. h.read_file(dir .. "/host.log"))
    assert.are.equal(1, #wa)
    assert.are.equal("whatsapp:+15005550006", wa[1].from)
    assert.are.equal("HX0a1b2c3d4e5f60718293a4b5c6d7e8f9", wa[1].content_sid) -- no window: the template
    local entries = rows("SELECT id, resend_of, sid FROM outbox ORDER BY id")
    assert.are.equal(entries[1].id, entries[2].resend_of)
    assert.are.equal(wa[1].sid, entries[2].sid)

    -- a second number that the sandbox makes fail with 30003; its user texts STOP
    -- after the SMS went and before its failure came back
    local other = "+14155550142"
    sh("curl -s -X POST --data 'To=%2B14155550142&ErrorCode=30003&Count=1' http://127.0.0.1:" .. sandbox.port ..
       "/-/sandbox/outcome")
    inbound(other, "ALERT whatsapp")
    assert.truthy(wait_for(function() return #get("messages", other).messages == 1 end))
    assert.matches("unsubscribed", inbound(other, "STOP"))
    local hop = wait_for(function()
      local r = rows("SELECT state, error FROM outbox WHERE to_addr = 'whatsapp:" .. other .. "'")
      return r[1] and r[1].state ~= "queued" and r[1]
    end)
    assert.truthy(hop, "the hop was never looked at: " .. h.read_file(dir .. "/host.log"))
    assert.are.equal("skipped", hop.state)
    assert.matches("opted out", hop.error)
    assert.are.equal(0, #get("messages", "whatsapp:" .. other).messages)
  end)

  it("after: a message not delivered within the time gets the next channel; one delivered in time does not", function()
    -- the sandbox delivers 2 steps of 0.8 s after sending
    inbound("+14155550181", "ALERT after 0.3")
    inbound("+14155550182", "ALERT after 4")
    local calls = wait_for(function()
      for _, c in ipairs(get("calls").calls) do if c.to == "+14155550181" then return c end end
    end)
    assert.truthy(calls, "no call after 0.3 s: " .. h.read_file(dir .. "/host.log"))
    local skipped = wait_for(function()
      local r = rows("SELECT state, error FROM outbox WHERE to_addr = '+14155550182' AND resend_of IS NOT NULL")
      return r[1] and r[1].state ~= "queued" and r[1]
    end, 10)
    assert.truthy(skipped, "the second hop was never looked at")
    assert.are.equal("skipped", skipped.state)
    assert.are.equal("the message before it was delivered", skipped.error)
    for _, c in ipairs(get("calls").calls) do assert.are_not.equal("+14155550182", c.to) end
    assert.are.equal("delivered", get("messages", "+14155550182").messages[1].status)
  end)

  it("telua.verify calls with the code when the SMS code is not approved in time, and not when it is", function()
    inbound("+14155550171", "CALLME 1")
    local calls = wait_for(function()
      for _, v in ipairs(get("verifications", "+14155550171").verifications) do
        if v.channel == "call" then return v end
      end
    end)
    assert.truthy(calls, "no call fallback: " .. h.read_file(dir .. "/host.log"))
    assert.are.equal(2, calls.send_attempts) -- the same verification, now over a call
    -- approved before its time: no call
    inbound("+14155550172", "CALLME 3")
    local v = wait_for(function() return get("verifications", "+14155550172").verifications[1] end)
    inbound("+14155550172", "CHECK " .. v.code)
    assert.truthy(wait_for(function()
      local r = rows("SELECT state, error FROM outbox WHERE to_addr = '+14155550172'")
      return r[1] and r[1].state == "skipped" and r[1]
    end, 8), "the call fallback was not skipped: " .. h.read_file(dir .. "/host.log"))
    local after = get("verifications", "+14155550172").verifications[1]
    assert.are.equal("sms", after.channel)
    assert.are.equal(1, after.send_attempts)
  end)
end)
