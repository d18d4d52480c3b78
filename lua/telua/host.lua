--- Glue between the C host and the rules: loads one generation's router.
--
-- Called by the host once per worker state of each generation, never by
-- rules. Kept in Lua so the host stays a thin C layer.
--
-- @module telua.host

local rules = require "telua.rules"
local store_mod = require "telua.store"

local _M = { _VERSION = "0.1.0" }

--- Loads the rules and returns the request handler.
-- @tparam string dir the rules folder
-- @tparam table files rules file names, sorted
-- @tparam string store_spec `sqlite:FILE` or `memory`
-- @tparam function log function(level, message)
-- @tparam[opt] table opts `unsafe = true`: the rules get the whole standard
--   library instead of the sandbox (`telua.rules`)
-- @return function(req, ctx) -> response table, or `nil, {file, line, message}`
function _M.load(dir, files, store_spec, log, opts)
  local store, err = store_mod.open(store_spec)
  if not store then return nil, { file = store_spec, message = err } end
  local router, lerr = rules.load(dir, files, { store = store, log = log,
                                                sandbox = not (opts and opts.unsafe) })
  if not router then
    store:close()
    return nil, lerr
  end
  return function(req, ctx) return router:handle(req, ctx) end
end

--- The sender thread's body: opens its own store connection and client,
-- then runs `telua.sender` until the host stops.
-- @tparam table o `store` (spec), `account_sid`, `auth_token`, `base_url`,
--   `rates` (spec string), `concurrency`, `stopping` (function)
function _M.sender(o)
  local core = require "telua.core"
  local sender = require "telua.sender"
  local log = debug.getregistry()["telua.host_log"]
  local store = assert(store_mod.open(o.store))
  local rates = assert(sender.parse_rates(o.rates))
  sender.RECONCILE_GRACE = tonumber(os.getenv("TELUA_RECONCILE_GRACE")) or sender.RECONCILE_GRACE
  local client = require("telua.client").new{
    account_sid = o.account_sid, auth_token = o.auth_token, base_url = o.base_url,
  }
  o.auth_token = nil
  log("info", ("sender: sending to %s as %s, %d at once"):format(client.api_base, o.account_sid, o.concurrency))
  sender.run{ store = store, client = client, rates = rates, concurrency = o.concurrency,
              log = log, stopping = o.stopping, sleep = core.sleep }
  store:close()
end

return _M
