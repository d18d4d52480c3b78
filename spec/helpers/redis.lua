-- A redis-server of Debian's for a spec: started on a free loopback port
-- (and a Unix socket, and with `tls` a TLS port whose certificate a CA of
-- the spec's own signed) in a folder of its own, stopped by the spec.
--
--     local redis = require("spec.helpers.redis").start{ appendonly = true }
--     local store = assert(require("telua.store").open(redis.url))
--     ...
--     redis:stop(); redis:start_again(); redis:kill()
local h = require "spec.helpers"
local core = require "telua.core"

local _M = {}
local Server = {}
Server.__index = Server

local function wait_ping(self, up)
  for _ = 1, 200 do
    local c = core.redis_connect{ host = "127.0.0.1", port = self.port, timeout = 0.5, connect_timeout = 0.2,
                                  password = self.password }
    local ok = (c and c:call("PING") == "PONG") or false
    if c then c:close() end
    if ok == up then return true end
    core.sleep(0.025)
  end
  error("redis-server on port " .. self.port .. (up and " did not start: " .. h.read_file(self.dir .. "/log")
                                                or " did not stop"))
end

function Server:start_again()
  local args = {
    "redis-server", "--port", self.port, "--bind", "127.0.0.1", "--dir", self.dir, "--save", "''",
    "--appendonly", self.appendonly and "yes" or "no", "--appendfsync", "always",
    "--daemonize", "yes", "--pidfile", self.dir .. "/pid", "--logfile", self.dir .. "/log",
    "--unixsocket", self.socket, "--unixsocketperm", "700",
  }
  if self.tls_port then
    for _, a in ipairs({ "--tls-port", self.tls_port, "--tls-cert-file", self.dir .. "/server.pem",
                         "--tls-key-file", self.dir .. "/server.key", "--tls-ca-cert-file", self.cainfo,
                         "--tls-auth-clients", "no" }) do args[#args + 1] = a end
  end
  if self.password then args[#args + 1] = "--requirepass " .. self.password end
  for _, a in ipairs(self.extra or {}) do args[#args + 1] = a end
  assert(os.execute(table.concat(args, " ")))
  wait_ping(self, true)
  self.pid = h.read_file(self.dir .. "/pid"):match("%d+")
  self.running = true
  return self
end

-- A CA and a server certificate for localhost and 127.0.0.1 it signed,
-- made with the openssl command line.
local function make_certs(dir)
  local cmds = {
    "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=telua-spec-ca -keyout ca.key -out ca.pem",
    "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr",
    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext",
    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem",
    "chmod 600 server.key ca.key",
  }
  for _, c in ipairs(cmds) do
    assert(os.execute("cd " .. h.quote(dir) .. " && (" .. c .. ") >/dev/null 2>&1"), c)
  end
end

--- Starts a server. opts: `appendonly` (AOF with fsync at every write),
-- `tls` (also a TLS port: `tls_url`, `cainfo`), `password` (the default
-- user's), `args` (more redis-server arguments).
function _M.start(opts)
  opts = opts or {}
  local dir = h.tmpdir()
  local self = setmetatable({ port = h.free_port(), dir = dir, socket = dir .. "/redis.sock",
                              appendonly = opts.appendonly, extra = opts.args, password = opts.password }, Server)
  self.url = "redis://127.0.0.1:" .. self.port
  if opts.tls then
    make_certs(dir)
    self.tls_port, self.cainfo = h.free_port(), dir .. "/ca.pem"
    self.tls_url = "rediss://localhost:" .. self.tls_port .. "?cainfo=" .. self.cainfo
  end
  self:start_again()
  return self
end

--- Stops it the way an operator does (SIGTERM: the AOF is flushed); the
-- data folder stays for start_again.
function Server:stop()
  if not self.running then return end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  wait_ping(self, false)
  for _ = 1, 200 do
    if os.execute("kill -0 " .. self.pid .. " 2>/dev/null") ~= true then break end
    core.sleep(0.025)
  end
  self.running = false
end

--- Stops it and removes its folder.
function Server:destroy()
  self:stop()
  os.execute("rm -rf " .. self.dir)
end

--- Empties every database (between tests).
function Server:flush()
  local c = self:connect()
  assert(c:call("FLUSHALL"))
  c:close()
end

--- A connection for looking inside.
function Server:connect()
  return assert(core.redis_connect{ host = "127.0.0.1", port = self.port, password = self.password })
end

return _M
