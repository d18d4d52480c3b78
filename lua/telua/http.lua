--- HTTP client on libcurl: keep-alive, HTTP/2 where offered, timeouts, TLS verified.
--
-- In the telua host, a rule that calls `request`, `batch` or `sleep` does
-- not block its worker: the call yields the rule's coroutine, the worker's
-- I/O thread runs the transfer on its own libcurl multi handle, and the
-- rule goes on with the answer while the worker serves other requests in
-- the meantime (time spent waiting does not count against the rule's CPU
-- budget). Elsewhere (plain Lua, scripts, tests) `request` blocks the
-- calling thread until the answer is in; `batch` runs many requests at once
-- on the same connection pool and returns when all are done. Connections stay open
-- between calls (one pool per Lua state) and HTTP/2 streams share one
-- connection. TLS peers are always verified; `cainfo` names a CA bundle for
-- a private CA. This is the transport under telua's Twilio client.
--
-- Inside nginx (OpenResty, or Debian's lua-nginx-module) the same calls go
-- over cosockets instead (`telua.http.cosocket`): the runtime is detected
-- once, when this module loads, and libcurl is then never touched. A
-- request yields to nginx's event loop rather than blocking the worker,
-- `batch` runs on light threads and `sleep` is `ngx.sleep`.
-- `http.use("libcurl")` forces the libcurl transport (it blocks an nginx
-- worker: for comparisons only).
--
--     local http = require "telua.http"
--     local res, err, code = http.request{ url = "https://api.example.com/x", timeout = 5 }
--     -- res = { status = 200, headers = { ["content-type"] = "..." }, body = "...", http_version = "2" }
--
-- @module telua.http

local type, error, require, ipairs, setmetatable = type, error, require, ipairs, setmetatable
local metrics = require "telua.metrics"
local running, yield = coroutine.running, coroutine.yield

local _M = { _VERSION = "0.1.0" }

-- Inside nginx with cosockets: the http (or stream) subsystem of lua-nginx-module.
local ngx = rawget(_G, "ngx")
local cosocket = ngx and type(ngx.socket) == "table" and ngx.socket.tcp and ngx.config and ngx.config.subsystem
                 and require "telua.http.cosocket" or nil

-- telua.core's libcurl part, loaded on first use (never inside nginx
-- unless forced with use("libcurl")).
local core
local function curl()
  core = core or require "telua.core"
  return core
end

--- The transport in use: `"cosocket"` inside nginx, else `"libcurl"`.
-- @treturn string
function _M.transport()
  return cosocket and "cosocket" or "libcurl"
end

--- Chooses the transport: `"libcurl"` everywhere, `"cosocket"` only inside nginx.
-- A switch for the whole process (every request of an nginx worker, all its
-- rules): make it once, in `init_by_lua`, never from a rule.
-- @tparam string name
-- @raise on another name, or `"cosocket"` outside nginx
function _M.use(name)
  if name == "libcurl" then cosocket = nil
  elseif name == "cosocket" then
    if not (ngx and ngx.socket) then error("http.use: cosockets exist only inside nginx", 2) end
    cosocket = require "telua.http.cosocket"
  else error('http.use: "libcurl" or "cosocket"', 2) end
end

setmetatable(_M, { __index = function(_, k) -- LIBCURL: libcurl's version, loaded when asked for
  if k == "LIBCURL" then return curl().http_version end
end })

-- The host marks the coroutine a request's rules run in; only there does a
-- call yield (a rule's own coroutines, and everything outside the host,
-- block as usual).
local REG = debug and debug.getregistry and debug.getregistry()
local function in_host()
  local co = REG and REG["telua.host_co"]
  if co and co == running() then return true end
  -- a worker state of the host, outside a request's coroutine (a rules
  -- file's top level, a rule's own coroutine): waiting here would hold
  -- the worker thread where no budget can stop it
  if REG and REG["telua.worker"] then
    error("telua.http waits only inside a request's handler in the telua host (not at a rules file's top " ..
          "level, nor in a coroutine the rule made)", 3)
  end
  return false
end

-- Counts one answer in the host's metrics (telua_http_client_requests_total).
local function counted(res, err, code)
  metrics.record("telua_http_client_requests_total", 1, res and res.status or "error")
  return res, err, code
end

--- Makes one request and waits for the answer.
-- @tparam table opts `url` (http or https), `method` (default `"GET"`),
--   `headers` (name -> value), `body` (string), `timeout` (seconds for the
--   whole exchange, default 30), `connect_timeout` (seconds, default 10),
--   `user`/`password` (HTTP Basic), `cainfo` (a CA bundle file)
-- @treturn table `{ status = n, headers = { lower-case name = value }, body = s,
--   http_version = "1.1" | "2" }` (any status: 4xx and 5xx are answers too)
-- @return or `nil, message, code` with code `"timeout"`, `"connect"`, `"dns"`,
--   `"tls"`, `"send"`, `"recv"`, `"too_large"` (a body over 64 MiB),
--   `"bad_request"` or `"failed"`; the message never holds credentials
-- @raise when opts is malformed
function _M.request(opts)
  if type(opts) ~= "table" then error("http.request needs a table of options", 2) end
  if cosocket then return cosocket.request(opts) end
  if in_host() then return counted(yield("telua.io", "http", opts)) end
  return counted(curl().http_request(opts))
end

--- Makes many requests at once and waits for all of them.
-- A long list streams through at most `max_connections` connections per
-- host (libcurl starts each waiting request as a connection frees).
-- @tparam table list of request options, as for `request`
-- @tparam[opt=32] integer max_connections per host, 1..1024
-- @treturn table the answers in the same order: a response table, or
--   `{ error = message, code = code }`
-- @raise when an item is malformed (nothing is sent then)
function _M.batch(list, max_connections)
  if type(list) ~= "table" then error("http.batch needs a list of requests", 2) end
  if cosocket then return cosocket.batch(list, max_connections) end
  local out
  if in_host() then out = yield("telua.io", "batch", list)
  else out = curl().http_batch(list, max_connections) end
  if metrics.on() and type(out) == "table" then
    for _, r in ipairs(out) do metrics.record("telua_http_client_requests_total", 1, r.status or "error") end
  end
  return out
end

local Flight = {}
Flight.__index = Flight

--- Requests that each finish on their own, for a loop that does other
-- work while they are out (the host's sender): a slow or hung request
-- holds only itself, the others' answers come as they are in. libcurl
-- only: nil inside nginx (cosockets) and in a host worker (a rule waits
-- through `request` and `batch`, which yield to the host's I/O thread).
-- @tparam[opt=32] integer max_connections per host, 1..1024
-- @treturn table|nil a flight: `flight:add(opts)` starts a request (as for
--   `request`) and returns its id; `flight:poll(seconds)` returns what
--   finished, `{ { id, response } | { id, nil, message, code } ... }`,
--   waiting up to `seconds` for a first answer; `flight:count()` is how
--   many are out; `flight:close()` drops them
function _M.flight(max_connections)
  if cosocket or (REG and REG["telua.worker"]) then return nil end
  return setmetatable({ f = curl().http_flight(max_connections) }, Flight)
end

function Flight:add(opts)
  if type(opts) ~= "table" then error("flight:add needs a table of options", 2) end
  return self.f:add(opts)
end

function Flight:poll(seconds)
  local got = self.f:poll(seconds or 0)
  if metrics.on() then
    for _, r in ipairs(got) do metrics.record("telua_http_client_requests_total", 1, r[2] and r[2].status or "error") end
  end
  return got
end

function Flight:count() return self.f:count() end
function Flight:close() self.f:close() end

--- Waits, without blocking the host's worker (see the module notes).
-- Inside nginx: `ngx.sleep`.
-- @tparam number seconds
function _M.sleep(seconds)
  if type(seconds) ~= "number" then error("http.sleep needs seconds", 2) end
  if cosocket then return cosocket.sleep(seconds) end
  if in_host() then
    yield("telua.io", "sleep", seconds)
    return
  end
  curl().sleep(seconds)
end

return _M
