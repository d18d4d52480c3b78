--- telua: Twilio messaging and voice logic in Lua.
--
-- `require "telua"` gives the modules lazily: `telua.client`, `telua.e164`, `telua.twiml`, `telua.webhook`,
-- `telua.router`, `telua.flow`, `telua.store`, `telua.optout`,
-- `telua.template`, `telua.rules`, and `telua.core` (the C primitives).
--
-- @module telua

local require, rawset = require, rawset

local _M = { _VERSION = "0.1.0" }

return setmetatable(_M, {
  __index = function(t, name)
    local ok, mod = pcall(require, "telua." .. name)
    if not ok then return nil end
    rawset(t, name, mod)
    return mod
  end,
})
