-- Seeing what the host does: the admin listener (/metrics, /-/status,
-- /-/health, the dashboard), JSON logs with access lines and request ids.
--
-- One host with 2 workers and its sender, `telua sandbox` as Twilio, a
-- known mix of traffic and one reload. The expected figures come from what
-- the spec sent and from the sandbox's own records (its callbacks), never
-- from the host; /metrics is read by prometheus_client's parser (Debian's
-- python3-prometheus-client) and the dashboard by headless Chromium.
local cjson = require "cjson"
local h = require "spec.helpers"
local H = require "spec.helpers.host"

local ROOT = h.root
local BUILD = os.getenv("TELUA_BUILD") or (ROOT .. "/build")
local SID = "AC" .. ("7"):rep(32)
local TOKEN = "admin-spec-auth-token-5150"
local FROM = "+15005550006" -- the number texted, and the sender of the replies sent by REST
local CAMPAIGN_FROM = "+14155550100"
local q, sh = h.quote, h.sh

local APP = [[
local twiml = require "telua.twiml"
return {
  settings = { default_region = "US", status_callback = "/status/messages", resend_codes = {} },
  voice = {
    ["/voice/hello"] = function(req)
      req.log("info", "hello from the rule")
      local r = twiml.voice()
      r:say("Hello")
      return r
    end,
    ["/voice/boom"] = function()
      error("boom")
    end,
  },
  messages = {
    { path = "/sms/in", keyword = "SEND", handler = function(req)
        local id, err = req.send{ to = req.args, body = "Your order is ready 9931" }
        if not id then req.log("warn", "send: " .. tostring(err)) end
        return nil
      end },
    { path = "/sms/in", handler = function()
        local r = twiml.messaging()
        r:message("Thanks")
        return r
      end },
  },
  status = { ["/status/messages"] = function() end },
}
]]

-- the line of APP where `needle` is written (an independent count of
-- where each handler is defined)
local function line_of(text, needle)
  local n = 1
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line:find(needle, 1, true) then return n end
    n = n + 1
  end
  error("no " .. needle)
end

local wait_for = H.wait_for

local function sign(url, pairs_)
  return sh("node " .. ROOT .. "/spec/oracle/sign.js " .. q(TOKEN) .. " " .. q(url) .. " " .. q(cjson.encode(pairs_)))
end

-- the sample of name whose labels include want, or nil
local function sample(parsed, name, want)
  for _, s in ipairs(parsed.samples) do
    if s.name == name then
      local ok = true
      for k, v in pairs(want or {}) do if s.labels[k] ~= v then ok = false end end
      if ok then return s.value end
    end
  end
  return nil
end

local function total(parsed, name, want)
  local n = 0
  for _, s in ipairs(parsed.samples) do
    if s.name == name then
      local ok = true
      for k, v in pairs(want or {}) do if s.labels[k] ~= v then ok = false end end
      if ok then n = n + s.value end
    end
  end
  return n
end

describe("the admin listener", function()
  local dir, sandbox, host, base, admin, hp, ap
  local sent = { answered = 0, rejected = 0 }
  local app_path, broken_line

  local function post(path, pairs_, unsigned)
    local url = base .. path
    local hdr = unsigned and "" or (" -H " .. q("X-Twilio-Signature: " .. sign(url, pairs_)))
    local out = sh("curl -s -w '\\n%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded'" .. hdr ..
                   " --data " .. q(H.form(pairs_)) .. " " .. q(url))
    local code = tonumber(out:match("(%d+)$"))
    if unsigned then sent.rejected = sent.rejected + 1 else sent.answered = sent.answered + 1 end
    return code, out:gsub("\n%d+$", "")
  end

  local function sms(from, body)
    return post("/sms/in", { { "MessageSid", "SM" .. ("a"):rep(32) }, { "AccountSid", SID }, { "From", from },
                             { "To", FROM }, { "Body", body } })
  end

  local function metrics()
    local file = dir .. "/metrics.txt"
    local rc = os.execute("curl -sf " .. admin .. "/metrics > " .. q(file))
    assert.is_true(rc == true or rc == 0, "GET /metrics failed")
    return cjson.decode(sh("/usr/bin/python3 " .. ROOT .. "/spec/helpers/promparse.py < " .. q(file)))
  end

  -- the status callbacks the sandbox delivered (its own log), each with
  -- its form fields decoded
  local function callbacks()
    local list = cjson.decode(sh("curl -s http://127.0.0.1:" .. sandbox.port .. "/-/sandbox/callbacks")).callbacks
    for _, c in ipairs(list) do
      c.params = {}
      for k, v in c.body:gmatch("([^&=]+)=([^&]*)") do
        local function dec(x) return (x:gsub("+", " "):gsub("%%(%x%x)", function(hx) return string.char(tonumber(hx, 16)) end)) end
        c.params[dec(k)] = dec(v)
      end
    end
    return list
  end

  setup(function()
    dir = h.tmpdir()
    assert(os.execute("mkdir -p " .. dir .. "/rules"))
    app_path = dir .. "/rules/app.lua"
    H.write(app_path, APP)
    local env = "env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " "
    sandbox = h.spawn(env .. BUILD .. "/telua sandbox --listen 127.0.0.1:0 --delivery-ms 50 --mps 100",
                      dir .. "/sandbox.log")
    hp, ap = h.free_port(), h.free_port()
    base, admin = "http://127.0.0.1:" .. hp, "http://127.0.0.1:" .. ap
    host = h.spawn(env .. "TELUA_TWILIO_BASE_URL=http://127.0.0.1:" .. sandbox.port .. " " .. BUILD ..
                   "/telua serve --rules " .. dir .. "/rules --listen 127.0.0.1:" .. hp .. " --public-url " .. base ..
                   " --admin-listen 127.0.0.1:" .. ap .. " --store sqlite:" .. dir .. "/telua.db --workers 2" ..
                   " --send-rates long_code=0 --log-format json --debounce-ms 50", dir .. "/host.log")

    -- generation 1: voice, a failing rule, a 404, SMS with STOP/START, sends
    for _ = 1, 5 do assert.equal(200, (post("/voice/hello", H.CALL))) end
    for _ = 1, 2 do assert.equal(200, (post("/voice/boom", H.CALL))) end -- the fallback TwiML
    assert.equal(404, (post("/nowhere", H.CALL)))
    for _ = 1, 3 do assert.equal(403, (post("/voice/hello", H.CALL, true))) end
    assert.equal(200, (sms("+14155550150", "STOP")))
    assert.equal(200, (sms("+14155550150", "START")))
    assert.equal(200, (sms("+14155550151", "secret words 4711")))
    assert.equal(200, (sms("+14155550152", "SEND +14155550160")))  -- delivered
    assert.equal(200, (sms("+14155550153", "SEND +15005559003")))  -- undelivered, 30003
    assert.equal(200, (sms("+14155550154", "SEND +15005550001")))  -- refused by the API, 21211

    -- a campaign of 3 from another sender, through the same outbox
    assert(os.execute("mkdir -p " .. dir .. "/templates && cp " .. ROOT .. "/rules/templates/order_shipped.lua " ..
                      dir .. "/templates/"))
    H.write(dir .. "/spring.csv", "phone,name,order\n+14155550171,Ana,1\n+14155550172,Bo,2\n+14155550173,Cy,3\n")
    local out = sh(env .. BUILD .. "/telua campaign --quiet-hours off --store sqlite:" .. dir .. "/telua.db --templates " .. dir ..
                   "/templates --status-callback " .. base .. "/status/messages --name spring --csv " .. dir ..
                   "/spring.csv --template order_shipped --from " .. CAMPAIGN_FROM .. " --rate 20 2>&1; echo rc=$?")
    assert.matches("rc=0", out, 1, true)

    -- a reload, then more of the same on generation 2
    H.write(app_path, APP:gsub('r:say%("Hello"%)', 'r:say("Hello again")'))
    assert.truthy(wait_for(function()
      local _, body = post("/voice/hello", H.CALL)
      return body:find("Hello again", 1, true)
    end), "the reload was not seen")
    for _ = 1, 2 do assert.equal(200, (post("/voice/hello", H.CALL))) end

    -- every status callback the sandbox sends has come and been answered
    assert.truthy(wait_for(function()
      local finals = 0
      for _, c in ipairs(callbacks()) do
        local st = c.params and c.params.MessageStatus
        if st == "delivered" or st == "undelivered" then finals = finals + 1 end
      end
      return finals == 5
    end, 15), "the sandbox did not send every final callback")
    assert.truthy(wait_for(function()
      local s = metrics()
      return total(s, "telua_status_callbacks_total") == #callbacks() and
             sample(s, "telua_outbox_entries", { state = "sent" }) == 5 and
             sample(s, "telua_campaign_entries", { campaign = "spring", state = "delivered" }) == 3
    end, 10), "the host did not count every callback")
  end)

  teardown(function()
    h.kill(host)
    h.kill(sandbox)
  end)

  it("shows /metrics in the Prometheus text format, with the counts of what was sent, across workers and a reload", function()
    local m = metrics()
    assert.equal("counter", m.families.telua_webhooks)
    assert.equal("histogram", m.families.telua_webhook_duration_seconds)
    assert.equal("gauge", m.families.telua_outbox_entries)
    -- webhooks: 5 + 1 (the reload probe, at least) + 2, on two generations
    local hello = sample(m, "telua_webhooks_total", { kind = "voice", path = "/voice/hello", status = "200" })
    assert.is_true(hello >= 8)
    local probes = hello - 7
    assert.equal(2, sample(m, "telua_webhooks_total", { kind = "voice", path = "/voice/boom", status = "200" }))
    assert.equal(1, sample(m, "telua_webhooks_total", { kind = "unmatched", path = "unmatched", status = "404" }))
    assert.equal(6, sample(m, "telua_webhooks_total", { kind = "messaging", path = "/sms/in", status = "200" }))
    local cbs = #callbacks()
    assert.equal(cbs, total(m, "telua_webhooks_total", { kind = "status", path = "/status/messages" }))
    assert.equal(sent.answered + cbs, total(m, "telua_webhooks_total"))
    assert.equal(5 + probes + 2 + 2, sample(m, "telua_webhook_duration_seconds_count", { kind = "voice" }))
    assert.equal(sent.answered + cbs, total(m, "telua_webhook_duration_seconds_count"))
    assert.equal(3, sample(m, "telua_webhooks_rejected_total", { status = "403", reason = "signature" }))
    -- the failing rule, by its file
    assert.equal(2, sample(m, "telua_rule_errors_total", { file = "app.lua" }))
    -- reloads and the generation serving
    assert.equal(1, sample(m, "telua_rules_reloads_total", { result = "ok" }))
    assert.equal(2, sample(m, "telua_rules_generation"))
    -- opt-outs and opt-ins
    assert.equal(1, sample(m, "telua_optouts_total", { source = "keyword" }))
    assert.equal(1, sample(m, "telua_optins_total"))
    -- sends: two replies and the campaign's three taken by Twilio, one refused (21211)
    assert.equal(5, sample(m, "telua_sends_total", { result = "sent" }))
    assert.equal(1, sample(m, "telua_sends_total", { result = "failed", code = "21211" }))
    assert.equal(6, sample(m, "telua_pacing_delay_seconds_count", { sender_type = "long_code" }))
    assert.equal(3, sample(m, "telua_campaign_entries", { campaign = "spring", state = "sent" }))
    assert.equal(0, sample(m, "telua_campaign_entries", { campaign = "spring", state = "queued" }))
    -- status callbacks by status and code, as the sandbox sent them
    local by = {}
    for _, c in ipairs(callbacks()) do
      local k = c.params.MessageStatus .. "|" .. (c.params.ErrorCode or "")
      by[k] = (by[k] or 0) + 1
    end
    for k, n in pairs(by) do
      local st, code = k:match("^(.-)|(.*)$")
      assert.equal(n, sample(m, "telua_status_callbacks_total", { status = st, code = code }), k)
    end
    -- final statuses and the delivery rate of the sender: 1 of 3
    assert.equal(1, sample(m, "telua_messages_final_total", { sender = FROM, status = "delivered" }))
    assert.equal(1, sample(m, "telua_messages_final_total", { sender = FROM, status = "undelivered", code = "30003" }))
    assert.equal(1, sample(m, "telua_messages_final_total", { sender = FROM, status = "failed", code = "21211" }))
    assert.near(1 / 3, sample(m, "telua_delivery_ratio", { sender = FROM }), 1e-6)
    assert.equal(3, sample(m, "telua_messages_final_total", { sender = CAMPAIGN_FROM, status = "delivered" }))
    assert.equal(1, sample(m, "telua_delivery_ratio", { sender = CAMPAIGN_FROM }))
    -- the outbox, as the sender counted it
    assert.equal(5, sample(m, "telua_outbox_entries", { state = "sent" }))
    assert.equal(1, sample(m, "telua_outbox_entries", { state = "failed" }))
    assert.equal(0, sample(m, "telua_outbox_entries", { state = "queued" }))
    -- the sender's REST calls: six sends (five 201, one 400) and its first look (200)
    assert.equal(5, sample(m, "telua_http_client_requests_total", { status = "201" }))
    assert.equal(1, sample(m, "telua_http_client_requests_total", { status = "400" }))
    assert.is_true(sample(m, "telua_http_client_requests_total", { status = "200" }) >= 1)
  end)

  it("keeps the webhook port for webhooks: no /metrics nor /-/status there, /-/health on both", function()
    assert.equal("200", sh("curl -s -o /dev/null -w '%{http_code}' " .. base .. "/-/health"))
    assert.equal("200", sh("curl -s -o /dev/null -w '%{http_code}' " .. admin .. "/-/health"))
    assert.equal("403", sh("curl -s -o /dev/null -w '%{http_code}' " .. base .. "/metrics"))
    assert.equal("403", sh("curl -s -o /dev/null -w '%{http_code}' " .. base .. "/-/status"))
    sent.rejected = sent.rejected + 2 -- two more turned away (unsigned)
    assert.equal("404", sh("curl -s -o /dev/null -w '%{http_code}' " .. admin .. "/nothing"))
    local st = cjson.decode(sh("curl -s " .. admin .. "/-/status"))
    assert.equal("0.1.0", st.version)
    assert.is_true(st.uptime_s > 0)
    assert.equal(2, st.generation)
    assert.is_table(st.metrics.telua_webhooks_total)
  end)

  it("logs one JSON access line per answered webhook, with the rule's file:line and the request id", function()
    local access, by_id, n = {}, {}, 0
    for line in h.read_file(dir .. "/host.log"):gmatch("[^\n]+") do
      local ok, rec = pcall(cjson.decode, line)
      assert.is_true(ok, "not JSON: " .. line)
      assert.is_string(rec.time)
      assert.is_string(rec.level)
      n = n + 1
      if rec.msg == "access" then access[#access + 1] = rec end
      if rec.request_id then
        by_id[rec.request_id] = by_id[rec.request_id] or {}
        table.insert(by_id[rec.request_id], rec)
      end
    end
    assert.is_true(n > 10)
    assert.equal(sent.answered + #callbacks(), #access)
    local hello_line = line_of(APP, '["/voice/hello"] = function')
    local seen_hello = 0
    for _, a in ipairs(access) do
      assert.matches("^%x+$", a.request_id)
      assert.is_number(a.duration_ms)
      assert.is_number(a.generation)
      if a.path == "/voice/hello" then
        seen_hello = seen_hello + 1
        assert.equal("app.lua:" .. hello_line, a.rule)
        assert.equal(200, a.status)
        assert.equal("POST", a.method)
        -- the rule's own req.log line carries the same request id
        local rule_line
        for _, rec in ipairs(by_id[a.request_id]) do
          if rec.msg == "hello from the rule" then rule_line = rec end
        end
        assert.truthy(rule_line, "no req.log line for request " .. a.request_id)
      elseif a.path == "/voice/boom" then
        assert.equal("app.lua:" .. line_of(APP, '["/voice/boom"] = function'), a.rule)
      elseif a.path == "/nowhere" then
        assert.equal(404, a.status)
        assert.equal("-", a.rule)
      end
    end
    assert.is_true(seen_hello >= 8)
  end)

  it("writes no secret and no message body into any log line", function()
    local logs = h.read_file(dir .. "/host.log")
    assert.is_nil(logs:find(TOKEN, 1, true))
    assert.is_nil(logs:find("secret words 4711", 1, true))
    assert.is_nil(logs:find("Your order is ready 9931", 1, true))
  end)

  it("draws the dashboard in headless Chromium with the host's figures and the last reload error", function()
    -- a broken edit: the dashboard must name its file and line
    local lines = select(2, APP:gsub("\n", "\n"))
    broken_line = lines + 2
    H.write(app_path, APP .. "\nthis is not lua\n")
    assert.truthy(wait_for(function()
      local st = cjson.decode(sh("curl -s " .. admin .. "/-/status"))
      return st.last_reload_error ~= cjson.null
    end), "the broken reload was not reported")
    local m = metrics()
    local answered = total(m, "telua_webhooks_total")
    local art = ROOT .. "/build/artifacts"
    assert(os.execute("mkdir -p " .. q(art)))
    local chrome = "timeout 90 chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir=" ..
                   q(dir .. "/chrome") .. " --virtual-time-budget=6000 "
    local dom = sh(chrome .. "--dump-dom " .. q(admin .. "/") .. " 2>/dev/null")
    local function shown(id) return dom:match('id="' .. id:gsub("%-", "%%-") .. '"[^>]*>([^<]*)<') end
    assert.equal("2", shown("generation"))
    assert.equal(("%d"):format(answered), shown("webhooks-total"))
    assert.equal(tostring(sent.rejected), shown("webhooks-rejected"))
    assert.equal("5", shown("sends-total"))
    assert.equal("1", shown("sends-failed"))
    assert.equal("2", shown("rule-errors"))
    -- the sender's row: 1 delivered of 3 final, with both error codes
    local row = dom:match("<tr><td>%" .. FROM .. "</td>(.-)</tr>")
    assert.truthy(row, "no delivery row for " .. FROM)
    assert.matches('<td class="n">1</td><td class="n">3</td><td class="n">33.3%%</td>', row)
    assert.matches("21211 ×1", row, 1, true)
    assert.matches("30003 ×1", row, 1, true)
    -- the outbox depth, and the campaign done: 3 sent, none queued, 3 delivered
    assert.matches("<tr><td>sent</td><td class=\"n\">5</td></tr>", dom, 1, true)
    assert.matches('<tr><td>spring</td><td><div class="bar"><div style="width: 100%;"></div></div></td>' ..
                   '<td class="n">3</td><td class="n">0</td><td class="n">3</td></tr>', dom, 1, true)
    assert.matches("<tr><td>failed</td><td class=\"n\">1</td></tr>", dom, 1, true)
    assert.matches("app.lua:" .. broken_line, shown("reload-error"), 1, true)
    -- a screenshot, kept as the test's artifact
    os.remove(art .. "/dashboard.png")
    sh(chrome .. "--window-size=1280,900 --screenshot=" .. q(art .. "/dashboard.png") .. " " .. q(admin .. "/") ..
       " 2>/dev/null")
    assert.is_true(h.exists(art .. "/dashboard.png"), "no screenshot")
  end)
end)

describe("the admin listener with a token", function()
  after_each(H.clean_up)

  it("asks for the bearer token on /metrics and /-/status, not on /-/health nor the page", function()
    local dir = h.tmpdir()
    assert(os.execute("cp -r " .. ROOT .. "/rules/. " .. dir .. "/"))
    local admin_token = "admin-token-0123456789-xyz"
    H.write(dir .. "/admin.token", admin_token .. "\n")
    local host = H.started{ rules = dir, args = "--admin-token-file " .. dir .. "/admin.token" }
    assert.equal(401, (host:admin("/metrics")))
    assert.equal(401, (host:admin("/metrics", { authorization = "Bearer wrong-token-0123456789" })))
    assert.equal(401, (host:admin("/-/status")))
    local code, body = host:admin("/metrics", { authorization = "Bearer " .. admin_token })
    assert.equal(200, code)
    assert.matches("# TYPE telua_webhooks_total counter", body, 1, true)
    assert.equal(200, (host:admin("/-/status", { authorization = "Bearer " .. admin_token })))
    assert.equal(200, (host:admin("/-/health")))
    local pcode, page = host:admin("/")
    assert.equal(200, pcode)
    assert.matches("<title>telua</title>", page, 1, true)
    assert.is_nil(host:logs():find(admin_token, 1, true))
  end)

  it("refuses the webhook port as the admin address", function()
    local dir = h.tmpdir()
    assert(os.execute("cp -r " .. ROOT .. "/rules/. " .. dir .. "/"))
    local port = h.free_port()
    local host, log = H.start{ rules = dir, args = "--listen 127.0.0.1:" .. port .. " --admin-listen 127.0.0.1:" .. port }
    assert.is_nil(host)
    assert.matches("must not be on the webhook port", log, 1, true)
  end)
end)
