-- One spec, two backends: `each(name, body)` defines the describe block
-- `name [sqlite]` and `name [redis]`; body(B) gets B.name, B.open() (a
-- fresh, empty store) and B.reopen(store) (the same data through a new
-- connection). The Redis block starts Debian's redis-server on loopback
-- in its setup and stops it in its teardown.
local store_mod = require "telua.store"
local h = require "spec.helpers"
local busted = require "busted"
local describe, setup, teardown = busted.describe, busted.setup, busted.teardown

local _M = {}

function _M.each(name, body)
  describe(name .. " [sqlite]", function()
    local dir, n = nil, 0
    local B = { name = "sqlite" }
    setup(function() dir = h.tmpdir() end)
    teardown(function() os.execute("rm -rf " .. dir) end)
    function B.open()
      n = n + 1
      local s = assert(store_mod.open("sqlite:" .. dir .. "/s" .. n .. ".db"))
      s.spec_ = "sqlite:" .. dir .. "/s" .. n .. ".db"
      return s
    end
    function B.reopen(s)
      local t = assert(store_mod.open(s.spec_))
      t.spec_ = s.spec_
      return t
    end
    body(B)
  end)
  describe(name .. " [redis]", function()
    local srv
    local B = { name = "redis" }
    setup(function() srv = require("spec.helpers.redis").start() end)
    teardown(function() srv:destroy() end)
    function B.open()
      srv:flush()
      return assert(store_mod.open(srv.url))
    end
    function B.reopen() return assert(store_mod.open(srv.url)) end
    function B.server() return srv end
    body(B)
  end)
end

return _M
