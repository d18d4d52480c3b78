-- telua.http against an nginx the spec starts on loopback (plain HTTP and
-- HTTPS with HTTP/2, a self-signed certificate made here with openssl).
local http = require "telua.http"
local socket = require "socket"
local h = require "spec.helpers"

local nginx = require "spec.helpers.nginx"

local SERVER = [[
    listen 127.0.0.1:@TLSPORT@ ssl http2;
    ssl_certificate @DIR@/cert.pem;
    ssl_certificate_key @DIR@/key.pem;
]] .. nginx.PEER_LOCATIONS

describe("telua.http", function()
  local srv, dir, tls, base, cafile
  local free_port = h.free_port
  setup(function()
    dir = h.tmpdir()
    tls = free_port()
    assert(os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost " ..
      "-addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1"):format(dir, dir)))
    srv = nginx.start{ server = (SERVER:gsub("@DIR@", dir):gsub("@TLSPORT@", tostring(tls))) }
    base, cafile = srv.base, dir .. "/cert.pem"
  end)
  teardown(function()
    if srv then srv:clean_up() end
    os.execute("rm -rf " .. dir)
  end)

  it("sends method, headers, body and Basic auth, and reads status, headers and body", function()
    local res = assert(http.request{ url = base .. "/echo", method = "POST", body = "a=1&b=2",
      headers = { ["X-Test"] = "yes", ["Content-Type"] = "application/x-www-form-urlencoded" },
      user = "AC123", password = "secret" })
    assert.are.equal(200, res.status)
    assert.are.equal("POST|a=1&b=2|yes|AC123", res.body)
    assert.are.equal("a=1, b=2", res.headers["set-cookie"]) -- repeated headers joined
    assert.are.equal("1.1", res.http_version)
  end)

  it("keeps the connection alive between calls", function()
    local a = assert(http.request{ url = base .. "/echo" })
    local b = assert(http.request{ url = base .. "/echo" })
    assert.are.equal(a.headers["x-conn"], b.headers["x-conn"])
  end)

  it("answers 5xx as a response, with its headers", function()
    local res = assert(http.request{ url = base .. "/busy" })
    assert.are.equal(503, res.status)
    assert.are.equal("2", res.headers["retry-after"])
  end)

  it("times out, and refuses a closed port, as error values", function()
    assert.are.same({ nil, "timeout" }, { (function(r, _, code) return r, code end)(
      http.request{ url = base .. "/slow", timeout = 0.1 }) })
    local r, msg, code = http.request{ url = "http://127.0.0.1:" .. free_port() .. "/x?token=SECRET" }
    assert.is_nil(r)
    assert.are.equal("connect", code)
    assert.is_nil(msg:find("SECRET", 1, true)) -- no URL query in messages
  end)

  it("verifies TLS: a self-signed peer fails, and passes with its CA; HTTP/2 where offered", function()
    local r, _, code = http.request{ url = "https://127.0.0.1:" .. tls .. "/echo" }
    assert.is_nil(r)
    assert.are.equal("tls", code)
    local res = assert(http.request{ url = "https://127.0.0.1:" .. tls .. "/echo", cainfo = cafile })
    assert.are.equal(200, res.status)
    assert.are.equal("2", res.http_version)
  end)

  it("runs a batch at once: 20 slow requests take about one request's time", function()
    local list = {}
    for i = 1, 20 do list[i] = { url = base .. "/slow" } end
    list[21] = { url = base .. "/slow", timeout = 0.05 }
    local t0 = socket.gettime()
    local out = http.batch(list)
    local took = socket.gettime() - t0
    assert.are.equal(21, #out)
    for i = 1, 20 do assert.are.equal("slow", out[i].body) end
    assert.are.equal("timeout", out[21].code)
    assert.is_true(took < 3, "batch took " .. took .. " s") -- one by one: 6 s
  end)

  it("refuses malformed options before sending anything", function()
    assert.has_error(function() http.request{ url = "ftp://x" } end, "http: url must be an http:// or https:// URL")
    assert.has_error(function() http.request{ url = base, headers = { ["X-A"] = "a\r\nInjected: 1" } } end)
    assert.has_error(function() http.request{ url = base, timeout = 0 } end, "http: timeout must be seconds > 0")
    assert.has_error(function() http.batch{ { url = base }, { url = "nope" } } end)
  end)
end)
