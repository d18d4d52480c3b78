-- telua.router, telua.flow, telua.rules, telua.store, telua.optout, telua.template
local router = require "telua.router"
local flow = require "telua.flow"
local rules = require "telua.rules"
local store_mod = require "telua.store"
local optout = require "telua.optout"
local template = require "telua.template"
local twiml = require "telua.twiml"
local h = require "spec.helpers"
local backends = require "spec.helpers.backends"

local DECL = '<?xml version="1.0" encoding="UTF-8"?>'
-- Twilio's standard replies (Twilio Help Center, "Twilio support for opt-out keywords"), as XML text
local STOP_REPLY = "You have successfully been unsubscribed. You will not receive any more messages from this number. Reply START to resubscribe."
local START_REPLY = "You have successfully been re-subscribed to messages from this number. Reply HELP for help. Reply STOP to unsubscribe. Msg&amp;Data Rates May Apply."
local HELP_REPLY = "Reply STOP to unsubscribe. Msg&amp;Data Rates May Apply."
local quiet = function() end

local function sms(body, from, to)
  return { method = "POST", path = "/sms/incoming", query = "",
           form = { { "From", from or "+14155550199" }, { "To", to or "+14155550100" }, { "Body", body } } }
end

describe("telua.optout", function()
  -- keyword lists: Twilio Help Center, "Twilio support for opt-out keywords"
  it("classifies single-word keywords, case-insensitively, trimmed", function()
    for _, w in ipairs({ "STOP", "stop", " Stop\n", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT" }) do
      assert.are.equal("STOP", (optout.classify(w)))
    end
    for _, w in ipairs({ "START", "yes", "Unstop" }) do assert.are.equal("START", (optout.classify(w))) end
    for _, w in ipairs({ "HELP", "info" }) do assert.are.equal("HELP", (optout.classify(w))) end
    for _, w in ipairs({ "STOP PLEASE", "PLEASE CANCEL", "stopp", "", "   ", "STOP.", nil }) do
      assert.is_nil(optout.classify(w))
    end
  end)
end)

backends.each("telua.store", function(B)
  it("records, reads and removes opt-outs per sender and recipient, durably", function()
    local s = B.open()
    assert.is_false(s:is_opted_out("+1A", "+1B"))
    assert.is_true(s:optout_add("+1A", "+1B", "STOP"))
    assert.is_true(s:optout_add("+1A", "+1B", "QUIT")) -- twice is fine
    assert.is_true(s:is_opted_out("+1A", "+1B"))
    assert.is_false(s:is_opted_out("+1C", "+1B", { scope = "number" }))
    assert.is_true(s:is_opted_out("+1C", "+1B")) -- the account scope, the default: any of our numbers
    local t = B.reopen(s)
    s:close()
    assert.is_true(t:is_opted_out("+1A", "+1B"))
    assert.is_true(t:optout_remove("+1A", "+1B"))
    assert.is_false(t:is_opted_out("+1A", "+1B"))
    t:close()
  end)

  it("claims slot holders first, then single messages, then campaign entries", function()
    local s = B.open()
    local now = os.time()
    local bulk = {}
    for i = 1, 4 do
      bulk[i] = { { to = "+1415555010" .. i, from = "+14155550100", body = "b" },
                  { campaign = "spring", rate = 10, not_before = now - 100 + i } }
    end
    assert.are.equal(4, s.outbox:enqueue_many(bulk))
    local single = assert(s.outbox:enqueue({ to = "+14155550109", from = "+14155550100", body = "code" },
                                       { not_before = now - 1 }))
    -- the campaign's backlog is older, yet the single message goes first
    local got = assert(s.outbox:claim(1, now))
    assert.are.same({ single }, { got[1].id })
    -- then the backlog oldest first
    got = assert(s.outbox:claim(2, now))
    assert.are.same({ "+14155550101", "+14155550102" }, { got[1].to_addr, got[2].to_addr })
    -- an entry put back on a slot comes before everything else once due
    assert.is_true(s.outbox:defer(got[2].id, now - 1, true))
    got = assert(s.outbox:claim(1, now))
    assert.are.same({ "+14155550102", 1 }, { got[1].to_addr, got[1].reserved })
    -- and a slot in the future is not due
    assert.is_true(s.outbox:defer(got[1].id, now + 60, true))
    got = assert(s.outbox:claim(5, now))
    assert.are.same({ "+14155550103", "+14155550104" }, { got[1].to_addr, got[2].to_addr })
    s:close()
  end)

  it("keeps key/values with expiry", function()
    local s = B.open()
    assert.is_true(s:kv_set("ns", "k", "v"))
    assert.are.equal("v", s:kv_get("ns", "k"))
    assert.is_true(s:kv_set("ns", "k", "w", -1)) -- already expired
    assert.is_nil(s:kv_get("ns", "k"))
    if B.name == "sqlite" then assert.are.equal(1, s:kv_expire()) end -- on Redis the server expires keys
    s:close()
  end)

  -- status order: Twilio's "Outbound Message Status in Status Callbacks"
  -- (queued -> sending -> sent -> delivered | undelivered | failed; read after)
  it("moves a message's status only forward, whatever order callbacks come in", function()
    local s = B.open()
    assert.are.same({ true, "queued" }, { s:message_status("SM1", "queued", { to = "+1A", segments = 2 }) })
    assert.are.same({ true, "delivered" }, { s:message_status("SM1", "delivered") })
    assert.are.same({ false, "delivered" }, { s:message_status("SM1", "sent") })      -- late
    assert.are.same({ false, "delivered" }, { s:message_status("SM1", "delivered") }) -- twice
    assert.are.same({ false, "delivered" }, { s:message_status("SM1", "undelivered", { error_code = 30003 }) })
    assert.are.same({ true, "read" }, { s:message_status("SM1", "read") })
    local m = s:message_get("SM1")
    assert.are.same({ "read", "+1A", 2, 30003 }, { m.status, m.to, m.segments, m.error_code })
    assert.has_error(function() s:message_status("SM1", "teleported") end, "unknown message status 'teleported'")
    s:close()
  end)

  it("opens the WhatsApp window for 24 hours after the user's last message", function()
    local s = B.open()
    local us, them = "whatsapp:+14155550100", "whatsapp:+447400123456"
    assert.are.same({ false }, { s:window_open(us, them, 1000) })
    assert(s:window_touch(us, them, 1000))
    assert.are.same({ true, 1000 + 86400 }, { s:window_open(us, them, 1000 + 86399) })
    assert.are.same({ false, 1000 + 86400 }, { s:window_open(us, them, 1000 + 86400) })
    assert(s:window_touch(us, them, 500)) -- an older message never shortens it
    assert.are.same({ true, 1000 + 86400 }, { s:window_open(us, them, 2000) })
    s:close()
  end)

  it("counts attempts per window: three verifications per number per ten minutes", function()
    local s = B.open()
    assert.are.same({ true, 1, 600 }, { s:counter_hit("verify", "+1A", 3, 600, 0) })
    assert.are.same({ true, 2, 590 }, { s:counter_hit("verify", "+1A", 3, 600, 10) })
    assert.are.same({ true, 3, 580 }, { s:counter_hit("verify", "+1A", 3, 600, 20) })
    assert.are.same({ false, 3, 570 }, { s:counter_hit("verify", "+1A", 3, 600, 30) })
    assert.are.same({ true, 1, 600 }, { s:counter_hit("verify", "+1B", 3, 600, 30) })  -- per number
    assert.are.same({ true, 1, 600 }, { s:counter_hit("verify", "+1A", 3, 600, 600) }) -- a new window
    s:close()
  end)

end)

describe("telua.store [sqlite only]", function()
  it("deletes expired values as it goes, every thousandth set", function()
    local s = assert(store_mod.open("sqlite::memory:"))
    for i = 1, 999 do assert(s:kv_set("ns", "k" .. i, "v", -1)) end -- all expired at once
    assert.are.same({ { n = 999 } }, s.db:query("SELECT count(*) AS n FROM kv"))
    assert(s:kv_set("ns", "last", "v", 60))
    assert.are.same({ { n = 1 } }, s.db:query("SELECT count(*) AS n FROM kv")) -- only the live one
    s:close()
  end)


  it("reports what it cannot open", function()
    assert.are.same({ nil, "unsupported store 'mysql://x' (use sqlite:PATH, memory, redis://, rediss:// or unix://)",
                      "store" }, { store_mod.open("mysql://x") })
    -- a Redis that does not answer (a port nothing listens on), and a bad URL
    local port = h.free_port()
    assert.are.same({ nil, "redis: cannot connect to 127.0.0.1:" .. port .. ": Connection refused", "store" },
                    { store_mod.open("redis://:sekrit@127.0.0.1:" .. port) })
    assert.are.same({ nil, "a Redis URL needs a host", "store" }, { store_mod.open("redis://:sekrit@/0") })
    local s, err, code = store_mod.open("sqlite:/nonexistent-dir/x.db")
    assert.is_nil(s)
    assert.matches("^sqlite: unable to open", err)
    assert.are.equal("store", code)
    assert.has_error(function() store_mod.open(42) end, "store spec must be a string")
  end)
end)

describe("telua.template", function()
  it("fills placeholders and refuses holes", function()
    assert.are.equal("Hi Ana, order 42 shipped.",
                     template.render("Hi {{name}}, order {{ order.id }} shipped.", { name = "Ana", order = { id = 42 } }))
    assert.are.same({ nil, "missing value for 'name'", "missing" }, { template.render("Hi {{name}}", {}) })
  end)
end)

backends.each("telua.router", function(B)
  local store, r
  before_each(function()
    store = B.open()
    r = router.new{ store = store, log = quiet }
  end)
  after_each(function() store:close() end)

  it("routes messages by keyword, number, pattern, then the default", function()
    local function says(text) return function() local m = twiml.messaging(); m:message(text); return m end end
    assert(r:add("a.lua", { messages = {
      { keyword = "order", handler = function(req) local m = twiml.messaging(); m:message("order " .. req.args); return m end },
      { to = "+14155550111", handler = says("second line") },
      { match = "^%d+$", handler = says("a number") },
      { handler = says("default") },
    } }))
    local function body(req) return r:handle(req).body end
    assert.are.equal(DECL .. "<Response><Message>order 1234</Message></Response>", body(sms("ORDER 1234")))
    assert.are.equal(DECL .. "<Response><Message>second line</Message></Response>", body(sms("hi", nil, "+14155550111")))
    assert.are.equal(DECL .. "<Response><Message>a number</Message></Response>", body(sms("42")))
    assert.are.equal(DECL .. "<Response><Message>default</Message></Response>", body(sms("hi")))
  end)

  -- E.164 forms below are google-libphonenumber 3.2.47's: (201) 555-0123 in
  -- US is +12015550123 (valid), 07400 123456 in GB is +447400123456,
  -- 12345 and +266696687 are not valid numbers
  it("compares numbers in E.164 with settings.default_region", function()
    local seen
    assert(r:add("a.lua", {
      settings = { default_region = "US" },
      messages = {
        { to = "(201) 555-0123", handler = function(req) seen = req; return "<Response/>" end },
        { to = "12345", handler = function(req) seen = req; return "<Response><Message>short</Message></Response>" end },
      },
    }))
    r:handle(sms("hi", "201.555.0124", "+1 201 555 0123"))
    assert.are.equal("+12015550123", seen.to)
    assert.are.equal("+12015550124", seen.from)
    assert.are.equal("201.555.0124", seen.params.From) -- as Twilio sent it
    assert.are.equal("US", seen.from_number.region)
    assert.are.equal("FIXED_LINE_OR_MOBILE", seen.from_number.type)
    seen = nil
    assert.matches("short", r:handle(sms("hi", "+12015550124", "12345")).body)
    assert.are.equal("12345", seen.to) -- a short code stays as written
    assert.is_false(seen.to_number.valid)
  end)

  it("keeps a channel prefix and what is not a number", function()
    assert.are.equal("whatsapp:+447400123456", router.canonical("whatsapp:07400 123456", "GB"))
    assert.are.equal("+447400123456", router.canonical("tel:+44-7400-123456"))
    assert.are.equal("+266696687", router.canonical("+266696687"))
    assert.are.equal("client:alice", router.canonical("client:alice"))
    assert.are.equal("ACME", router.canonical("ACME", "US"))
  end)

  it("keys opt-outs by E.164, however the number was written", function()
    assert(r:add("a.lua", { settings = { default_region = "GB" }, messages = { { handler = function() end } } }))
    r:handle(sms("STOP", "07400 123456", "+44 7400 123457"))
    assert.is_true(store:is_opted_out("+447400123457", "+447400123456"))
  end)

  it("refuses a default region libphonenumber does not know", function()
    local ok, err = r:add("a.lua", { settings = { default_region = "XX" } })
    assert.is_nil(ok)
    assert.matches("settings.default_region must be a region code", err, 1, true)
  end)

  it("answers a retried webhook (same I-Twilio-Idempotency-Token) with the first answer", function()
    local ran = 0
    assert(r:add("a.lua", { settings = { idempotency = true }, messages = { { handler = function(req)
      ran = ran + 1
      local m = twiml.messaging(); m:message("reply " .. ran); return m
    end } } }))
    local function delivery(token)
      local q = sms("hello")
      q.headers = { ["i-twilio-idempotency-token"] = token }
      return q
    end
    local ctx = {}
    local first = r:handle(delivery("tok-1"), ctx)
    assert.is_nil(ctx.replayed)
    local again_ctx = {}
    local again = r:handle(delivery("tok-1"), again_ctx)
    assert.are.equal(1, ran) -- the rule ran once
    assert.is_true(again_ctx.replayed)
    assert.are.same(first, again)
    assert.matches("reply 2", r:handle(delivery("tok-2")).body) -- another delivery runs the rule
    assert.matches("reply 3", r:handle(sms("hello")).body)       -- no token: always runs
  end)

  it("takes a request in the host's forms (params, form_raw, header_lines) and replays a retry from them too", function()
    local ran, seen = 0, nil
    assert(r:add("a.lua", { settings = { idempotency = true }, messages = { { handler = function(req)
      ran = ran + 1
      seen = { form = req.form, headers = req.headers, from = req.from, text = req.text }
      local m = twiml.messaging(); m:message("reply " .. ran); return m
    end } } }))
    local function host_delivery(token)
      return { method = "POST", path = "/sms/incoming", query = "",
               params = { From = "+14155550199", To = "+14155550100", Body = "a&b" },
               form_raw = "From=%2B14155550199&To=%2B14155550100&Body=a%26b&From=%2B1",
               header_lines = "host: x\ni-twilio-idempotency-token: " .. token .. "\nx-other: a: b\n" }
    end
    local first = r:handle(host_delivery("tok-h"), {})
    assert.are.same({ { "From", "+14155550199" }, { "To", "+14155550100" }, { "Body", "a&b" }, { "From", "+1" } },
                    seen.form)
    assert.are.same({ host = "x", ["i-twilio-idempotency-token"] = "tok-h", ["x-other"] = "a: b" }, seen.headers)
    assert.are.equal("+14155550199", seen.from)
    assert.are.equal("a&b", seen.text)
    local ctx = {}
    assert.are.same(first, r:handle(host_delivery("tok-h"), ctx))
    assert.is_true(ctx.replayed)
    assert.are.equal(1, ran)
  end)

  it("does not replay unless idempotency is on", function()
    local ran = 0
    assert(r:add("a.lua", { messages = { { handler = function() ran = ran + 1 end } } }))
    local q = sms("hello")
    q.headers = { ["i-twilio-idempotency-token"] = "tok" }
    r:handle(q); r:handle(q)
    assert.are.equal(2, ran)
  end)

  it("gives params from the query and the body, the body's first value where both have a field", function()
    local rt = router.new()
    local seen
    assert(rt:add("p.lua", { voice = { ["/p"] = function(req) seen = req.params end } }))
    rt:handle{ method = "POST", path = "/p", query = "a=q1&a=q2&only=q&both=q",
              form = { { "both", "b1" }, { "both", "b2" }, { "body", "x" } } }
    assert.are.same({ a = "q1", only = "q", both = "b1", body = "x" }, seen)
  end)

  it("keeps the message log from status callbacks (with the host's telua.status), and opens WhatsApp windows", function()
    local seen = {}
    require("telua.status").attach(r)
    assert(r:add("a.lua", {
      status = { ["/status"] = function(req) seen[#seen + 1] = { req.status_changed, req.message_status } end },
      messages = { { handler = function() end } },
    }))
    local function cb(status)
      return { method = "POST", path = "/status", query = "", form = { { "MessageSid", "SM9" },
        { "MessageStatus", status }, { "To", "+14155550199" }, { "From", "+14155550100" } } }
    end
    r:handle(cb("sent")); r:handle(cb("delivered")); r:handle(cb("sent"))
    assert.are.same({ { true, "sent" }, { true, "delivered" }, { false, "delivered" } }, seen)
    assert.are.equal("delivered", store:message_get("SM9").status)
    r:handle(sms("hi", "whatsapp:+447400123456", "whatsapp:+14155550100"))
    assert.is_true((store:window_open("whatsapp:+14155550100", "whatsapp:+447400123456")))
  end)

  it("answers opt-out keywords before rules and silences replies while opted out", function()
    local ran = 0
    assert(r:add("a.lua", { messages = { { handler = function(req)
      ran = ran + 1
      local m = twiml.messaging(); m:message("reply"); return m
    end } } }))
    assert.are.equal(DECL .. "<Response><Message>" .. STOP_REPLY .. "</Message></Response>", r:handle(sms("Stop")).body)
    assert.are.equal(0, ran)
    assert.is_true(store:is_opted_out("+14155550100", "+14155550199"))
    local res = r:handle(sms("hello"))
    assert.are.equal(DECL .. "<Response/>", res.body)
    assert.are.equal(1, ran) -- the rule still saw the message
    assert.are.equal(DECL .. "<Response/>", r:handle(sms("help")).body)
    assert.are.equal(DECL .. "<Response><Message>" .. START_REPLY .. "</Message></Response>",
                     r:handle(sms("yes")).body)
    assert.are.equal(DECL .. "<Response><Message>reply</Message></Response>", r:handle(sms("hello")).body)
    assert.are.equal(DECL .. "<Response><Message>" .. HELP_REPLY .. "</Message></Response>",
                     r:handle(sms("INFO")).body)
  end)

  it("lets settings turn the standard replies off", function()
    assert(r:add("a.lua", { messages = { { handler = function() end } }, settings = { optout_replies = false } }))
    assert.are.equal(DECL .. "<Response/>", r:handle(sms("STOP")).body)
    assert.is_true(store:is_opted_out("+14155550100", "+14155550199"))
  end)

  it("routes voice paths and status callbacks, and reports the rule", function()
    assert(r:add("v.lua", {
      voice = { ["/voice/a"] = function(req) local v = twiml.voice(); v:say(req.params.From); return v end },
      status = { ["/status"] = function() end },
    }))
    local ctx = {}
    local res = r:handle({ method = "POST", path = "/voice/a", form = { { "From", "+1555" } } }, ctx)
    assert.are.equal(DECL .. "<Response><Say>+1555</Say></Response>", res.body)
    assert.are.equal("voice", ctx.kind)
    assert.matches("router_spec.lua:%d+$", ctx.rule)
    res = r:handle({ method = "POST", path = "/status", form = { { "MessageSid", "SM1" }, { "MessageStatus", "sent" } } }, ctx)
    assert.are.equal(204, res.status)
    assert.are.equal(404, r:handle({ method = "POST", path = "/nope", form = {} }).status)
  end)

  it("checks a rules table whole before adding any of it", function()
    local f = function() end
    local cases = {
      { 42, "x.lua: must return a table of rules, got number" },
      { { voyce = {} }, "x.lua: unknown rules key 'voyce' (expected voice, messages, status, settings)" },
      { { voice = { ["/a"] = f, ["b"] = f } }, "x.lua: voice path b must be a string starting with '/'" },
      { { messages = { { handler = f, keywrd = "X" } } }, "x.lua: messages[1] has unknown key 'keywrd'" },
      { { messages = { { keyword = "X" } } }, "x.lua: messages[1].handler must be a function" },
      { { messages = { { handler = f, match = "[" } } }, "x.lua: messages[1].match is not a valid Lua pattern" },
      { { status = { ["/s"] = "x" } }, "x.lua: status['/s'] must be a function" },
    }
    for _, c in ipairs(cases) do
      assert.are.same({ nil, c[2] }, { r:add("x.lua", c[1]) })
    end
    assert(r:add("a.lua", { voice = { ["/a"] = f } }))
    local ok, err = r:add("b.lua", { voice = { ["/a"] = f, ["/b"] = f } })
    assert.is_nil(ok)
    assert.matches("^b.lua: voice path '/a' is already routed by .*router_spec.lua:%d+$", err)
    assert.are.equal(404, r:handle({ method = "POST", path = "/b", form = {} }).status) -- nothing of b.lua was added
  end)

  it("raises when a handler returns something it cannot send", function()
    assert(r:add("a.lua", { voice = { ["/x"] = function() return 42 end } }))
    assert.has_error(function() r:handle({ method = "POST", path = "/x", form = {} }) end,
                     "handler returned number; expected TwiML, a string, nil or {status, body}")
  end)
end)

describe("telua.flow", function()
  it("serves steps under its path and builds step URLs with state", function()
    local store = assert(store_mod.open("sqlite::memory:"))
    local r = router.new{ store = store, log = quiet }
    local f = flow.new{ start = "menu", steps = {
      menu = function(call)
        local v = twiml.voice()
        v:gather{ action = call:url("pick", { tries = 2, lang = "en us" }) }
        return v
      end,
      pick = function(call)
        call:set("picked", call.digits)
        local v = twiml.voice()
        v:say(call.query.tries .. " " .. call.query.lang .. " " .. call:get("picked") .. " " .. call.step)
        return v
      end,
    } }
    assert(r:add("f.lua", { voice = { ["/ivr"] = f } }))
    local call = { { "CallSid", "CA1" }, { "Digits", "5" } }
    assert.are.equal(DECL .. '<Response><Gather action="/ivr/pick?lang=en+us&amp;tries=2"/></Response>',
                     r:handle({ method = "POST", path = "/ivr", form = call }).body)
    assert.are.equal(DECL .. "<Response><Say>2 en us 5 pick</Say></Response>",
                     r:handle({ method = "POST", path = "/ivr/pick", query = "lang=en+us&tries=2", form = call }).body)
    assert.are.equal(404, r:handle({ method = "POST", path = "/ivr/nope", form = call }).status)
    assert.are.equal("5", store:kv_get("call:CA1", "picked"))
    store:close()
  end)

  it("refuses malformed definitions", function()
    assert.has_error(function() flow.new{ start = "a", steps = {} } end, "flow.new: start must name one of the steps")
    assert.has_error(function() flow.new{ start = "a", steps = { a = 1 } } end, "flow.new: step 'a' must be a function")
    assert.has_error(function() flow.new{ start = "a", steps = { ["a b"] = print } } end)
  end)
end)

describe("telua.rules", function()
  it("loads the example rules", function()
    local store = assert(store_mod.open("sqlite::memory:"))
    local r = assert(rules.load(h.root .. "/rules", { "ivr.lua", "sms.lua" }, { store = store, log = quiet }))
    assert.are.equal(200, r:handle(sms("hi")).status)
    store:close()
  end)

  it("reports syntax and runtime errors with file and line", function()
    local dir = h.tmpdir()
    local f = assert(io.open(dir .. "/a.lua", "w"))
    f:write("local x = 1\nreturn {\n  voice = { ['/x'] = function() end,, },\n}\n")
    f:close()
    local r, err = rules.load(dir, { "a.lua" }, { log = quiet })
    assert.is_nil(r)
    assert.are.equal(dir .. "/a.lua", err.file)
    assert.are.equal(3, err.line)
    f = assert(io.open(dir .. "/a.lua", "w"))
    f:write("local x = nil\n\nreturn x.y\n")
    f:close()
    r, err = rules.load(dir, { "a.lua" }, { log = quiet })
    assert.is_nil(r)
    assert.are.equal(3, err.line)
    assert.matches("attempt to index", err.message)
    assert.are.equal(dir .. "/a.lua:3: " .. err.message, rules.format_error(err))
    os.execute("rm -rf " .. dir)
  end)

  it("gives each file its own environment", function()
    local dir = h.tmpdir()
    local f = assert(io.open(dir .. "/a.lua", "w"))
    f:write("leaked = 1\nreturn {}\n")
    f:close()
    assert(rules.load(dir, { "a.lua" }, { log = quiet }))
    assert.is_nil(rawget(_G, "leaked"))
    os.execute("rm -rf " .. dir)
  end)
end)
