--- Glue between the C host and the library: loads one generation's router,
-- runs the sender thread, and gives the embedding API's telua_send.
--
-- Called by the host (src/host) only, never by rules; the host's Lua
-- lives in telua.host.* (this folder: `sender`, the outbox's sender;
-- `status`, the status callbacks' bookkeeping), apart from the library
-- the rock installs. Kept in Lua so the host stays a thin C layer.
--
-- @module telua.host

local metrics = require "telua.metrics"
local rules = require "telua.rules"
local status = require "telua.status"
local store_mod = require "telua.store"

local _M = { _VERSION = "0.1.0" }

--- Loads the rules and returns the request handler.
-- @tparam string dir the rules folder
-- @tparam table files rules file names, sorted
-- @tparam string store_spec `sqlite:FILE`, `memory` or a Redis URL
-- @tparam function log function(level, message)
-- @tparam[opt] table opts `unsafe = true`: the rules get the whole standard
--   library instead of the sandbox (`telua.rules`); `modules`: names of the
--   embedder's C modules (preloaded), which the sandbox lets rules require;
--   `on_event`: function(kind, fields) for the router's events; `metric`:
--   the host's recording function for `telua.metrics` (nil: none)
-- @return function(req, ctx) -> response table, or `nil, {file, line, message}`
function _M.load(dir, files, store_spec, log, opts)
  opts = opts or {}
  metrics.use(opts.metric)
  -- (Redis: reached at the first call, so a generation loads while it is down;
  -- the opt-out lookups of every webhook answered by the process's view)
  local store, err = store_mod.open(store_spec, { connect = false, optout_view = true })
  if not store then return nil, { file = store_spec, message = err } end
  local router, lerr = rules.load(dir, files, { store = store, log = log, sandbox = not opts.unsafe,
                                                modules = opts.modules, on_event = opts.on_event })
  if not router then
    store:close()
    return nil, lerr
  end
  status.attach(router) -- the message log and resends from status callbacks
  return function(req, ctx) return router:handle(req, ctx) end
end

--- The sender thread's body: opens its own store connection and client,
-- then runs `telua.sender` until the host stops.
-- @tparam table o `store` (spec), `account_sid`, `auth_token`, `base_url`,
--   `rates` (spec string), `concurrency`, `stopping` (function), `on_event`
--   (function(kind, fields) or nil), `consumer` (this host's name in a
--   shared outbox), `visibility` (seconds), `metric` (the host's recording
--   function for `telua.metrics`, or nil)
function _M.sender(o)
  metrics.use(o.metric)
  local core = require "telua.core"
  local sender = require "telua.sender"
  local log = debug.getregistry()["telua.host_log"]
  local store = assert(store_mod.open(o.store, { connect = false, optout_view = true }))
  if store.backend == "redis" then
    local ok, err = store:setup()
    if ok then log("info", ("sender: outbox on %s as consumer %s"):format(store.path, o.consumer))
    else log("warn", ("sender: %s (%s); sending starts when it answers"):format(tostring(err), store.path)) end
  end
  local rates = assert(sender.parse_rates(o.rates))
  sender.RECONCILE_GRACE = tonumber(os.getenv("TELUA_RECONCILE_GRACE")) or sender.RECONCILE_GRACE
  local client = assert(require("telua.client").new{
    account_sid = o.account_sid, auth_token = o.auth_token, base_url = o.base_url,
  })
  o.auth_token = nil
  log("info", ("sender: sending to %s as %s, %d at once"):format(client.api_base, o.account_sid, o.concurrency))
  sender.run{ store = store, client = client, rates = rates, concurrency = o.concurrency,
              log = log, stopping = o.stopping, sleep = core.sleep, on_event = o.on_event,
              consumer = o.consumer, visibility = o.visibility }
  store:close()
end

--- The embedding API's `telua_send`: opens its own store connection and
-- returns the queueing function (`telua.router.queue` on it).
-- @tparam table o `store` (spec), `region` (default region of numbers)
-- @treturn function(params) -> outbox id, or `nil, err` (`telua.client`'s error shape)
function _M.api(o)
  local router = require "telua.router"
  local log = debug.getregistry()["telua.host_log"]
  local store = assert(store_mod.open(o.store, { connect = false, optout_view = true }))
  return function(params)
    return router.queue(store, params, { region = o.region, log = log, where = "telua_send" })
  end
end

return _M
