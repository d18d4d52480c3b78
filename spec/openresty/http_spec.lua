-- telua.http and telua.client inside a real nginx (Debian's nginx-light,
-- lua-nginx-module, lua-resty-core): the cosocket transport, with the same
-- answers and error values as the libcurl one (spec/http_spec.lua), TLS
-- verified against lua_ssl_trusted_certificate, and the phases without
-- cosockets refused with a clear error.
local h = require "spec.helpers"
local nginx = require "spec.helpers.nginx"
local cjson = require "cjson"

local q = h.quote

-- A CA of the spec's own, a server certificate it signed (127.0.0.1), and
-- a self-signed one it did not.
local function certs(dir)
  local cmds = {
    "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=telua-spec-ca -keyout ca.key -out ca.pem",
    "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout good.key -out good.csr",
    "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext",
    "openssl x509 -req -in good.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out good.pem",
    "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 " ..
      "-keyout bad.key -out bad.pem",
  }
  for _, c in ipairs(cmds) do assert(os.execute("cd " .. q(dir) .. " && " .. c .. " >/dev/null 2>&1"), c) end
end

describe("telua.http inside nginx (cosockets)", function()
  local srv, dir, good, bad, closed
  setup(function()
    dir = h.tmpdir()
    certs(dir)
    good, bad, closed = h.free_port(), h.free_port(), h.free_port()
    srv = nginx.start{
      http = ([[
        lua_shared_dict results 1m;
        lua_ssl_trusted_certificate %s/ca.pem;
        lua_ssl_verify_depth 2;
        server {
          listen 127.0.0.1:%d ssl;
          ssl_certificate %s/good.pem; ssl_certificate_key %s/good.key;
          location /echo { content_by_lua_block { ngx.req.read_body() ngx.print("tls|", ngx.req.get_body_data() or "") } }
        }
        server {
          listen 127.0.0.1:%d ssl;
          ssl_certificate %s/bad.pem; ssl_certificate_key %s/bad.key;
          location / { return 200 "untrusted"; }
        }
      ]]):format(dir, good, dir, dir, bad, dir, dir),
      init_worker = [[
        local ok, err = pcall(require("telua.http").request, { url = "http://127.0.0.1:1/" })
        ngx.shared.results:set("init_worker_error", ok and "no error" or tostring(err))
      ]],
      server = nginx.PEER_LOCATIONS .. [[
        location /chunked { content_by_lua_block { for i = 1, 5 do ngx.print("part", i, ";") ngx.flush(true) end } }
        location /close {
          chunked_transfer_encoding off;
          content_by_lua_block { ngx.header["Connection"] = "close" ngx.print("to the end") ngx.flush(true) ngx.print("!") }
        }
        location ~ ^/2010-04-01/Accounts/[^/]+/Messages.json$ {
          content_by_lua_block {
            ngx.status = 400
            ngx.header["Content-Type"] = "application/json"
            ngx.print('{"code": 21211, "message": "The \'To\' number is not a valid phone number.", "status": 400}')
          }
        }
        location ~ ^/t/(\w+)$ { content_by_lua_block { require("spec.openresty.cosocket_cases").run(ngx.var[1]) } }
      ]],
    }
  end)
  teardown(function()
    if srv then srv:clean_up() end
    os.execute("rm -rf " .. q(dir))
  end)

  local function case(name, args)
    local status, body = srv:request("GET", "/t/" .. name .. (args or ""))
    assert.are.equal(200, status, body .. "\n" .. srv:error_log():sub(-2000))
    return cjson.decode(body)
  end

  it("sends method, headers, body and Basic auth, and reads status, headers and body", function()
    local r = case("basic")
    assert.are.equal("cosocket", r.transport)
    assert.are.equal(200, r.status)
    assert.are.equal("POST|a=1&b=2|yes|AC123", r.body)
    assert.are.equal("a=1, b=2", r.cookie) -- repeated headers joined, as libcurl's transport does
    assert.are.equal("1.1", r.version)
  end)

  it("keeps the connection alive between calls (nginx's cosocket pool)", function()
    local r = case("keepalive")
    assert.are.equal(r.a, r.b)
  end)

  it("answers 5xx as a response, with its headers", function()
    local r = case("busy")
    assert.are.equal(503, r.status)
    assert.are.equal("2", r.retry_after)
  end)

  it("reads chunked bodies and bodies that end with the connection", function()
    assert.are.same({ body = "part1;part2;part3;part4;part5;", te = "chunked" }, case("chunked"))
    assert.are.same({ body = "to the end!", status = 200 }, case("close_delimited"))
  end)

  it("times out, and refuses a closed port, as error values without the URL's query", function()
    local r = case("errors", "?closed=" .. closed)
    assert.are.equal("timeout", r.timeout_code)
    assert.are.equal("connect", r.connect_code)
    assert.is_nil(r.connect_msg:find("SECRET", 1, true))
  end)

  it("verifies TLS: a peer the trusted CAs did not sign fails, one they did passes", function()
    local r = case("tls", "?good=" .. good .. "&bad=" .. bad)
    assert.are.equal("tls", r.bad_code, r.bad_msg)
    assert.are.equal(200, r.good_status, r.good_err)
    assert.are.equal("tls|x", r.good_body)
  end)

  it("refuses the same peer when nginx.conf trusts no CA (no lua_ssl_trusted_certificate)", function()
    local bare = nginx.start{ server = [[
      location ~ ^/t/(\w+)$ { content_by_lua_block { require("spec.openresty.cosocket_cases").run(ngx.var[1]) } }
      location /echo { return 200 "plain"; }
    ]] }
    local status, body = bare:request("GET", "/t/tls?good=" .. good .. "&bad=" .. bad)
    local log = bare:error_log()
    bare:clean_up()
    if status ~= 200 then print(log:sub(-1500)) end
    assert.are.equal(200, status, body)
    local r = cjson.decode(body)
    assert.are.equal("tls", r.bad_code)
    assert.is_nil(r.good_status)
    assert.matches("TLS handshake", r.good_err, 1, true)
  end)

  it("runs a batch on light threads: 20 slow requests take about one request's time", function()
    local r = case("batch")
    assert.are.equal(21, r.n)
    assert.are.equal(20, r.bodies)
    assert.are.equal("timeout", r.last)
    assert.is_true(r.took < 1.5, "batch took " .. r.took .. " s") -- one by one: 6 s
  end)

  it("sleeps with ngx.sleep", function()
    local r = case("sleep")
    assert.is_true(r.took >= 0.19 and r.took < 0.5, tostring(r.took))
  end)

  it("refuses malformed options before sending anything, with libcurl's messages", function()
    local r = case("malformed")
    assert.matches("http: url must be an http:// or https:// URL", r.msgs[1], 1, true)
    assert.matches("CR or LF", r.msgs[2], 1, true)
    assert.matches("http: timeout must be seconds > 0", r.msgs[3], 1, true)
  end)

  it("says to use a timer where nginx has no cosockets (init_worker)", function()
    local r = case("phase")
    assert.matches("no cosockets in the init_worker phase", r.init_worker, 1, true)
    assert.matches("ngx.timer.at", r.init_worker, 1, true)
  end)

  describe("telua.client from nginx against telua sandbox", function()
    local sb, args
    local SID, TOKEN = "AC" .. ("4"):rep(32), "sandbox-token-0123456789abcdef0"
    setup(function()
      sb = h.spawn("env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " " ..
                   require("spec.helpers.host").BUILD .. "/telua sandbox --listen 127.0.0.1:0", dir .. "/sandbox.log")
      args = "?sb=" .. sb.port .. "&sid=" .. SID .. "&token=" .. TOKEN
    end)
    teardown(function() if sb then h.kill(sb) end end)

    it("creates, fetches and lists a message, and gets Twilio's error for a test number", function()
      local r = case("sandbox", args)
      assert.matches("^SM%x+$", r.sid)
      assert.are.equal("+14155552671", r.to)
      assert.are.equal("queued", r.status)
      assert.are.equal(r.sid, r.fetched)
      assert.are.equal("from nginx", r.body)
      assert.is_true(r.listed)
      assert.is_false(r.bad)
      assert.are.equal(21211, r.code)
      assert.are.equal(400, r.http)
    end)

    it("retries a 429 after its Retry-After, waiting with ngx.sleep", function()
      local core = require "telua.core"
      assert(core.http_request{ url = "http://127.0.0.1:" .. sb.port .. "/-/sandbox/inject", method = "POST",
        body = core.form_encode{ { "Status", "429" }, { "Code", "20429" }, { "RetryAfter", "1" } },
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
      local r = case("retry", args)
      assert.is_true(r.ok, r.err)
      assert.is_true(r.took >= 1.0, tostring(r.took))
    end)
  end)

  it("telua.client works on it: nil, err for missing credentials, Twilio's code as an integer", function()
    local r = case("client")
    assert.is_true(r.none)
    assert.matches("account_sid", r.why, 1, true)
    assert.is_false(r.m)
    assert.are.equal(21211, r.code)
    assert.matches("error 21211: ", r.text, 1, true)
  end)
end)
