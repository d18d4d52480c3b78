-- The real `telua serve` for the host specs: started on a free loopback
-- port, spoken to over HTTP, requests signed by the official twilio npm
-- package (spec/oracle/sign.js), stopped by the spec.
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"
local cjson = require "cjson"
local h = require "spec.helpers"

local _M = {}

_M.ROOT = h.root
_M.BUILD = os.getenv("TELUA_BUILD") or (h.root .. "/build")
_M.TOKEN = "e2e-test-token-0123456789abcdef"
_M.PUBLIC = "https://telua.example.com"
_M.DECL = '<?xml version="1.0" encoding="UTF-8"?>'
-- spec/run.sh sets it for a sanitizer build, whose Lua runs several times slower
_M.CPU_FACTOR = tonumber(os.getenv("TELUA_SPEC_CPU_FACTOR")) or 1

local sh, q = h.sh, h.quote

--- X-Twilio-Signature of url + pairs, from the official library.
function _M.sign(url, pairs_)
  return sh("node " .. h.root .. "/spec/oracle/sign.js " .. q(_M.TOKEN) .. " " .. q(url) .. " " ..
            q(cjson.encode(pairs_)))
end

local function enc(s) return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end)) end
function _M.form(pairs_)
  local parts = {}
  for _, p in ipairs(pairs_) do parts[#parts + 1] = enc(p[1]) .. "=" .. enc(p[2]) end
  return table.concat(parts, "&")
end

function _M.wait_for(fn, seconds)
  local deadline = socket.gettime() + (seconds or 8)
  while socket.gettime() < deadline do
    local v = fn()
    if v then return v end
    socket.sleep(0.05)
  end
  return false
end

--- Writes by rename, as editors save (the watcher must see it).
--- The messages `telua sandbox` on port got, to numbers starting with prefix.
function _M.received(port, prefix)
  local all = cjson.decode(h.sh("curl -s http://127.0.0.1:" .. port .. "/-/sandbox/messages")).messages
  local out = {}
  for _, m in ipairs(all) do
    if m.to:sub(1, #prefix) == prefix then out[#out + 1] = m end
  end
  return out
end

--- The most messages any one-second window of receive times holds.
-- A window is one emission interval (1/rate s) short of a second, as slack
-- for one request's network delay on a loaded machine: the sender paces
-- the requests it makes, the sandbox stamps them when they arrive.
-- `slack` (seconds, default one emission interval) widens that margin.
function _M.busiest_second(times, rate, slack)
  local t = {}
  for i, v in ipairs(times) do t[i] = v end
  table.sort(t)
  local width = 1.0 - (slack or 1.0 / rate)
  local j, worst = 1, 0
  for i = 1, #t do
    while t[i] - t[j] >= width do j = j + 1 end
    worst = math.max(worst, i - j + 1)
  end
  return worst
end

function _M.write(path, text)
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "wb"))
  f:write(text)
  f:close()
  assert(os.rename(tmp, path))
end

local Host = {}
Host.__index = Host

--- Starts a host. opts: `rules` (dir), `store` (spec, default a file in
-- the rules dir; false: no --store, the host's default), `args` (more options), `env` (prefix of VAR=value ...),
-- `prefix` (a shell command put before, e.g. "ulimit -f 64;"), `workers`,
-- `cpu_ms`. Returns the host, or nil and the log when it did not start.
function _M.start(opts)
  local log = os.tmpname()
  local cmd = (opts.prefix or "") .. "echo $$; exec env TWILIO_AUTH_TOKEN=" .. _M.TOKEN .. " " .. (opts.env or "") ..
    " " .. _M.BUILD .. "/telua serve --rules " .. opts.rules .. " --listen 127.0.0.1:0" ..
    " --public-url " .. _M.PUBLIC .. " --admin-listen 127.0.0.1:0" ..
    (opts.store == false and "" or (" --store " .. (opts.store or ("sqlite:" .. opts.rules .. "/state.db")))) ..
    " --workers " .. (opts.workers or 2) .. " --cpu-ms " .. (opts.cpu_ms or 100) * _M.CPU_FACTOR .. " " .. (opts.args or "") ..
    " 2>>" .. log
  local p = assert(io.popen("sh -c " .. q(cmd)))
  local pid = p:read("*l")
  local port = (p:read("*l") or ""):match("listening on port (%d+)")
  local admin = port and (p:read("*l") or ""):match("admin on port (%d+)")
  if not port then
    p:close()
    return nil, h.read_file(log)
  end
  return setmetatable({ pipe = p, pid = pid, port = tonumber(port), admin_port = tonumber(admin), log = log }, Host)
end

-- What a test started, undone after it however it ended (last first):
-- `after_each(H.clean_up)` in the describe, then `H.started(opts)`.
local cleanups = {}
function _M.on_exit(fn) cleanups[#cleanups + 1] = fn end
function _M.clean_up()
  for i = #cleanups, 1, -1 do pcall(cleanups[i]) end
  cleanups = {}
end

--- H.start that must succeed, stopped by clean_up.
function _M.started(opts)
  local host, log = _M.start(opts)
  assert(host, "host did not start: " .. tostring(log))
  _M.on_exit(function() host:stop() end)
  return host
end

function Host:stop()
  if self.stopped then return end
  self.stopped = true
  os.execute("kill " .. self.pid .. " 2>/dev/null")
  self.pipe:close()
end

function Host:alive()
  return os.execute("kill -0 " .. self.pid .. " 2>/dev/null") == true
end

function Host:logs() return h.read_file(self.log) end

--- One request; returns status, body, headers.
function Host:request(method, target, body, headers)
  local chunks = {}
  headers = headers or {}
  if body then headers["content-length"] = tostring(#body) end
  local _, code, resp_headers = http.request{
    url = "http://127.0.0.1:" .. self.port .. target, method = method, headers = headers,
    source = body and ltn12.source.string(body) or nil, sink = ltn12.sink.table(chunks),
  }
  return code, table.concat(chunks), resp_headers
end

--- POST a form signed for the public URL Twilio would call. opts:
-- `unsigned`, `signature`, `sign_url`.
function Host:twilio(target, pairs_, opts)
  opts = opts or {}
  local url = _M.PUBLIC .. target
  local headers = { ["content-type"] = "application/x-www-form-urlencoded" }
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  if not opts.unsigned then headers["x-twilio-signature"] = opts.signature or _M.sign(opts.sign_url or url, pairs_) end
  return self:request("POST", target, _M.form(pairs_), headers)
end

--- One GET on the admin listener; returns status, body, headers.
function Host:admin(target, headers)
  local chunks = {}
  local _, code, resp_headers = http.request{
    url = "http://127.0.0.1:" .. assert(self.admin_port, "no admin listener") .. target, headers = headers,
    sink = ltn12.sink.table(chunks),
  }
  return code, table.concat(chunks), resp_headers
end

--- /-/status of the admin listener, decoded.
function Host:status()
  local _, body = self:admin("/-/status")
  return cjson.decode(body)
end

_M.CALL = { { "CallSid", "CA0123456789abcdef0123456789abcdef" }, { "AccountSid", "AC0123456789abcdef0123456789abcdef" },
            { "From", "+14155550199" }, { "To", "+14155550100" }, { "CallStatus", "in-progress" },
            { "Direction", "inbound" }, { "ApiVersion", "2010-04-01" } }

--- The pairs of base followed by those of extra (a webhook with more fields).
function _M.with(base, extra)
  local t = {}
  for _, p in ipairs(base) do t[#t + 1] = p end
  for _, p in ipairs(extra) do t[#t + 1] = p end
  return t
end

function _M.sms(body, from)
  return { { "MessageSid", "SM0123456789abcdef0123456789abcdef" },
           { "AccountSid", "AC0123456789abcdef0123456789abcdef" }, { "From", from or "+14155550199" }, { "To", "+14155550100" }, { "Body", body },
           { "NumMedia", "0" }, { "NumSegments", "1" }, { "SmsStatus", "received" } }
end

-- Twilio's default fallback for a voice webhook that failed (the host's)
_M.FALLBACK_VOICE = _M.DECL .. "<Response><Say>We are sorry, an application error has occurred. " ..
                    "Please try again later.</Say><Hangup/></Response>"

return _M
