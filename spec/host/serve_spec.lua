-- End to end: the real `telua serve` on a free loopback port, requests
-- signed by the official twilio npm package (spec/oracle/sign.js).
local socket = require "socket"
local cjson = require "cjson"
local h = require "spec.helpers"
local H = require "spec.helpers.host"

local ROOT, BUILD, TOKEN = H.ROOT, H.BUILD, H.TOKEN
local sh, shell_quote, sign = h.sh, h.quote, H.sign

local function start(rules, store, extra)
  local host, log = H.start{ rules = rules, store = "sqlite:" .. store, workers = 2, cpu_ms = 100,
                             args = "--max-body 4096 " .. (extra or "") }
  return assert(host, "host did not start: " .. tostring(log))
end

local function same_xml(expected, got)
  assert.are.equal(h.canonical_xml(expected), h.canonical_xml(got))
end

local function wait_for(fn, seconds)
  local deadline = socket.gettime() + (seconds or 8)
  while socket.gettime() < deadline do
    if fn() then return true end
    socket.sleep(0.1)
  end
  return false
end

local function copy_rules(dir)
  assert(os.execute("cp -r " .. ROOT .. "/rules/. " .. dir .. "/"))
end

local function write(path, text)
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "wb"))
  f:write(text)
  f:close()
  assert(os.rename(tmp, path)) -- editors save by rename: the watcher must see it
end

local DECL = '<?xml version="1.0" encoding="UTF-8"?>'
local MENU = "Thanks for calling telua. For sales, press 1. For support, press 2. "
          .. "To leave a message, press 3."
local CALL = { { "CallSid", "CA0123456789abcdef0123456789abcdef" }, { "AccountSid", "AC0123456789abcdef0123456789abcdef" },
               { "From", "+14155550199" }, { "To", "+14155550100" }, { "CallStatus", "in-progress" },
               { "Direction", "inbound" }, { "ApiVersion", "2010-04-01" } }
local with = H.with

local function sms(body, from)
  return { { "MessageSid", "SM0123456789abcdef0123456789abcdef" }, { "AccountSid", "AC0123456789abcdef0123456789abcdef" },
           { "From", from or "+14155550199" }, { "To", "+14155550100" }, { "Body", body },
           { "NumMedia", "0" }, { "NumSegments", "1" }, { "SmsStatus", "received" } }
end

describe("telua serve", function()
  local dir, store, host

  setup(function()
    dir = h.tmpdir()
    copy_rules(dir)
    write(dir .. "/faults.lua", [[
local twiml = require "telua.twiml"
return { voice = {
  ["/voice/boom"] = function(req) error("kaboom") end,
  ["/voice/spin"] = function(req)
    local ok = pcall(function() while true do end end)  -- a pcall must not swallow the budget
    while true do end
  end,
  ["/voice/hog"] = function(req) local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(64) .. i end end,
} }
]])
    store = dir .. "/state.db"
    host = start(dir, store)
  end)

  teardown(function()
    if host then host:stop() end
    os.execute("rm -rf " .. dir)
  end)

  it("walks a call through the IVR", function()
    local code, body = host:twilio("/voice/incoming", CALL)
    assert.are.equal(200, code)
    local menu = DECL .. '<Response><Gather action="/voice/incoming/choice" method="POST" numDigits="1" timeout="5"><Say>'
                 .. MENU .. '</Say></Gather><Redirect method="POST">/voice/incoming/menu</Redirect></Response>'
    same_xml(menu, body)

    code, body = host:twilio("/voice/incoming/choice", with(CALL, { { "Digits", "1" }, { "FinishedOnKey", "" } }))
    assert.are.equal(200, code)
    same_xml(DECL .. '<Response><Say>Connecting you to sales.</Say><Dial action="/voice/incoming/after_dial" timeout="20">+14155550101</Dial></Response>', body)

    code, body = host:twilio("/voice/incoming/choice", with(CALL, { { "Digits", "2" } }))
    assert.are.equal(200, code)
    same_xml(DECL .. '<Response><Say>Connecting you to support.</Say><Dial action="/voice/incoming/after_dial" timeout="20">+14155550102</Dial></Response>', body)

    code, body = host:twilio("/voice/incoming/choice", with(CALL, { { "Digits", "3" } }))
    assert.are.equal(200, code)
    same_xml(DECL .. '<Response><Say>Please leave a message after the beep. Press the pound key when you are done.</Say>'
             .. '<Record action="/voice/incoming/recorded" finishOnKey="#" maxLength="120" playBeep="true" transcribe="true" transcribeCallback="/voice/transcription"/></Response>', body)

    code, body = host:twilio("/voice/incoming/choice", with(CALL, { { "Digits", "7" } }))
    assert.are.equal(200, code)
    same_xml(DECL .. '<Response><Say>Sorry, that is not a valid choice.</Say><Redirect method="POST">/voice/incoming/menu</Redirect></Response>', body)

    -- silence: the Gather timed out and Twilio followed the Redirect
    code, body = host:twilio("/voice/incoming/menu", CALL)
    assert.are.equal(200, code)
    same_xml(menu, body)

    code, body = host:twilio("/voice/incoming/recorded", with(CALL, { { "RecordingUrl", "https://api.twilio.com/rec/RE1" },
                                                                     { "RecordingDuration", "7" }, { "Digits", "#" } }))
    assert.are.equal(200, code)
    same_xml(DECL .. "<Response><Say>Thank you for your message. Goodbye.</Say><Hangup/></Response>", body)

    code = host:twilio("/voice/transcription", with(CALL, { { "TranscriptionText", "call me back" }, { "TranscriptionStatus", "completed" } }))
    assert.are.equal(204, code)
    assert.matches("transcription for CA0123456789abcdef0123456789abcdef", host:logs(), 1, true)
  end)

  it("answers 403 to a wrong, a missing and another URL's signature", function()
    local code = host:twilio("/voice/incoming", CALL, { signature = "RSOYDt4T1cUTdK1PDd93/VVr8B8=" })
    assert.are.equal(403, code)
    code = host:twilio("/voice/incoming", CALL, { unsigned = true })
    assert.are.equal(403, code)
    code = host:twilio("/voice/incoming", CALL, { sign_url = "https://telua.example.com/sms/incoming" })
    assert.are.equal(403, code)
    -- a changed parameter breaks it too
    local sig = sign("https://telua.example.com/voice/incoming", CALL)
    code = host:twilio("/voice/incoming", with(CALL, { { "Digits", "1" } }), { signature = sig })
    assert.are.equal(403, code)
    -- the signature never reaches the log, nor does the token
    assert.is_nil(host:logs():find(TOKEN, 1, true))
    assert.is_nil(host:logs():find(sig, 1, true))
  end)

  it("logs at most 10 turned-away requests a second, then how many more there were", function()
    local function count(text) local n = 0 for _ in text:gmatch("%] 403 ") do n = n + 1 end return n end
    local t = os.time()
    while os.time() == t do socket.sleep(0.01) end -- a fresh second
    local before, t0 = count(host:logs()), os.time()
    for _ = 1, 40 do assert.are.equal(403, (host:twilio("/voice/incoming", CALL, { signature = "bad" }))) end
    local same_second = os.time() == t0
    local logged = count(host:logs()) - before
    if same_second then assert.are.equal(10, logged) else assert.is_true(logged <= 20) end
    t = os.time()
    while os.time() == t do socket.sleep(0.01) end
    assert.are.equal(403, (host:twilio("/voice/incoming", CALL, { signature = "bad" })))
    local last = host:logs():match("[^\n]*%] 403 [^\n]*\n$")
    if same_second then
      assert.matches("(and 30 more turned away, not logged: over 10 lines a second)", last, 1, true)
    else
      assert.matches("more turned away, not logged", last, 1, true)
    end
  end)

  it("accepts the default-port spelling Twilio sometimes signs", function()
    local code = host:twilio("/voice/incoming", CALL, { sign_url = "https://telua.example.com:443/voice/incoming" })
    assert.are.equal(200, code)
  end)

  it("checks JSON bodies through bodySHA256", function()
    local body = '{"event":"x"}'
    local hash = sh("printf %s " .. shell_quote(body) .. " | openssl dgst -sha256 -r | cut -d' ' -f1"):gsub("%s+$", "")
    local target = "/status/messages?bodySHA256=" .. hash
    local sig = sign("https://telua.example.com" .. target, {})
    local code = host:request("POST", target, body, { ["content-type"] = "application/json", ["x-twilio-signature"] = sig })
    assert.are.equal(204, code)
    code = host:request("POST", target, body .. " ", { ["content-type"] = "application/json", ["x-twilio-signature"] = sig })
    assert.are.equal(403, code)
  end)

  it("answers 413 to a body over the limit and 400 to a malformed one", function()
    local big = { { "Body", ("x"):rep(5000) } }
    local code = host:twilio("/sms/incoming", big, { signature = "x" })
    assert.are.equal(413, code)
    code = host:request("POST", "/sms/incoming", "Body=%zz", { ["content-type"] = "application/x-www-form-urlencoded",
                                                                ["x-twilio-signature"] = "x" })
    assert.are.equal(400, code)
  end)

  it("answers the fallback when a rule raises or runs past its CPU budget, and lives on", function()
    local fallback = DECL .. "<Response><Say>We are sorry, an application error has occurred. Please try again later.</Say><Hangup/></Response>"
    local code, body = host:twilio("/voice/boom", CALL)
    assert.are.equal(200, code)
    same_xml(fallback, body)
    assert.matches("faults.lua:3", host:logs(), 1, true)
    assert.matches("kaboom", host:logs(), 1, true)
    local t0 = socket.gettime()
    code, body = host:twilio("/voice/spin", CALL)
    assert.are.equal(200, code)
    same_xml(fallback, body)
    assert.is_true(socket.gettime() - t0 < 3)
    assert.matches("CPU budget", host:logs(), 1, true)
    code, body = host:twilio("/voice/hog", CALL)
    assert.are.equal(200, code)
    same_xml(fallback, body)
    -- both workers still answer
    for _ = 1, 4 do
      code = host:twilio("/voice/incoming", CALL)
      assert.are.equal(200, code)
    end
  end)

  it("handles STOP before any rule, keeps it across a restart, and START restores", function()
    local code, body = host:twilio("/sms/incoming", sms("hello"))
    assert.are.equal(200, code)
    same_xml(DECL .. '<Response><Message>Hi +14155550199, thanks for your message "hello". Reply HOURS for opening hours, ORDER and your order number for its status, HELP for help, STOP to opt out.</Message></Response>', body)

    code, body = host:twilio("/sms/incoming", sms("  stop "))
    assert.are.equal(200, code)
    same_xml(DECL .. "<Response><Message>You have successfully been unsubscribed. You will not receive any more messages from this number. Reply START to resubscribe.</Message></Response>", body)
    code, body = host:twilio("/sms/incoming", sms("hello"))
    assert.are.equal(200, code)
    same_xml(DECL .. "<Response/>", body)
    -- HELP gets no reply while opted out (Twilio's behaviour)
    code, body = host:twilio("/sms/incoming", sms("HELP"))
    assert.are.equal(200, code)
    same_xml(DECL .. "<Response/>", body)

    host:stop()
    host = start(dir, store)
    code, body = host:twilio("/sms/incoming", sms("hello"))
    assert.are.equal(200, code)
    same_xml(DECL .. "<Response/>", body)

    code, body = host:twilio("/sms/incoming", sms("Start"))
    assert.are.equal(200, code)
    same_xml(DECL .. "<Response><Message>You have successfully been re-subscribed to messages from this number. Reply HELP for help. Reply STOP to unsubscribe. Msg&amp;Data Rates May Apply.</Message></Response>", body)
    code, body = host:twilio("/sms/incoming", sms("hours"))
    assert.are.equal(200, code)
    same_xml(DECL .. "<Response><Message>We are open Monday to Friday, 9am to 5pm Pacific.</Message></Response>", body)
    -- another number was never opted out; "STOP PLEASE" is not a keyword
    code, body = host:twilio("/sms/incoming", sms("STOP PLEASE", "+14155550142"))
    assert.are.equal(200, code)
    assert.matches("STOP PLEASE", body, 1, true)
  end)

  it("reloads an edited rule, keeps serving through a broken one, and shows the error", function()
    local path = dir .. "/sms.lua"
    local original = h.read_file(path)
    local function hours()
      local _, body = host:twilio("/sms/incoming", sms("HOURS"))
      return body
    end
    assert.matches("9am to 5pm", hours(), 1, true)
    local status = host:status()
    local gen = status.generation

    write(dir .. "/lib/templates.lua", h.read_file(dir .. "/lib/templates.lua"):gsub("9am to 5pm", "8am to 8pm"))
    assert.is_true(wait_for(function() return hours():find("8am to 8pm", 1, true) ~= nil end))
    status = host:status()
    assert.are.equal(gen + 1, status.generation)
    assert.are.equal(cjson.null, status.last_reload_error)

    write(path, original .. "\nthis is not lua\n")
    assert.is_true(wait_for(function()
      local s = host:status()
      return s.last_reload_error ~= cjson.null
    end))
    status = host:status()
    assert.are.equal(gen + 1, status.generation)
    assert.matches("sms.lua$", status.last_reload_error.file)
    local lines = select(2, original:gsub("\n", "\n"))
    assert.are.equal(lines + 2, status.last_reload_error.line)
    assert.matches("8am to 8pm", hours(), 1, true) -- the old generation still answers
    assert.matches("sms.lua:" .. (lines + 2), host:logs(), 1, true)

    write(path, (original:gsub("return answer%(templates.hours, {}%)", 'return answer("Open all night.", {})')))
    assert.is_true(wait_for(function() return hours():find("Open all night.", 1, true) ~= nil end))
    status = host:status()
    assert.are.equal(gen + 2, status.generation)
    assert.are.equal(cjson.null, status.last_reload_error)
  end)

  it("refuses to start on broken rules, and `telua check` names file and line", function()
    local bad = h.tmpdir()
    write(bad .. "/a.lua", "return {\n  voice = {\n    ['/x'] = 42,\n  },\n}\n")
    local out = sh(BUILD .. "/telua check " .. bad .. "; echo rc=$?")
    assert.matches("a.lua: voice%['/x'%] must be a function or a telua.flow", out)
    assert.matches("rc=1", out, 1, true)
    write(bad .. "/a.lua", "return {\n  voice = {\n    ['/x'] = function() end,,\n  },\n}\n")
    out = sh(BUILD .. "/telua check " .. bad .. "; echo rc=$?")
    assert.matches("a.lua:3:", out, 1, true)
    assert.matches("rc=1", out, 1, true)
    out = sh("TWILIO_AUTH_TOKEN=x " .. BUILD .. "/telua serve --rules " .. bad ..
             " --public-url https://x --listen 127.0.0.1:0 2>&1; echo rc=$?")
    assert.matches("a.lua:3:", out, 1, true)
    assert.matches("rc=1", out, 1, true)
    out = sh(BUILD .. "/telua check " .. ROOT .. "/rules; echo rc=$?")
    assert.matches("rc=0", out, 1, true)
    os.execute("rm -rf " .. bad)
  end)

  it("gives a rule the request as it came: params (the body's first value, then the query's), form pairs, headers", function()
    local rules = h.tmpdir()
    write(rules .. "/echo.lua", [[
local cjson = require "cjson"
return { voice = { ["/voice/echo"] = function(req)
  return { status = 200, content_type = "application/json", body = cjson.encode{
    params = req.params, form = req.form, custom = req.headers["x-custom"], ctype = req.headers["content-type"],
    query = req.query, from = req.from, digits = req.digits } }
end } }
]])
    local echo = assert(H.start{ rules = rules })
    local form = { { "From", "+14155550199" }, { "Digits", "1" }, { "From", "+14155550123" }, { "Empty", "" },
                   { "Note", "a&b=c d+e" } }
    local code, body = echo:twilio("/voice/echo?Extra=q%20x&From=from-query&Digits=9", form,
                                   { headers = { ["X-Custom"] = "yes: really" } })
    assert.are.equal(200, code, echo:logs())
    local got = cjson.decode(body)
    assert.are.same({ From = "+14155550199", Digits = "1", Empty = "", Note = "a&b=c d+e", Extra = "q x" }, got.params)
    assert.are.same(form, got.form)
    assert.are.equal("yes: really", got.custom)
    assert.are.equal("application/x-www-form-urlencoded", got.ctype)
    assert.are.equal("Extra=q%20x&From=from-query&Digits=9", got.query)
    assert.are.equal("+14155550199", got.from)
    assert.are.equal("1", got.digits)
    -- a malformed query adds nothing (the signature covers it all the same)
    code, body = echo:twilio("/voice/echo?Extra=%zz", { { "Digits", "2" } })
    assert.are.equal(200, code, echo:logs())
    assert.are.same({ Digits = "2" }, cjson.decode(body).params)
    echo:stop()
    os.execute("rm -rf " .. rules)
  end)
end)
