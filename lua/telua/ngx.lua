--- Serving a rules folder from nginx (OpenResty, or Debian's lua-nginx-module).
--
-- The same router, flows, templates, opt-out handling and TwiML as the
-- telua host, on nginx's workers:
--
--     # nginx.conf (http {})
--     lua_package_path  "/usr/local/share/lua/5.1/?.lua;/usr/local/share/lua/5.1/?/init.lua;;";
--     lua_package_cpath "/usr/local/lib/lua/5.1/?.so;;";
--     init_by_lua_block {
--       assert(require("telua.ngx").init{
--         rules = "/etc/telua/rules", store = "sqlite:/var/lib/telua/telua.db",
--         public_url = "https://hooks.example.com",
--         account_sid = "AC...", auth_token = "...",   -- read them from a file here, not from env
--       })
--     }
--     init_worker_by_lua_block { require("telua.ngx").init_worker() }
--     server {
--       location = /-/status { content_by_lua_block { require("telua.ngx").status() } }
--       location /            { content_by_lua_block { require("telua.ngx").serve() } }
--     }
--
-- `serve` answers one webhook: the body read in memory (a body nginx put
-- in a file, over `client_body_buffer_size`, is a 413), the form decoded
-- by telua's own decoder (a key without `=` is a key with an empty value,
-- as the WHATWG form rules and Twilio's signature say), the
-- `X-Twilio-Signature` checked against `public_url` plus
-- `ngx.var.request_uri` exactly as received (a bad or missing one is a
-- 403, logged without secrets), then `router:handle`. A rule that raises
-- is logged with its `file:line` and answered with the fallback TwiML
-- (voice: an apology and a hang-up; messaging: an empty `<Response/>`;
-- status callbacks: 500), as the host does.
--
-- Hot reload: each worker looks at the rules folder every
-- `check_interval` seconds (default 0.5) and hashes its `*.lua` and
-- `lib/*.lua` files (SHA-1 of names and contents); when the hash changed,
-- it builds a new generation whole (`telua.rules.load`) and swaps it in
-- only when it loaded; a failed build keeps the old generation serving,
-- logs and reports `file:line: message`, and is not retried until the
-- content changes again. A request in flight keeps the generation it
-- started with. Generation numbers count per worker; the hash names the
-- content.
--
-- Sending: `req.send` writes to the store's outbox; the sender
-- (`telua.sender`: pacing, retries, reconciliation after a restart) runs
-- in worker 0 on an `ngx.timer`, through `telua.client` on cosockets.
-- Pacing is shared by every worker (`telua.gcra.share` in `init`), and by
-- every host with a Redis store.
--
-- What differs from the host: no CPU budget and no memory cap on rules
-- (LuaJIT does not run count hooks in compiled code: a rule that loops
-- holds its worker), and rules can call nginx's own API only through the
-- sandbox's allowlist (which does not include `ngx`) unless `unsafe_rules`.
--
-- @module telua.ngx

local ngx = rawget(_G, "ngx")
if not (ngx and ngx.socket and ngx.timer) then
  error("telua.ngx runs only inside nginx (lua-nginx-module: content_by_lua*, init_by_lua*)", 2)
end

local core = require "telua.core"
local cjson = require "cjson.safe"
local rules_mod = require "telua.rules"
local store_mod = require "telua.store"
local webhook = require "telua.webhook"
local gcra = require "telua.gcra"

local type, tostring, pairs, ipairs, xpcall, error, concat, sort, format =
  type, tostring, pairs, ipairs, xpcall, error, table.concat, table.sort, string.format
local traceback = debug.traceback

local _M = { _VERSION = "0.1.0" }

local FALLBACK_VOICE = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>We are sorry, an application ' ..
                       'error has occurred. Please try again later.</Say><Hangup/></Response>'
local FALLBACK_MESSAGING = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

local LEVELS = { debug = ngx.DEBUG, info = ngx.INFO, warn = ngx.WARN, error = ngx.ERR }

-- Options (init), then this worker's state (init_worker).
local conf
local W = { id = 0, gen = nil, generations = 0, last_error = nil, reloads = 0, failures = 0,
            started = nil, sender = nil }

local function log(level, msg)
  ngx.log(LEVELS[level] or ngx.NOTICE, "telua: ", msg)
end

-- ---------------------------------------------------------------------------
-- options

local function check(o)
  if type(o) ~= "table" then return nil, "telua.ngx.init: options must be a table" end
  if type(o.rules) ~= "string" or o.rules == "" then return nil, "telua.ngx.init: rules (a folder) is required" end
  local files, ferr = core.list_dir(o.rules, ".lua")
  if not files then return nil, "telua.ngx.init: rules folder " .. o.rules .. ": " .. tostring(ferr) end
  if type(o.public_url) ~= "string" or not o.public_url:find("^https?://[^/]+") then
    return nil, "telua.ngx.init: public_url must be the http(s) origin Twilio calls (https://host[:port][/base])"
  end
  if type(o.auth_token) ~= "string" or o.auth_token == "" then
    return nil, "telua.ngx.init: auth_token is required (webhook signatures are checked with it)"
  end
  if o.store ~= nil and type(o.store) ~= "string" then return nil, "telua.ngx.init: store must be a store spec" end
  local interval = o.check_interval or 0.5
  if type(interval) ~= "number" or not (interval > 0) or interval > 60 then -- luacheck: ignore 581 (NaN too)
    return nil, "telua.ngx.init: check_interval must be seconds in (0, 60]"
  end
  if o.sender ~= nil and type(o.sender) ~= "table" and o.sender ~= false then
    return nil, "telua.ngx.init: sender must be a table of options or false"
  end
  return true
end

--- Reads the options, in `init_by_lua` (nginx's master, before the workers fork).
-- @tparam table o `rules` (folder, required), `public_url` (the origin and
--   base path Twilio requests, e.g. `https://hooks.example.com`; the
--   request's `request_uri` is appended for the signature), `auth_token`
--   (required: webhook signatures), `account_sid` (needed to send),
--   `store` (default `sqlite:` + `rules/../telua.db`; `redis://...` to share
--   with other hosts), `check_interval` (seconds between looks at the
--   folder, default 0.5), `sender` (`false`: no sender in this nginx; or
--   `{ rates = "long_code=1,...", concurrency = 8, base_url = ...,
--   consumer = name, visibility = seconds }`), `fallback_voice`,
--   `fallback_messaging` (TwiML), `unsafe_rules` (the whole standard
--   library and `ngx` for the rules instead of the sandbox), `gcra_keys`
--   (capacity of the shared pacing store, default 65,536)
-- @return `true`, or `nil, message` (a missing option, an unreadable
--   folder, shared memory that could not be mapped); never holds the token
function _M.init(o)
  local ok, err = check(o)
  if not ok then return nil, err end
  local shared, serr = gcra.share(o.gcra_keys)
  if not shared then return nil, "telua.ngx.init: " .. serr end
  conf = {}
  for k, v in pairs(o) do conf[k] = v end
  conf.rules = o.rules:gsub("/+$", "")
  conf.public_url = o.public_url:gsub("/+$", "")
  conf.store = o.store or ("sqlite:" .. conf.rules .. "/../telua.db")
  conf.check_interval = o.check_interval or 0.5
  conf.fallback_voice = o.fallback_voice or FALLBACK_VOICE
  conf.fallback_messaging = o.fallback_messaging or FALLBACK_MESSAGING
  return true
end

-- ---------------------------------------------------------------------------
-- generations

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "\0missing" end
  local s = f:read("*a")
  f:close()
  return s
end

-- The folder's files and the hash of their names and contents.
local function folder(dir)
  local files = core.list_dir(dir, ".lua")
  if not files then return nil end
  local parts = {}
  for _, name in ipairs(files) do parts[#parts + 1] = name .. "\0" .. read(dir .. "/" .. name) end
  local lib = core.list_dir(dir .. "/lib", ".lua") or {}
  sort(lib)
  for _, name in ipairs(lib) do parts[#parts + 1] = "lib/" .. name .. "\0" .. read(dir .. "/lib/" .. name) end
  return files, core.sha1_hex(concat(parts, "\0"))
end

local function build(files, hash)
  local status = require "telua.status"
  local router, lerr = rules_mod.load(conf.rules, files, { store = W.store, log = log, sandbox = not conf.unsafe_rules })
  if not router then return nil, lerr end
  status.attach(router)
  W.generations = W.generations + 1
  return { router = router, id = W.generations, hash = hash, files = #files, loaded_at = ngx.now() }
end

-- Looks at the folder; loads a new generation when its content changed.
local function refresh()
  local files, hash = folder(conf.rules)
  if not files then
    if not (W.last_error and W.last_error.hash == "unreadable") then
      W.last_error = { hash = "unreadable", file = conf.rules, message = "the rules folder cannot be read",
                       at = ngx.now() }
      log("error", "rules reload failed: " .. conf.rules .. ": the folder cannot be read; keeping generation " ..
                   tostring(W.gen and W.gen.id))
    end
    return
  end
  if (W.gen and W.gen.hash == hash) then
    if W.last_error then -- a broken save reverted: the error no longer describes the folder
      log("info", "rules folder is back to generation " .. W.gen.id .. "; last reload error cleared")
      W.last_error = nil
    end
    return
  end
  if W.last_error and W.last_error.hash == hash then return end -- not retried until it changes
  local ok, gen, lerr = xpcall(build, function(e) return traceback(tostring(e), 2) end, files, hash)
  if ok and gen then
    local first = W.gen == nil
    W.gen, W.last_error = gen, nil
    if not first then W.reloads = W.reloads + 1 end
    log("info", format("rules generation %d loaded (%d files, sha1 %.12s)", gen.id, gen.files, hash))
    return
  end
  local e = ok and lerr or { file = conf.rules, message = tostring(gen) }
  W.failures = W.failures + 1
  W.last_error = { hash = hash, file = e.file, line = e.line, message = e.message, at = ngx.now() }
  log("error", "rules reload failed: " .. rules_mod.format_error(e) .. "; keeping generation " ..
               tostring(W.gen and W.gen.id or "none"))
end

local function watch(premature)
  if premature then return end
  local ok, err = xpcall(refresh, traceback)
  if not ok then log("error", "rules watcher: " .. tostring(err)) end
end

-- ---------------------------------------------------------------------------
-- the sender (worker 0)

local function run_sender(premature)
  if premature then return end
  local sender = require "telua.sender"
  local so = type(conf.sender) == "table" and conf.sender or {}
  local store, serr = store_mod.open(conf.store, { connect = false })
  if not store then
    log("error", "sender: cannot open the store: " .. tostring(serr))
    return
  end
  local client, cerr = require("telua.client").new{
    account_sid = conf.account_sid, auth_token = conf.auth_token, base_url = so.base_url or conf.base_url,
  }
  if not client then
    log("error", "sender: " .. cerr .. "; queued messages wait in the outbox")
    return
  end
  local rates, rerr = sender.parse_rates(so.rates)
  if not rates then
    log("error", "sender: " .. tostring(rerr))
    return
  end
  if store.backend == "redis" then
    local ok, err = store:setup()
    if not ok then log("warn", ("sender: %s (%s); sending starts when it answers"):format(tostring(err), store.path)) end
  end
  log("info", ("sender: sending to %s as %s, %d at once (worker %d)"):format(client.api_base,
      tostring(conf.account_sid), so.concurrency or 8, W.id))
  W.sender = "running"
  local ok, err = xpcall(sender.run, traceback, {
    store = store, client = client, rates = rates, concurrency = so.concurrency or 8, log = log,
    stopping = ngx.worker.exiting, sleep = ngx.sleep,
    consumer = so.consumer or ("nginx-" .. tostring(ngx.worker.pid())), visibility = so.visibility,
  })
  W.sender = ok and "stopped" or "failed"
  if not ok then
    log("error", "sender stopped: " .. tostring(err) .. "; restarting in 1 s")
    if not ngx.worker.exiting() then ngx.timer.at(1, run_sender) end
  end
  store:close()
end

-- The store's spec without a password (redis://user:secret@host -> redis://***@host).
local function shown_store()
  return (tostring(conf.store):gsub("^(%a+://)[^@/]*@", "%1***@"))
end

--- Starts this worker: opens its store connection, loads the rules, starts
-- the folder watcher and, in worker 0, the sender. In `init_worker_by_lua`.
-- @return `true`, or `nil, message` (init was not called, or the store cannot be opened)
function _M.init_worker()
  if not conf then return nil, "telua.ngx.init_worker: call telua.ngx.init{...} in init_by_lua first" end
  W.id = ngx.worker.id() or 0
  W.started = ngx.now()
  local store, err = store_mod.open(conf.store, { connect = false })
  if not store then
    log("error", "cannot open the store " .. shown_store() .. ": " .. tostring(err) ..
                 "; answering 503 until nginx is restarted with a store it can open")
    W.last_error = { file = shown_store(), message = "the store cannot be opened: " .. tostring(err), at = ngx.now() }
    return nil, err
  end
  W.store = store
  refresh()
  local ok, terr = ngx.timer.every(conf.check_interval, watch)
  if not ok then log("error", "cannot start the rules watcher: " .. tostring(terr)) end
  if conf.sender ~= false and W.id == 0 then
    local sok, serr = ngx.timer.at(0, run_sender)
    if not sok then log("error", "cannot start the sender: " .. tostring(serr)) end
  end
  return true
end

-- ---------------------------------------------------------------------------
-- requests

local function answer(status, ctype, body)
  ngx.status = status
  if ctype then ngx.header["Content-Type"] = ctype end
  ngx.print(body or "")
  return ngx.exit(ngx.OK) -- the status is set and the body sent: this ends the content phase

end

local function fallback(kind)
  if kind == "status" then return answer(500, "text/plain", "status handler failed\n") end
  return answer(200, "text/xml", kind == "messaging" and conf.fallback_messaging or conf.fallback_voice)
end

--- Answers the webhook of the current request (in `content_by_lua*`).
function _M.serve()
  if not conf then return answer(500, "text/plain", "telua.ngx.init was not called\n") end
  local gen = W.gen
  if not gen then
    return answer(503, "text/plain", "no rules generation loaded: " ..
                  (W.last_error and W.last_error.message or "see the error log") .. "\n")
  end
  local method = ngx.req.get_method()
  local uri = ngx.var.request_uri or "/"
  local raw_path, query = uri:match("^([^?]*)%??(.*)$")
  local headers = ngx.req.get_headers(100)
  local body, form = nil, {}
  if method == "POST" or method == "PUT" then
    ngx.req.read_body()
    body = ngx.req.get_body_data()
    if not body and ngx.req.get_body_file() then
      return answer(413, "text/plain", "request body too large\n")
    end
    body = body or ""
  end
  local ctype = headers["content-type"]
  if type(ctype) == "table" then ctype = ctype[1] end
  local json = type(ctype) == "string" and ctype:lower():find("^application/json") ~= nil
  if body and not json then
    local pairs_or_nil, ferr = webhook.parse_form(body)
    if not pairs_or_nil then
      log("warn", format("400 %s %s: %s", method, raw_path, tostring(ferr)))
      return answer(400, "text/plain", "malformed form body\n")
    end
    form = pairs_or_nil
  end
  -- the query's own fields are signed as part of the URL, the body's as params
  local sig = headers["x-twilio-signature"]
  if type(sig) == "table" then sig = sig[1] end
  local url = conf.public_url .. uri
  local ok, why = webhook.validate(conf.auth_token, url, form, sig, json and body or nil)
  if not ok then
    log("warn", format("403 %s %s: %s", method, raw_path:sub(1, 200), tostring(why)))
    return answer(403, "text/plain", "invalid Twilio signature\n")
  end
  -- (names come lower-case from get_headers; a repeated header joined with ", ", as the host gives it)
  for k, v in pairs(headers) do if type(v) == "table" then headers[k] = concat(v, ", ") end end
  local req = { method = method, path = ngx.var.uri, query = query, url = url, form = form,
                headers = headers, body = body }
  local ctx = {}
  local done, res = xpcall(gen.router.handle, traceback, gen.router, req, ctx)
  if not done then
    log("error", format("rule %s failed on %s %s (generation %d): %s", tostring(ctx.rule or "?"), method,
                        raw_path, gen.id, tostring(res)))
    return fallback(ctx.kind)
  end
  if type(res) ~= "table" or type(res.status) ~= "number" or (res.body ~= nil and type(res.body) ~= "string") then
    log("error", format("rule %s answered %s %s (generation %d) with a bad result; answering 500",
                        tostring(ctx.rule or "?"), method, raw_path, gen.id))
    return answer(500, "text/plain; charset=utf-8", "rule answered a bad result\n")
  end
  return answer(res.status, res.content_type, res.body)
end

--- This worker's state as a table: `worker`, `pid`, `generation` (`id`,
-- `hash`, `files`, `loaded_at`), `reloads`, `reload_failures`,
-- `last_error` (`file`, `line`, `message`, `at`, or nil), `store`,
-- `sender` (worker 0: `"running"`, `"stopped"`, `"failed"`), `uptime`
-- (seconds), `transport`, `pacing_shared`.
-- @treturn table
function _M.state()
  local g = W.gen
  return {
    version = _M._VERSION, worker = W.id, pid = ngx.worker.pid(),
    uptime = W.started and (ngx.now() - W.started) or 0,
    generation = g and { id = g.id, hash = g.hash, files = g.files, loaded_at = g.loaded_at } or nil,
    reloads = W.reloads, reload_failures = W.failures,
    last_error = W.last_error and { file = W.last_error.file, line = W.last_error.line,
                                    message = W.last_error.message, at = W.last_error.at } or nil,
    store = W.store and W.store.path or nil, sender = W.sender,
    transport = require("telua.http").transport(), pacing_shared = gcra.shared(),
  }
end

--- Answers `/-/status`-style JSON of the worker that took the request (in `content_by_lua*`).
function _M.status()
  local s = _M.state()
  if s.last_error and s.last_error.line then
    s.last_error.text = s.last_error.file .. ":" .. s.last_error.line .. ": " .. s.last_error.message
  end
  return answer(200, "application/json", (cjson.encode(s)) .. "\n")
end

--- Runs one look at the rules folder now (what the watcher does every
-- `check_interval`); for tests and for a deploy hook.
function _M.reload_now()
  if not conf then error("telua.ngx.reload_now: init was not called", 2) end
  refresh()
end

return _M
