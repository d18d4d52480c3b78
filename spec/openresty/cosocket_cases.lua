-- The cases of spec/openresty/http_spec.lua, run inside nginx (a location
-- calls run(name) and answers the result as JSON): telua.http over
-- cosockets, and telua.client on it.
local cjson = require "cjson"
local http = require "telua.http"

local _M = {}
local C = {}

local function base() return "http://127.0.0.1:" .. ngx.var.server_port end

local function call(opts)
  local res, msg, code = http.request(opts)
  return { res = res, msg = msg, code = code }
end

function C.basic()
  local r = call{ url = base() .. "/echo", method = "POST", body = "a=1&b=2",
                  headers = { ["X-Test"] = "yes", ["Content-Type"] = "application/x-www-form-urlencoded" },
                  user = "AC123", password = "secret" }
  return { transport = http.transport(), status = r.res.status, body = r.res.body,
           cookie = r.res.headers["set-cookie"], version = r.res.http_version }
end

function C.keepalive()
  local a = http.request{ url = base() .. "/echo" }
  local b = http.request{ url = base() .. "/echo" }
  return { a = a.headers["x-conn"], b = b.headers["x-conn"] }
end

function C.busy()
  local r = http.request{ url = base() .. "/busy" }
  return { status = r.status, retry_after = r.headers["retry-after"] }
end

function C.errors()
  local t = call{ url = base() .. "/slow", timeout = 0.1 }
  local c = call{ url = "http://127.0.0.1:" .. ngx.var.arg_closed .. "/x?token=SECRET" }
  return { timeout_code = t.code, connect_code = c.code, connect_msg = c.msg }
end

function C.tls()
  local bad = call{ url = "https://127.0.0.1:" .. ngx.var.arg_bad .. "/echo" }
  local good = call{ url = "https://127.0.0.1:" .. ngx.var.arg_good .. "/echo", method = "POST", body = "x" }
  return { bad_code = bad.code, bad_msg = bad.msg, good_status = good.res and good.res.status,
           good_body = good.res and good.res.body, good_err = good.msg }
end

function C.chunked()
  local r = http.request{ url = base() .. "/chunked" }
  return { body = r.body, te = r.headers["transfer-encoding"] }
end

function C.close_delimited()
  local r = http.request{ url = base() .. "/close" }
  return { body = r.body, status = r.status }
end

function C.batch()
  local list = {}
  for i = 1, 20 do list[i] = { url = base() .. "/slow" } end
  list[21] = { url = base() .. "/slow", timeout = 0.05 }
  ngx.update_time()
  local t0 = ngx.now()
  local out = http.batch(list)
  ngx.update_time()
  local bodies = 0
  for i = 1, 20 do if out[i].body == "slow" then bodies = bodies + 1 end end
  return { n = #out, bodies = bodies, last = out[21].code, took = ngx.now() - t0 }
end

function C.malformed()
  local msgs = {}
  for _, o in ipairs({ { url = "ftp://x" }, { url = base(), headers = { ["X-A"] = "a\r\nInjected: 1" } },
                       { url = base(), timeout = 0 } }) do
    local ok, e = pcall(http.request, o)
    msgs[#msgs + 1] = ok and "no error" or tostring(e)
  end
  return { msgs = msgs }
end

function C.phase()
  return { init_worker = ngx.shared.results:get("init_worker_error") }
end

function C.sleep()
  ngx.update_time()
  local t0 = ngx.now()
  http.sleep(0.2)
  ngx.update_time()
  return { took = ngx.now() - t0 }
end

-- telua.client on cosockets against a fake Twilio on this nginx
function C.client()
  local client_mod = require "telua.client"
  local none, why = client_mod.new{}
  local c = assert(client_mod.new{ account_sid = "AC" .. ("0"):rep(32), auth_token = "tok", base_url = base(),
                                   max_retries = 0 })
  local m, err = c.messages.create{ to = "+14155550100", from = "+15005550006", body = "hi" }
  return { none = none == nil, why = why, m = m ~= nil, code = err and err.code, text = err and tostring(err),
           integer = err and math.type and math.type(err.code) or "n/a" }
end

-- telua.client on cosockets against `telua sandbox` (port in ?sb=, credentials in ?sid= and ?token=)
local function sandbox_client()
  local client_mod = require "telua.client"
  return assert(client_mod.new{ account_sid = ngx.var.arg_sid, auth_token = ngx.var.arg_token,
                                base_url = "http://127.0.0.1:" .. ngx.var.arg_sb, default_region = "US",
                                retry_base = 0.01, retry_cap = 0.05 })
end

function C.sandbox()
  local c = sandbox_client()
  local m = assert(c.messages.create{ to = "(415) 555-2671", from = "+15005550006", body = "from nginx" })
  local f = assert(c.messages.fetch(m.sid))
  local list = assert(c.messages.list{ to = "+14155552671" })
  local listed = false
  for _, x in ipairs(list) do if x.sid == m.sid then listed = true end end
  local bad, err = c.messages.create{ to = "+15005550001", from = "+15005550006", body = "x" }
  return { sid = m.sid, to = m.to, status = m.status, fetched = f.sid, body = f.body, listed = listed,
           bad = bad ~= nil, code = err and err.code, http = err and err.status }
end

function C.retry()
  local c = sandbox_client()
  ngx.update_time()
  local t0 = ngx.now()
  local m, err = c.messages.create{ to = "+14155552671", from = "+15005550006", body = "after 429" }
  ngx.update_time()
  return { ok = m ~= nil, err = err and tostring(err), took = ngx.now() - t0 }
end

function _M.run(name)
  local fn = C[name]
  if not fn then ngx.exit(404) end
  ngx.header["Content-Type"] = "application/json"
  ngx.print(cjson.encode(fn()))
end

return _M
