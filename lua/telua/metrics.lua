--- The host's metrics, written from Lua: counters, gauges and histograms
-- that the telua host shows on its admin listener (`/metrics`, in the
-- Prometheus text format, and inside `/-/status`).
--
-- The families and their labels are the host's (src/host/metrics.c). Outside
-- the host (a plain Lua program, OpenResty) nothing is installed and every
-- call does nothing, so the library's code can record unconditionally.
--
--     local metrics = require "telua.metrics"
--     metrics.record("telua_sends_total", 1, "failed", 21211)
--
-- @module telua.metrics

local _M = { _VERSION = "0.1.0" }

local sink

--- Installs the function that records (the host does, once per Lua state).
-- @tparam function|nil fn `fn(family, value, label values...)`; nil: none
function _M.use(fn)
  if fn ~= nil and type(fn) ~= "function" then error("metrics.use: a function or nil", 2) end
  sink = fn
end

--- Whether a host is recording (calls are not free: build costly label
-- values only when this is true).
-- @treturn boolean
function _M.on() return sink ~= nil end

--- Records one value, by the family's type: a counter adds `value`, a
-- gauge is set to it, a histogram observes it (seconds for the `_seconds`
-- families).
-- @tparam string family e.g. `"telua_sends_total"`
-- @tparam number value
-- @param ... the label values in the family's order (strings or numbers;
--   nil is the empty value)
-- @raise (in the host) on a family it does not have
function _M.record(family, value, ...)
  if sink then sink(family, value, ...) end
end

return _M
