-- telua.ngx in a real nginx (2 workers) serving a copy of rules/: the
-- host's end-to-end walk (the IVR, signatures, SMS keywords, req.send
-- through the outbox to `telua sandbox`), hot reload without reloading
-- nginx, a broken save that keeps the old answers, and a STOP that
-- survives an nginx restart. Requests are signed by the official twilio
-- npm package (spec/oracle/sign.js).
local h = require "spec.helpers"
local hh = require "spec.helpers.host"
local nginx = require "spec.helpers.nginx"
local cjson = require "cjson"
local socket = require "socket"

local q = h.quote
local BUILD = hh.BUILD
local SID, TOKEN = "AC" .. ("1"):rep(32), hh.TOKEN
local PUBLIC, DECL = hh.PUBLIC, hh.DECL
local MENU = "Thanks for calling telua. For sales, press 1. For support, press 2. To leave a message, press 3."

local with = hh.with

-- Writes by rename, as editors save.
local function save(path, text)
  local f = assert(io.open(path .. ".tmp", "w"))
  f:write(text)
  f:close()
  assert(os.rename(path .. ".tmp", path))
end

for _, backend in ipairs({ "sqlite", "redis" }) do
  describe("telua.ngx serving rules/ in nginx [" .. backend .. "]", function()
    local dir, srv, sandbox, redis, store_url

    local function post(target, pairs_, opts)
      opts = opts or {}
      local headers = { ["content-type"] = "application/x-www-form-urlencoded" }
      if not opts.unsigned then
        headers["x-twilio-signature"] = opts.signature or hh.sign(opts.sign_url or (PUBLIC .. target), pairs_)
      end
      return srv:request("POST", target, opts.body or hh.form(pairs_), headers)
    end

    local function status()
      local _, body = srv:request("GET", "/-/status")
      return cjson.decode(body)
    end

    setup(function()
      dir = h.tmpdir()
      -- nginx's workers run as nobody: the store's folder is theirs to write
      assert(os.execute("chmod 777 " .. q(dir) .. " && cp -r " .. q(h.root .. "/rules") .. " " .. q(dir .. "/rules")))
      if backend == "redis" then
        redis = require("spec.helpers.redis").start{}
        store_url = "redis://127.0.0.1:" .. redis.port .. "/0"
      else
        store_url = "sqlite:" .. dir .. "/telua.db"
      end
      sandbox = h.spawn("env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " " .. BUILD ..
                        "/telua sandbox --listen 127.0.0.1:0 --delivery-ms 50 --mps 100", dir .. "/sandbox.log")
      srv = nginx.start{
        workers = 2,
        init = ([[
          assert(require("telua.ngx").init{
            rules = %q, store = %q, public_url = %q, auth_token = %q, account_sid = %q, base_url = %q,
            check_interval = 0.25,
          })
        ]]):format(dir .. "/rules", store_url, PUBLIC, TOKEN, SID,
                   "http://127.0.0.1:" .. sandbox.port),
        init_worker = [[ assert(require("telua.ngx").init_worker()) ]],
        server = [[
          location = /-/status { content_by_lua_block { require("telua.ngx").status() } }
          location / { content_by_lua_block { require("telua.ngx").serve() } }
        ]],
      }
    end)
    teardown(function()
      if srv then srv:clean_up() end
      if sandbox then h.kill(sandbox) end
      if redis then redis:destroy() end
      os.execute("rm -rf " .. q(dir))
    end)

    it("walks the IVR as the host does", function()
      local code, body, headers = post("/voice/incoming", hh.CALL)
      assert.are.equal(200, code, srv:error_log():sub(-1500))
      assert.matches("^text/xml", headers["content-type"])
      assert.are.equal(h.canonical_xml(DECL .. '<Response><Gather action="/voice/incoming/choice" method="POST" ' ..
        'numDigits="1" timeout="5"><Say>' .. MENU .. '</Say></Gather><Redirect method="POST">/voice/incoming/menu' ..
        '</Redirect></Response>'), h.canonical_xml(body))
      code, body = post("/voice/incoming/choice", with(hh.CALL, { { "Digits", "1" }, { "FinishedOnKey", "" } }))
      assert.are.equal(200, code)
      assert.are.equal(h.canonical_xml(DECL .. '<Response><Say>Connecting you to sales.</Say><Dial ' ..
        'action="/voice/incoming/after_dial" timeout="20">+14155550101</Dial></Response>'), h.canonical_xml(body))
      code, body = post("/voice/incoming/choice", with(hh.CALL, { { "Digits", "2" } }))
      assert.are.equal(200, code)
      assert.matches("Connecting you to support.", body, 1, true)
    end)

    it("answers 403 to a wrong, a missing and another URL's signature, and logs no secret", function()
      assert.are.equal(403, (post("/voice/incoming", hh.CALL, { signature = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" })))
      assert.are.equal(403, (post("/voice/incoming", hh.CALL, { unsigned = true })))
      assert.are.equal(403, (post("/voice/incoming", hh.CALL, { sign_url = PUBLIC .. "/voice/other" })))
      assert.are.equal(403, (post("/voice/incoming", hh.CALL, { sign_url = "https://other.example.com/voice/incoming" })))
      -- the query is part of the signed URL, as received
      assert.are.equal(200, (post("/voice/incoming?x=1%202", hh.CALL)))
      assert.are.equal(403, (post("/voice/incoming?x=1%202", hh.CALL, { sign_url = PUBLIC .. "/voice/incoming?x=1 2" })))
      assert.matches("403 POST /voice/incoming", srv:error_log(), 1, true)
      assert.is_nil(srv:error_log():find(TOKEN, 1, true))
    end)

    it("takes a form key without '=' as Twilio signs it (an empty value)", function()
      local fields = with(hh.sms("HOURS"), { { "Flag", "" } })
      local sig = hh.sign(PUBLIC .. "/sms/incoming", fields)
      local code, body = post("/sms/incoming", fields, { signature = sig, body = hh.form(hh.sms("HOURS")) .. "&Flag" })
      assert.are.equal(200, code, body)
      assert.matches("We are open Monday to Friday", body, 1, true)
    end)

    it("sends through the outbox and the sender on worker 0's timer, to the sandbox", function()
      local code, body = post("/sms/incoming", hh.sms("ORDER 1234", "+14155550177"))
      assert.are.equal(200, code, body)
      local got
      assert.is_true(hh.wait_for(function()
        got = hh.received(sandbox.port, "+14155550177")
        return #got == 1
      end, 8), "the message did not reach the sandbox: " .. srv:error_log():sub(-2000))
      assert.are.equal("Order 1234: packed and handed to the carrier. Reply STOP to opt out.", got[1].body)
      assert.matches("sender: sending to http://127.0.0.1:" .. sandbox.port, srv:error_log(), 1, true)
    end)

    it("sees an edited rule within a second on every worker, without reloading nginx", function()
      local path = dir .. "/rules/ivr.lua"
      local text = h.read_file(path)
      local edited = text:gsub("Thanks for calling telua%.", "Welcome to telua.")
      save(path, edited)
      socket.sleep(1.0)
      for _ = 1, 20 do -- both workers answer (nginx spreads new connections)
        local _, body = post("/voice/incoming", hh.CALL)
        assert.matches("Welcome to telua.", body, 1, true)
      end
      local s = status()
      assert.is_nil(s.last_error)
      assert.is_true(s.reloads >= 1)
    end)

    it("keeps the old answers when a save is broken, and reports file:line", function()
      local path = dir .. "/rules/ivr.lua"
      local good = h.read_file(path)
      save(path, good:gsub("local MENU =", "local MENU = = ", 1))
      socket.sleep(1.0)
      for _ = 1, 10 do
        local code, body = post("/voice/incoming", hh.CALL)
        assert.are.equal(200, code)
        assert.matches("Welcome to telua.", body, 1, true)
      end
      local seen = 0
      for _ = 1, 10 do -- the status of whichever worker answers
        local s = status()
        if s.last_error then
          seen = seen + 1
          assert.matches("ivr%.lua:%d+: ", s.last_error.text)
        end
      end
      assert.are.equal(10, seen)
      assert.matches("rules reload failed: .-ivr%.lua:%d+: .-keeping generation", srv:error_log())
      save(path, good)
      socket.sleep(1.0)
      assert.is_nil(status().last_error)
    end)

    it("answers the fallback TwiML when a rule raises, naming its file and line", function()
      local path = dir .. "/rules/boom.lua"
      save(path, 'return { voice = { ["/voice/boom"] = function() error("kaboom") end } }\n')
      socket.sleep(1.0)
      local code, body = post("/voice/boom", hh.CALL)
      assert.are.equal(200, code)
      assert.are.equal(hh.FALLBACK_VOICE, body)
      assert.matches("rule .-boom%.lua:1 failed on POST /voice/boom .-kaboom", srv:error_log())
      os.remove(path)
    end)

    it("keeps a STOP across an nginx restart", function()
      local from = "+14155550188"
      local code, body = post("/sms/incoming", hh.sms("STOP", from))
      assert.are.equal(200, code)
      assert.matches("unsubscribed", body)
      srv:restart()
      -- HELP from an opted-out number gets no reply (as Twilio does)
      code, body = post("/sms/incoming", hh.sms("HELP", from))
      assert.are.equal(200, code, srv:error_log():sub(-1500))
      assert.are.equal(h.canonical_xml(DECL .. "<Response/>"), h.canonical_xml(body))
      -- and the store says so, read apart from nginx
      local store = assert(require("telua.store").open(store_url))
      assert.is_true(store:is_opted_out("+14155550100", from))
      store:close()
      -- a number that did not opt out still gets its help text
      code, body = post("/sms/incoming", hh.sms("HELP", "+14155550166"))
      assert.are.equal(200, code)
      assert.matches("Reply STOP", body)
    end)
  end)
end
