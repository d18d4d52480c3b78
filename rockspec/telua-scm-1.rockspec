-- telua: Twilio messaging and voice logic in Lua (telua.core in C + lua/telua).
--
--   luarocks make rockspec/telua-scm-1.rockspec --tree DIR                        (Lua 5.4)
--   luarocks make rockspec/telua-scm-1.rockspec --tree DIR --lua-version=5.3
--   luarocks make rockspec/telua-scm-1.rockspec --tree DIR --lua-version=5.1      (LuaJIT, OpenResty)
--
-- OpenSSL, SQLite, libcurl and hiredis are found by their libraries (Debian keeps
-- curl's header in the multiarch folder, where the compiler looks by
-- itself). With lua-cjson from the system (Debian's lua-cjson) rather than
-- from a rocks server, add --deps-mode=none. The 5.1 build compiles
-- against Lua 5.1's headers (Debian's liblua5.1-0-dev), which LuaJIT loads.
-- The `telua` executable and libtelua come from `make install`.
rockspec_format = "3.0"
package = "telua"
version = "scm-1"
source = { url = "git+https://github.com/telua/telua.git" }
description = {
  summary = "Twilio webhooks, TwiML, REST client and signatures in Lua, with a fast C core",
  detailed = [[
telua.core: X-Twilio-Signature (HMAC-SHA1, as Twilio's helper libraries),
form decoding, E.164 with libphonenumber's metadata and time zones, local
time from the system's tzdata, SMS segments, GCRA,
an HTTP client on libcurl's multi interface, a small SQLite binding and a
Redis connection (hiredis's encoder and reply reader, TCP, Unix or TLS), in C
for Lua 5.4, 5.3 and LuaJIT. lua/telua: the Twilio REST client (Messages,
Calls, Verify), TwiML builders, webhook validation, a router with opt-out
handling, IVR flows, templates, a store with an outbox on SQLite or Redis,
and a local
Twilio-compatible sandbox.]],
  license = "MIT",
}
dependencies = { "lua >= 5.1, < 5.5", "lua-cjson >= 2.1" }
external_dependencies = {
  OPENSSL = { library = "crypto" },
  SQLITE = { library = "sqlite3" },
  CURL = { library = "curl" },
  HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
}
build = {
  type = "builtin",
  modules = {
    ["telua.core"] = {
      sources = { "src/core/form.c", "src/core/signature.c", "src/core/url.c", "src/core/xml.c",
                  "src/core/re.c", "src/core/e164.c", "src/core/e164_meta.c",
                  "src/core/segments.c", "src/core/segments_tables.c", "src/core/gcra.c",
                  "src/core/tz.c", "src/core/tz_meta.c",
                  "src/lua/telua_core.c", "src/lua/sqlite.c", "src/lua/http.c", "src/lua/redis.c" },
      libraries = { "ssl", "crypto", "sqlite3", "curl", "hiredis", "pthread" },
      incdirs = { "$(OPENSSL_INCDIR)", "$(SQLITE_INCDIR)", "$(CURL_INCDIR)", "$(HIREDIS_INCDIR)" },
      libdirs = { "$(OPENSSL_LIBDIR)", "$(SQLITE_LIBDIR)", "$(CURL_LIBDIR)", "$(HIREDIS_LIBDIR)" },
      defines = { "_GNU_SOURCE" },
    },
    -- every file of lua/telua, lua/telua/store and lua/telua/http, the library (spec/host/install_spec.lua checks the list);
    -- not lua/telua/host/, the host's own Lua, which `make install` installs with the host
    ["telua.campaign"] = "lua/telua/campaign.lua",
    ["telua.client"] = "lua/telua/client.lua",
    ["telua.e164"] = "lua/telua/e164.lua",
    ["telua.flow"] = "lua/telua/flow.lua",
    ["telua.gcra"] = "lua/telua/gcra.lua",
    ["telua.heap"] = "lua/telua/heap.lua",
    ["telua.http"] = "lua/telua/http.lua",
    ["telua.http.cosocket"] = "lua/telua/http/cosocket.lua",
    ["telua"] = "lua/telua/init.lua",
    ["telua.optout"] = "lua/telua/optout.lua",
    ["telua.quiet"] = "lua/telua/quiet.lua",
    ["telua.fallback"] = "lua/telua/fallback.lua",
    ["telua.ngx"] = "lua/telua/ngx.lua",
    ["telua.router"] = "lua/telua/router.lua",
    ["telua.rules"] = "lua/telua/rules.lua",
    ["telua.sandbox"] = "lua/telua/sandbox.lua",
    ["telua.segments"] = "lua/telua/segments.lua",
    ["telua.sender"] = "lua/telua/sender.lua",
    ["telua.status"] = "lua/telua/status.lua",
    ["telua.metrics"] = "lua/telua/metrics.lua",
    ["telua.lint"] = "lua/telua/lint.lua",
    ["telua.store"] = "lua/telua/store.lua",
    ["telua.store.redis"] = "lua/telua/store/redis.lua",
    ["telua.template"] = "lua/telua/template.lua",
    ["telua.templates"] = "lua/telua/templates.lua",
    ["telua.twiml"] = "lua/telua/twiml.lua",
    ["telua.verify"] = "lua/telua/verify.lua",
    ["telua.webhook"] = "lua/telua/webhook.lua",
  },
}
