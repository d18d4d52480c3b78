--- Twilio's REST API: Messages, Calls and Verify v2.
--
-- Requests go over a pluggable transport (by default `telua.http`, libcurl
-- with keep-alive and HTTP/2) with Twilio's wire names and form encoding
-- (reference: twilio.md §c; the official helper libraries' `RequestClient`
-- and generated `MessageList`/`CallList`/`VerificationList`). Lua callers use
-- snake_case (`status_callback`); the wire gets `StatusCallback`. Answers are
-- Twilio's JSON as Lua tables, with JSON `null` as `nil`.
--
-- Before a message leaves, `to` and `from` are put in E.164 with
-- `telua.e164` (a `whatsapp:` prefix is kept; short codes and alphanumeric
-- sender IDs pass as they are), the body's segments are counted, and an empty
-- or oversized body is refused, all without a request.
--
-- Errors are values: `nil, err`, where `err` is a table with Twilio's `code`,
-- `message` and `more_info`, the HTTP `status` (nil when no answer came),
-- `retryable` (whether sending the same request later can help, per
-- twilio.md §h) and `where` (`"client"` for a check made before sending,
-- `"twilio"` for an error answer, `"transport"` for a connection failure).
-- 429 (20429), 503, 500, 502, 504 and connection failures are retried with
-- exponential backoff and full jitter, waiting at least `Retry-After`;
-- other 4xx never are. Credentials are kept out of the client table and
-- never appear in an error, a log line or a traceback.
--
--     local client = require("telua.client").new{ default_region = "US" }
--     local msg, err = client.messages.create{ to = "(415) 555-2671", from = "+15005550006",
--                                             body = "Your order shipped" }
--     if not msg then print(err.code, err.message) end
--
-- @module telua.client

local core = require "telua.core"
local cjson = require "cjson.safe"
local e164 = require "telua.e164"
local segments = require "telua.segments"

local type, pairs, ipairs, tostring, tonumber, error, setmetatable, select =
  type, pairs, ipairs, tostring, tonumber, error, setmetatable, select
local concat, sort, floor, min, max, random = table.concat, table.sort, math.floor, math.min, math.max, math.random
local json_null = cjson.null

local _M = { _VERSION = "0.1.0" }

local API_VERSION = "2010-04-01"

-- Credentials live here, keyed by the client table, so printing or
-- serialising a client never shows them.
local secrets = setmetatable({}, { __mode = "k" })

--- Twilio error codes where the same request may succeed later
-- (twilio.md §h, "retry?" column): rate limits, server errors, a full queue.
_M.RETRYABLE_CODES = {
  [20429] = true, [20500] = true, [20503] = true, [21611] = true,
  [30001] = true, [30003] = true, [30008] = true, [30022] = true,
  [63017] = true, [63018] = true,
}

-- HTTP statuses the client itself retries (with backoff).
local RETRY_STATUS = { [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }

-- Transport failures where the request may not have been processed.
local RETRY_TRANSPORT = { connect = true, dns = true, send = true, recv = true, tls = false, timeout = true }

local err_mt = {
  __tostring = function(e)
    local s = e.status and ("HTTP " .. e.status .. " ") or ""
    return ("twilio: %s%s%s"):format(s, e.code and ("error " .. tostring(e.code) .. ": ") or "", e.message or "?")
  end,
}

local function more_info(code)
  return code and ("https://www.twilio.com/docs/errors/" .. code) or nil
end

--- Builds an error value (the shape every operation returns after `nil`).
-- @tparam table t `code`, `message`, `status`, `where`, `retryable`, ...
-- @treturn table the error with `more_info` filled and a `__tostring`
function _M.error(t)
  if t.more_info == nil then t.more_info = more_info(t.code) end
  if t.retryable == nil then
    t.retryable = (t.code and _M.RETRYABLE_CODES[t.code]) or (t.status and RETRY_STATUS[t.status]) or false
  end
  return setmetatable(t, err_mt)
end

local function client_error(code, message)
  return nil, _M.error{ code = code, message = message, status = 400, where = "client", retryable = false }
end

--- A number from JSON as an integer where it is whole: lua-cjson decodes
-- every number as a float under Lua 5.4, and Twilio's codes are integers
-- (`21211`, never `21211.0`, in messages and logs).
-- @param v a number, a numeric string or anything else
-- @return the integer, the number, or nil
local tointeger = math.tointeger -- luacheck: ignore 143 (Lua 5.3+; nil under LuaJIT, where whole floats print bare)
function _M.integer(v)
  local n = tonumber(v)
  if n and tointeger then return tointeger(n) or n end
  return n
end
local integer = _M.integer

-- JSON null -> nil, recursively (cjson.null is truthy in Lua).
local function strip_nulls(v)
  if type(v) ~= "table" then return v end
  for k, x in pairs(v) do
    if x == json_null then v[k] = nil
    elseif type(x) == "table" then strip_nulls(x) end
  end
  return v
end

-- ---------------------------------------------------------------------------
-- parameters: snake_case -> Twilio's wire names and values

-- Names whose wire form is not plain CamelCase of the Lua name.
local WIRE_NAME = {
  date_sent_after = "DateSent>", date_sent_before = "DateSent<",
  start_time_after = "StartTime>", start_time_before = "StartTime<",
  end_time_after = "EndTime>", end_time_before = "EndTime<",
  twiml = "Twiml", page_token = "PageToken",
}

local wire_cache = {}
local function wire_name(k)
  local w = wire_cache[k]
  if w then return w end
  w = WIRE_NAME[k]
  if not w then
    if k:find("^%u") then
      w = k -- already a wire name
    else
      w = k:gsub("^%l", string.upper):gsub("_(%w)", string.upper)
    end
  end
  wire_cache[k] = w
  return w
end

local function iso8601(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", floor(t))
end

local function wire_value(k, v)
  local tv = type(v)
  if tv == "string" then return v end
  if tv == "boolean" then return v and "true" or "false" end
  if tv == "number" then
    if k == "send_at" or k:find("_after$") or k:find("_before$") then return iso8601(v) end
    if v == floor(v) and v >= -2^53 and v <= 2^53 then return ("%d"):format(v) end
    return tostring(v)
  end
  if tv == "table" and (k == "content_variables" or k == "rate_limits" or k == "channel_configuration") then
    local s, e = cjson.encode(v)
    if not s then error(("client: %s cannot be encoded as JSON: %s"):format(k, e), 4) end
    return s
  end
  error(("client: parameter %s has a %s value"):format(k, tv), 4)
end

-- params (Lua table) -> list of {WireName, value} in sorted key order; lists
-- become repeated keys (Twilio's arrayFormat 'repeat').
local function to_wire(params)
  local keys, out = {}, {}
  for k in pairs(params) do
    if type(k) ~= "string" then error("client: parameter names must be strings", 3) end
    keys[#keys + 1] = k
  end
  sort(keys)
  for _, k in ipairs(keys) do
    local v, w = params[k], wire_name(k)
    if type(v) == "table" and v[1] ~= nil and k ~= "content_variables" then
      for _, x in ipairs(v) do out[#out + 1] = { w, wire_value(k, x) } end
    elseif v ~= nil then
      out[#out + 1] = { w, wire_value(k, v) }
    end
  end
  return out
end

-- ---------------------------------------------------------------------------
-- addresses and bodies

local function code_points(s)
  return #s - select(2, s:gsub("[\128-\191]", ""))
end

-- A phone address -> E.164 (keeping a channel prefix), or nil, reason.
local function phone(addr, region)
  local prefix, num = addr:match("^(%a+:)(.*)$")
  if prefix then
    prefix = prefix:lower()
    if prefix ~= "whatsapp:" and prefix ~= "sms:" then return addr end -- messenger:, rcs:, client:, sip:
  else
    prefix, num = "", addr
  end
  local n, why = e164.normalize(num, region)
  if not n then return nil, why end
  return prefix == "sms:" and n or prefix .. n
end

-- Sender: short codes (5-6 digits) and alphanumeric sender IDs (1-11
-- characters with a letter) stay as they are; numbers go to E.164.
local function sender(from, region)
  if from:find("^%d%d%d%d%d%d?$") then return from end
  if #from <= 11 and from:find("^[%w ]+$") and from:find("%a") then return from end
  return phone(from, region)
end

--- Checks and normalises a message before it is sent.
-- Exposed for the outbox and for previews.
-- @tparam table p create parameters (snake_case)
-- @tparam[opt] string region default region for national numbers ("US")
-- @treturn table the parameters with `to`/`from` in E.164, plus
--   `p._segments` (`telua.segments.count` of the body, or nil) and
--   `p._channel` (`"whatsapp"` or `"sms"`)
-- @return or `nil, err` with Twilio's code for the problem: 21211 invalid
--   To, 21212 invalid From, 21603 no From or MessagingServiceSid, 21602 no
--   Body, MediaUrl or ContentSid, 21617 body over 1,600 characters, 63021
--   WhatsApp body over 1,024 characters, 21619 invalid UTF-8
function _M.check_message(p, region)
  if type(p) ~= "table" then error("client: message parameters must be a table", 2) end
  local to = p.to or p.To
  if type(to) ~= "string" or to == "" then return client_error(21604, "A 'To' phone number is required.") end
  local nto, why = phone(to, region)
  if not nto then
    return client_error(21211, ("The 'To' number %s is not a valid phone number (%s)."):format(to, why))
  end
  local out = {}
  for k, v in pairs(p) do out[k] = v end
  out.To = nil
  out.to = nto
  local from = p.from or p.From
  out.From = nil
  if from ~= nil then
    if type(from) ~= "string" then return client_error(21212, "The 'From' number must be a string.") end
    local nfrom, why2 = sender(from, region)
    if not nfrom then
      return client_error(21212, ("The 'From' number %s is not a valid phone number, shortcode, or alphanumeric sender ID (%s)."):format(from, why2))
    end
    out.from = nfrom
  elseif not (p.messaging_service_sid or p.MessagingServiceSid) then
    return client_error(21603, "A 'From' phone number or a MessagingServiceSid is required.")
  end
  local whatsapp = nto:sub(1, 9) == "whatsapp:"
  out._channel = whatsapp and "whatsapp" or "sms"
  local body = p.body or p.Body
  local content = p.content_sid or p.ContentSid
  local media = p.media_url or p.MediaUrl
  if (body == nil or body == "") and not content and not media then
    return client_error(21602, "Message body is required.")
  end
  if body ~= nil then
    if type(body) ~= "string" then return client_error(21602, "Message body must be a string.") end
    local seg = segments.count(body, p.smart_encoded and { smart_encoding = true } or nil)
    if not seg then return client_error(21619, "Message body is not valid UTF-8.") end
    local chars = code_points(body)
    if chars > 1600 then
      return client_error(21617, ("The concatenated message body exceeds the 1600 character limit (%d)."):format(chars))
    end
    if whatsapp and not content and chars > 1024 then
      return client_error(63021, ("A WhatsApp free-form body is limited to 1024 characters (%d)."):format(chars))
    end
    out._segments = seg
  end
  return out
end

-- ---------------------------------------------------------------------------
-- the client

local Client = {}
Client.__index = Client
Client.__tostring = function(c) return "telua.client(" .. (c.account_sid or "?") .. ")" end

-- Host of a product with edge and region routing, as the helper libraries
-- compute it (node BaseTwilio.getHostname): api.{edge}.{region}.twilio.com.
local function hostname(product, edge, region)
  if edge and not region then region = "us1" end
  if not region then return "https://" .. product .. ".twilio.com" end
  return "https://" .. product .. (edge and ("." .. edge) or "") .. "." .. region .. ".twilio.com"
end

-- Request headers as twilio-node sends them (twilio.md §c.1), one table per
-- kind of request, shared by every request of this client.
local function header_sets(ua)
  return {
    POST = { ["User-Agent"] = ua, ["Accept-Charset"] = "utf-8", Accept = "application/json",
             ["Content-Type"] = "application/x-www-form-urlencoded" },
    GET = { ["User-Agent"] = ua, ["Accept-Charset"] = "utf-8", Accept = "application/json" },
    DELETE = { ["User-Agent"] = ua, ["Accept-Charset"] = "utf-8" },
  }
end

local function default_transport()
  local http = require "telua.http"
  return { request = http.request, batch = http.batch, sleep = http.sleep, flight = http.flight }
end

-- The telua host hands its rules' states the credentials it read (and
-- then removed from the process environment) in the registry, out of the
-- rules' reach; everywhere else the environment is the source.
local registry = debug and debug.getregistry
local function env(name)
  local host = registry and registry()["telua.env"]
  local v = host and host[name] or os.getenv(name)
  if v == "" then return nil end
  return v
end

--- Makes a client.
-- @tparam[opt] table opts
--   `account_sid` (`AC` + 32 hex; default `TWILIO_ACCOUNT_SID`),
--   `auth_token` (default `TWILIO_AUTH_TOKEN`) or `api_key` + `api_secret`
--   (default `TWILIO_API_KEY`/`TWILIO_API_SECRET`),
--   `region`, `edge` (default `TWILIO_REGION`/`TWILIO_EDGE`),
--   `base_url` (one origin for every product, e.g. the sandbox's
--   `http://127.0.0.1:8090`; default `TELUA_TWILIO_BASE_URL`),
--   `default_region` (for numbers written nationally, e.g. `"US"`),
--   `transport` (`{ request = fn, batch = fn, sleep = fn }`, default
--   `telua.http`), `timeout` (seconds, default 30), `connect_timeout`
--   (default 10), `max_retries` (default 3), `retry_base` (seconds, default
--   0.1), `retry_cap` (default 3), `max_retry_after` (the longest
--   `Retry-After` waited in the call, default 30; a longer one is returned
--   as the error's `retry_after`), `concurrency` (requests in flight in
--   `create_many`, default 16: Twilio limits an account's concurrent
--   requests, 20429), `cainfo` (CA bundle), `user_agent_extensions`
-- @treturn table the client, with `messages`, `calls` and `verify`
-- @return or `nil, message` when the credentials are missing or malformed
--   (as resty modules do; under nginx the environment is empty unless
--   nginx.conf has `env TWILIO_ACCOUNT_SID;` lines: pass them in `opts`)
-- @raise when opts is not a table
function _M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("client.new: options must be a table", 2) end
  local sid = opts.account_sid or env("TWILIO_ACCOUNT_SID")
  if type(sid) ~= "string" or not sid:find("^AC%x+$") or #sid ~= 34 then
    return nil, "client.new: account_sid must start with AC and have 32 hex digits (set account_sid or TWILIO_ACCOUNT_SID)"
  end
  local user, pass
  local key = opts.api_key or (not opts.auth_token and env("TWILIO_API_KEY")) or nil
  if key then
    user, pass = key, opts.api_secret or env("TWILIO_API_SECRET")
    if type(user) ~= "string" or not user:find("^SK") then return nil, "client.new: api_key must start with SK" end
  else
    user, pass = sid, opts.auth_token or env("TWILIO_AUTH_TOKEN")
  end
  if type(pass) ~= "string" or pass == "" then
    return nil, "client.new: no secret (set auth_token or TWILIO_AUTH_TOKEN, or api_key with api_secret)"
  end
  local base = opts.base_url or env("TELUA_TWILIO_BASE_URL")
  if base ~= nil and (type(base) ~= "string" or not base:find("^https?://[^/]")) then
    return nil, "client.new: base_url must be an http(s) URL"
  end
  if base then base = base:gsub("/+$", "") end
  local region, edge = opts.region or env("TWILIO_REGION"), opts.edge or env("TWILIO_EDGE")
  local ext = opts.user_agent_extensions
  local self = setmetatable({
    account_sid = sid,
    api_base = base or hostname("api", edge, region),
    verify_base = base or hostname("verify", edge, region),
    default_region = opts.default_region,
    transport = opts.transport or default_transport(),
    timeout = opts.timeout or 30,
    connect_timeout = opts.connect_timeout or 10,
    max_retries = opts.max_retries or 3,
    retry_base = opts.retry_base or 0.1,
    retry_cap = opts.retry_cap or 3,
    max_retry_after = opts.max_retry_after or 30,
    concurrency = opts.concurrency or 16,
    cainfo = opts.cainfo,
    user_agent = ("telua/%s (%s) %s%s"):format(_M._VERSION, jit and jit.os or "Linux",
      jit and jit.version or _VERSION, ext and (" " .. concat(ext, " ")) or ""),
  }, Client)
  secrets[self] = { user, pass }
  self.headers = header_sets(self.user_agent)
  self.messages = _M.messages_api(self)
  self.calls = _M.calls_api(self)
  self.verify = _M.verify_api(self)
  return self
end

-- Retry-After: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

--- Epoch seconds of an HTTP-date ("Sun, 06 Nov 1994 08:49:37 GMT") or of
-- Twilio's RFC 2822 dates ("Thu, 24 Aug 2023 05:01:45 +0000"), or nil.
function _M.parse_date(h)
  if type(h) ~= "string" then return nil end
  local d, mon, y, hh, mm, ss, zone = h:match("%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) ([%w+%-]+)")
  if not d or not MONTHS[mon] then return nil end
  local off = 0
  if zone ~= "GMT" and zone ~= "UTC" then
    local sign, zh, zm = zone:match("^([+%-])(%d%d)(%d%d)$")
    if not sign then return nil end
    off = (tonumber(zh) * 3600 + tonumber(zm) * 60) * (sign == "+" and 1 or -1)
  end
  -- days from civil (H. Hinnant), so no local time zone is involved
  local yy, m = tonumber(y), MONTHS[mon]
  if m <= 2 then yy = yy - 1 end
  local era = floor(yy / 400)
  local yoe = yy - era * 400
  local doy = floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + tonumber(d) - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return (era * 146097 + doe - 719468) * 86400 + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss) - off
end

local function retry_after(h)
  if not h then return nil end
  local n = tonumber(h)
  if n then return max(0, n) end
  local t = _M.parse_date(h)
  return t and max(0, t - core.time()) or nil
end
_M.retry_after = retry_after

-- One answer (or transport failure) -> value | nil, err
local function decode(res, msg, code)
  if not res then
    return nil, _M.error{ message = msg, transport = code, where = "transport",
                          retryable = RETRY_TRANSPORT[code] or false }
  end
  local status = res.status
  if status == 204 then return true end
  local body = res.body
  if status >= 200 and status < 300 then
    local v, jerr = cjson.decode(body)
    if type(v) ~= "table" then
      return nil, _M.error{ status = status, message = "answer is not JSON: " .. tostring(jerr), where = "twilio", retryable = false }
    end
    strip_nulls(v)
    if v.error_code ~= nil then v.error_code = integer(v.error_code) end
    return v
  end
  local v = cjson.decode(body)
  local e = { status = status, where = "twilio" }
  if type(v) == "table" then
    strip_nulls(v)
    e.code = integer(v.code)
    e.message = v.message or v.detail or v.title
    e.more_info = v.more_info or v.type
    e.details = v.details or v.errors
  end
  e.message = e.message or ("HTTP " .. status)
  e.retry_after = retry_after(res.headers and res.headers["retry-after"])
  return nil, _M.error(e)
end

-- The transport options of one call.
function Client:_build(method, base, path, params)
  local s = secrets[self]
  local req = {
    method = method, url = base .. path, user = s[1], password = s[2],
    timeout = self.timeout, connect_timeout = self.connect_timeout, cainfo = self.cainfo,
    headers = self.headers[method] or self.headers.POST,
  }
  local form = params and next(params) and core.form_encode(to_wire(params)) or nil
  if method == "GET" or method == "DELETE" then
    if form then req.url = req.url .. (req.url:find("?", 1, true) and "&" or "?") .. form end
  else
    req.body = form or ""
  end
  return req
end

-- Whether the client retries this failure itself.
local function should_retry(err, method)
  if err.where == "twilio" then return RETRY_STATUS[err.status] or false end
  if err.where ~= "transport" then return false end
  -- a POST that timed out may have been carried out: never resend it blind
  if err.transport == "timeout" and method == "POST" then return false end
  return RETRY_TRANSPORT[err.transport] or false
end

-- Delay before retry n (1-based): full jitter, at least Retry-After.
function Client:_delay(n, err)
  local d = random() * min(self.retry_cap, self.retry_base * 2 ^ n)
  if err.retry_after then d = max(d, err.retry_after) end
  return d
end

--- Sends a prepared list of calls at once and retries what can be retried.
-- @tparam table reqs list of `{ method, base, path, params }`
-- @treturn table results in order: `{ value }` or `{ nil, err }`
function Client:_run(reqs)
  local n = #reqs
  local results, pending = {}, {}
  for i = 1, n do pending[i] = i end
  local built = {}
  for i = 1, n do local r = reqs[i]; built[i] = self:_build(r[1], r[2], r[3], r[4]) end
  local attempt = 0
  while #pending > 0 do
    attempt = attempt + 1
    local answers
    if #pending == 1 then
      local a, b, c = self.transport.request(built[pending[1]])
      answers = { a or { error = b, code = c } }
    else
      -- in chunks of 2,000 (the transport streams each through its
      -- connections; the chunk bounds the memory of answers held at once)
      answers = {}
      local chunk = 2000
      for from = 1, #pending, chunk do
        local list = {}
        for j = from, math.min(from + chunk - 1, #pending) do list[#list + 1] = built[pending[j]] end
        local got = self.transport.batch(list, self.concurrency)
        for j = 1, #got do answers[from + j - 1] = got[j] end
      end
    end
    local again, wait = {}, 0
    for j, i in ipairs(pending) do
      local a = answers[j]
      local v, err
      if a.error then v, err = decode(nil, a.error, a.code) else v, err = decode(a) end
      if v ~= nil then
        results[i] = { v }
      else
        err.attempts = attempt
        results[i] = { nil, err }
        if attempt <= self.max_retries and should_retry(err, reqs[i][1]) then
          local d = self:_delay(attempt, err)
          -- a Retry-After longer than max_retry_after is handed back (err.retry_after)
          if not (err.retry_after and err.retry_after > self.max_retry_after) then
            again[#again + 1] = i
            if d > wait then wait = d end
          end
        end
      end
    end
    pending = again
    if #pending > 0 and wait > 0 then self.transport.sleep(wait) end
  end
  return results
end

--- One REST call with retries.
-- @tparam string method `GET`, `POST` or `DELETE`
-- @tparam string base origin (`client.api_base` or `client.verify_base`)
-- @tparam string path path from the origin
-- @tparam[opt] table params snake_case or wire-name parameters
-- @return the decoded JSON (or true for 204) | nil, err
function Client:request(method, base, path, params)
  local r = self:_run({ { method, base, path, params } })[1]
  return r[1], r[2]
end

local function acct(self, path)
  return "/" .. API_VERSION .. "/Accounts/" .. self.account_sid .. path
end

local function check_sid(sid, prefix, what)
  if type(sid) ~= "string" or not sid:find("^" .. prefix .. "%x+$") or #sid ~= 34 then
    error(("client: %s must be %s followed by 32 hex digits"):format(what, prefix), 3)
  end
end

-- An API table whose functions work with `.` and with `:`.
local function api(tbl)
  for name, fn in pairs(tbl) do
    tbl[name] = function(a, ...)
      if a == tbl then return fn(...) end
      return fn(a, ...)
    end
  end
  return tbl
end

-- Pages through a 2010-API list (next_page_uri is relative) or a v2 list
-- (meta.next_page_url is absolute), up to limit items.
local function list_all(self, base, path, key, params)
  params = params or {}
  local limit = params.limit
  local q = {}
  for k, v in pairs(params) do if k ~= "limit" then q[k] = v end end
  if not q.page_size and limit and limit < 1000 then q.page_size = limit end
  local items = {}
  local page, err = self:request("GET", base, path, q)
  while page do
    for _, it in ipairs(page[key] or {}) do
      items[#items + 1] = it
      if limit and #items >= limit then return items end
    end
    local nxt = page.next_page_uri
    local nbase = base
    if not nxt and page.meta then nxt = page.meta.next_page_url; nbase = "" end
    if not nxt then return items end
    if nbase == "" then
      -- absolute: keep our origin (the sandbox or an edge) and take the path
      nxt = nxt:gsub("^https?://[^/]+", "")
      nbase = base
    end
    page, err = self:request("GET", nbase, nxt, nil)
  end
  return nil, err
end

-- ---------------------------------------------------------------------------
-- Messages

--- Messages (twilio.md §c.3). Functions take a table of snake_case
-- parameters as Twilio names them (`to`, `from`, `messaging_service_sid`,
-- `body`, `media_url` (a string or a list), `status_callback`,
-- `content_sid`, `content_variables` (a table, sent as JSON),
-- `validity_period`, `schedule_type`, `send_at` (epoch seconds or ISO 8601),
-- `smart_encoded`, ...).
-- @section messages
-- Parameters that already went through check_message: only the
-- client's own fields go.
local function prepared(p)
  local m = {}
  for k, v in pairs(p) do m[k] = v end
  m._segments, m._channel = nil, nil
  if m.send_at and not m.schedule_type then m.schedule_type = "fixed" end
  return m
end

function _M.messages_api(self)
  local M = {}
  local function prepare(p)
    local m, err = _M.check_message(p, self.default_region)
    if not m then return nil, err end
    local seg, chan = m._segments, m._channel
    m._segments, m._channel = nil, nil
    if m.send_at and not m.schedule_type then m.schedule_type = "fixed" end
    return m, seg, chan
  end

  --- Sends a message: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
  -- @treturn table the Message resource (`sid`, `status`, `num_segments`, ...)
  --   plus `segments` (telua's count of the body: encoding, segments)
  -- @return or `nil, err` (see the module's error shape)
  function M.create(p)
    local m, seg = prepare(p)
    if not m then return nil, seg end
    local v, err = self:request("POST", self.api_base, acct(self, "/Messages.json"), m)
    if v then v.segments = seg end
    return v, err
  end


  --- Sends many messages at once over the transport's connection pool;
  -- each is checked and retried as `create` does.
  -- @tparam table list of create parameter tables
  -- @tparam[opt] table opts `checked = true` when every item is what
  --   `check_message` returned (the host's sender checks before pacing, and
  --   the check is not made twice)
  -- @treturn table results in order: each `{ message }` or `{ nil, err }`
  function M.create_many(list, opts)
    local out, reqs, idx = {}, {}, {}
    local checked = opts and opts.checked
    for i, p in ipairs(list) do
      local m, err
      if checked then m = prepared(p) else m, err = prepare(p) end
      if m then
        reqs[#reqs + 1] = { "POST", self.api_base, acct(self, "/Messages.json"), m }
        idx[#reqs] = i
      else
        out[i] = { nil, err }
      end
    end
    if #reqs > 0 then
      local res = self:_run(reqs)
      for j, r in ipairs(res) do out[idx[j]] = r end
    end
    return out
  end

  --- Fetches a message by SID (`SM…` or `MM…`).
  function M.fetch(sid)
    if type(sid) ~= "string" or not sid:find("^[SM]M%x+$") or #sid ~= 34 then
      error("client: message sid must be SM or MM followed by 32 hex digits", 2)
    end
    return self:request("GET", self.api_base, acct(self, "/Messages/" .. sid .. ".json"))
  end

  --- Updates a message: `{ body = "" }` redacts it, `{ status = "canceled" }`
  -- cancels a scheduled one.
  function M.update(sid, p)
    if type(sid) ~= "string" or not sid:find("^[SM]M%x+$") then error("client: bad message sid", 2) end
    return self:request("POST", self.api_base, acct(self, "/Messages/" .. sid .. ".json"), p or {})
  end

  --- Cancels a scheduled message (`Status=canceled`).
  function M.cancel(sid) return M.update(sid, { status = "canceled" }) end

  --- Redacts a message's body (`Body=` empty).
  function M.redact(sid) return M.update(sid, { body = "" }) end

  --- Deletes a message record (204).
  function M.delete(sid)
    if type(sid) ~= "string" or not sid:find("^[SM]M%x+$") then error("client: bad message sid", 2) end
    return self:request("DELETE", self.api_base, acct(self, "/Messages/" .. sid .. ".json"))
  end

  --- Lists messages, following pages: filters `to`, `from`, `date_sent`,
  -- `date_sent_after`, `date_sent_before`, `page_size`; `limit` stops after
  -- that many.
  -- @treturn table a list of Message resources | nil, err
  function M.list(p)
    if p and p.to then p.to = phone(p.to, self.default_region) or p.to end
    return list_all(self, self.api_base, acct(self, "/Messages.json"), "messages", p)
  end

  --- One page of messages as Twilio answers it (`messages`, `next_page_uri`, ...).
  function M.page(p)
    return self:request("GET", self.api_base, acct(self, "/Messages.json"), p)
  end

  return api(M)
end

-- ---------------------------------------------------------------------------
-- A flight of calls

local Flight = {}
Flight.__index = Flight

--- Calls that each finish on their own, for a loop with other work to do
-- while they are out (the host's sender sends, reconciles and fetches
-- statuses through one): a slow or hung call holds only itself. Each is
-- retried as `request` does (429, 5xx, dropped connections; never a POST
-- that timed out), its retry waiting on a timer of the flight, not in a
-- sleep.
-- @treturn table|nil the flight (`add`, `create_message`, `list_messages`,
--   `fetch_message`, `poll`, `count`), or nil when the transport has no
--   flights (inside nginx; a transport given without `flight`)
function Client:flight()
  local mk = self.transport.flight
  local f = mk and mk(self.concurrency)
  if not f then return nil end
  return setmetatable({ client = self, f = f, calls = {}, timers = {}, n = 0 }, Flight)
end

--- Starts one call.
-- @tparam string method
-- @tparam string base origin
-- @tparam string path
-- @tparam[opt] table params
-- @param tag the caller's value, handed back with the answer
function Flight:add(method, base, path, params, tag)
  local call = { method = method, req = self.client:_build(method, base, path, params), tag = tag, attempt = 1 }
  self.calls[self.f:add(call.req)] = call
  self.n = self.n + 1
end

--- Sends a message that went through `check_message`: `POST …/Messages.json`.
function Flight:create_message(m, tag)
  local c = self.client
  self:add("POST", c.api_base, acct(c, "/Messages.json"), prepared(m), tag)
end

--- Places a call that went through `check_call`: `POST …/Calls.json`.
function Flight:create_call(q, tag)
  local c = self.client
  self:add("POST", c.api_base, acct(c, "/Calls.json"), q, tag)
end

--- Starts (or goes on with) a verification: `POST verify/v2/Services/{sid}/Verifications`.
function Flight:start_verification(service_sid, p, tag)
  check_sid(service_sid, "VA", "service sid")
  local c = self.client
  self:add("POST", c.verify_base, "/v2/Services/" .. service_sid .. "/Verifications", p, tag)
end

--- One page of the message list (`to`, `from`, `page_size`, ... as `messages.page`).
function Flight:list_messages(p, tag)
  local c = self.client
  self:add("GET", c.api_base, acct(c, "/Messages.json"), p, tag)
end

--- One message by SID.
function Flight:fetch_message(sid, tag)
  if type(sid) ~= "string" or not sid:find("^[SM]M%x+$") or #sid ~= 34 then
    error("client: message sid must be SM or MM followed by 32 hex digits", 2)
  end
  local c = self.client
  self:add("GET", c.api_base, acct(c, "/Messages/" .. sid .. ".json"), nil, tag)
end

--- Calls out, their retries waiting included.
function Flight:count() return self.n end

--- What finished, each `{ tag, value }` or `{ tag, nil, err }` (the
-- error shape of `request`), waiting up to `seconds` for a first answer.
-- @tparam[opt=0] number seconds
function Flight:poll(seconds)
  local c = self.client
  local now = core.monotonic()
  local wait, keep = seconds or 0, {}
  for _, t in ipairs(self.timers) do -- retries whose time has come go out again
    if t.at <= now then
      self.calls[self.f:add(t.call.req)] = t.call
    else
      keep[#keep + 1] = t
      wait = min(wait, t.at - now)
    end
  end
  self.timers = keep
  if self.f:count() == 0 then -- only retries waiting: their time, or the caller's
    if wait > 0 then c.transport.sleep(wait) end
    return {}
  end
  local out = {}
  for _, r in ipairs(self.f:poll(max(0, wait))) do
    local call = self.calls[r[1]]
    self.calls[r[1]] = nil
    local v, err
    if r[2] then v, err = decode(r[2]) else v, err = decode(nil, r[3], r[4]) end
    local again = false
    if v == nil then
      err.attempts = call.attempt
      if call.attempt <= c.max_retries and should_retry(err, call.method) and
         not (err.retry_after and err.retry_after > c.max_retry_after) then
        self.timers[#self.timers + 1] = { at = core.monotonic() + c:_delay(call.attempt, err), call = call }
        call.attempt = call.attempt + 1
        again = true
      end
    end
    if not again then
      self.n = self.n - 1
      out[#out + 1] = { call.tag, v, err }
    end
  end
  return out
end

-- ---------------------------------------------------------------------------
-- Calls

local CALL_STATUS_EVENTS = { initiated = true, ringing = true, answered = true, completed = true }

--- Calls (twilio.md §c.4).
-- @section calls
local function callee(to, region)
  if type(to) ~= "string" or to == "" then return nil, "A 'To' phone number is required." end
  if to:find("^client:") or to:find("^sip:") then return to end
  return phone(to, region)
end

--- Checks a call's parameters as `calls.create` does, without sending:
-- `to` and `from` in E.164 (or `client:`/`sip:`), exactly one of `url`,
-- `twiml` (a string or a `telua.twiml` response) or `application_sid`.
-- @tparam table p the parameters
-- @tparam[opt] string region for numbers written nationally
-- @treturn table the parameters to send | nil, err (21211, 21212, 21205)
-- @raise on a status_callback_event Twilio does not have
function _M.check_call(p, region)
  if type(p) ~= "table" then error("client: call parameters must be a table", 2) end
  local q = {}
  for k, v in pairs(p) do q[k] = v end
  local to, why = callee(p.to, region)
  if not to then return client_error(21211, ("The 'To' number %s is not valid (%s)."):format(tostring(p.to), why)) end
  q.to = to
  if type(p.from) ~= "string" then return client_error(21212, "A 'From' phone number is required.") end
  local from, why2 = callee(p.from, region)
  if not from then return client_error(21212, ("The 'From' number %s is not valid (%s)."):format(p.from, why2)) end
  q.from = from
  if q.twiml ~= nil and type(q.twiml) ~= "string" then q.twiml = tostring(q.twiml) end
  local n = (q.url and 1 or 0) + (q.twiml and 1 or 0) + (q.application_sid and 1 or 0)
  if n ~= 1 then return client_error(21205, "Exactly one of url, twiml or application_sid is required.") end
  if type(q.status_callback_event) == "string" then q.status_callback_event = { q.status_callback_event } end
  for _, ev in ipairs(q.status_callback_event or {}) do
    if not CALL_STATUS_EVENTS[ev] then error("client: unknown status_callback_event " .. tostring(ev), 3) end
  end
  return q
end

function _M.calls_api(self)
  local C = {}

  --- Places a call: `to`, `from`, and one of `url`, `twiml` (a string or a
  -- `telua.twiml` response) or `application_sid`; `status_callback`,
  -- `status_callback_event` (list of initiated/ringing/answered/completed),
  -- `machine_detection` (`Enable` | `DetectMessageEnd`), `timeout`, `record`, ...
  -- @treturn table the Call resource | nil, err (21211/21212 before sending,
  --   21205 when none of url/twiml/application_sid is given)
  function C.create(p)
    if type(p) ~= "table" then error("client: call parameters must be a table", 2) end
    local q, err = _M.check_call(p, self.default_region)
    if not q then return nil, err end
    return self:request("POST", self.api_base, acct(self, "/Calls.json"), q)
  end

  --- Fetches a call by SID (`CA…`).
  function C.fetch(sid)
    check_sid(sid, "CA", "call sid")
    return self:request("GET", self.api_base, acct(self, "/Calls/" .. sid .. ".json"))
  end

  --- Updates a live call: `url` (+`method`) or `twiml` redirects it;
  -- `status = "completed"` hangs up, `"canceled"` cancels a queued one.
  function C.update(sid, p)
    check_sid(sid, "CA", "call sid")
    p = p or {}
    if p.twiml ~= nil and type(p.twiml) ~= "string" then
      local q = {}
      for k, v in pairs(p) do q[k] = v end
      q.twiml = tostring(p.twiml)
      p = q
    end
    return self:request("POST", self.api_base, acct(self, "/Calls/" .. sid .. ".json"), p)
  end

  --- Hangs up a call (`Status=completed`).
  function C.hangup(sid) return C.update(sid, { status = "completed" }) end

  --- Lists calls (filters `to`, `from`, `status`, `start_time_after`, ..., `limit`).
  function C.list(p)
    return list_all(self, self.api_base, acct(self, "/Calls.json"), "calls", p)
  end

  return api(C)
end

-- ---------------------------------------------------------------------------
-- Verify v2

local CHANNELS = { sms = true, call = true, email = true, whatsapp = true, sna = true }

--- Verify v2 (twilio.md §c.6).
-- @section verify
function _M.verify_api(self)
  local V = {}
  local function svc(service_sid)
    check_sid(service_sid, "VA", "service sid")
    return "/v2/Services/" .. service_sid
  end

  --- Starts a verification: `to` (E.164, or an address for email),
  -- `channel` (`sms`, `call`, `whatsapp`, `email`, `sna`), `locale`, ...
  -- @treturn table the Verification (`sid` VE…, `status` "pending") | nil, err
  --   (60200 for a bad `to` or channel, before sending)
  function V.start(service_sid, p)
    local path = svc(service_sid)
    if type(p) ~= "table" then error("client: verification parameters must be a table", 2) end
    if not CHANNELS[p.channel] then return client_error(60200, "Invalid parameter: Channel") end
    local q = {}
    for k, v in pairs(p) do q[k] = v end
    if p.channel ~= "email" then
      local to = type(p.to) == "string" and phone(p.to, self.default_region)
      if not to then return client_error(60200, "Invalid parameter `To`: " .. tostring(p.to)) end
      q.to = to
    elseif type(p.to) ~= "string" or not p.to:find("^[^@%s]+@[^@%s]+$") then
      return client_error(60200, "Invalid parameter `To`: not an email address")
    end
    return self:request("POST", self.verify_base, path .. "/Verifications", q)
  end

  --- Fetches a verification by SID (`VE…`).
  function V.fetch(service_sid, sid)
    local path = svc(service_sid)
    check_sid(sid, "VE", "verification sid")
    return self:request("GET", self.verify_base, path .. "/Verifications/" .. sid)
  end

  --- Checks a code: `{ to = ..., code = ... }` or `{ verification_sid = ..., code = ... }`.
  -- A wrong code is not an error: the answer has `status = "pending"` and
  -- `valid = false`; a right one `status = "approved"`, `valid = true`.
  -- @return the VerificationCheck | nil, err (20404 when the verification
  --   expired, was approved or never existed; 60202 after 5 wrong codes)
  function V.check(service_sid, p)
    local path = svc(service_sid)
    if type(p) ~= "table" then error("client: check parameters must be a table", 2) end
    if type(p.code) ~= "string" or not p.code:find("^%w+$") or #p.code < 4 or #p.code > 10 then
      return client_error(60200, "Invalid parameter: Code")
    end
    local q = {}
    for k, v in pairs(p) do q[k] = v end
    if p.to then
      local to = p.to:find("@", 1, true) and p.to or phone(p.to, self.default_region)
      if not to then return client_error(60200, "Invalid parameter `To`: " .. tostring(p.to)) end
      q.to = to
    elseif not p.verification_sid then
      return client_error(60200, "Either To or VerificationSid is required")
    end
    return self:request("POST", self.verify_base, path .. "/VerificationCheck", q)
  end

  --- Cancels or approves a verification (`status = "canceled" | "approved"`).
  function V.update(service_sid, sid, status)
    local path = svc(service_sid)
    check_sid(sid, "VE", "verification sid")
    if status ~= "canceled" and status ~= "approved" then error("client: status must be canceled or approved", 2) end
    return self:request("POST", self.verify_base, path .. "/Verifications/" .. sid, { status = status })
  end

  return api(V)
end

return _M
