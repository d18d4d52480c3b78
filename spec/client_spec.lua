-- telua.client against the real `telua sandbox` on loopback: every
-- operation, the test-number errors of twilio.md §d, retries under injected
-- 429/503/dropped connections, and no credential in any output.
-- Expected codes come from Twilio's test-number table (§d) and error
-- dictionary (§h), not from the client.
local cjson = require "cjson"
local core = require "telua.core"
local client_mod = require "telua.client"

local BUILD = os.getenv("TELUA_BUILD") or "build"
local SID = "AC" .. ("c"):rep(32)
local TOKEN = "client-spec-token-5f3a9e"
local SERVICE = "VA" .. ("d"):rep(32)

local function start_sandbox(extra)
  local log = os.tmpname()
  local cmd = "sh -c 'echo $$; exec env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN ..
    " TWILIO_API_KEY=SK" .. ("e"):rep(32) .. " TWILIO_API_SECRET=key-secret-77 " ..
    BUILD .. "/telua sandbox --listen 127.0.0.1:0 --delivery-ms 50 " .. (extra or "") .. " 2>>" .. log .. "'"
  local p = assert(io.popen(cmd))
  local pid = p:read("*l")
  local port = (p:read("*l") or ""):match("port (%d+)")
  assert(port, "sandbox did not start")
  return { pipe = p, pid = pid, base = "http://127.0.0.1:" .. port, log = log }
end

local function stop_sandbox(s)
  os.execute("kill " .. s.pid .. " 2>/dev/null")
  s.pipe:close()
  local f = io.open(s.log, "rb")
  local text = f and f:read("*a") or ""
  if f then f:close() end
  os.remove(s.log)
  return text
end

local http = require "telua.http"
local function control(sb, method, what, form)
  local res = assert(http.request{ url = sb.base .. "/-/sandbox/" .. what, method = method,
    body = form and core.form_encode(form) or nil,
    headers = form and { ["Content-Type"] = "application/x-www-form-urlencoded" } or nil })
  return cjson.decode(res.body)
end

describe("telua.client against the sandbox", function()
  local sb, client
  local captured = {} -- every error and message the client hands back

  setup(function()
    sb = start_sandbox()
    client = client_mod.new{ account_sid = SID, auth_token = TOKEN, base_url = sb.base, default_region = "US",
                             retry_base = 0.01, retry_cap = 0.05 }
  end)

  teardown(function()
    local log = stop_sandbox(sb)
    captured[#captured + 1] = log
    -- no credential anywhere the client or the sandbox wrote
    local basic = core.base64_encode(SID .. ":" .. TOKEN)
    for _, s in ipairs(captured) do
      assert.is_nil(s:find(TOKEN, 1, true))
      assert.is_nil(s:find(basic, 1, true))
      assert.is_nil(s:find("key-secret-77", 1, true))
    end
  end)

  local function keep(v, err)
    if err then
      captured[#captured + 1] = tostring(err)
      captured[#captured + 1] = cjson.encode(setmetatable(err, nil))
    end
    return v, err
  end

  local function requests() return control(sb, "GET", "stats").api_requests end

  it("creates a message with To in E.164 and the body's segments", function()
    local m = assert(keep(client.messages.create{ to = "(415) 555-2671", from = "+15005550006",
                                                  body = "Your order shipped — track it 📦" }))
    assert.matches("^SM%x+$", m.sid)
    assert.equal(34, #m.sid)
    assert.equal("+14155552671", m.to)
    assert.equal("queued", m.status)
    assert.equal("UCS-2", m.segments.encoding)
    assert.equal("1", m.num_segments)
    assert.is_nil(m.error_code) -- JSON null is nil, not cjson.null
    local again = assert(client.messages.fetch(m.sid))
    assert.equal(m.sid, again.sid)
    assert.equal("Your order shipped — track it 📦", again.body)
  end)

  it("works with : as well as .", function()
    local m = assert(client.messages:create{ to = "+14155552671", from = "+15005550006", body = "colon" })
    assert.equal("colon", assert(client.messages:fetch(m.sid)).body)
  end)

  it("authenticates with an API key and secret", function()
    local c = client_mod.new{ account_sid = SID, api_key = "SK" .. ("e"):rep(32), api_secret = "key-secret-77",
                              base_url = sb.base }
    assert(keep(c.messages.create{ to = "+14155552671", from = "+15005550006", body = "key" }))
  end)

  it("answers 20003 for a wrong token, with no credential in the error", function()
    local c = client_mod.new{ account_sid = SID, auth_token = "wrong-" .. TOKEN, base_url = sb.base }
    local m, err = keep(c.messages.create{ to = "+14155552671", from = "+15005550006", body = "x" })
    assert.is_nil(m)
    assert.equal(20003, err.code)
    -- an integer, as Twilio writes it (lua-cjson decodes JSON numbers as floats under Lua 5.4)
    if math.type then assert.equal("integer", math.type(err.code)) end
    assert.matches("error 20003: ", captured[#captured - 1], 1, true) -- tostring(err), before keep took its metatable
    assert.equal(401, err.status)
    assert.is_false(err.retryable)
    assert.equal("https://www.twilio.com/docs/errors/20003", err.more_info)
    assert.is_nil(tostring(c):find(TOKEN, 1, true))
  end)

  describe("refuses before sending", function()
    local cases = {
      { "a To that is not a number", { to = "not a number", from = "+15005550006", body = "x" }, 21211 },
      { "a To that is not valid", { to = "+1 555 867 5310", from = "+15005550006", body = "x" }, 21211 },
      { "no To", { from = "+15005550006", body = "x" }, 21604 },
      { "no From nor service", { to = "+14155552671", body = "x" }, 21603 },
      { "an empty body", { to = "+14155552671", from = "+15005550006", body = "" }, 21602 },
      { "a body over 1,600 characters", { to = "+14155552671", from = "+15005550006", body = ("é"):rep(1601) }, 21617 },
      { "a WhatsApp free-form body over 1,024", { to = "whatsapp:+14155552671", from = "whatsapp:+15005550006",
                                                  body = ("a"):rep(1025) }, 63021 },
      { "invalid UTF-8", { to = "+14155552671", from = "+15005550006", body = "\xff\xfe" }, 21619 },
    }
    for _, c in ipairs(cases) do
      it(c[1] .. " (" .. c[3] .. ")", function()
        local before = requests()
        local m, err = keep(client.messages.create(c[2]))
        assert.is_nil(m)
        assert.equal(c[3], err.code)
        assert.equal("client", err.where)
        assert.is_false(err.retryable)
        assert.equal(before, requests())
      end)
    end

    it("lets a WhatsApp template through whatever the body", function()
      local m = assert(keep(client.messages.create{ to = "whatsapp:+14155552671", from = "whatsapp:+15005550006",
        content_sid = "HX" .. ("1"):rep(32), content_variables = { ["1"] = "Ada", ["2"] = "12:30" } }))
      assert.equal("whatsapp:+14155552671", m.to)
      local rec = control(sb, "GET", "messages?To=whatsapp%3A%2B14155552671").messages
      assert.same({ ["1"] = "Ada", ["2"] = "12:30" }, cjson.decode(rec[#rec].content_variables))
    end)

    it("keeps short codes and alphanumeric sender IDs as written", function()
      assert(keep(client.messages.create{ to = "+14155552671", from = "12345", body = "sc" }))
      local m = assert(keep(client.messages.create{ to = "+447911123456", from = "TeluaShop", body = "alpha" }))
      assert.equal("TeluaShop", m.from)
    end)
  end)

  describe("Twilio's test numbers (twilio.md §d)", function()
    local msg = {
      { "From", "+15005550001", 21212 }, { "From", "+15005550007", 21606 }, { "From", "+15005550008", 21611 },
      { "To", "+15005550001", 21211 }, { "To", "+15005550002", 21612 }, { "To", "+15005550003", 21408 },
      { "To", "+15005550004", 21610 }, { "To", "+15005550009", 21614 },
    }
    for _, c in ipairs(msg) do
      it("message " .. c[1] .. " " .. c[2] .. " -> " .. c[3], function()
        local p = { to = "+14155552671", from = "+15005550006", body = "magic" }
        p[c[1]:lower()] = c[2]
        local before = requests()
        local m, err = keep(client.messages.create(p))
        assert.is_nil(m)
        assert.equal(c[3], err.code)
        assert.equal(400, err.status)
        assert.equal("twilio", err.where)
        assert.equal(1, err.attempts) -- a 4xx is never retried
        assert.equal(before + 1, requests())
        assert.equal(c[3] == 21611, err.retryable) -- a full queue may clear later (§h)
      end)
    end
    local calls = {
      { "from", "+15005550001", 21212 }, { "to", "+15005550001", 21217 }, { "to", "+15005550002", 21214 },
      { "to", "+15005550003", 21215 }, { "to", "+15005550004", 21216 },
    }
    for _, c in ipairs(calls) do
      it("call " .. c[1] .. " " .. c[2] .. " -> " .. c[3], function()
        local p = { to = "+14155552671", from = "+15005550006", url = "http://127.0.0.1:9/voice" }
        p[c[1]] = c[2]
        local call, err = keep(client.calls.create(p))
        assert.is_nil(call)
        assert.equal(c[3], err.code)
        assert.equal(400, err.status)
      end)
    end
  end)

  describe("retries", function()
    it("retries 429 and 503 with backoff, then succeeds", function()
      control(sb, "POST", "inject", { { "Status", "429" }, { "Count", "2" } })
      control(sb, "POST", "inject", { { "Status", "503" }, { "Count", "1" } })
      local before = requests()
      assert(keep(client.messages.create{ to = "+14155552671", from = "+15005550006", body = "retry" }))
      assert.equal(before + 4, requests())
    end)

    it("gives up after max_retries with the last error", function()
      control(sb, "POST", "inject", { { "Status", "503" }, { "Count", "4" } })
      local m, err = keep(client.messages.create{ to = "+14155552671", from = "+15005550006", body = "x" })
      assert.is_nil(m)
      assert.equal(503, err.status)
      assert.equal(20503, err.code)
      assert.equal(4, err.attempts)
      assert.is_true(err.retryable)
    end)

    it("honours Retry-After", function()
      control(sb, "POST", "inject", { { "Status", "429" }, { "Code", "20429" }, { "RetryAfter", "1" } })
      local t0 = core.monotonic()
      assert(keep(client.messages.create{ to = "+14155552671", from = "+15005550006", body = "x" }))
      assert.is_true(core.monotonic() - t0 >= 1.0)
    end)

    it("hands back a Retry-After longer than max_retry_after instead of sleeping", function()
      control(sb, "POST", "inject", { { "Status", "429" }, { "RetryAfter", "120" } })
      local t0 = core.monotonic()
      local m, err = keep(client.messages.create{ to = "+14155552671", from = "+15005550006", body = "x" })
      assert.is_nil(m)
      assert.equal(20429, err.code)
      assert.equal(120, err.retry_after)
      assert.is_true(core.monotonic() - t0 < 1)
    end)

    it("retries dropped connections", function()
      control(sb, "POST", "inject", { { "Drop", "true" }, { "Count", "2" } })
      local before = requests()
      assert(keep(client.messages.create{ to = "+14155552671", from = "+15005550006", body = "drop" }))
      assert.equal(before + 3, requests())
    end)

    it("never retries another 4xx", function()
      control(sb, "POST", "inject", { { "Status", "400" }, { "Code", "20001" } })
      local before = requests()
      local m, err = keep(client.messages.create{ to = "+14155552671", from = "+15005550006", body = "x" })
      assert.is_nil(m)
      assert.equal(20001, err.code)
      assert.equal(before + 1, requests())
    end)

    it("reports a connection failure as a transport error", function()
      local c = client_mod.new{ account_sid = SID, auth_token = TOKEN, base_url = "http://127.0.0.1:9",
                                max_retries = 1, retry_base = 0.01 }
      local m, err = keep(c.messages.create{ to = "+14155552671", from = "+15005550006", body = "x" })
      assert.is_nil(m)
      assert.equal("transport", err.where)
      assert.equal("connect", err.transport)
      assert.equal(2, err.attempts)
    end)
  end)

  describe("messages", function()
    it("lists with paging and filters", function()
      for i = 1, 5 do
        assert(client.messages.create{ to = "+14155550142", from = "+15005550006", body = "page " .. i })
      end
      local all = assert(keep(client.messages.list{ to = "+14155550142", page_size = 2 }))
      assert.equal(5, #all)
      assert.equal("page 5", all[1].body) -- newest first, as Twilio lists
      local two = assert(client.messages.list{ to = "+14155550142", limit = 2 })
      assert.equal(2, #two)
      local page = assert(client.messages.page{ to = "+14155550142", page_size = 2 })
      assert.equal(2, #page.messages)
      assert.matches("PageToken=PA", page.next_page_uri)
    end)

    it("goes on where a page left off after an older message is deleted", function()
      local to, sids = "+14155550143", {}
      for i = 1, 5 do
        sids[i] = assert(client.messages.create{ to = to, from = "+15005550006", body = "del " .. i }).sid
      end
      local first = assert(client.messages.page{ to = to, page_size = 2 })
      assert.same({ "del 5", "del 4" }, { first.messages[1].body, first.messages[2].body })
      assert.is_true(assert(client.messages.delete(sids[1]))) -- not listed yet
      local token = first.next_page_uri:match("PageToken=(PA%d+)")
      local second = assert(client.messages.page{ to = to, page_size = 2, page = 1, page_token = token })
      assert.same({ "del 3", "del 2" }, { second.messages[1].body, second.messages[2].body })
      assert.is_true(second.next_page_uri == nil or second.next_page_uri == cjson.null)
    end)

    it("cancels a scheduled message and redacts a sent one", function()
      local m = assert(client.messages.create{ to = "+14155552671", messaging_service_sid = "MG" .. ("a"):rep(32),
                                               body = "later", send_at = os.time() + 3600 })
      assert.equal("scheduled", m.status)
      assert.equal("canceled", assert(client.messages.cancel(m.sid)).status)
      local s = assert(client.messages.create{ to = "+14155552671", from = "+15005550006", body = "secret 1234" })
      local deadline = core.monotonic() + 3
      repeat core.sleep(0.05) until client.messages.fetch(s.sid).status == "delivered" or core.monotonic() > deadline
      assert.equal("", assert(client.messages.redact(s.sid)).body)
      assert.is_true(assert(client.messages.delete(s.sid)))
      local gone, err = client.messages.fetch(s.sid)
      assert.is_nil(gone)
      assert.equal(20404, err.code)
    end)

    it("moves queued -> sending -> sent -> delivered, or ends undelivered with the code", function()
      local ok = assert(client.messages.create{ to = "+14155552671", from = "+15005550006", body = "d",
                                                status_callback = "http://127.0.0.1:9/status" })
      local bad = assert(client.messages.create{ to = "+15005559003", from = "+15005550006", body = "u" })
      local deadline = core.monotonic() + 3
      local a, b
      repeat
        core.sleep(0.05)
        a, b = client.messages.fetch(ok.sid), client.messages.fetch(bad.sid)
      until (a.status == "delivered" and b.status == "undelivered") or core.monotonic() > deadline
      assert.equal("delivered", a.status)
      assert.equal("undelivered", b.status)
      assert.equal(30003, b.error_code)
      if math.type then assert.equal("integer", math.type(b.error_code)) end
      -- the callbacks were attempted (nothing listens on port 9), one per step after queued
      local seen = {}
      for _, cb in ipairs(control(sb, "GET", "callbacks").callbacks) do
        if cb.about == ok.sid then seen[#seen + 1] = cb.body:match("MessageStatus=(%a+)") end
      end
      assert.same({ "sending", "sent", "delivered" }, seen)
    end)
  end)

  describe("calls", function()
    it("creates, fetches, redirects, hangs up and lists", function()
      local twiml = require("telua.twiml").voice()
      twiml:say("Hello")
      local c = assert(keep(client.calls.create{ to = "+14155552671", from = "+15005550006", twiml = twiml,
        status_callback = "http://127.0.0.1:9/call", status_callback_event = { "initiated", "completed" },
        machine_detection = "Enable" }))
      assert.matches("^CA%x+$", c.sid)
      assert.equal("(415) 555-2671", c.to_formatted)
      assert.equal(c.sid, assert(client.calls.fetch(c.sid)).sid)
      local deadline = core.monotonic() + 2
      repeat core.sleep(0.02) until client.calls.fetch(c.sid).status == "in-progress" or core.monotonic() > deadline
      assert(keep(client.calls.update(c.sid, { url = "http://127.0.0.1:9/next" })))
      assert(keep(client.calls.hangup(c.sid)))
      deadline = core.monotonic() + 2
      repeat core.sleep(0.02) until client.calls.fetch(c.sid).status == "completed" or core.monotonic() > deadline
      local f = client.calls.fetch(c.sid)
      assert.equal("completed", f.status)
      assert.equal("human", f.answered_by)
      local list = assert(client.calls.list{ to = "+14155552671" })
      assert.is_true(#list >= 1)
      local rec
      for _, x in ipairs(control(sb, "GET", "calls").calls) do if x.sid == c.sid then rec = x end end
      assert.matches("<Say>Hello</Say>", rec.twiml)
      assert.equal(1, rec.redirects)
    end)

    it("needs exactly one of url, twiml, application_sid", function()
      local c, err = client.calls.create{ to = "+14155552671", from = "+15005550006" }
      assert.is_nil(c)
      assert.equal(21205, err.code)
    end)
  end)

  describe("verify", function()
    local function code_of(sid)
      for _, v in ipairs(control(sb, "GET", "verifications").verifications) do
        if v.sid == sid then return v.code end
      end
    end

    it("starts, refuses a wrong code, approves the right one, then 20404", function()
      local v = assert(keep(client.verify.start(SERVICE, { to = "+1 415 555 0101", channel = "sms" })))
      assert.equal("pending", v.status)
      assert.equal("+14155550101", v.to)
      local wrong = assert(client.verify.check(SERVICE, { to = "+14155550101", code = "0000000" }))
      assert.equal("pending", wrong.status)
      assert.is_false(wrong.valid)
      local right = assert(client.verify.check(SERVICE, { to = "+14155550101", code = code_of(v.sid) }))
      assert.equal("approved", right.status)
      assert.is_true(right.valid)
      local after, err = client.verify.check(SERVICE, { to = "+14155550101", code = code_of(v.sid) })
      assert.is_nil(after)
      assert.equal(20404, err.code)
      assert.equal("approved", assert(client.verify.fetch(SERVICE, v.sid)).status)
    end)

    it("gives 60202 after five wrong codes and 60203 after five sends", function()
      local v = assert(client.verify.start(SERVICE, { to = "+14155550102", channel = "sms" }))
      for _ = 1, 5 do assert(client.verify.check(SERVICE, { verification_sid = v.sid, code = "999999x" })) end
      local r, err = client.verify.check(SERVICE, { verification_sid = v.sid, code = "999999x" })
      assert.is_nil(r)
      assert.equal(60202, err.code)
      assert.equal(429, err.status)
      for _ = 1, 4 do assert(client.verify.start(SERVICE, { to = "+14155550102", channel = "sms" })) end
      local s, err2 = client.verify.start(SERVICE, { to = "+14155550102", channel = "sms" })
      assert.is_nil(s)
      assert.equal(60203, err2.code)
      assert.equal(5, #client.verify.fetch(SERVICE, v.sid).send_code_attempts)
    end)

    -- telua.verify's own limits, over the same sandbox: the expected counts
    -- are the calls made here and Twilio's documented 5 attempts (60202/60203)
    local function verifier(o)
      local store = assert(require("telua.store").open("sqlite::memory:"))
      o = o or {}
      return assert(require("telua.verify").new{ service_sid = SERVICE, store = store, client = client,
                                                   default_region = "US", check_limit = o.check_limit }), store
    end

    it("telua.verify counts a number in its E.164 form: four spellings, one counter, the fourth start refused", function()
      local v = verifier()
      local first = assert(keep(v:start("(415) 555-0104")))
      assert(keep(v:start("+14155550104")))
      local third = assert(keep(v:start("415-555-0104")))
      assert.equal(1, first.attempt)
      assert.equal(3, third.attempt)
      local before = requests()
      local none, err = v:start("+1 415 555 0104")
      assert.is_nil(none)
      assert.equal(60203, err.code)
      assert.is_true(err.retry_after > 0 and err.retry_after <= 600, tostring(err.retry_after))
      assert.matches("try again in %d+ seconds", err.message)
      assert.equal(before, requests()) -- nothing reached Twilio
      assert.equal(3, #client.verify.fetch(SERVICE, third.sid).send_code_attempts)
      assert(keep(v:start("+14155550199"))) -- another number has its own count
    end)

    it("telua.verify stops wrong guesses after 3 checks, before Twilio's 5, and says how long to wait", function()
      local v = verifier()
      local started = assert(keep(v:start("+14155550105")))
      for _ = 1, 3 do assert.is_false((v:check("(415) 555-0105", "000000"))) end
      local before = requests()
      local ok, err = v:check("+14155550105", code_of(started.sid)) -- even the right code: the number is locked
      assert.is_nil(ok)
      assert.equal(60202, err.code)
      assert.equal(429, err.status)
      assert.is_true(err.retry_after > 0 and err.retry_after <= 600, tostring(err.retry_after))
      assert.equal(before, requests())
      assert.equal("pending", assert(client.verify.fetch(SERVICE, started.sid)).status)
      -- a higher limit lets the right code through on the fourth check
      local v2 = verifier{ check_limit = 4 }
      local s2 = assert(keep(v2:start("+14155550106")))
      for _ = 1, 3 do assert.is_false((v2:check("+14155550106", "000000"))) end
      assert.is_true((v2:check("+14155550106", code_of(s2.sid))))
      assert.has_error(function() require("telua.verify").new{ service_sid = SERVICE, store = v.store, client = client,
                                                                check_limit = 0 } end)
    end)

    it("cancels, and checks parameters before sending", function()
      local v = assert(client.verify.start(SERVICE, { to = "+14155550103", channel = "call" }))
      assert.equal("canceled", assert(client.verify.update(SERVICE, v.sid, "canceled")).status)
      local _, e1 = client.verify.start(SERVICE, { to = "+14155550103", channel = "pigeon" })
      assert.equal(60200, e1.code)
      local _, e2 = client.verify.check(SERVICE, { to = "+14155550103", code = "12" })
      assert.equal(60200, e2.code)
      assert(client.verify.start(SERVICE, { to = "ada@example.com", channel = "email" }))
    end)
  end)

  it("answers nil, err for missing or malformed credentials, without the secret in the message", function()
    local none, msg = client_mod.new{ account_sid = "XX1", auth_token = TOKEN }
    assert.is_nil(none)
    assert.matches("account_sid", msg)
    assert.is_nil(msg:find(TOKEN, 1, true))
    local none2, msg2a = client_mod.new{ account_sid = SID, auth_token = "" }
    assert.is_nil(none2)
    assert.matches("no secret", msg2a)
    assert.is_nil(select(1, client_mod.new{ account_sid = SID, api_key = "XX", api_secret = TOKEN }))
    assert.is_nil(select(1, client_mod.new{ account_sid = SID, auth_token = TOKEN, base_url = "ftp://x" }))
    assert.has_error(function() client_mod.new("nope") end, "client.new: options must be a table")
    local ok2, msg2 = pcall(client.messages.fetch, "nope")
    assert.is_false(ok2)
    captured[#captured + 1] = msg2
  end)
end)

describe("telua.client verification expiry", function()
  it("answers 20404 once the code expired", function()
    local sb = start_sandbox("--verify-ttl 1")
    local c = client_mod.new{ account_sid = SID, auth_token = TOKEN, base_url = sb.base }
    assert(c.verify.start(SERVICE, { to = "+14155550104", channel = "sms" }))
    core.sleep(1.2)
    local r, err = c.verify.check(SERVICE, { to = "+14155550104", code = "123456" })
    stop_sandbox(sb)
    assert.is_nil(r)
    assert.equal(20404, err.code)
  end)
end)

describe("telua.client helpers", function()
  it("reads Retry-After as seconds or an HTTP-date", function()
    assert.equal(7, client_mod.retry_after("7"))
    local future = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 30)
    local s = client_mod.retry_after(future)
    assert.is_true(s > 27 and s <= 31)
    assert.is_nil(client_mod.retry_after("soon"))
  end)

  it("routes by edge and region as the helper libraries do", function()
    local c = client_mod.new{ account_sid = SID, auth_token = TOKEN, edge = "sydney", region = "au1" }
    assert.equal("https://api.sydney.au1.twilio.com", c.api_base)
    assert.equal("https://verify.sydney.au1.twilio.com", c.verify_base)
    assert.equal("https://api.dublin.us1.twilio.com", client_mod.new{ account_sid = SID, auth_token = TOKEN, edge = "dublin" }.api_base)
    assert.equal("https://api.twilio.com", client_mod.new{ account_sid = SID, auth_token = TOKEN }.api_base)
  end)
end)
