--- The store on Redis: the same interface as `telua.store` on SQLite, for
-- state shared by many hosts.
--
-- Opened by `telua.store.open` with `redis://[user:password@]host[:port][/db]`,
-- `rediss://...` (TLS, the server's certificate verified against the
-- system's CAs, or `?cainfo=FILE`), or `unix://[[user:]password@]/path/to.sock[?db=N]`
-- (a Unix socket, as redis-py writes it). More query options: `prefix`
-- (default `telua:`: every key starts with it, so one Redis can hold
-- several telua deployments), `timeout` (seconds per exchange, default 1).
--
-- Opened with `{ optout_view = true }` (as the host does), opt-out lookups
-- in the account scope are answered from the process's view of the
-- opt-out keys when it knows them: `core.redis_view`, kept exact by
-- Redis's invalidation messages (client-side caching in broadcasting
-- mode on `<prefix>opt:`), emptied while its subscription is down, and
-- told at once of this process's own writes.
--
-- Every step that reads and then writes is one Redis script (atomic on
-- the server): an opt-out in the service scope, a status that only moves
-- forward, a counter's hit-and-check, a GCRA decision over several
-- limits, each outbox transition. Scripts go by EVALSHA and are loaded
-- once per connection when the server does not know them (NOSCRIPT).
--
-- The outbox is a Redis Stream per kind of entry (pacing-slot holders,
-- single messages, campaign entries) with one consumer group: each host's
-- sender is a consumer; what it claimed stays in its pending list until it
-- files the answer. Entries another host claimed and did not file within
-- the visibility timeout are taken over (`XAUTOCLAIM`), marked as in
-- flight at a stop and reconciled against Twilio's message list before
-- any resend, as after a crash of a single host. Entries not yet due
-- (`not_before`, backoff, pacing slots) wait in a sorted set.
--
-- Transport: in the telua host, a call made inside a request's handler
-- yields the rule's coroutine and runs on the worker's Redis thread (the
-- worker serves other requests meanwhile); elsewhere it blocks on the
-- store's own connection, at most `timeout` seconds per exchange. When
-- Redis cannot be reached a call returns `nil, message, code` (code
-- `connect`, `timeout`, `recv`, ... or `redis` for an error reply), never
-- raises, and the next call connects again. Inside nginx, where the phase
-- has cosockets (rewrite, access, content, timer), a call goes over
-- `ngx.socket.tcp` instead, with hiredis's encoder and reply reader
-- (`core.redis_encode`, `core.redis_reader`), TLS by `sslhandshake`
-- against `lua_ssl_trusted_certificate`, and nginx's keep-alive pool per
-- store: it yields to nginx's event loop and never blocks the worker.
--
-- Not for Redis Cluster: scripts touch keys they compute (one server, or
-- a primary with replicas).
--
-- @module telua.store.redis

local core = require "telua.core"
local cjson = require "cjson.safe"

local type, error, tostring, tonumber, setmetatable, ipairs, pairs, sort, floor, select, pcall =
  type, error, tostring, tonumber, setmetatable, ipairs, pairs, table.sort, math.floor, select, pcall
local unpack = table.unpack or unpack -- luacheck: ignore 143 (LuaJIT's global)
local function pack(...) return { n = select("#", ...), ... } end
local running, yield = coroutine.running, coroutine.yield

local _M = { _VERSION = "0.1.0" }

local Store = {}
Store.__index = Store
local Outbox = {}
Outbox.__index = Outbox

local GROUP = "telua"
local STREAMS = { "slot", "single", "bulk" }

--- Parses a Redis store spec.
-- @tparam string spec `redis://...`, `rediss://...` or `unix://...`
-- @treturn table connection options (`host`, `port`, `path`, `db`, `tls`,
--   `user`, `password`, `cainfo`, `timeout`) and the key prefix
-- @return or `nil, message` (the message never holds the password)
function _M.parse(spec)
  local scheme, rest = spec:match("^(%a+)://(.*)$")
  if scheme ~= "redis" and scheme ~= "rediss" and scheme ~= "unix" then
    return nil, "not a Redis store spec (redis://, rediss:// or unix://)"
  end
  local query = {}
  local main, q = rest:match("^([^?]*)%?(.*)$")
  if main then
    rest = main
    for k, v in q:gmatch("([^&=]+)=([^&]*)") do query[k] = v end
  end
  local o = { tls = scheme == "rediss", timeout = tonumber(query.timeout) or 1, connect_timeout = 1 }
  local auth, addr = rest:match("^(.*)@(.-)$")
  if not auth then addr = rest end
  local function unescape(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end
  if auth and auth ~= "" then
    local user, pass = auth:match("^([^:]*):(.*)$")
    if user then
      o.user, o.password = user ~= "" and unescape(user) or nil, unescape(pass)
    else
      o.password = unescape(auth) -- a password alone (redis://:pass@ or unix://pass@)
    end
  end
  if scheme == "unix" then
    if addr:sub(1, 1) ~= "/" then return nil, "unix:// needs an absolute socket path" end
    o.path = addr
    o.db = tonumber(query.db) or 0
  else
    local hostport, db = addr:match("^([^/]*)/?(%d*)$")
    if not hostport then return nil, "bad Redis address (want host:port[/db])" end
    local host, port = hostport:match("^%[(.+)%]:?(%d*)$") -- [::1]:6379
    if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
    if not host or host == "" then return nil, "a Redis URL needs a host" end
    o.host, o.port = host, tonumber(port) or 6379
    o.db = tonumber(db) or tonumber(query.db) or 0
  end
  if query.cainfo then o.cainfo = unescape(query.cainfo) end
  if query.servername then o.servername = query.servername end
  local prefix = query.prefix and unescape(query.prefix) or "telua:"
  return o, prefix
end

-- The spec without its password, for logs and /-/status.
function _M.redact(spec)
  return (spec:gsub("^(%a+://)[^@/]*@", "%1***@"))
end

-- ---------------------------------------------------------------------------
-- transport

-- The host marks the coroutine a request's rules run in (as telua.http
-- reads it): only there does a call yield to the worker's Redis thread.
local REG = debug and debug.getregistry and debug.getregistry()
local function in_request()
  local co = REG and REG["telua.host_co"]
  return co and co == running()
end

-- A failure inside Store:transaction ends the transaction's function.
local TX_FAIL = {}

-- Inside nginx: cosockets where the phase has them (see the module notes).
local ngx = rawget(_G, "ngx")
local NGX_PHASES = { rewrite = true, access = true, content = true, timer = true }
local function cosockets()
  return ngx and ngx.socket and NGX_PHASES[ngx.get_phase()] or false
end

-- One exchange over a cosocket from nginx's pool: AUTH/SELECT first on a
-- new connection, then cmds; the replies, or nil, message, code.
local function cosocket_exec(self, cmds)
  local o = self.opts
  local sock = ngx.socket.tcp()
  local t = (o.timeout or 1) * 1000
  sock:settimeouts((o.connect_timeout or 1) * 1000, t, t)
  -- the pool's name: the spec's digest (it may hold a password)
  local pool = self.pool_name
  if not pool then
    pool = "telua-redis:" .. core.sha1_hex(self.spec)
    self.pool_name = pool
  end
  local ok, err
  if o.path then ok, err = sock:connect("unix:" .. o.path, { pool = pool })
  else ok, err = sock:connect(o.host, o.port, { pool = pool }) end
  if not ok then
    return nil, "redis: cannot connect to " .. self.path .. ": " .. tostring(err),
           err == "timeout" and "timeout" or "connect"
  end
  local pre = {}
  local fresh = sock:getreusedtimes() == 0
  if fresh then
    if o.tls then
      local hok, herr = sock:sslhandshake(false, o.servername or o.host, true)
      if not hok then
        sock:close()
        return nil, "redis: TLS handshake failed: " .. tostring(herr), "tls"
      end
    end
    if o.password then pre[#pre + 1] = o.user and { "AUTH", o.user, o.password } or { "AUTH", o.password } end
    if o.db and o.db > 0 then pre[#pre + 1] = { "SELECT", o.db } end
  end
  local all = cmds
  if #pre > 0 then
    all = {}
    for i = 1, #pre do all[i] = pre[i] end
    for i = 1, #cmds do all[#all + 1] = cmds[i] end
  end
  local wire, n = core.redis_encode(all)
  local sent, serr = sock:send(wire)
  if not sent then
    sock:close()
    if serr == "closed" and fresh and o.tls then -- a failed certificate check, as telua.http.cosocket notes
      return nil, "redis: TLS handshake failed: the server's certificate was not verified " ..
                  "(see lua_ssl_trusted_certificate in nginx.conf)", "tls"
    end
    return nil, "redis: cannot send to the server: " .. tostring(serr), serr == "timeout" and "timeout" or "send"
  end
  local reader, replies = core.redis_reader(), {}
  while #replies < n do
    local got, v = reader:next()
    if got then
      replies[#replies + 1] = v
    elseif got == nil then
      sock:close()
      return nil, v, "protocol"
    else
      local data, rerr = sock:receiveany(16384)
      if not data then
        sock:close()
        if rerr == "timeout" then return nil, "redis: no answer within the timeout", "timeout" end
        return nil, "redis: connection lost", "recv"
      end
      reader:feed(data)
    end
  end
  for i = 1, #pre do
    local r = replies[i]
    if type(r) == "table" and r.err then
      sock:close()
      return nil, "redis: " .. r.err, (pre[i][1] == "AUTH") and "auth" or "redis"
    end
  end
  sock:setkeepalive(60000, 32)
  if #pre == 0 then return replies end
  local out = {}
  for i = #pre + 1, n do out[#out + 1] = replies[i] end
  return out
end

-- Runs cmds (a list of argument lists): the list of replies, or nil, message, code.
function Store:exec(cmds)
  local res, err, code
  if in_request() then
    res, err, code = yield("telua.io", "redis", { key = self.spec, opts = self.opts, cmds = cmds })
  elseif cosockets() then
    res, err, code = cosocket_exec(self, cmds)
  else
    local conn = self.conn
    if not conn then
      conn, err, code = core.redis_connect(self.opts)
      self.conn = conn
    end
    if conn then res, err, code = conn:pipeline(cmds) end
  end
  if not res and self.in_tx then error({ TX_FAIL, err, code }, 0) end
  return res, err, code
end

-- One command: its reply, or nil, message, code (an error reply: code "redis").
function Store:cmd(...)
  local res, err, code = self:exec({ { ... } })
  if not res then return nil, err, code end
  local r = res[1]
  if type(r) == "table" and r.err then
    if self.in_tx then error({ TX_FAIL, r.err, "redis" }, 0) end
    return nil, r.err, "redis"
  end
  if r == false then return nil end
  return r
end

-- The scripts, by name: { text, sha }. Each starts with the shared helpers.
local PRELUDE = [[
local P = ARGV[1]
local function num(v) return tonumber(v) end
local function count(camp, state, d)
  redis.call('HINCRBY', P .. 'ob:counts', state, d)
  if camp then redis.call('HINCRBY', P .. 'ob:c:' .. camp, state, d) end
end
-- counts of many entries summed first, written once (a claim or a batch of transitions)
local tallies = {}
local function tally(camp, state, d)
  local key = camp or '\0'
  local t = tallies[key]
  if not t then t = {}; tallies[key] = t end
  t[state] = (t[state] or 0) + d
end
local function apply_tallies()
  for key, t in pairs(tallies) do
    for state, d in pairs(t) do
      if d ~= 0 then count(key ~= '\0' and key or nil, state, d) end
    end
  end
  tallies = {}
end
local function bucket(status)
  if status == 'delivered' or status == 'read' then return 'delivered' end
  if status == 'undelivered' then return 'undelivered' end
  if status == 'failed' then return 'msg_failed' end
end
]]

local SCRIPTS = {}
local function script(name, body)
  local text = PRELUDE .. body
  SCRIPTS[name] = { text = text, sha = core.sha1_hex(text) }
end

-- Runs a script by name with its argument list (P first): the reply or nil, message, code.
function Store:script(name, args)
  local s = SCRIPTS[name]
  local cmd = { "EVALSHA", s.sha, 0, self.prefix }
  for i = 1, #args do cmd[#cmd + 1] = args[i] end
  local res, err, code = self:exec({ cmd })
  if res and type(res[1]) == "table" and type(res[1].err) == "string" and res[1].err:find("^NOSCRIPT") then
    res, err, code = self:exec({ { "SCRIPT", "LOAD", s.text }, cmd })
    if res then res = { res[2] } end
  end
  if not res then return nil, err, code end
  local r = res[1]
  if type(r) == "table" and r.err then
    if self.in_tx then error({ TX_FAIL, r.err, "redis" }, 0) end
    return nil, "redis: " .. r.err, "redis"
  end
  return r
end

local function s(v) if v == nil then return "" end return tostring(v) end

-- ---------------------------------------------------------------------------
-- opening

--- Opens a Redis store (see the module notes).
-- @tparam string spec
-- @tparam[opt] table opts `connect = false`: do not check the server now
--   (the host's rules generations: Redis may be down for a while)
-- @return a store, or `nil, message, "store"`
function _M.open(spec, opts)
  local o, prefix = _M.parse(spec)
  if not o then return nil, prefix, "store" end
  local self = setmetatable({ spec = spec, opts = o, prefix = prefix, path = _M.redact(spec), backend = "redis" },
                            Store)
  self.outbox = setmetatable({ store = self, prefix = prefix }, Outbox)
  if opts and opts.optout_view then self.view = core.redis_view(spec, prefix .. "opt:", o) end
  if not opts or opts.connect ~= false then
    local ok, err = self:setup()
    if not ok then
      self:close()
      return nil, err, "store"
    end
  end
  return self
end

-- The consumer group on each stream (made once; BUSYGROUP: already there).
function Store:setup()
  local cmds = {}
  for i, name in ipairs(STREAMS) do
    cmds[i] = { "XGROUP", "CREATE", self.prefix .. "ob:s:" .. name, GROUP, "0", "MKSTREAM" }
  end
  local res, err = self:exec(cmds)
  if not res then return nil, err end
  for _, r in ipairs(res) do
    if type(r) == "table" and r.err and not r.err:find("^BUSYGROUP") then return nil, "redis: " .. r.err end
  end
  self.ready = true
  return true
end

--- Runs fn with its writes sent together: every outbox transition,
-- message status and opt-out fn makes is queued and answers `true` at
-- once, and when fn returns they go to Redis in one pipeline (one round
-- trip for a round of the sender's answers, as one commit on SQLite).
-- The outbox transitions run as one script and the message statuses as
-- another, each atomic, not the whole group: a failure part-way leaves
-- the writes before it done, and every one of them is idempotent (a
-- transition to the state an entry is in, a status that moves only
-- forward), so the caller files the whole group again. Reads
-- inside fn go at once and do not see fn's writes.
-- @return what fn returned | nil, message, code (a call inside fn failed,
--   or a queued write did)
function Store:transaction(fn)
  if self.in_tx then return fn() end
  self.in_tx, self.tx_writes = true, {}
  local res = pack(pcall(fn))
  local writes = self.tx_writes
  self.in_tx, self.tx_writes = false, nil
  if not res[1] then
    local e = res[2]
    if type(e) == "table" and e[1] == TX_FAIL then return nil, e[2], e[3] end
    error(e, 0)
  end
  if #writes > 0 then
    local ok, err, code = self:flush_writes(writes)
    if not ok then return nil, err, code end
  end
  return unpack(res, 2, res.n)
end

-- Runs the queued writes (EVALSHA commands) in one pipeline; those the
-- server did not know the script of (NOSCRIPT: it ran none of them) again
-- after loading their scripts.
function Store:flush_writes(writes)
  -- every outbox transition in one script, every message status in another, each
  -- where the first of its kind was (the sender files a round's transitions first)
  local cmds, names, many = {}, {}, {}
  local MANY = { ob_set = "ob_set_many", message_status = "message_status_many" }
  for _, w in ipairs(writes) do
    local m = MANY[w[1]]
    if m then
      local c = many[m]
      if not c then
        c = { "EVALSHA", SCRIPTS[m].sha, 0, self.prefix }
        many[m] = c
        cmds[#cmds + 1], names[#names + 1] = c, m
      end
      for i = 5, #w[2] do c[#c + 1] = w[2][i] end
    else
      cmds[#cmds + 1], names[#names + 1] = w[2], w[1]
    end
  end
  local res, err, code = self:exec(cmds)
  if not res then return nil, err, code end
  local again, load, loaded = {}, {}, {}
  for i, r in ipairs(res) do
    if type(r) == "table" and type(r.err) == "string" then
      if not r.err:find("^NOSCRIPT") then return nil, "redis: " .. r.err, "redis" end
      again[#again + 1] = cmds[i]
      if not loaded[names[i]] then
        loaded[names[i]] = true
        load[#load + 1] = { "SCRIPT", "LOAD", SCRIPTS[names[i]].text }
      end
    end
  end
  if #again == 0 then return true end
  for _, c in ipairs(again) do load[#load + 1] = c end
  res, err, code = self:exec(load)
  if not res then return nil, err, code end
  for _, r in ipairs(res) do
    if type(r) == "table" and type(r.err) == "string" then return nil, "redis: " .. r.err, "redis" end
  end
  return true
end

-- A write whose reply its caller needs only as success: inside
-- Store:transaction it is queued (and answers true), else it runs now.
function Store:write(name, args)
  local q = self.tx_writes
  if not q then return self:script(name, args) end
  local cmd = { "EVALSHA", SCRIPTS[name].sha, 0, self.prefix }
  for i = 1, #args do cmd[#cmd + 1] = args[i] end
  q[#q + 1] = { name, cmd }
  return true
end

--- Redis's durability is the server's (`appendonly yes`, `appendfsync`): nothing to do here.
function Store:durable_commits() return true end

--- Keys expire on the server: nothing to delete.
function Store:kv_expire() return 0 end

function Store:close()
  if self.conn then self.conn:close() end
  self.conn = nil
end

Store.__tostring = function(self) return "telua.Store (" .. self.path .. ")" end

-- ---------------------------------------------------------------------------
-- opt-outs: one hash per recipient, field = our number or service,
-- value = keyword TAB created_at TAB the Messaging Service it came through

local store_mod -- telua.store, for the scope rules (set by telua.store)
function _M.bind(m) store_mod = m end

local function check_number(v, name)
  if type(v) ~= "string" or v == "" then error(name .. " must be a non-empty string", 3) end
end

local function scope_of(opts)
  local scope = opts and opts.scope or store_mod.DEFAULT_OPTOUT_SCOPE
  if not store_mod.OPTOUT_SCOPES[scope] then
    error("opt-out scope must be account, service or number, got " .. tostring(scope), 3)
  end
  return scope
end

script("optout_add", [[
local k, sender, kw, now, svc = P .. 'opt:' .. ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local old = redis.call('HGET', k, sender)
if old then
  local _, created, osvc = old:match('^([^\t]*)\t([^\t]*)\t(.*)$')
  if created then now = created end
  if svc == '' and osvc then svc = osvc end
end
redis.call('HSET', k, sender, kw .. '\t' .. now .. '\t' .. svc)
return 1
]])

-- the service scope: the pair, or the same service either way round; the
-- fields of the recipient that match (a lookup returns at the first)
script("optout_match", [[
local k, mode, a, b = P .. 'opt:' .. ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local all = redis.call('HGETALL', k)
local hits = {}
for i = 1, #all, 2 do
  local f, svc = all[i], all[i + 1]:match('\t[^\t]*\t(.*)$') or ''
  if f == a or svc == a or (b ~= '' and (f == b or svc == b)) then
    if mode == 'check' then return 1 end
    hits[#hits + 1] = f
  end
end
if mode == 'check' then return 0 end
if #hits > 0 then redis.call('HDEL', k, unpack(hits)) end
return #hits
]])

--- See `telua.store`'s `optout_add`.
function Store:optout_add(sender, recipient, keyword, opts)
  check_number(sender, "sender")
  check_number(recipient, "recipient")
  local service = opts and opts.service
  if service == sender then service = nil end
  local r, err, code = self:write("optout_add", { recipient, sender, keyword or "STOP", os.time(), s(service) })
  if self.view then self.view:drop(self.prefix .. "opt:" .. recipient) end -- this process's next read sees it
  if not r then return nil, err, code end
  return true
end

-- (scope rules as telua.store's SCOPE_WHERE)
local function service_args(opts, sender)
  local service = opts and opts.service
  if service and service ~= sender then return service end
  return ""
end

--- See `telua.store`'s `optout_remove`.
function Store:optout_remove(sender, recipient, opts)
  check_number(sender, "sender")
  check_number(recipient, "recipient")
  local scope = scope_of(opts)
  local r, err, code
  if scope == "account" then r, err, code = self:cmd("DEL", self.prefix .. "opt:" .. recipient)
  elseif scope == "number" then r, err, code = self:cmd("HDEL", self.prefix .. "opt:" .. recipient, sender)
  else r, err, code = self:script("optout_match", { recipient, "remove", sender, service_args(opts, sender) }) end
  if self.view then self.view:drop(self.prefix .. "opt:" .. recipient) end
  if not r then return nil, err, code end
  return true
end

--- See `telua.store`'s `is_opted_out` (one lookup of `is_opted_out_many`).
function Store:is_opted_out(sender, recipient, opts)
  local r, err, code = self:is_opted_out_many({ { sender, recipient, opts } })
  if not r then return nil, err, code end
  return r[1]
end

--- See `telua.store`'s `is_opted_out_many`: what the process's view
-- knows, and the rest in one pipeline.
function Store:is_opted_out_many(list)
  local out, cmds, at, view, keys, epochs = {}, {}, {}, self.view, {}, {}
  for i, q in ipairs(list) do
    local sender, recipient, opts = q[1], q[2], q[3]
    check_number(sender, "sender")
    check_number(recipient, "recipient")
    local scope = scope_of(opts)
    local key = self.prefix .. "opt:" .. recipient
    local known
    if scope == "account" and view then known, epochs[i] = view:get(key) end
    if known ~= nil then out[i] = known
    elseif scope == "service" then -- a script, on its own
      local r, err, code = self:script("optout_match", { recipient, "check", sender, service_args(opts, sender) })
      if not r then return nil, err, code end
      out[i] = r == 1
    else
      cmds[#cmds + 1] = scope == "account" and { "EXISTS", key } or { "HEXISTS", key, sender }
      at[#cmds], keys[i] = i, scope == "account" and key or nil
    end
  end
  if #cmds == 0 then return out end
  local res, err, code = self:exec(cmds)
  if not res then return nil, err, code end
  for j, r in ipairs(res) do
    if type(r) ~= "number" then return nil, "redis: " .. tostring(type(r) == "table" and r.err or r), "redis" end
    local i = at[j]
    out[i] = r == 1
    if keys[i] and view then view:put(keys[i], r == 1, epochs[i]) end
  end
  return out
end

-- ---------------------------------------------------------------------------
-- key/values, counters, windows, the message log

local function nskey(self, kind, ns, key)
  if type(ns) ~= "string" or type(key) ~= "string" then error("ns and key must be strings", 3) end
  return self.prefix .. kind .. #ns .. ":" .. ns .. ":" .. key
end

--- See `telua.store`'s `kv_set` (the time to live is the server's: `PX`).
function Store:kv_set(ns, key, value, ttl)
  local k = nskey(self, "kv:", ns, key)
  if type(value) ~= "string" then error("value must be a string", 2) end
  local r, err, code
  if ttl and ttl <= 0 then r, err, code = self:cmd("DEL", k) -- expired already
  elseif ttl then r, err, code = self:cmd("SET", k, value, "PX", math.max(1, floor(ttl * 1000 + 0.5)))
  else r, err, code = self:cmd("SET", k, value) end
  if not r then return nil, err, code end
  return true
end

--- See `telua.store`'s `kv_get`.
function Store:kv_get(ns, key)
  local k = nskey(self, "kv:", ns, key)
  local r, err, code = self:cmd("GET", k)
  if r == nil and err then return nil, err, code end
  return r
end

script("counter_hit", [[
local k, limit, window, now = ARGV[2], num(ARGV[3]), num(ARGV[4]), num(ARGV[5])
local cur = redis.call('HMGET', k, 'count', 'started')
local count, started = 0, now
if cur[1] and num(cur[2]) + window > now then count, started = num(cur[1]), num(cur[2]) end
local allowed = count < limit
if allowed then count = count + 1 end
redis.call('HSET', k, 'count', count, 'started', started)
redis.call('EXPIRE', k, math.ceil(started + window - now) + 1)
return { allowed and 1 or 0, count, tostring(started + window - now) }
]])

--- See `telua.store`'s `counter_hit`.
function Store:counter_hit(ns, key, limit, window, now)
  local k = nskey(self, "cnt:", ns, key)
  if type(limit) ~= "number" or limit < 1 or type(window) ~= "number" or window <= 0 then
    error("limit must be >= 1 and window > 0 seconds", 2)
  end
  local r, err, code = self:script("counter_hit", { k, limit, window, now or os.time() })
  if not r then return nil, err, code end
  return r[1] == 1, r[2], tonumber(r[3])
end

script("window_touch", [[
local k, f, at = P .. 'win', ARGV[2], num(ARGV[3])
local old = num(redis.call('HGET', k, f))
if not old or at > old then redis.call('HSET', k, f, at) end
return 1
]])

--- See `telua.store`'s `window_touch`.
function Store:window_touch(sender, recipient, at)
  check_number(sender, "sender")
  check_number(recipient, "recipient")
  local r, err, code = self:script("window_touch", { sender .. "\n" .. recipient, at or os.time() })
  if not r then return nil, err, code end
  return true
end

--- See `telua.store`'s `window_open`.
function Store:window_open(sender, recipient, now)
  check_number(sender, "sender")
  check_number(recipient, "recipient")
  local r, err, code = self:cmd("HGET", self.prefix .. "win", sender .. "\n" .. recipient)
  if r == nil and err then return nil, err, code end
  if not r then return false, nil end
  local closes = tonumber(r) + store_mod.WINDOW_SECONDS
  return (now or os.time()) < closes, closes
end

-- A status that only moves forward; a final one takes the message out of
-- the outbox's unfinal list and counts in its campaign's delivery figures.
local MESSAGE_STATUS = [[
local function status_one(a)
  local sid, status, rank, now = ARGV[a + 1], ARGV[a + 2], num(ARGV[a + 3]), ARGV[a + 8]
  local k = P .. 'msg:' .. sid
  local cur = redis.call('HMGET', k, 'status', 'rank')
  local fields = { 'to', ARGV[a + 4], 'from', ARGV[a + 5], 'error_code', ARGV[a + 6], 'segments', ARGV[a + 7] }
  local set = {}
  for i = 1, #fields, 2 do
    if fields[i + 1] ~= '' then set[#set + 1] = fields[i]; set[#set + 1] = fields[i + 1] end
  end
  local old, orank = cur[1], num(cur[2])
  if old and rank <= orank then
    if #set > 0 then redis.call('HSET', k, unpack(set)) end
    return 0, old
  end
  set[#set + 1] = 'status'; set[#set + 1] = status
  set[#set + 1] = 'rank'; set[#set + 1] = rank
  set[#set + 1] = 'updated_at'; set[#set + 1] = now
  redis.call('HSET', k, unpack(set))
  if rank >= 4 then redis.call('ZREM', P .. 'ob:unfinal', sid) end
  -- a campaign's delivery figures, only when the status moves between them
  local x, y = old and bucket(old), bucket(status)
  if x ~= y then
    local id = redis.call('HGET', P .. 'ob:sid', sid)
    local camp = id and redis.call('HGET', P .. 'ob:e:' .. id, 'campaign')
    if camp then
      local c = P .. 'ob:c:' .. camp
      if x then redis.call('HINCRBY', c, x, -1) end
      if y then redis.call('HINCRBY', c, y, 1) end
    end
  end
  return 1, status
end
]]
script("message_status", MESSAGE_STATUS .. [[
local moved, now = status_one(1)
return { moved, now }
]])
-- many statuses in one script (a transaction's queued writes): how many moved
script("message_status_many", MESSAGE_STATUS .. [[
local n = 0
for a = 1, #ARGV - 1, 8 do n = n + status_one(a) end
return n
]])

--- See `telua.store`'s `message_status`.
function Store:message_status(sid, status, fields)
  check_number(sid, "sid")
  local rank = store_mod.STATUS_RANK[status]
  if not rank then error("unknown message status '" .. tostring(status) .. "'", 2) end
  fields = fields or {}
  local r, err, code = self:write("message_status", {
    sid, status, rank, s(fields.to), s(fields.from), s(fields.error_code), s(fields.segments), os.time() })
  if not r then return nil, err, code end
  if r == true then return true end -- queued in a transaction
  return r[1] == 1, r[2]
end

local function hash_table(list)
  local t = {}
  for i = 1, #list, 2 do t[list[i]] = list[i + 1] end
  return t
end

--- See `telua.store`'s `message_get`.
function Store:message_get(sid)
  check_number(sid, "sid")
  local r, err, code = self:cmd("HGETALL", self.prefix .. "msg:" .. sid)
  if not r then return nil, err, code end
  if #r == 0 then return nil end
  local t = hash_table(r)
  return { sid = sid, status = t.status, rank = tonumber(t.rank), to = t.to, from = t.from,
           error_code = tonumber(t.error_code), segments = tonumber(t.segments), updated_at = tonumber(t.updated_at) }
end

-- ---------------------------------------------------------------------------
-- pacing: GCRA state in Redis, one schedule for every host

-- One decision over several limits (the sender type's, the account's, a
-- campaign's): each limit's delay for `cost` at the server's clock (TIME,
-- so every host uses one clock); when the largest is within `ahead`, every
-- limit takes the event (its TAT moves on) in the same script. Times in
-- microseconds; TAT = max(TAT, now) + cost x T; delay = TAT - burst x T - now
-- (ITU-T I.371 virtual scheduling, as telua.core's C store and redis-cell).
script("gcra", [[
local cost, ahead, n = num(ARGV[2]), num(ARGV[3]), num(ARGV[4])
local t = redis.call('TIME')
local now = num(t[1]) * 1000000 + num(t[2])
local worst, bind, tats = 0, 1, {}
for i = 1, n do
  local base = 4 + (i - 1) * 4
  local key, T, burst, queue = ARGV[base + 1], num(ARGV[base + 2]), num(ARGV[base + 3]), num(ARGV[base + 4])
  local tat = num(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new = tat + cost * T
  local delay = new - burst * T - now
  if delay < 0 then delay = 0 end
  if delay > queue then return { -1, i, tostring(delay - queue) } end
  tats[i] = { key, new }
  if delay > worst then worst, bind = delay, i end
end
if worst <= ahead then
  for i = 1, n do
    redis.call('SET', tats[i][1], string.format('%.3f', tats[i][2]), 'PX', math.ceil((tats[i][2] - now) / 1000) + 1000)
  end
  return { 1, bind, tostring(worst) }
end
return { 0, bind, tostring(worst) }
]])

local Pacer = {}
Pacer.__index = Pacer

--- The store's shared pacer: GCRA decisions in Redis (one round trip each).
-- @treturn table with `decide(limits, cost, ahead)`
function Store:pacer()
  return setmetatable({ store = self }, Pacer)
end

--- Decides one event over several limits at once.
-- @tparam table limits list of `{ key = string, rate = events per second,
--   burst = n, queue = seconds }`
-- @tparam number cost e.g. the message's segments
-- @tparam number ahead seconds: the event takes its slot in every limit
--   only when its delay is at most this
-- @treturn number delay in seconds, the index of the limit that binds,
--   and whether the slot was taken
-- @return or `nil, "rejected", wait` (over a limit's queue), or `nil, message, code`
function Pacer:decide(limits, cost, ahead)
  local st = self.store
  local args = { cost, floor(ahead * 1e6), #limits }
  for _, l in ipairs(limits) do
    local T = 1e6 / l.rate
    args[#args + 1] = ("%sgcra:%.6f:%d:%s"):format(st.prefix, T, l.burst, l.key)
    args[#args + 1] = ("%.6f"):format(T)
    args[#args + 1] = l.burst
    args[#args + 1] = floor((l.queue or 0) * 1e6)
  end
  local r, err, code = st:script("gcra", args)
  if not r then return nil, err, code end
  if r[1] == -1 then return nil, "rejected", tonumber(r[3]) / 1e6 end
  return tonumber(r[3]) / 1e6, r[2], r[1] == 1
end

-- ---------------------------------------------------------------------------
-- the outbox (see the module notes and telua.store's outbox section)

local IN_FLIGHT_AT_STOP = "in flight when the host stopped"

local ENTRY_FIELDS = { "params", "sender", "to_addr", "attempts", "not_before", "resend_of", "dedupe", "campaign",
                       "rate", "segments", "optout_scope", "policy" }

script("ob_enqueue", [[
local now, per = ARGV[2], 12
local F = { 'params', 'sender', 'to_addr', 'attempts', 'not_before', 'resend_of', 'dedupe', 'campaign', 'rate',
            'segments', 'optout_scope', 'policy' }
local out = {}
for base = 3, #ARGV, per do
  local dedupe = ARGV[base + 6]
  local id = dedupe ~= '' and redis.call('HGET', P .. 'ob:dedupe', dedupe)
  if id then
    out[#out + 1] = { num(id), 0 }
  else
    id = redis.call('INCR', P .. 'ob:seq')
    local k = P .. 'ob:e:' .. id
    local h = { 'state', 'queued', 'created_at', now, 'updated_at', now, 'reserved', 0 }
    for i = 1, per do
      local v = ARGV[base + i - 1]
      if v ~= '' then h[#h + 1] = F[i]; h[#h + 1] = v end
    end
    redis.call('HSET', k, unpack(h))
    if dedupe ~= '' then redis.call('HSET', P .. 'ob:dedupe', dedupe, id) end
    redis.call('ZADD', P .. 'ob:delay', ARGV[base + 4], id)
    local camp = ARGV[base + 7]
    count(camp ~= '' and camp or nil, 'queued', 1)
    out[#out + 1] = { id, 1 }
  end
end
return out
]])

local function enqueue_args(args, params, opts, now)
  local json, jerr = cjson.encode(params)
  if not json then return nil, tostring(jerr) end
  local v = { json, params.from or params.messaging_service_sid, params.to, opts.attempts or 0,
              ("%.6f"):format(opts.not_before or now), opts.resend_of, opts.dedupe, opts.campaign, opts.rate,
              opts.segments, opts.optout_scope, opts.policy and cjson.encode(opts.policy) }
  for i = 1, #ENTRY_FIELDS do args[#args + 1] = s(v[i]) end
  return true
end

--- See `telua.store`'s `outbox:enqueue`.
function Outbox:enqueue(params, opts)
  if type(params) ~= "table" then error("outbox:enqueue: params must be a table", 2) end
  opts = opts or {}
  if type(params.to) ~= "string" or type(params.from or params.messaging_service_sid) ~= "string" then
    error("outbox:enqueue: params need to and from (or messaging_service_sid)", 2)
  end
  local now = core.time()
  local args = { ("%.6f"):format(now) }
  local ok, jerr = enqueue_args(args, params, opts, now)
  if not ok then return nil, "outbox:enqueue: " .. jerr, "json" end
  local r, err, code = self.store:script("ob_enqueue", args)
  if not r then return nil, err, code end
  return r[1][1], r[1][2] == 1
end

--- See `telua.store`'s `outbox:enqueue_many`. On Redis each chunk of 500
-- is one script (atomic); a failure part-way leaves the chunks before it
-- queued (a rerun with the same dedupe keys queues only the rest).
function Outbox:enqueue_many(list)
  local now, added = core.time(), 0
  for first = 1, #list, 500 do
    local args = { ("%.6f"):format(now) }
    for i = first, math.min(#list, first + 499) do
      local ok, jerr = enqueue_args(args, list[i][1], list[i][2] or {}, now)
      if not ok then return nil, "outbox:enqueue_many: " .. jerr, "json" end
    end
    local r, err, code = self.store:script("ob_enqueue", args)
    if not r then return nil, err, code end
    for _, x in ipairs(r) do added = added + x[2] end
  end
  return added
end

local NUMERIC = { id = true, attempts = true, not_before = true, error_code = true, resend_of = true,
                  created_at = true, updated_at = true, rate = true, reserved = true, segments = true }

local function entry_of(list)
  local e = {}
  for i = 1, #list, 2 do
    local k, v = list[i], list[i + 1]
    if NUMERIC[k] then v = tonumber(v) end
    e[k] = v
  end
  if e.params then e.params = cjson.decode(e.params) end
  if e.policy then e.policy = cjson.decode(e.policy) end
  e.stream, e.msgid = nil, nil
  return e
end

-- Moves every due entry from the sorted set to its stream, then reads up
-- to `limit` from the streams in order (slot holders, single messages,
-- campaign entries) for this consumer and marks them sending.
script("ob_claim", [[
local consumer, limit, now = ARGV[2], num(ARGV[3]), ARGV[4]
local due = redis.call('ZRANGEBYSCORE', P .. 'ob:delay', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  local e = redis.call('HMGET', P .. 'ob:e:' .. id, 'reserved', 'campaign')
  local s = e[1] == '1' and 'slot' or (e[2] and 'bulk' or 'single')
  redis.call('XADD', P .. 'ob:s:' .. s, '*', 'id', id)
end
if #due > 0 then
  redis.call('ZREM', P .. 'ob:delay', unpack(due))
  redis.call('INCRBY', P .. 'ob:ready', #due)
end
local out = {}
for _, s in ipairs({ 'slot', 'single', 'bulk' }) do
  if #out >= limit then break end
  local stream = P .. 'ob:s:' .. s
  local got = redis.call('XREADGROUP', 'GROUP', 'telua', consumer, 'COUNT', limit - #out, 'STREAMS', stream, '>')
  if got then
    if #got[1][2] > 0 then redis.call('DECRBY', P .. 'ob:ready', #got[1][2]) end
    for _, m in ipairs(got[1][2]) do
      local id = m[2][2]
      local k = P .. 'ob:e:' .. id
      -- the entry read once: its fields changed here and written in one HSET
      local h = redis.call('HGETALL', k)
      local at = {}
      for i = 1, #h, 2 do local f = h[i]; at[f] = i + 1 end
      if at.state and h[at.state] == 'queued' then
        local camp = at.campaign and h[at.campaign]
        local new = { attempts = tostring((num(at.attempts and h[at.attempts]) or 0) + 1), state = 'sending',
                      updated_at = now, stream = stream, msgid = m[1] }
        local set = {}
        for f, v in pairs(new) do
          set[#set + 1] = f
          set[#set + 1] = v
          local j = at[f]
          if j then h[j] = v else h[#h + 1] = f; h[#h + 1] = v end
        end
        redis.call('HSET', k, unpack(set))
        tally(camp, 'queued', -1)
        tally(camp, 'sending', 1)
        h[#h + 1] = 'id'
        h[#h + 1] = id
        out[#out + 1] = h
      else -- moved on meanwhile (another path filed it): the stream entry is spent
        redis.call('XACK', stream, 'telua', m[1])
        redis.call('XDEL', stream, m[1])
      end
    end
  end
end
apply_tallies()
-- one JSON string, not a nested reply of every field (a third of the script's time)
if #out == 0 then return '' end
return cjson.encode(out)
]])

--- See `telua.store`'s `outbox:claim`. The entries are this host's
-- consumer's until filed (or taken over past the visibility timeout).
function Outbox:claim(limit, now)
  now = now or core.time()
  local st = self.store
  if not st.ready then
    local ok, err, code = st:setup()
    if not ok then return nil, err, code end
  end
  local r, err, code = st:script("ob_claim", { self.consumer or "telua", limit, ("%.6f"):format(now) })
  if not r then return nil, err, code end
  local rows = {}
  if r ~= "" then
    for i, h in ipairs(cjson.decode(r)) do rows[i] = entry_of(h) end
  end
  sort(rows, function(a, b)
    if a.reserved ~= b.reserved then return a.reserved > b.reserved end
    return a.id < b.id
  end)
  return rows
end

--- Names this host's consumer in the group (the host: its `--consumer`,
-- default host name and port, so a restarted host finds what it held).
function Outbox:set_consumer(name) self.consumer = name end

-- One transition: ARGV id, state, now, sid, error_code, error, not_before,
-- reserved ('' leaves it), attempts delta, in-flight text. The stream
-- entry (if claimed) is acknowledged; counts, the campaign's figures, the
-- SID index, the unfinal list and the unreconciled set follow the state.
local OB_SET = [[
local function set_one(a)
  local id, state, now, sid, ecode, err, nb, reserved, dattempts, inflight =
    ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8],
    num(ARGV[a + 9]), ARGV[a + 10]
  local k = P .. 'ob:e:' .. id
  local cur = redis.call('HMGET', k, 'state', 'campaign', 'stream', 'msgid', 'sid', 'segments')
  local old, camp = cur[1], cur[2]
  if not old then return 0 end
  -- the entry's fields in one HSET and one HDEL
  local set, del = { 'state', state, 'updated_at', now }, {}
  if cur[3] then
    redis.call('XACK', cur[3], 'telua', cur[4])
    redis.call('XDEL', cur[3], cur[4])
    del[#del + 1] = 'stream'
    del[#del + 1] = 'msgid'
  end
  if old ~= state then
    tally(camp, old, -1)
    tally(camp, state, 1)
  end
  if sid ~= '' then
    set[#set + 1] = 'sid'
    set[#set + 1] = sid
    redis.call('HSET', P .. 'ob:sid', sid, id)
  end
  if ecode ~= '' then set[#set + 1] = 'error_code'; set[#set + 1] = ecode else del[#del + 1] = 'error_code' end
  if err ~= '' then set[#set + 1] = 'error'; set[#set + 1] = err else del[#del + 1] = 'error' end
  if nb ~= '' then set[#set + 1] = 'not_before'; set[#set + 1] = nb end
  if reserved ~= '' then set[#set + 1] = 'reserved'; set[#set + 1] = reserved end
  redis.call('HSET', k, unpack(set))
  if #del > 0 then redis.call('HDEL', k, unpack(del)) end
  if dattempts ~= 0 then redis.call('HINCRBY', k, 'attempts', dattempts) end
  if state == 'queued' then
    redis.call('ZADD', P .. 'ob:delay', nb ~= '' and nb or redis.call('HGET', k, 'not_before'), id)
  end
  if state == 'unknown' and err == inflight and not cur[5] and sid == '' then
    if redis.call('SADD', P .. 'ob:unrec', id) == 1 and camp then
      redis.call('HINCRBY', P .. 'ob:c:' .. camp, 'reconciling', 1)
    end
  elseif redis.call('SREM', P .. 'ob:unrec', id) == 1 and camp then
    redis.call('HINCRBY', P .. 'ob:c:' .. camp, 'reconciling', -1)
  end
  if state == 'sent' and old ~= 'sent' then
    local msid = sid ~= '' and sid or cur[5]
    local m = msid and redis.call('HMGET', P .. 'msg:' .. msid, 'status', 'rank') or {}
    if msid and (not m[2] or num(m[2]) < 4) then redis.call('ZADD', P .. 'ob:unfinal', now, msid) end
    if camp then
      local c = P .. 'ob:c:' .. camp
      redis.call('HINCRBY', c, 'segments', num(cur[6]) or 1)
      local fl = redis.call('HMGET', c, 'first_sent', 'last_sent')
      local first, last, upd = num(fl[1]), num(fl[2]), {}
      if not first or num(now) < first then upd[#upd + 1] = 'first_sent'; upd[#upd + 1] = now end
      if not last or num(now) > last then upd[#upd + 1] = 'last_sent'; upd[#upd + 1] = now end
      if #upd > 0 then redis.call('HSET', c, unpack(upd)) end
      local b = m[1] and bucket(m[1])
      if b then redis.call('HINCRBY', c, b, 1) end
    end
  end
  return 1
end
]]
script("ob_set", OB_SET .. [[
local r = set_one(1)
apply_tallies()
return r
]])
-- many transitions in one script (a transaction's queued writes): how many applied
script("ob_set_many", OB_SET .. [[
local n = 0
for a = 1, #ARGV - 1, 10 do n = n + set_one(a) end
apply_tallies()
return n
]])

function Outbox:set(id, state, f)
  f = f or {}
  local r, err, code = self.store:write("ob_set", {
    id, state, ("%.6f"):format(f.now or core.time()), s(f.sid), s(f.error_code), s(f.error),
    f.not_before and ("%.6f"):format(f.not_before) or "", s(f.reserved), f.attempts or 0, IN_FLIGHT_AT_STOP })
  if not r then return nil, err, code end
  return r == true or r == 1
end

function Outbox:complete(id, sid, note) return self:set(id, "sent", { sid = sid, error = note }) end
function Outbox:fail(id, code, message) return self:set(id, "failed", { error_code = code, error = message }) end
function Outbox:retry(id, at, code, message)
  return self:set(id, "queued", { not_before = at, error_code = code, error = message })
end
function Outbox:skip(id, why) return self:set(id, "skipped", { error = why }) end
function Outbox:lose(id, why) return self:set(id, "unknown", { error = why }) end
function Outbox:defer(id, not_before, reserved)
  return self:set(id, "queued", { not_before = not_before, reserved = reserved and 1 or 0, attempts = -1 })
end
function Outbox:requeue(id, why, now)
  now = now or core.time()
  return self:set(id, "queued", { not_before = now, reserved = 0, error = why, now = now })
end

--- See `telua.store`'s `outbox:get`.
function Outbox:get(id_or_sid)
  local st, id = self.store, id_or_sid
  if type(id_or_sid) == "string" and id_or_sid:find("^[SM]M") then
    local r, err, code = st:cmd("HGET", self.prefix .. "ob:sid", id_or_sid)
    if not r then return nil, err, code end
    id = r
  end
  local r, err, code = st:cmd("HGETALL", self.prefix .. "ob:e:" .. tostring(id))
  if not r then return nil, err, code end
  if #r == 0 then return nil end
  local e = entry_of(r)
  e.id = tonumber(id)
  return e
end

-- Marks claimed stream entries as in flight at a stop (unknown, to be
-- reconciled): those this consumer held when it stopped (mode "own"), or
-- those any consumer has held longer than the visibility timeout, taken
-- over by this one (mode "idle", XAUTOCLAIM).
script("ob_reclaim", [[
local consumer, mode, idle, now, inflight = ARGV[2], ARGV[3], num(ARGV[4]), ARGV[5], ARGV[6]
local n = 0
for _, s in ipairs({ 'slot', 'single', 'bulk' }) do
  local stream = P .. 'ob:s:' .. s
  local msgs = {}
  if mode == 'own' then
    local pend = redis.call('XPENDING', stream, 'telua', '-', '+', 1000, consumer)
    for _, p in ipairs(pend) do
      local got = redis.call('XCLAIM', stream, 'telua', consumer, 0, p[1])
      for _, m in ipairs(got) do msgs[#msgs + 1] = m end
    end
  else
    local got = redis.call('XAUTOCLAIM', stream, 'telua', consumer, idle, '0-0', 'COUNT', 1000)
    for _, m in ipairs(got[2]) do msgs[#msgs + 1] = m end
  end
  for _, m in ipairs(msgs) do
    redis.call('XACK', stream, 'telua', m[1])
    redis.call('XDEL', stream, m[1])
    if m[2] then
      local id = m[2][2]
      local k = P .. 'ob:e:' .. id
      local e = redis.call('HMGET', k, 'state', 'campaign', 'msgid')
      if e[1] == 'sending' and e[3] == m[1] then
        count(e[2], 'sending', -1)
        count(e[2], 'unknown', 1)
        redis.call('HSET', k, 'state', 'unknown', 'error', inflight, 'updated_at', now)
        redis.call('HDEL', k, 'stream', 'msgid')
        if redis.call('SADD', P .. 'ob:unrec', id) == 1 and e[2] then
          redis.call('HINCRBY', P .. 'ob:c:' .. e[2], 'reconciling', 1)
        end
        n = n + 1
      end
    end
  end
end
return n
]])

--- After a stop or a crash of this host: what its consumer held becomes
-- `unknown` (in flight at a stop: reconciled before any resend).
-- @treturn number how many
function Outbox:reclaim()
  local st = self.store
  if not st.ready then
    local ok, err, code = st:setup()
    if not ok then return nil, err, code end
  end
  return st:script("ob_reclaim", { self.consumer or "telua", "own", 0, ("%.6f"):format(core.time()),
                                   IN_FLIGHT_AT_STOP })
end

--- Takes over what other hosts claimed and did not file within
-- `visibility` seconds (a host that died, or is cut off): marked in flight
-- at a stop, to be reconciled against Twilio by this host's sender.
-- @tparam number visibility seconds
-- @treturn number how many
function Outbox:takeover(visibility)
  return self.store:script("ob_reclaim", { self.consumer or "telua", "idle", floor(visibility * 1000),
                                           ("%.6f"):format(core.time()), IN_FLIGHT_AT_STOP })
end

--- See `telua.store`'s `outbox:unreconciled`.
function Outbox:unreconciled()
  local r, err, code = self.store:cmd("SMEMBERS", self.prefix .. "ob:unrec")
  if not r then return nil, err, code end
  local ids = {}
  for i, v in ipairs(r) do ids[i] = tonumber(v) end
  sort(ids)
  return ids
end

--- See `telua.store`'s `outbox:unfinal`.
function Outbox:unfinal(older_than, now, limit)
  now = now or core.time()
  local r = self.store:cmd("ZRANGEBYSCORE", self.prefix .. "ob:unfinal", ("%.6f"):format(now - 86400),
                           ("%.6f"):format(now - older_than), "LIMIT", 0, limit or 200)
  return r or {}
end

--- See `telua.store`'s `outbox:counts`.
function Outbox:counts()
  local r, err, code = self.store:cmd("HGETALL", self.prefix .. "ob:counts")
  if not r then return nil, err, code end
  local out = {}
  for k, v in pairs(hash_table(r)) do
    if tonumber(v) ~= 0 then out[k] = tonumber(v) end
  end
  return out
end

--- See `telua.store`'s `outbox:progress`.
function Outbox:progress(name)
  local r, err, code = self.store:cmd("HGETALL", self.prefix .. "ob:c:" .. name)
  if not r then return nil, err, code end
  local t = hash_table(r)
  local out = {}
  for _, k in ipairs{ "queued", "sending", "sent", "failed", "skipped", "unknown", "delivered", "undelivered",
                      "msg_failed", "segments", "reconciling" } do
    out[k] = tonumber(t[k]) or 0
  end
  out.first_sent, out.last_sent = tonumber(t.first_sent), tonumber(t.last_sent)
  return out
end

--- See `telua.store`'s `outbox:next_due` (now when entries wait in a stream).
function Outbox:next_due()
  local r = self.store:exec{ { "GET", self.prefix .. "ob:ready" },
                             { "ZRANGE", self.prefix .. "ob:delay", 0, 0, "WITHSCORES" } }
  if not r then return nil end
  if (tonumber(r[1]) or 0) > 0 then return core.time() end
  return r[2] and r[2][2] and tonumber(r[2][2]) or nil
end

return _M
