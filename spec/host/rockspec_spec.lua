-- `luarocks make` builds telua.core and installs lua/telua for Lua 5.4 and
-- for LuaJIT (luajit2's headers); both trees load.
local h = require "spec.helpers"

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo rc=$?"))
  local out = p:read("*a")
  p:close()
  return out
end

-- Debian keeps curl.h under the multiarch include directory
local CURL = "CURL_INCDIR=/usr/include/x86_64-linux-gnu"

describe("rockspec", function()
  local cases = {
    { name = "Lua 5.4", flags = "--lua-version=5.4 LUA_INCDIR=/usr/include/lua5.4 " .. CURL, lua = "lua5.4", v = "5.4" },
    { name = "LuaJIT", flags = "--lua-version=5.1 LUA_INCDIR=/usr/include/luajit-2.1 " .. CURL, lua = "luajit", v = "5.1" },
  }
  for _, c in ipairs(cases) do
    it("builds and loads under " .. c.name, function()
      local tree = h.tmpdir()
      -- build in a copy: luarocks make leaves objects and telua/core.so in
      -- the folder it runs in, and ./telua/core.so would shadow the build
      local copy = tree .. "/src"
      local out = run("mkdir -p " .. copy .. " && cp -r " .. h.root .. "/src " .. h.root .. "/lua " ..
                      h.root .. "/rockspec " .. copy .. " && cd " .. copy ..
                      " && luarocks make --deps-mode=none rockspec/telua-scm-1.rockspec --tree " .. tree .. " " .. c.flags)
      assert.matches("rc=0", out, 1, true)
      -- the tree's modules, then the system's C modules (lua-cjson comes from Debian)
      local env = string.format("LUA_PATH='%s/share/lua/%s/?.lua;%s/share/lua/%s/?/init.lua' LUA_CPATH='%s/lib/lua/%s/?.so;;'",
                                tree, c.v, tree, c.v, tree, c.v)
      out = run("cd /tmp && " .. env .. " " .. c.lua .. [[ -e 'local t = require "telua"
        local r = t.twiml.voice(); r:say("hi")
        local c = t.client.new{ account_sid = "AC" .. ("0"):rep(32), auth_token = "x", base_url = "http://127.0.0.1:1" }
        assert(require("telua.sandbox") and require("telua.sender"))
        print(t.core._VERSION, package.searchpath("telua.core", package.cpath), tostring(r), c.api_base)']])
      assert.matches("0.1.0\t" .. tree .. "/lib/lua/" .. c.v .. "/telua/core.so", out, 1, true)
      assert.matches("<Response><Say>hi</Say></Response>", out, 1, true)
      assert.matches("http://127.0.0.1:1", out, 1, true) -- telua.client is installed too
      os.execute("rm -rf " .. tree)
    end)
  end
end)
