-- luacheck settings for `make lint` (run by `make test`).
-- The modules run on Lua 5.4, 5.3 and LuaJIT: "max" knows every global of them.
std = "max"
max_line_length = 150
self = false -- a method need not use self

files["spec"] = {
  std = "+busted",
  max_line_length = false, -- expected TwiML and JSON from the oracles, kept whole on one line
  unused_args = false,     -- handlers given as fixtures ignore their request
}
files["bench/wrk_post.lua"] = { globals = { "wrk" } } -- wrk's script API
-- the lint fixture holds on purpose what `telua check` must find
exclude_files = { "spec/oracle/node_modules", "build", "spec/fixtures/lint" }
-- code that runs inside nginx: lua-nginx-module's ngx API
files["spec/openresty/cosocket_cases.lua"] = { std = "max+ngx_lua+busted" }
