-- examples/nginx/nginx.conf, as the README's "OpenResty" section shows it,
-- run as written but for its paths and port (this checkout's modules, a
-- folder of the spec's own) and the sandbox as TELUA_TWILIO_BASE_URL: a
-- signed webhook is answered, a reply sent by REST reaches the sandbox,
-- and /-/status reports the generation.
local h = require "spec.helpers"
local hh = require "spec.helpers.host"
local cjson = require "cjson"
local socket = require "socket"

local q = h.quote
local SID, TOKEN = "AC" .. ("3"):rep(32), hh.TOKEN

describe("examples/nginx/nginx.conf", function()
  local dir, sandbox, pid

  teardown(function()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null; sleep 0.3") end
    if sandbox then h.kill(sandbox) end
    if dir then os.execute("rm -rf " .. q(dir)) end
  end)

  it("is the one the README shows", function()
    local conf = h.read_file(h.root .. "/examples/nginx/nginx.conf")
    local readme = h.read_file(h.root .. "/README.md")
    local section = assert(readme:match("\n## OpenResty\n(.-)\n## "), "no OpenResty section in the README")
    local shown = assert(section:match("```nginx\n(.-)```"), "no nginx.conf in the section")
    assert.are.equal(conf, shown)
  end)

  it("runs: webhooks answered, a reply sent through the outbox, /-/status", function()
    dir = h.tmpdir()
    assert(os.execute("chmod 777 " .. q(dir) .. " && mkdir -p " .. q(dir .. "/log") .. " && cp -r " ..
                      q(h.root .. "/rules") .. " " .. q(dir .. "/rules")))
    sandbox = h.spawn("env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " " .. hh.BUILD ..
                      "/telua sandbox --listen 127.0.0.1:0 --delivery-ms 50", dir .. "/sandbox.log")
    local port = h.free_port()
    local conf = h.read_file(h.root .. "/examples/nginx/nginx.conf")
    local function sub(from, to)
      local n
      conf, n = conf:gsub(from:gsub("%p", "%%%0"), (to:gsub("%%", "%%%%")))
      assert(n > 0, from)
    end
    sub("/usr/local/share/lua/5.1", h.root .. "/lua")
    sub("/usr/local/lib/lua/5.1", hh.BUILD .. "/luajit")
    sub("/var/log/telua/nginx.log", dir .. "/log/nginx.log")
    sub("/run/telua-nginx.pid", dir .. "/nginx.pid")
    sub("/etc/telua/rules", dir .. "/rules")
    sub("/var/lib/telua/telua.db", dir .. "/telua.db")
    sub("https://hooks.example.com", hh.PUBLIC)
    sub("listen 8080;", "listen 127.0.0.1:" .. port .. ";")
    local f = assert(io.open(dir .. "/nginx.conf", "w"))
    f:write(conf)
    f:close()
    assert(os.execute(("env TWILIO_ACCOUNT_SID=%s TWILIO_AUTH_TOKEN=%s TELUA_TWILIO_BASE_URL=http://127.0.0.1:%d " ..
                       "nginx -p %s -c %s/nginx.conf 2>%s/start.log"):format(SID, TOKEN, sandbox.port, q(dir), q(dir), q(dir))),
           h.read_file(dir .. "/start.log"))
    local srv = setmetatable({ base = "http://127.0.0.1:" .. port, dir = dir }, { __index = require("spec.helpers.nginx").Nginx })
    assert.is_true(hh.wait_for(function() return h.read_file(dir .. "/nginx.pid") ~= nil end, 5))
    pid = h.read_file(dir .. "/nginx.pid"):match("%d+")
    socket.sleep(0.3)
    local function post(target, fields)
      return srv:request("POST", target, hh.form(fields), { ["content-type"] = "application/x-www-form-urlencoded",
                                                           ["x-twilio-signature"] = hh.sign(hh.PUBLIC .. target, fields) })
    end
    local code, body = post("/sms/incoming", hh.sms("HOURS"))
    assert.are.equal(200, code, h.read_file(dir .. "/log/nginx.log"))
    assert.matches("We are open Monday to Friday", body, 1, true)
    code = post("/sms/incoming", hh.sms("ORDER 77", "+14155550155"))
    assert.are.equal(200, code)
    local got
    assert.is_true(hh.wait_for(function()
      got = hh.received(sandbox.port, "+14155550155")
      return #got == 1
    end, 8), "no message at the sandbox: " .. h.read_file(dir .. "/log/nginx.log"):sub(-1500))
    assert.matches("^Order 77: ", got[1].body)
    local _, st = srv:request("GET", "/-/status")
    local s = cjson.decode(st)
    assert.are.equal(1, s.generation.id)
    assert.are.equal("cosocket", s.transport)
    assert.is_true(s.pacing_shared)
    assert.is_nil(h.read_file(dir .. "/log/nginx.log"):find(TOKEN, 1, true))
  end)
end)
