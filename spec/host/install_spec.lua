-- Installing telua as a newcomer would: `make install` into a DESTDIR and
-- the installed binary run with the checkout hidden; the rock built with
-- plain `luarocks make` for Lua 5.4, 5.3 and 5.1 (loaded by LuaJIT); the
-- rockspec's module list against lua/telua; the command line's help.
local h = require "spec.helpers"
local socket = require "socket"

local ROOT = h.root
local BUILD = os.getenv("TELUA_BUILD") or (ROOT .. "/build")
local q, sh = h.quote, h.sh
local root = sh("id -u"):match("%d+") == "0"

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc, (out:gsub("rc=%d+%s*$", ""))
end

describe("make install", function()
  local dest

  setup(function()
    dest = h.tmpdir()
    local rc, out = run("make -C " .. q(ROOT) .. " --no-print-directory install BUILD=" .. q(BUILD) ..
                        " PREFIX=/usr/local DESTDIR=" .. q(dest))
    assert(rc == 0, out)
  end)
  teardown(function() os.execute("rm -rf " .. q(dest)) end)

  it("installs the executable, the library, its header and .pc, the Lua modules, telua.core and a unit", function()
    local want = {
      "/usr/local/bin/telua", "/usr/local/lib/libtelua.a", "/usr/local/lib/libtelua.so",
      "/usr/local/lib/libtelua.so.0", "/usr/local/include/telua.h", "/usr/local/lib/pkgconfig/telua.pc",
      "/usr/local/share/lua/5.4/telua/router.lua", "/usr/local/share/lua/5.4/telua/init.lua",
      "/usr/local/share/lua/5.4/telua/host/init.lua", "/usr/local/share/lua/5.4/telua/sender.lua",
      "/usr/local/lib/lua/5.4/telua/core.so", "/usr/local/lib/systemd/system/telua.service",
    }
    for _, f in ipairs(want) do assert(h.exists(dest .. f), f .. " was not installed") end
    assert.matches("^libtelua%.so%.0%.", sh("readlink " .. q(dest .. "/usr/local/lib/libtelua.so.0")))
    assert.matches("SONAME%s+libtelua%.so%.0\n", sh("objdump -p " .. q(dest .. "/usr/local/lib/libtelua.so.0")) .. "\n")
    -- only telua_* exported
    local syms = sh("nm -D --defined-only " .. q(dest .. "/usr/local/lib/libtelua.so.0") .. " | awk '{print $3}'")
    local n = 0
    for s in syms:gmatch("%S+") do
      n = n + 1
      assert.matches("^telua_", s)
    end
    assert.is_true(n >= 6)
    assert.matches("ExecStart=/usr/local/bin/telua serve", h.read_file(dest .. "/usr/local/lib/systemd/system/telua.service"))
    -- systemd reads the unit (pointed at the staged binary; systemd-analyze is in Debian's systemd)
    if sh("command -v systemd-analyze || true") ~= "" then
      local unit = dest .. "/telua.service"
      os.execute("sed 's|/usr/local/bin/telua|" .. dest .. "/usr/local/bin/telua|' " ..
                 q(dest .. "/usr/local/lib/systemd/system/telua.service") .. " > " .. q(unit))
      local rc, out = run("systemd-analyze verify " .. q(unit))
      assert.equal(0, rc, out)
    end
    local pc = sh("pkg-config --cflags --libs " .. q(dest .. "/usr/local/lib/pkgconfig/telua.pc"))
    assert.matches("%-I/usr/local/include", pc)
    assert.matches("%-I/usr/include/lua5%.4", pc)
    assert.matches("%-ltelua", pc)
    assert.matches("%-llua5%.4", pc)
  end)

  local it_root = root and it or pending
  it_root("the installed telua checks and serves the example rules with the checkout hidden", function()
    -- a mount namespace with an empty tmpfs over the checkout: nothing of
    -- it (modules, compiled-in paths) is reachable from the installed binary
    local work = h.tmpdir()
    assert(os.execute("cp -r " .. q(ROOT .. "/rules") .. " " .. q(work .. "/rules")))
    local bin = dest .. "/usr/local/bin/telua"
    -- a program built against the installed library, as an embedder builds it
    -- (its telua.pc with the prefix moved to the DESTDIR, as a relocated install would have it)
    os.execute("mkdir -p " .. q(work .. "/pc") .. " && sed 's|^prefix=.*|prefix=" .. dest .. "/usr/local|' " ..
               q(dest .. "/usr/local/lib/pkgconfig/telua.pc") .. " > " .. q(work .. "/pc/telua.pc"))
    local pc = "PKG_CONFIG_PATH=" .. q(work .. "/pc") .. " pkg-config"
    -- (a sanitizer build's library needs the program built with the sanitizers too)
    local san = sh("ldd " .. q(dest .. "/usr/local/lib/libtelua.so.0")):find("libasan", 1, true)
                and " -fsanitize=address,undefined" or ""
    local rc0, cc_out = run("cc -std=c99 -D_POSIX_C_SOURCE=200809L" .. san .. " -DLANG='\"installed: \"' -o " ..
                            q(work .. "/embed") ..
                            " " .. q(ROOT .. "/spec/c/embed_api.c") .. " $(" .. pc .. " --cflags --libs telua) -lpthread")
    assert(rc0 == 0, cc_out)
    local script = work .. "/run.sh"
    local f = assert(io.open(script, "wb"))
    f:write(([[
set -e
mount -t tmpfs none %s
test ! -e %s/lua/telua/router.lua
cd %s
%s check rules
TWILIO_AUTH_TOKEN=install-spec-token %s serve --rules rules --listen 127.0.0.1:0 --public-url https://x.example.com \
  --store sqlite:%s/t.db --admin-listen 127.0.0.1:0 > serve.out 2> serve.log &
pid=$!
i=0
while ! grep -q "listening on port" serve.out; do i=$((i+1)); [ $i -lt 100 ] || exit 9; sleep 0.05; done
port=$(sed -n 's/listening on port //p' serve.out)
curl -s -o /dev/null -w '%%{http_code}\n' http://127.0.0.1:$port/-/health
while ! grep -q "admin on port" serve.out; do i=$((i+1)); [ $i -lt 100 ] || exit 9; sleep 0.05; done
curl -s http://127.0.0.1:$(sed -n 's/admin on port //p' serve.out)/-/status
kill $pid
wait $pid || true
ASAN_OPTIONS=detect_leaks=0 LD_LIBRARY_PATH=%s ./embed
]]):format(q(ROOT), q(ROOT), q(work), q(bin), q(bin), q(work), q(dest .. "/usr/local/lib")))
    f:close()
    local rc, out = run("unshare -m sh " .. q(script))
    assert.equal(0, rc, out)
    assert.matches("rules in rules are ok", out)
    assert.matches("\n200\n", out)
    assert.matches('"generation":1', out)
    assert.matches("modules in " .. dest:gsub("%p", "%%%0") .. "/usr/local/share/lua/5%.4", h.read_file(work .. "/serve.log"))
    -- the library found the installed modules by its own place too
    assert.matches("ok %d+ %- installed: a good message is queued", out)
    assert.is_nil(out:find("not ok", 1, true), out)
    os.execute("rm -rf " .. q(work))
  end)
end)

describe("make run", function()
  it("needs no npm: the oracles are for make test only", function()
    local rc, out = run("make -C " .. q(ROOT) .. " --no-print-directory -n run BUILD=" .. q(BUILD))
    assert.equal(0, rc, out)
    assert.is_nil(out:find("npm", 1, true), out)
    assert.matches("tools/run%.sh", out)
  end)
end)

describe("the rock", function()
  local src

  setup(function()
    -- luarocks' builtin backend writes objects next to the sources: a copy
    src = h.tmpdir()
    assert(os.execute("cp -r " .. q(ROOT .. "/lua") .. " " .. q(ROOT .. "/src") .. " " .. q(ROOT .. "/rockspec") ..
                      " " .. q(src)))
  end)
  teardown(function() os.execute("rm -rf " .. q(src)) end)

  it("lists every file of lua/telua, the library, and nothing else (not the host's lua/telua/host)", function()
    local spec = h.read_file(ROOT .. "/rockspec/telua-scm-1.rockspec")
    local listed = {}
    for name, file in spec:gmatch('%["(telua[%w%.]*)"%]%s*=%s*"(lua/telua/[%w_/]+%.lua)"') do
      local want = file == "lua/telua/init.lua" and "telua" or file:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/", ".")
      assert.equal(want, name)
      listed[file] = true
    end
    local files = {}
    for f in sh("cd " .. q(ROOT) .. " && ls lua/telua/*.lua lua/telua/store/*.lua lua/telua/http/*.lua"):gmatch("%S+") do files[f] = true end
    assert.same(files, listed)
    assert.matches('"lua >= 5%.1, < 5%.5"', spec)
  end)

  for _, v in ipairs({ { "5.4", "lua5.4" }, { "5.3", "lua5.3" }, { "5.1", "luajit" } }) do
    local ver, interp = v[1], v[2]
    it("builds with luarocks make for Lua " .. ver .. " and every module loads under " .. interp, function()
      local tree = src .. "/tree" .. ver
      local rc, out = run("cd " .. q(src) .. " && luarocks make rockspec/telua-scm-1.rockspec --tree " .. q(tree) ..
                          " --lua-version=" .. ver .. " --deps-mode=none")
      assert(rc == 0, out)
      local mods = {}
      -- (the modules that run only inside nginx refuse to load elsewhere, saying so;
      -- spec/openresty loads them in nginx)
      local nginx_only = { ["telua.ngx"] = true, ["telua.http.cosocket"] = true }
      for f in sh("cd " .. q(ROOT) .. " && ls lua/telua/*.lua lua/telua/store/*.lua lua/telua/http/*.lua"):gmatch("lua/telua/([%w_/]+)%.lua") do
        local m = f == "init" and "telua" or ("telua." .. f:gsub("/", "."))
        if not nginx_only[m] then mods[#mods + 1] = m end
      end
      mods[#mods + 1] = "telua.core"
      local code = "for _, m in ipairs({" .. ("%q,"):rep(#mods):format(table.unpack(mods)) .. "}) do " ..
                   "local ok, e = pcall(require, m); if not ok then io.write('FAIL ', m, ': ', tostring(e), '\\n') end end " ..
                   "for _, m in ipairs({'telua.ngx', 'telua.http.cosocket'}) do local ok, e = pcall(require, m); " ..
                   "if ok or not tostring(e):find('inside nginx', 1, true) then io.write('FAIL ', m, ' outside nginx: ', " ..
                   "tostring(e), '\\n') end end " ..
                   "local t = require 'telua'; assert(t.client.new, 'telua.client'); " ..
                   "assert(require('telua.core').hmac_sha1 or true); io.write('loaded ', _VERSION, '\\n')"
      local env = "LUA_PATH=" .. q(tree .. "/share/lua/" .. ver .. "/?.lua;" .. tree .. "/share/lua/" .. ver ..
                  "/?/init.lua;;") .. " LUA_CPATH=" .. q(tree .. "/lib/lua/" .. ver .. "/?.so;;")
      local rc2, out2 = run("cd / && " .. env .. " " .. interp .. " -e " .. q(code))
      assert.equal(0, rc2, out2)
      assert.is_nil(out2:find("FAIL", 1, true), out2)
      assert.matches("loaded Lua " .. (ver == "5.1" and "5%.1" or ver:gsub("%.", "%%.")), out2)
      -- the core really is the tree's, not the checkout's build
      local rc3, where = run("cd / && " .. env .. " " .. interp .. " -e " ..
                             q("io.write(package.searchpath('telua.core', package.cpath))"))
      assert.equal(0, rc3)
      assert.equal(tree .. "/lib/lua/" .. ver .. "/telua/core.so", where)
    end)
  end

  it("require 'telua' reports the real error of a module that fails to load", function()
    local dir = h.tmpdir()
    os.execute("mkdir -p " .. q(dir .. "/telua"))
    local f = assert(io.open(dir .. "/telua/broken.lua", "wb"))
    f:write("error('broken on purpose: missing libfoo')\n")
    f:close()
    local rc, out = run("cd / && LUA_PATH=" .. q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;" .. dir .. "/?.lua;;") ..
                        " lua5.4 -e " .. q("local t = require 'telua'; assert(t.nosuch == nil); local _ = t.broken"))
    assert.are_not.equal(0, rc)
    assert.matches("broken on purpose: missing libfoo", out)
    os.execute("rm -rf " .. q(dir))
  end)
end)

describe("the command line", function()
  local telua = BUILD .. "/telua"
  local cmds = {
    { "serve", { "--rules", "--public-url", "--listen", "--store", "--workers", "--send-rates", "--unsafe-rules" } },
    { "check", { "--load-ms", "--unsafe-rules" } },
    { "campaign", { "--csv", "--template", "--from", "--messaging-service", "--rate", "--dry-run",
                    "--status-callback", "--wait-delivery", "--no-wait" } },
    { "sandbox", { "--listen", "--public", "--mps", "--delivery-ms", "--verify-ttl", "--digits", "--body" } },
    { "version", {} },
  }
  for _, c in ipairs(cmds) do
    it("telua " .. c[1] .. " --help and telua help " .. c[1] .. " print the usage on stdout and exit 0", function()
      for _, form in ipairs({ telua .. " " .. c[1] .. " --help", telua .. " help " .. c[1], telua .. " " .. c[1] .. " -h" }) do
        local rc, out = run(form .. " 2>/dev/null")
        assert.equal(0, rc, form)
        assert.matches("usage: telua", out)
        for _, opt in ipairs(c[2]) do assert.matches(opt:gsub("%-", "%%-"), out, 1, form .. " lists " .. opt) end
      end
    end)
  end
  it("telua --help lists every command; a bad option or command exits 2 with one line", function()
    local rc, out = run(telua .. " --help")
    assert.equal(0, rc)
    for _, c in ipairs(cmds) do assert.matches("\n  " .. c[1] .. " ", out) end
    for _, bad in ipairs({ "serve --bogus", "serve --workers many", "serve --rules", "check --nope x", "check",
                           "campaign --bogus", "sandbox --bogus", "sandbox inbound --bogus 1", "frobnicate",
                           "help frobnicate" }) do
      local errf = os.tmpname()
      local _, _, rc2 = os.execute(telua .. " " .. bad .. " >/dev/null 2>" .. errf)
      local out2 = h.read_file(errf)
      os.remove(errf)
      assert.equal(2, rc2, bad)
      assert.equal(1, select(2, out2:gsub("\n", "")), bad .. ": " .. out2)
    end
  end)
  it("telua sandbox refuses a listen address off loopback without --public", function()
    local rc, out = run("env TWILIO_ACCOUNT_SID=AC" .. ("0"):rep(32) .. " TWILIO_AUTH_TOKEN=t " .. telua ..
                        " sandbox --listen 0.0.0.0:0")
    assert.equal(2, rc)
    assert.matches("not a loopback address.*%-%-public", out)
    -- with --public it starts (stopped at once)
    local p = io.popen("exec env TWILIO_ACCOUNT_SID=AC" .. ("0"):rep(32) .. " TWILIO_AUTH_TOKEN=t " .. telua ..
                       " sandbox --listen 0.0.0.0:0 --public 2>&1 & echo $!; sleep 0.5; kill $! 2>/dev/null")
    local all = p:read("*a")
    p:close()
    assert.matches("port %d+", all)
    socket.sleep(0)
  end)
end)
