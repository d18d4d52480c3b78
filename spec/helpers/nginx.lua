-- A real nginx for the OpenResty specs: Debian's nginx-light with
-- libnginx-mod-http-lua and lua-resty-core, started by the spec on a free
-- loopback port in a folder of its own, with this checkout's Lua modules
-- and telua.core built for LuaJIT, and stopped by the spec.
--
--     local ngx = require("spec.helpers.nginx").start{
--       workers = 2, http = "lua_shared_dict d 1m;", init = "...", init_worker = "...",
--       server = "location / { content_by_lua_block { ngx.say('hi') } }",
--     }
--     local status, body = ngx:request("GET", "/")
--     ngx:restart(); ngx:stop()
local h = require "spec.helpers"
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"

local _M = {}
local Nginx = {}
Nginx.__index = Nginx

local BUILD = os.getenv("TELUA_BUILD") or (h.root .. "/build")
local q = h.quote

local CONF = [[
load_module /usr/share/nginx/modules/ndk_http_module.so;
load_module /usr/share/nginx/modules/ngx_http_lua_module.so;
worker_processes @WORKERS@;
daemon on;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log info;
events { worker_connections 1024; }
@MAIN@
http {
  access_log off;
  client_body_temp_path @DIR@/body;
  proxy_temp_path @DIR@/proxy;
  fastcgi_temp_path @DIR@/fastcgi;
  uwsgi_temp_path @DIR@/uwsgi;
  scgi_temp_path @DIR@/scgi;
  lua_package_path "@ROOT@/lua/?.lua;@ROOT@/lua/?/init.lua;@ROOT@/?.lua;;";
  lua_package_cpath "@BUILD@/luajit/?.so;;";
  @HTTP@
  init_by_lua_block { @INIT@ }
  init_worker_by_lua_block { @INIT_WORKER@ }
  server {
    listen 127.0.0.1:@PORT@ @LISTEN@;
    @SERVER@
  }
}
]]

local function fill(t, vars)
  return (t:gsub("@([%u_]+)@", function(k) return vars[k] or "" end))
end

local function listening(port)
  local c = socket.tcp()
  c:settimeout(0.2)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok ~= nil
end

--- Starts nginx. opts: `workers` (default 1), `main` (main-context lines,
-- e.g. `env X;`), `http` (http-context lines), `init`, `init_worker` (Lua),
-- `server` (the server block's lines), `port` (default: a free one),
-- `reuseport` (the kernel spreads connections over the workers).
function _M.start(opts)
  local self = setmetatable({ opts = opts, dir = h.tmpdir(), port = opts.port or h.free_port() }, Nginx)
  self.base = "http://127.0.0.1:" .. self.port
  local f = assert(io.open(self.dir .. "/nginx.conf", "w"))
  f:write(fill(CONF, { WORKERS = tostring(opts.workers or 1), DIR = self.dir, ROOT = h.root, BUILD = BUILD,
                       MAIN = opts.main, HTTP = opts.http, INIT = opts.init, INIT_WORKER = opts.init_worker,
                       SERVER = opts.server, PORT = tostring(self.port),
                       LISTEN = opts.reuseport and "reuseport" or "" }))
  f:close()
  return self:start_again()
end

function Nginx:start_again()
  assert(os.execute(("nginx -p %s -c %s/nginx.conf 2>%s/start.log"):format(q(self.dir), q(self.dir), q(self.dir))),
         "nginx did not start: " .. h.read_file(self.dir .. "/start.log") .. (h.read_file(self.dir .. "/error.log") or ""))
  for _ = 1, 200 do
    if listening(self.port) then
      self.pid = (h.read_file(self.dir .. "/nginx.pid") or ""):match("%d+")
      return self
    end
    socket.sleep(0.025)
  end
  error("nginx did not listen: " .. (h.read_file(self.dir .. "/error.log") or ""))
end

--- Stops nginx (TERM: fast shutdown) and waits until its master is gone.
function Nginx:stop()
  if not self.pid then return end
  os.execute("kill " .. self.pid .. " 2>/dev/null")
  for _ = 1, 400 do
    if os.execute("kill -0 " .. self.pid .. " 2>/dev/null") ~= true then break end
    socket.sleep(0.025)
  end
  self.pid = nil
end

function Nginx:restart()
  self:stop()
  return self:start_again()
end

--- Stops nginx and removes its folder.
function Nginx:clean_up()
  self:stop()
  os.execute("rm -rf " .. q(self.dir))
end

function Nginx:error_log() return h.read_file(self.dir .. "/error.log") or "" end

--- The pids of the worker processes (children of the master).
function Nginx:workers()
  local out = {}
  for pid in h.sh("pgrep -P " .. self.pid):gmatch("%d+") do out[#out + 1] = pid end
  return out
end

--- One request: status, body, headers.
function Nginx:request(method, target, body, headers)
  local chunks = {}
  headers = headers or {}
  if body then headers["content-length"] = tostring(#body) end
  local _, code, resp_headers = http.request{
    url = self.base .. target, method = method, headers = headers,
    source = body and ltn12.source.string(body) or nil, sink = ltn12.sink.table(chunks),
  }
  return code, table.concat(chunks), resp_headers
end

--- The peer both HTTP transports are tested against (spec/http_spec.lua for
-- libcurl, spec/openresty/http_spec.lua for cosockets): a server block's
-- locations that echo a request, answer slowly, and answer 503 with Retry-After.
_M.PEER_LOCATIONS = [[
    keepalive_requests 1000;
    location /echo {
      content_by_lua_block {
        ngx.req.read_body()
        ngx.header["X-Conn"] = ngx.var.connection
        ngx.header["Set-Cookie"] = { "a=1", "b=2" }
        ngx.print(ngx.req.get_method(), "|", ngx.req.get_body_data() or "", "|",
                  ngx.var.http_x_test or "", "|", ngx.var.remote_user or "")
      }
    }
    location /slow { content_by_lua_block { ngx.sleep(0.3) ngx.print("slow") } }
    location /busy { content_by_lua_block { ngx.header["Retry-After"] = "2" ngx.exit(503) } }
]]

_M.Nginx = Nginx -- (its request method, for an nginx a spec started itself)
return _M
