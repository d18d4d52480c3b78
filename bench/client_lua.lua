-- telua.client creating messages against `telua sandbox` (bench/client_run.lua's
-- loop) over libcurl's multi interface with keep-alive.
-- usage: lua bench/client_lua.lua BASE_URL SID TOKEN N CONC
local core = require "telua.core"
local base, sid, token, n, conc = arg[1], arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5])
local client = assert(require("telua.client").new{ account_sid = sid, auth_token = token, base_url = base,
                                                   concurrency = conc })
local ok, failed, s = dofile("bench/client_run.lua")(client, n, conc, core.monotonic)
print(("telua.client %s (%s, concurrency %d): %d created, %d failed in %.2f s = %.0f messages/s")
  :format(require("telua.client")._VERSION, jit and jit.version or _VERSION, conc, ok, failed, s, ok / s))
