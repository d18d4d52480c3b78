--- telua: Twilio messaging and voice logic in Lua.
--
-- `require "telua"` gives the modules lazily: `telua.client`, `telua.e164`, `telua.twiml`, `telua.webhook`,
-- `telua.router`, `telua.flow`, `telua.store`, `telua.optout`,
-- `telua.template`, `telua.rules`, and `telua.core` (the C primitives).
-- A field that is not a telua module is nil; a module that exists but
-- fails to load (say `telua.core` built for another Lua) raises its own
-- error, so `telua.client` never hides it behind "attempt to index a nil
-- value".
--
-- @module telua

local require, rawset, pcall, type, find = require, rawset, pcall, type, string.find

local _M = { _VERSION = "0.1.0" }

return setmetatable(_M, {
  __index = function(t, name)
    if type(name) ~= "string" then return nil end
    local modname = "telua." .. name
    local ok, mod = pcall(require, modname)
    if not ok then
      -- "module 'telua.x' not found" about this very module: no such field
      if find(mod, "module '" .. modname .. "' not found", 1, true) then return nil end
      error(mod, 2)
    end
    rawset(t, name, mod)
    return mod
  end,
})
