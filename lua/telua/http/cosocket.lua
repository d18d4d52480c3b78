--- HTTP/1.1 client on OpenResty's cosockets (`ngx.socket.tcp`): what
-- `telua.http` uses inside nginx.
--
-- Same options, answers and error values as the libcurl transport
-- (`telua.http.request`), so `telua.client` and the sender run unchanged:
-- a request yields to nginx's event loop while it waits, so the worker
-- serves other requests meanwhile. Connections are kept alive in nginx's
-- per-worker pools (`setkeepalive`, one pool per scheme, host and port);
-- TLS is `sslhandshake` with the peer's certificate verified and its name
-- sent as SNI; bodies framed by `Content-Length`, chunked or by the
-- connection closing (RFC 9112 §6.3); `timeout` bounds the whole exchange
-- and `connect_timeout` the connect. A connection taken from the pool that
-- the server had closed meanwhile is replaced once, before any answer byte
-- was read (as libcurl does).
--
-- What nginx.conf must give: `resolver` for host names (cosockets do not
-- read /etc/hosts), and `lua_ssl_trusted_certificate` (with
-- `lua_ssl_verify_depth`) for the CAs TLS peers are verified against: the
-- `cainfo` option cannot be set per socket under nginx and is ignored, so
-- a private CA goes into that file. Cosockets exist in the rewrite, access,
-- content and timer phases (and the ssl_* ones); elsewhere (init,
-- init_worker, header/body filters, log) a call raises an error that says
-- to run it from `ngx.timer.at`.
--
-- Standards: RFC 9110 (semantics), RFC 9112 (HTTP/1.1 message syntax),
-- RFC 7617 (Basic authentication).
--
-- @module telua.http.cosocket

local ngx = rawget(_G, "ngx")
if not (ngx and ngx.socket and ngx.thread) then
  error("telua.http.cosocket runs only inside nginx (lua-nginx-module); telua.http uses libcurl elsewhere", 2)
end
local tcp, sleep, spawn, wait, get_phase, now, b64 =
  ngx.socket.tcp, ngx.sleep, ngx.thread.spawn, ngx.thread.wait, ngx.get_phase, ngx.now, ngx.encode_base64

local type, error, pairs, tonumber, tostring, concat, lower, floor, min, max =
  type, error, pairs, tonumber, tostring, table.concat, string.lower, math.floor, math.min, math.max

local _M = { _VERSION = "0.1.0" }

local MAX_BODY = 64 * 1024 * 1024
local KEEPALIVE_MS = 60000 -- idle time of a pooled connection
local POOL_SIZE = 64       -- connections kept per pool and worker

-- Phases where cosockets and ngx.sleep are available (lua-nginx-module's
-- NGX_HTTP_LUA_CONTEXT_YIELDABLE).
local YIELDABLE = { rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
                    ssl_session_fetch = true, ssl_client_hello = true }

--- Raises unless the current phase can use cosockets.
-- @tparam string what the caller's name, for the message
function _M.check_phase(what)
  local phase = get_phase()
  if not YIELDABLE[phase] then
    error(("%s: nginx has no cosockets in the %s phase; make the call from ngx.timer.at(0, fn) " ..
           "or a content/access handler"):format(what, phase), 3)
  end
end

-- ---------------------------------------------------------------------------
-- options, checked before anything is sent (the libcurl transport's rules)

local function seconds(opts, k, def)
  local v = opts[k]
  if v == nil then return def end
  if type(v) ~= "number" or not (v > 0) or v > 86400 then -- luacheck: ignore 581 (NaN too)
    error("http: " .. k .. " must be seconds > 0", 3)
  end
  return v
end

local function str(opts, k)
  local v = opts[k]
  if v ~= nil and type(v) ~= "string" then error("http: " .. k .. " must be a string", 3) end
  return v
end

-- url -> scheme, host, port, target ("/path?query"), authority for Host:
local function parse_url(url)
  local scheme, rest = url:match("^(https?)://(.*)$")
  if not scheme then return nil end
  local auth, target = rest:match("^([^/?#]*)(.*)$")
  target = target:gsub("#.*$", "")
  if target == "" then target = "/" elseif target:sub(1, 1) == "?" then target = "/" .. target end
  if auth:find("@", 1, true) then return nil end -- userinfo in a URL: use user/password
  local host, port = auth:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = auth:match("^([^:]+):?(%d*)$") end
  if not host or host == "" then return nil end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  if port < 1 or port > 65535 then return nil end
  return scheme, host, port, target, auth
end

local function prepare(opts)
  if type(opts) ~= "table" then error("http: request options must be a table", 3) end
  local url = str(opts, "url")
  local scheme, host, port, target, authority
  if url then scheme, host, port, target, authority = parse_url(url) end
  if not scheme then error("http: url must be an http:// or https:// URL", 3) end
  local method = str(opts, "method") or "GET"
  if method == "" or method:find("[ \r\n]") then error('http: method must be a token such as "POST"', 3) end
  local body = opts.body
  if body ~= nil and type(body) ~= "string" then error("http: body must be a string", 3) end
  local timeout, ctimeout = seconds(opts, "timeout", 30), seconds(opts, "connect_timeout", 10)
  str(opts, "cainfo")
  local user, password = str(opts, "user"), str(opts, "password")
  local lines = { method, " ", target, " HTTP/1.1\r\nHost: ", authority, "\r\n" }
  local has = {}
  if opts.headers ~= nil then
    if type(opts.headers) ~= "table" then error("http: headers must map names to strings", 3) end
    for k, v in pairs(opts.headers) do
      if type(k) ~= "string" or type(v) ~= "string" then error("http: headers must map names to strings", 3) end
      if k == "" or k:find("[: \r\n]") or v:find("[\r\n]") then
        error("http: a header name holds ':', a space, CR or LF, or its value CR or LF", 3)
      end
      has[lower(k)] = true
      lines[#lines + 1] = k; lines[#lines + 1] = ": "; lines[#lines + 1] = v; lines[#lines + 1] = "\r\n"
    end
  end
  if user and not has.authorization then
    lines[#lines + 1] = "Authorization: Basic " .. b64(user .. ":" .. (password or "")) .. "\r\n"
  end
  if not has["user-agent"] then lines[#lines + 1] = "User-Agent: telua-cosocket/" .. _M._VERSION .. "\r\n" end
  if body or method == "POST" or method == "PUT" or method == "PATCH" then
    lines[#lines + 1] = "Content-Length: " .. #(body or "") .. "\r\n"
  end
  lines[#lines + 1] = "\r\n"
  if body and body ~= "" then lines[#lines + 1] = body end
  return {
    scheme = scheme, host = host, port = port, method = method, wire = concat(lines),
    timeout = timeout, ctimeout = ctimeout,
    pool = scheme .. ":" .. host .. ":" .. port,
  }
end

-- ---------------------------------------------------------------------------
-- one exchange

-- Milliseconds left before the deadline (at least 1: 0 would mean "no timeout").
local function left(deadline)
  return max(1, floor((deadline - now()) * 1000))
end

local function fail(sock, code, msg)
  sock:close()
  return nil, "http: " .. msg, code
end

-- A cosocket error -> our code.
local function code_of(err, default)
  if err == "timeout" then return "timeout" end
  return default
end

local function connect(r, deadline)
  local sock = tcp()
  sock:settimeouts(min(r.ctimeout * 1000, left(deadline)), left(deadline), left(deadline))
  local ok, err = sock:connect(r.host, r.port, { pool = r.pool, pool_size = POOL_SIZE })
  if not ok then
    local code = "connect"
    if err == "timeout" then code = "timeout"
    elseif err:find("resolve", 1, true) or err:find("resolver", 1, true) then code = "dns" end
    return nil, "http: connect to " .. r.host .. ":" .. r.port .. " failed: " .. err, code
  end
  local reused = sock:getreusedtimes()
  if r.scheme == "https" and reused == 0 then
    -- the host (name or IP literal) for SNI and for the certificate's name check
    local okh, herr = sock:sslhandshake(false, r.host, true)
    if not okh then return fail(sock, herr == "timeout" and "timeout" or "tls", "TLS handshake with " .. r.host ..
                                      " failed: " .. tostring(herr)) end
  end
  return sock, reused
end

-- Reads the header block: status, version, headers (lower-case names, repeats joined with ", ").
local function read_head(sock, deadline)
  local status, version
  local line, err, partial
  repeat -- 1xx interim answers (100 Continue) come before the final one
    sock:settimeout(left(deadline))
    line, err, partial = sock:receive("*l")
    if not line then return nil, err, partial end
    local v, s = line:match("^HTTP/(%d%.%d) (%d%d%d)")
    if not v then return nil, "malformed status line", "" end
    version, status = v, tonumber(s)
    local headers = {}
    while true do
      line, err = sock:receive("*l")
      if not line then return nil, err, "?" end
      if line == "" then break end
      local k, val = line:match("^([^:%s]+):%s*(.-)%s*$")
      if k then
        k = lower(k)
        local old = headers[k]
        headers[k] = old and (old .. ", " .. val) or val
      end
    end
    if status >= 200 or status == 101 then return status, version, headers end
  until false
end

local function read_chunked(sock, deadline)
  local parts, total = {}, 0
  while true do
    sock:settimeout(left(deadline))
    local line, err = sock:receive("*l")
    if not line then return nil, err end
    local hex = line:match("^%s*(%x+)")
    local size = hex and tonumber(hex, 16)
    if not size then return nil, "malformed chunk size" end
    if size == 0 then
      repeat -- trailers, up to the empty line
        line, err = sock:receive("*l")
        if not line then return nil, err end
      until line == ""
      return concat(parts)
    end
    total = total + size
    if total > MAX_BODY then return nil, "too_large" end
    local data, derr = sock:receive(size)
    if not data then return nil, derr end
    parts[#parts + 1] = data
    local crlf, cerr = sock:receive(2)
    if crlf ~= "\r\n" then return nil, cerr or "malformed chunk end" end
  end
end

local function exchange(r)
  local deadline = now() + r.timeout
  for try = 1, 2 do
    local sock, reused_or_err, code = connect(r, deadline)
    if not sock then return nil, reused_or_err, code end
    local reused = reused_or_err
    local ok, err = sock:send(r.wire)
    local status, version, headers
    if ok then status, version, headers = read_head(sock, deadline) end
    if not ok or not status then
      err = err or version
      -- a pooled connection the server closed while it idled: once more on a new one
      if reused > 0 and try == 1 and err == "closed" and (not ok or headers == "") then
        sock:close()
      else
        if not ok and err == "closed" and reused == 0 and r.scheme == "https" then
          -- lua-nginx-module 0.10.23 can report a handshake whose certificate check failed
          -- as done, and close the socket (its error log says "certificate verify error")
          return fail(sock, "tls", "TLS handshake with " .. r.host .. " failed: the peer's certificate was " ..
                                   "not verified (see lua_ssl_trusted_certificate in nginx.conf)")
        end
        if not ok then return fail(sock, code_of(err, "send"), "send failed: " .. tostring(err)) end
        return fail(sock, code_of(err, "recv"), "reading the answer failed: " .. tostring(err))
      end
    else
      local te, cl = headers["transfer-encoding"], headers["content-length"]
      local conn = lower(headers["connection"] or "")
      local keep = (version == "1.1" and not conn:find("close", 1, true)) or conn:find("keep-alive", 1, true)
      local body, berr
      if r.method == "HEAD" or status == 204 or status == 304 or (status >= 100 and status < 200) then
        body = ""
      elseif te and lower(te):find("chunked", 1, true) then
        body, berr = read_chunked(sock, deadline)
      elseif cl then
        local n = tonumber(cl)
        if not n or n < 0 or n ~= floor(n) then return fail(sock, "recv", "malformed Content-Length") end
        if n > MAX_BODY then return fail(sock, "too_large", "response body over 64 MiB") end
        sock:settimeout(left(deadline))
        if n == 0 then body = "" else body, berr = sock:receive(n) end
      else -- until the connection closes (RFC 9112 §6.3, 8.)
        keep = false
        local parts, total = {}, 0
        while true do
          sock:settimeout(left(deadline))
          local got, rerr = sock:receiveany(65536)
          if not got then
            if rerr == "closed" then body = concat(parts) else berr = rerr end
            break
          end
          total = total + #got
          if total > MAX_BODY then berr = "too_large" break end
          parts[#parts + 1] = got
        end
      end
      if not body then
        if berr == "too_large" then return fail(sock, "too_large", "response body over 64 MiB") end
        return fail(sock, code_of(berr, "recv"), "reading the body failed: " .. tostring(berr))
      end
      if keep then sock:setkeepalive(KEEPALIVE_MS, POOL_SIZE) else sock:close() end
      return { status = status, headers = headers, body = body, http_version = version }
    end
  end
end

--- Makes one request (see `telua.http.request` for options and answers).
-- @tparam table opts
-- @return a response table, or `nil, message, code`
-- @raise when opts is malformed, or in a phase without cosockets
function _M.request(opts)
  local r = prepare(opts)
  _M.check_phase("telua.http")
  return exchange(r)
end

--- Makes many requests at once on light threads, at most `max_connections`
-- in flight (see `telua.http.batch`).
-- @tparam table list request options
-- @tparam[opt=32] integer max_connections
-- @treturn table answers in order: a response table, or `{ error = message, code = code }`
-- @raise when an item is malformed (nothing is sent then)
function _M.batch(list, max_connections)
  if type(list) ~= "table" then error("http.batch needs a list of requests", 2) end
  max_connections = max_connections or 32
  if type(max_connections) ~= "number" or max_connections < 1 or max_connections > 1024 then
    error("http: max_connections must be 1..1024", 2)
  end
  local prepared = {}
  for i = 1, #list do prepared[i] = prepare(list[i]) end
  _M.check_phase("telua.http")
  local out, n, nexti = {}, #prepared, 1
  local function runner()
    while nexti <= n do
      local i = nexti
      nexti = i + 1
      local res, msg, code = exchange(prepared[i])
      out[i] = res or { error = msg, code = code }
    end
  end
  local threads = {}
  for t = 1, min(n, max_connections) do threads[t] = spawn(runner) end
  for t = 1, #threads do wait(threads[t]) end
  return out
end

--- Waits without holding the worker.
-- @tparam number seconds
function _M.sleep(s)
  _M.check_phase("telua.http.sleep")
  sleep(s)
end

return _M
