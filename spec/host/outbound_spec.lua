-- End to end: `telua serve` and `telua sandbox` side by side. A rule sends
-- by REST through the outbox; the sandbox sends signed status callbacks
-- back; the message log only moves forward even when callbacks come late
-- or twice; transient carrier errors are resent; 21610 records the opt-out.
-- Signatures of the hand-made callbacks come from the official twilio
-- library (spec/oracle/sign.js).
local socket = require "socket"
local cjson = require "cjson"
local h = require "spec.helpers"

local ROOT = h.root
local BUILD = os.getenv("TELUA_BUILD") or (ROOT .. "/build")
local SID = "AC" .. ("1"):rep(32)
local TOKEN = "outbound-spec-token-42"

local q, sh, free_port = h.quote, h.sh, h.free_port

local function spawn(cmd, log)
  return h.spawn("env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " " .. cmd, log)
end
local kill = h.kill

local function wait_for(fn, seconds)
  local deadline = socket.gettime() + (seconds or 8)
  while socket.gettime() < deadline do
    local v = fn()
    if v then return v end
    socket.sleep(0.05)
  end
  return nil
end

local function get_json(url)
  local body = sh("curl -s " .. q(url))
  return cjson.decode(body)
end

local function sign(url, pairs_)
  return sh("node " .. ROOT .. "/spec/oracle/sign.js " .. q(TOKEN) .. " " .. q(url) .. " " .. q(cjson.encode(pairs_)))
end

local function form(pairs_)
  local parts = {}
  local function enc(s) return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end)) end
  for _, p in ipairs(pairs_) do parts[#parts + 1] = enc(p[1]) .. "=" .. enc(p[2]) end
  return table.concat(parts, "&")
end

-- POST a form signed by the official library; returns the HTTP status
local function post_signed(url, pairs_)
  local sig = sign(url, pairs_)
  return tonumber(sh("curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' " ..
    "-H " .. q("X-Twilio-Signature: " .. sig) .. " --data " .. q(form(pairs_)) .. " " .. q(url)))
end

local function sqlite(db, sql)
  return sh("sqlite3 " .. q(db) .. " " .. q(sql)):gsub("%s+$", "")
end

describe("host + sandbox", function()
  local dir, db, sandbox, host, hp, base

  setup(function()
    dir = h.tmpdir()
    assert(os.execute("cp -r " .. ROOT .. "/rules/. " .. dir .. "/"))
    -- the example rules with a short resend backoff and one resend
    local sms = h.read_file(dir .. "/sms.lua"):gsub("resend_backoff = 60, resend_max = 3", "resend_backoff = 0.3, resend_max = 1")
    local f = assert(io.open(dir .. "/sms.lua", "wb"))
    f:write(sms)
    f:close()
    db = dir .. "/telua.db"
    sandbox = spawn(BUILD .. "/telua sandbox --listen 127.0.0.1:0 --delivery-ms 60 --mps 100", dir .. "/sandbox.log")
    hp = free_port()
    base = "http://127.0.0.1:" .. hp
    host = spawn("TELUA_TWILIO_BASE_URL=http://127.0.0.1:" .. sandbox.port .. " " .. BUILD .. "/telua serve --rules " ..
      dir .. " --listen 127.0.0.1:" .. hp .. " --public-url " .. base .. " --store sqlite:" .. db ..
      " --send-rates long_code=50", dir .. "/host.log")
  end)

  teardown(function()
    kill(host)
    kill(sandbox)
    local logs = h.read_file(dir .. "/host.log") .. h.read_file(dir .. "/sandbox.log")
    assert.is_nil(logs:find(TOKEN, 1, true)) -- the auth token is never logged
  end)

  local function inbound(from, body)
    return sh("TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " " .. BUILD ..
      "/telua sandbox inbound --to " .. base .. "/sms/incoming --from " .. q(from) .. " --body " .. q(body) ..
      " --number +15005550006 2>&1")
  end

  local function sandbox_messages(to)
    return get_json("http://127.0.0.1:" .. sandbox.port .. "/-/sandbox/messages?To=" .. to:gsub("%+", "%%2B")).messages
  end

  it("answers ORDER 1234 by REST, and the signed callbacks move the log to delivered", function()
    local twiml = inbound("+14155550111", "ORDER 1234")
    assert.matches("<Response%s*/>", twiml) -- no TwiML reply: the answer goes by REST
    local msgs = wait_for(function()
      local m = sandbox_messages("+14155550111")
      return #m == 1 and m[1].status == "delivered" and m
    end)
    assert.truthy(msgs, "the message did not reach the sandbox")
    assert.equal("Order 1234: packed and handed to the carrier. Reply STOP to opt out.", msgs[1].body)
    assert.equal("+15005550006", msgs[1].from)
    assert.equal(base .. "/status/messages", msgs[1].status_callback)
    local sid = msgs[1].sid
    -- every callback was accepted by the host's signature check (204 from the status rule)
    local codes = wait_for(function()
      local seen = {}
      for _, cb in ipairs(get_json("http://127.0.0.1:" .. sandbox.port .. "/-/sandbox/callbacks").callbacks) do
        if cb.about == sid then seen[#seen + 1] = cb.status end
      end
      return #seen == 3 and seen
    end)
    assert.same({ 204, 204, 204 }, codes)
    assert.truthy(wait_for(function() return sqlite(db, "SELECT status FROM messages WHERE sid = '" .. sid .. "'") == "delivered" end))
    assert.equal("sent", sqlite(db, "SELECT state FROM outbox WHERE sid = '" .. sid .. "'"))
  end)

  it("keeps the log moving forward when callbacks come late or twice", function()
    local sid = "SM" .. ("9"):rep(32)
    local function cb(status)
      return post_signed(base .. "/status/messages", {
        { "AccountSid", SID }, { "ApiVersion", "2010-04-01" }, { "From", "+15005550006" }, { "MessageSid", sid },
        { "MessageStatus", status }, { "SmsSid", sid }, { "SmsStatus", status }, { "To", "+14155550112" } })
    end
    assert.equal(204, cb("sent"))
    assert.equal(204, cb("delivered"))
    assert.equal(204, cb("sending")) -- late
    assert.equal(204, cb("sent"))    -- late
    assert.equal(204, cb("delivered")) -- twice
    assert.equal("delivered", sqlite(db, "SELECT status FROM messages WHERE sid = '" .. sid .. "'"))
    -- an unsigned one is refused
    assert.equal("403", sh("curl -s -o /dev/null -w '%{http_code}' --data 'MessageSid=" .. sid ..
      "&MessageStatus=failed' " .. base .. "/status/messages"))
  end)

  it("resends an undelivered message with a transient error (30003) after the backoff, once", function()
    inbound("+15005559003", "ORDER 77")
    local msgs = wait_for(function()
      local m = sandbox_messages("+15005559003")
      return #m == 2 and m[1].status == "undelivered" and m[2].status == "undelivered" and m
    end, 10)
    assert.truthy(msgs, "expected the first send and one resend")
    assert.equal(30003, msgs[1].error_code)
    assert.equal(msgs[1].body, msgs[2].body)
    -- resend_max = 1: no third send
    socket.sleep(1)
    assert.equal(2, #sandbox_messages("+15005559003"))
    assert.equal("1", sqlite(db, "SELECT count(*) FROM outbox WHERE resend_of IS NOT NULL AND to_addr = '+15005559003'"))
  end)

  it("records the opt-out when Twilio answers 21610, and sends nothing more", function()
    inbound("+15005550004", "ORDER 5")
    assert.truthy(wait_for(function()
      return sqlite(db, "SELECT keyword FROM optouts WHERE recipient = '+15005550004'") == "21610"
    end), "the 21610 opt-out was not recorded")
    assert.equal("failed", sqlite(db, "SELECT state FROM outbox WHERE to_addr = '+15005550004'"))
    -- now opted out: the rule's send is refused before the outbox, and no reply is sent
    local twiml = inbound("+15005550004", "ORDER 6")
    assert.matches("<Response%s*/>", twiml)
    assert.equal("1", sqlite(db, "SELECT count(*) FROM outbox WHERE to_addr = '+15005550004'"))
  end)

  it("checks the opt-out again at send time", function()
    -- queue directly (as a campaign would), then opt out before the sender gets to it (due in 3 s:
    -- `telua sandbox inbound` is a process of its own, slow to start on a loaded machine)
    sqlite(db, "INSERT INTO outbox (params, sender, to_addr, state, attempts, not_before, created_at, updated_at) " ..
      "VALUES ('{\"to\":\"+14155550113\",\"from\":\"+15005550006\",\"body\":\"later\"}', '+15005550006', " ..
      "'+14155550113', 'queued', 0, strftime('%s','now') + 3, 0, 0)")
    inbound("+14155550113", "STOP")
    assert.truthy(wait_for(function()
      return sqlite(db, "SELECT state FROM outbox WHERE to_addr = '+14155550113'") == "skipped"
    end, 8), "not skipped: " .. tostring(sqlite(db, "SELECT state FROM outbox WHERE to_addr = '+14155550113'")) ..
       ", opt-out " .. tostring(sqlite(db, "SELECT keyword FROM optouts WHERE recipient = '+14155550113'")))
    assert.equal(0, #sandbox_messages("+14155550113"))
  end)
end)
