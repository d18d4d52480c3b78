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
-- @return function(req, ctx) -> response table, or `nil, {file, line, message}`
function _M.load(dir, files, store_spec, log)
  local store, err = store_mod.open(store_spec)
  if not store then return nil, { file = store_spec, message = err } end
  local router, lerr = rules.load(dir, files, { store = store, log = log })
  if not router then
    store:close()
    return nil, lerr
  end
  return function(req, ctx) return router:handle(req, ctx) end
end

return _M
