--- A local, Twilio-compatible REST API for development and tests.
--
-- Serves Messages and Calls (2010-04-01) and Verify v2 with Twilio's
-- documented paths, form fields, JSON shapes, status codes and error bodies
-- (reference twilio.md §c), HTTP Basic auth with the configured account SID
-- and auth token (or an API key and secret), and the test numbers of §d.
-- Messages are queued per sender at `mps` messages per second and move
-- queued → sending → sent → delivered (or undelivered / failed with an
-- `ErrorCode`), with a status callback signed with the auth token (§a, §g.2)
-- for each step after the first, as Twilio sends them. (A message without a
-- StatusCallback goes from queued to its final status in one step: nothing
-- could observe the others but a fetch at the right moment.)
--
-- `build/telua sandbox` runs this module behind libmicrohttpd: `handle`
-- answers requests and `tick` hands the C side the callbacks that are due.
-- It has no network code of its own, so specs can drive it directly.
--
-- Sandbox-only numbers (outcomes Twilio's test credentials cannot show),
-- as `To` with any `From`:
--
--   +15005559003  undelivered, ErrorCode 30003 (unreachable handset)
--   +15005559005  undelivered, ErrorCode 30005 (unknown handset)
--   +15005559006  failed, ErrorCode 30006 (landline)
--   +15005559007  undelivered, ErrorCode 30007 (carrier filtering)
--   +15005559008  undelivered, ErrorCode 30008 (unknown error)
--
-- Control endpoints (loopback tooling; no auth) under `/-/sandbox/`:
-- `POST inject` (`Status`, `Code`, `Count`, `RetryAfter`, `Drop=true`,
-- `Path` substring) makes the next matching API requests fail;
-- `POST outcome` (`To`, `ErrorCode`, `Count`) makes the next messages to a
-- number end undelivered with that code; `POST optout` (`To`, `From`)
-- blocks a pair as a STOP would (later sends get 21610); `GET messages`,
-- `GET calls`, `GET verifications`, `GET callbacks` list what happened
-- (JSON, with `received_at` on the sandbox's monotonic clock in seconds);
-- `POST reset` forgets everything.
--
-- @module telua.sandbox

local core = require "telua.core"
local e164 = require "telua.e164"
local segments = require "telua.segments"

local type, pairs, ipairs, tostring, tonumber, setmetatable =
  type, pairs, ipairs, tostring, tonumber, setmetatable
local concat, floor, fmt = table.concat, math.floor, string.format

local _M = { _VERSION = "0.1.0" }

local API = "2010-04-01"

-- ---------------------------------------------------------------------------
-- JSON with Twilio's field order, `null` and `[]` (lua-cjson 2.1.0 has no
-- empty-array marker, and an encoder must not reorder Twilio's fields).

local cjson = require "cjson"
-- JSON null: cjson's own, so hot resources (a Message, a Call) go through
-- cjson.encode in C; the Lua encoder below handles the rest.
local NULL = cjson.null
_M.NULL = NULL
local ARRAY = { __name = "array" }
local function array(t) return setmetatable(t or {}, ARRAY) end

local ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function esc_char(c) return ESC[c] or fmt("\\u%04x", c:byte()) end
local function jstr(s)
  if s:find('[%c"\\]') then s = s:gsub('[%c"\\]', esc_char) end
  return '"' .. s .. '"'
end

local encode
-- An object is { _order = {keys...}, key = value, ... } or a plain map
-- (keys sorted); an array carries the ARRAY metatable.
local function encode_into(v, out)
  local t = type(v)
  if t == "string" then out[#out + 1] = jstr(v)
  elseif t == "number" then
    out[#out + 1] = (v == floor(v) and v > -2^53 and v < 2^53) and fmt("%d", v) or fmt("%.17g", v)
  elseif t == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif v == nil or v == NULL then out[#out + 1] = "null"
  elseif getmetatable(v) == ARRAY then
    out[#out + 1] = "["
    for i = 1, #v do
      if i > 1 then out[#out + 1] = "," end
      encode_into(v[i], out)
    end
    out[#out + 1] = "]"
  else
    local keys = v._order
    if not keys then
      keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
    end
    out[#out + 1] = "{"
    for i, k in ipairs(keys) do
      if i > 1 then out[#out + 1] = "," end
      out[#out + 1] = jstr(k)
      out[#out + 1] = ":"
      local x = v[k]
      if x == nil then x = NULL end
      encode_into(x, out)
    end
    out[#out + 1] = "}"
  end
end
encode = function(v)
  local out = {}
  encode_into(v, out)
  return concat(out)
end
_M.encode_json = encode

-- ---------------------------------------------------------------------------
-- helpers

local date_cache_t, date_cache_s = -1, nil
local function rfc2822(t)
  local s = floor(t)
  if s ~= date_cache_t then
    date_cache_t, date_cache_s = s, os.date("!%a, %d %b %Y %H:%M:%S +0000", s)
  end
  return date_cache_s
end
local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", floor(t)) end

local function err_body(status, code, message, extra)
  local o = { _order = { "code", "message", "more_info", "status" }, code = code, message = message,
              more_info = "https://www.twilio.com/docs/errors/" .. code, status = status }
  if extra then
    for k, v in pairs(extra) do o[k] = v; o._order[#o._order + 1] = k end
  end
  return status, "application/json", encode(o)
end

-- Decodes a form body into a map of first values and, for the keys Twilio
-- repeats (MediaUrl, StatusCallbackEvent, ...), a map of lists.
local EMPTY = setmetatable({}, { __newindex = function() error("sandbox: EMPTY is read-only", 2) end })
local function form(body)
  local first = {}
  if not body or body == "" then return first, EMPTY end
  local pairs_, err = core.form_decode(body)
  if not pairs_ then return nil, err end
  local all = EMPTY
  for i = 1, #pairs_ do
    local p = pairs_[i]
    local k, v = p[1], p[2]
    local had = first[k]
    if had == nil then
      first[k] = v
    else
      if all == EMPTY then all = {} end
      local l = all[k]
      if not l then l = { had }; all[k] = l end
      l[#l + 1] = v
    end
  end
  return first, all
end

-- All values of a form key: the repeated list, or the single value as a list.
local function list_of(first, all, k)
  return all[k] or (first[k] ~= nil and { first[k] }) or nil
end

local function query_params(q)
  if not q or q == "" then return {}, {} end
  return form(q)
end

local heap = require("telua.heap").new

-- ---------------------------------------------------------------------------
-- the sandbox

local function basic_auth(h)
  if not h then return nil end
  local b64 = h:match("^%s*[Bb]asic%s+(%S+)")
  if not b64 then return nil end
  local raw = core.base64_decode(b64)
  if not raw then return nil end
  return raw:match("^([^:]*):(.*)$")
end


local Sandbox = {}
Sandbox.__index = Sandbox

-- Test numbers (twilio.md §d).
local MSG_FROM_ERR = {
  ["+15005550001"] = { 21212, "The 'From' number +15005550001 is not a valid phone number, shortcode, or alphanumeric sender ID." },
  ["+15005550007"] = { 21606, "The From phone number +15005550007 is not a valid, SMS-capable inbound phone number or short code for your account." },
  ["+15005550008"] = { 21611, "This 'From' number has exceeded the maximum number of queued messages" },
}
local MSG_TO_ERR = {
  ["+15005550001"] = { 21211, "Invalid 'To' Phone Number: +15005550001" },
  ["+15005550002"] = { 21612, "The 'To' phone number: +15005550002, is not currently reachable using the 'From' phone number via SMS." },
  ["+15005550003"] = { 21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +15005550003." },
  ["+15005550004"] = { 21610, "Attempt to send to unsubscribed recipient" },
  ["+15005550009"] = { 21614, "'To' number is not a valid mobile number" },
}
local CALL_FROM_ERR = {
  ["+15005550001"] = { 21212, "The 'From' number +15005550001 is not a valid phone number." },
}
local CALL_TO_ERR = {
  ["+15005550001"] = { 21217, "Phone number does not appear to be valid" },
  ["+15005550002"] = { 21214, "'To' phone number cannot be reached" },
  ["+15005550003"] = { 21215, "Geo Permission configuration is not permitting call" },
  ["+15005550004"] = { 21216, "Call blocked by Twilio blocklist" },
}
-- Delivery outcomes of the sandbox's own numbers.
local ASYNC_OUTCOME = {
  ["+15005559003"] = { "undelivered", 30003 },
  ["+15005559005"] = { "undelivered", 30005 },
  ["+15005559006"] = { "failed", 30006 },
  ["+15005559007"] = { "undelivered", 30007 },
  ["+15005559008"] = { "undelivered", 30008 },
}
local ERROR_MESSAGE = {
  [30003] = "Unreachable destination handset", [30005] = "Unknown destination handset",
  [30006] = "Landline or unreachable carrier", [30007] = "Message filtered",
  [30008] = "Unknown error",
}

local VERIFICATION_FIELDS = { "sid", "service_sid", "account_sid", "to", "channel", "status", "valid",
  "date_created", "date_updated", "lookup", "amount", "payee", "send_code_attempts", "sna", "url" }
local CHECK_FIELDS = { "sid", "service_sid", "account_sid", "to", "channel", "status", "valid", "amount",
  "payee", "sna_attempts_error_codes", "date_created", "date_updated" }

--- Makes a sandbox.
-- @tparam table opts `account_sid` (AC + 32 hex), `auth_token` (signs the
--   callbacks and checks Basic auth), optional `api_key` + `api_secret`,
--   `mps` (messages per second per sender, default 10), `delivery_s`
--   (seconds from sending to the delivery receipt, default 0.2),
--   `verify_ttl` (seconds a code lives, default 600), `base_url` (the
--   sandbox's own origin, for Verify's absolute URLs), `clock` (a function
--   returning monotonic seconds; default `telua.core.monotonic`), `wall`
--   (epoch seconds; default `telua.core.time`), `log` (a function(line))
-- @treturn table the sandbox
function _M.new(opts)
  opts = opts or {}
  local sid = opts.account_sid
  if type(sid) ~= "string" or not sid:find("^AC%x+$") or #sid ~= 34 then
    error("sandbox: account_sid must be AC followed by 32 hex digits", 2)
  end
  if type(opts.auth_token) ~= "string" or opts.auth_token == "" then error("sandbox: auth_token is required", 2) end
  local self = setmetatable({
    account_sid = sid,
    mps = opts.mps or 10,
    delivery_s = opts.delivery_s or 0.2,
    verify_ttl = opts.verify_ttl or 600,
    base_url = (opts.base_url or "http://127.0.0.1"):gsub("/+$", ""),
    clock = opts.clock or core.monotonic,
    wall = opts.wall or core.time,
    log = opts.log or function() end,
    sid_prefix = core.random_hex(8),
    seq = 0,
  }, Sandbox)
  -- the first E.164 check of a process compiles the numbering plan's
  -- patterns (~20 ms); done now, it does not delay the first request and
  -- the ones that arrive behind it
  e164.normalize("+12015550123")
  -- secrets stay in upvalues of the checker, not in fields
  local auth = {}
  auth[sid] = opts.auth_token
  if opts.api_key then auth[opts.api_key] = opts.api_secret end
  local token = opts.auth_token
  local last_ok -- the last Authorization header that passed: clients send the same one every time
  self.check_auth = function(header)
    if header == last_ok and header ~= nil then return true end
    local user, pass = basic_auth(header)
    if user ~= nil and auth[user] ~= nil and auth[user] == pass then
      last_ok = header
      return true
    end
    return false
  end
  self.sign = function(url, params) return core.signature(token, url, params) end
  self:reset()
  return self
end

--- Forgets every message, call, verification, injection and opt-out.
function Sandbox:reset()
  self.messages, self.message_list = {}, {}
  self.calls, self.call_list = {}, {}
  self.verifications, self.pending_by_to = {}, {}
  self.events = heap()
  self.next_slot = {}
  self.injections = {}
  self.outcomes = {}
  self.optouts = {}
  self.callback_log = {}
  self.meta = {}
  self.stats = { api_requests = 0, messages_created = 0, callbacks_due = 0 }
end

function Sandbox:new_sid(prefix)
  self.seq = self.seq + 1
  return fmt("%s%s%08x%08x", prefix, self.sid_prefix, floor(self.seq / 4294967296), self.seq % 4294967296)
end

-- ---------------------------------------------------------------------------
-- messages

local cjson_encode = cjson.encode

function Sandbox:schedule(at, ev)
  ev.at = at
  self.events:push(ev)
end

function Sandbox:create_message(f, all)
  local to, from, mss = f.To, f.From, f.MessagingServiceSid
  if not to or to == "" then return err_body(400, 21604, "A 'To' phone number is required.") end
  if (not from or from == "") and not mss then return err_body(400, 21603, "A 'From' phone number is required.") end
  local body, media, content = f.Body, list_of(f, all, "MediaUrl"), f.ContentSid
  if (not body or body == "") and not media and not content then
    return err_body(400, 21602, "Message body is required.")
  end
  if body and #body - select(2, body:gsub("[\128-\191]", "")) > 1600 then
    return err_body(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
  end
  if from and MSG_FROM_ERR[from] then local e = MSG_FROM_ERR[from]; return err_body(400, e[1], e[2]) end
  local chan, bare = "", to
  local p, rest = to:match("^(whatsapp:)(.*)$")
  if p then chan, bare = p, rest end
  if MSG_TO_ERR[bare] then local e = MSG_TO_ERR[bare]; return err_body(400, e[1], e[2]) end
  if not e164.normalize(bare) or bare:sub(1, 1) ~= "+" then
    return err_body(400, 21211, "Invalid 'To' Phone Number: " .. to)
  end
  if from and from:find("^whatsapp:") and chan == "" then
    return err_body(400, 21910, "Invalid From and To pair. From and To should be of the same channel")
  end
  if content and not content:find("^HX%x+$") then
    return err_body(400, 21655, "The ContentSid is Invalid.")
  end
  if f.ContentVariables and not require("cjson.safe").decode(f.ContentVariables) then
    return err_body(400, 21656, "The ContentVariables Parameter is invalid.")
  end
  if self.optouts[(from or mss) .. "|" .. bare] or self.optouts["*|" .. bare] then
    return err_body(400, 21610, "Attempt to send to unsubscribed recipient")
  end
  local now, wall = self.arrived or self.clock(), self.wall()
  local sid = self:new_sid((media and "MM") or "SM")
  local seg = body and segments.count(body) or nil
  local date = rfc2822(wall)
  local uri = "/" .. API .. "/Accounts/" .. self.account_sid .. "/Messages/" .. sid
  local m = {
    account_sid = self.account_sid, api_version = API, body = body or "", date_created = date, date_sent = NULL,
    date_updated = date, direction = "outbound-api", error_code = NULL, error_message = NULL,
    from = from or NULL, messaging_service_sid = mss or NULL, num_media = tostring(media and #media or 0),
    num_segments = tostring(seg and seg.segments or 1), price = NULL, price_unit = "USD", sid = sid,
    status = mss and "accepted" or "queued", subresource_uris = { media = uri .. "/Media.json" },
    to = to, uri = uri .. ".json",
  }
  -- sandbox-side record: not in the JSON
  self.messages[sid] = m
  local list = self.message_list
  list[#list + 1] = m
  self.stats.messages_created = self.stats.messages_created + 1
  local meta = { received_at = now, status_callback = f.StatusCallback, media = media, content_sid = content,
                 content_variables = f.ContentVariables, send_at = f.SendAt }
  self.meta[sid] = meta
  if f.SendAt and f.ScheduleType == "fixed" then
    m.status = "scheduled"
    return 201, "application/json", cjson_encode(m)
  end
  -- per-sender queue: one message every 1/mps seconds
  local key = from or mss
  local slot = self.next_slot[key] or now
  if slot < now then slot = now end
  self.next_slot[key] = slot + 1 / self.mps
  local outcome = self.outcomes[bare]
  local final, code
  if outcome and outcome.count > 0 then
    outcome.count = outcome.count - 1
    final, code = outcome.status, outcome.code
  elseif ASYNC_OUTCOME[bare] then
    final, code = ASYNC_OUTCOME[bare][1], ASYNC_OUTCOME[bare][2]
  else
    final = "delivered"
  end
  local d = self.delivery_s
  if final == "failed" then
    self:schedule(slot, { sid = sid, status = "failed", code = code })
  elseif f.StatusCallback then
    self:schedule(slot, { sid = sid, status = "sending" })
    self:schedule(slot + d / 2, { sid = sid, status = "sent" })
    self:schedule(slot + d, { sid = sid, status = final, code = code })
  else -- nobody is told of the steps between: one event (a fetch sees queued, then the end)
    self:schedule(slot + d, { sid = sid, status = final, code = code })
  end
  return 201, "application/json", cjson_encode(m)
end

local MSG_RANK = { accepted = 0, scheduled = 0, queued = 1, sending = 2, sent = 3, delivered = 4, undelivered = 4,
                   failed = 4, read = 5, canceled = 4 }

-- Applies a message event; returns the callback to send, if any.
function Sandbox:apply_message(ev)
  local m = self.messages[ev.sid]
  if not m or (MSG_RANK[m.status] or 0) >= (MSG_RANK[ev.status] or 0) then return nil end
  local wall = self.wall()
  m.status = ev.status
  m.date_updated = rfc2822(wall)
  if ev.status == "sending" or ev.status == "failed" then m.date_sent = m.date_updated end
  if ev.code then
    m.error_code = ev.code
    m.error_message = ERROR_MESSAGE[ev.code] or NULL
  end
  if ev.status == "delivered" or ev.status == "sent" then
    local seg = tonumber(m.num_segments) or 1
    m.price = fmt("-%.5f", 0.0079 * seg)
  end
  local meta = self.meta[ev.sid]
  if not meta or not meta.status_callback then return nil end
  local params = {
    { "AccountSid", m.account_sid }, { "ApiVersion", API }, { "From", m.from ~= NULL and m.from or "" },
    { "MessageSid", m.sid }, { "MessageStatus", m.status }, { "SmsSid", m.sid }, { "SmsStatus", m.status },
    { "To", m.to },
  }
  if m.messaging_service_sid ~= NULL then params[#params + 1] = { "MessagingServiceSid", m.messaging_service_sid } end
  if ev.code then params[#params + 1] = { "ErrorCode", tostring(ev.code) } end
  if m.status == "delivered" or m.status == "undelivered" then
    params[#params + 1] = { "RawDlrDoneDate", os.date("!%y%m%d%H%M", floor(wall)) }
  end
  return self:callback(meta.status_callback, params, m.sid)
end

-- A signed POST as Twilio sends it (§a, §g).
function Sandbox:callback(url, params, about)
  local body = core.form_encode(params)
  local cb = {
    url = url, body = body, about = about,
    signature = self.sign(url, params),
    idempotency = self:new_sid("CB"),
  }
  self.stats.callbacks_due = self.stats.callbacks_due + 1
  return cb
end

function Sandbox:message_resource(sid, method, f)
  local m = self.messages[sid]
  if not m then
    return err_body(404, 20404, "The requested resource /" .. API .. "/Accounts/" .. self.account_sid .. "/Messages/" .. sid .. ".json was not found")
  end
  if method == "GET" then return 200, "application/json", cjson_encode(m) end
  if method == "DELETE" then
    -- gone from every answer, but left in the list: a PageToken is a
    -- position in it, and a page taken before the delete must go on where it was
    self.messages[sid] = nil
    return 204, "application/json", ""
  end
  -- POST: redact or cancel
  if f.Status then
    if f.Status ~= "canceled" then return err_body(400, 20001, "Invalid parameter: Status") end
    if m.status ~= "scheduled" and m.status ~= "accepted" then
      return err_body(400, 30409, "Message cannot be canceled: it is not scheduled")
    end
    m.status = "canceled"
  end
  if f.Body then
    if f.Body ~= "" then return err_body(400, 20001, "Body can only be set to an empty string (redaction)") end
    local rank = MSG_RANK[m.status] or 0
    if rank < 3 then return err_body(400, 20009, "Cannot redact a message that is still being sent") end
    m.body = ""
  end
  m.date_updated = rfc2822(self.wall())
  return 200, "application/json", cjson_encode(m)
end

-- Pages over a list, newest first (Twilio's order). PageToken "PA<n>" is the
-- position in the append-only list to continue from, so pages stay stable
-- while new items arrive or old ones are deleted (`match` skips those).
function Sandbox:page(list, key, path, q, match)
  local size = tonumber(q.PageSize) or 50
  if size < 1 then size = 1 elseif size > 1000 then size = 1000 end
  local page = tonumber(q.Page) or 0
  local start = #list
  if q.PageToken then start = tonumber(q.PageToken:match("^PA(%d+)$")) or start end
  local items, i = array(), start
  while i >= 1 and #items < size do
    local x = list[i]
    if match(x) then items[#items + 1] = x end
    i = i - 1
  end
  local filters = {}
  for k, v in pairs(q) do
    if k ~= "Page" and k ~= "PageSize" and k ~= "PageToken" then filters[#filters + 1] = { k, v } end
  end
  table.sort(filters, function(a, b) return a[1] < b[1] end)
  local fq = #filters > 0 and ("&" .. core.form_encode(filters)) or ""
  local base = path .. "?PageSize=" .. size
  local more = false
  while i >= 1 do if match(list[i]) then more = true break end i = i - 1 end
  local nxt = more and (base .. fq .. "&Page=" .. (page + 1) .. "&PageToken=PA" .. (i)) or NULL
  local o = { _order = { "end", "first_page_uri", "next_page_uri", "page", "page_size", "previous_page_uri", "start", "uri" },
    ["end"] = page * size + #items - (#items > 0 and 1 or 0), first_page_uri = base .. fq .. "&Page=0",
    next_page_uri = nxt, page = page, page_size = size,
    previous_page_uri = page > 0 and (base .. fq .. "&Page=" .. (page - 1)) or NULL,
    start = page * size, uri = base .. fq .. "&Page=" .. page }
  local parts = {}
  for j, x in ipairs(items) do parts[j] = cjson_encode(x) end
  local head = encode(o)
  return 200, "application/json", head:sub(1, -2) .. ',"' .. key .. '":[' .. concat(parts, ",") .. "]}"
end

local function date_only(s) return s and s:match("^(%d%d%d%d%-%d%d%-%d%d)") end
local MONTH = { Jan = "01", Feb = "02", Mar = "03", Apr = "04", May = "05", Jun = "06", Jul = "07",
                Aug = "08", Sep = "09", Oct = "10", Nov = "11", Dec = "12" }
local function rfc_to_iso(d)
  local dd, mon, y, t = d:match("%a+, (%d+) (%a+) (%d+) (%d+:%d+:%d+)")
  if not dd then return nil end
  return y .. "-" .. MONTH[mon] .. "-" .. dd .. "T" .. t .. "Z"
end

function Sandbox:list_messages(q)
  local to, from = q.To, q.From
  local on, sent_after, sent_before = date_only(q.DateSent), q["DateSent>"], q["DateSent<"]
  local messages = self.messages
  local function match(m)
    if messages[m.sid] ~= m then return false end -- deleted
    if to and m.to ~= to then return false end
    if from and m.from ~= from then return false end
    if on or sent_after or sent_before then
      local sent = m.date_sent ~= NULL and rfc_to_iso(m.date_sent)
      if not sent then return false end
      if on and sent:sub(1, 10) ~= on then return false end
      if sent_after and sent < sent_after then return false end
      if sent_before and sent > sent_before then return false end
    end
    return true
  end
  return self:page(self.message_list, "messages", "/" .. API .. "/Accounts/" .. self.account_sid .. "/Messages.json", q, match)
end

-- ---------------------------------------------------------------------------
-- calls

local function formatted(n)
  local a, b, c = n:match("^%+1(%d%d%d)(%d%d%d)(%d%d%d%d)$")
  if a then return "(" .. a .. ") " .. b .. "-" .. c end
  return n
end

local CALL_RANK = { queued = 0, initiated = 1, ringing = 2, ["in-progress"] = 3, completed = 4, busy = 4,
                    failed = 4, ["no-answer"] = 4, canceled = 4 }

function Sandbox:create_call(f, all)
  local to, from = f.To, f.From
  if not to or to == "" then return err_body(400, 21201, "No 'To' number is specified") end
  if not from or from == "" then return err_body(400, 21213, "No 'From' number is specified") end
  local n = (f.Url and 1 or 0) + (f.Twiml and 1 or 0) + (f.ApplicationSid and 1 or 0)
  if n ~= 1 then return err_body(400, 21205, "Url, Twiml or ApplicationSid is required (exactly one)") end
  if CALL_FROM_ERR[from] then local e = CALL_FROM_ERR[from]; return err_body(400, e[1], e[2]) end
  if CALL_TO_ERR[to] then local e = CALL_TO_ERR[to]; return err_body(400, e[1], e[2]) end
  if not (to:find("^client:") or to:find("^sip:")) and not e164.normalize(to) then
    return err_body(400, 21211, "Invalid 'To' Phone Number: " .. to)
  end
  local now, wall = self.clock(), self.wall()
  local sid = self:new_sid("CA")
  local date = rfc2822(wall)
  local uri = "/" .. API .. "/Accounts/" .. self.account_sid .. "/Calls/" .. sid
  local subs = {}
  for _, s in ipairs{ "notifications", "recordings", "payments", "events", "siprec", "streams",
                      "transcriptions", "user_defined_message_subscriptions", "user_defined_messages" } do
    subs[s] = uri .. "/" .. s:gsub("^%l", string.upper):gsub("_(%l)", string.upper) .. ".json"
  end
  local c = {
    account_sid = self.account_sid, answered_by = NULL, api_version = API, caller_name = NULL,
    date_created = date, date_updated = date, direction = "outbound-api", duration = NULL, end_time = NULL,
    forwarded_from = NULL, from = from, from_formatted = formatted(from), group_sid = NULL, parent_call_sid = NULL,
    phone_number_sid = NULL, price = NULL, price_unit = "USD", sid = sid, start_time = NULL, status = "queued",
    subresource_uris = subs, to = to, to_formatted = formatted(to), trunk_sid = NULL, uri = uri .. ".json",
    queue_time = "0",
  }
  self.calls[sid] = c
  self.call_list[#self.call_list + 1] = c
  local events = {}
  for _, e in ipairs(list_of(f, all, "StatusCallbackEvent") or {}) do
    for w in e:gmatch("[%a%-]+") do events[w] = true end
  end
  if not next(events) then events.completed = true end
  self.meta[sid] = { received_at = now, url = f.Url, twiml = f.Twiml, method = f.Method or "POST",
                     status_callback = f.StatusCallback, events = events, machine_detection = f.MachineDetection,
                     seq = 0 }
  local d = self.delivery_s
  self:schedule(now + d * 0.25, { call = sid, status = "initiated" })
  self:schedule(now + d * 0.5, { call = sid, status = "ringing" })
  self:schedule(now + d, { call = sid, status = "in-progress" })
  self:schedule(now + d * 3, { call = sid, status = "completed" })
  return 201, "application/json", cjson_encode(c)
end

local CALL_EVENT = { initiated = "initiated", ringing = "ringing", ["in-progress"] = "answered", completed = "completed",
                     busy = "completed", failed = "completed", ["no-answer"] = "completed", canceled = "completed" }

function Sandbox:call_params(c, meta)
  local p = {
    { "AccountSid", c.account_sid }, { "ApiVersion", API }, { "CallSid", c.sid }, { "CallStatus", c.status },
    { "Called", c.to }, { "Caller", c.from }, { "Direction", c.direction }, { "From", c.from }, { "To", c.to },
  }
  if meta.machine_detection and c.status == "in-progress" then p[#p + 1] = { "AnsweredBy", "human" } end
  return p
end

function Sandbox:apply_call(ev)
  local c = self.calls[ev.call]
  if not c or (CALL_RANK[c.status] or 0) >= (CALL_RANK[ev.status] or 0) then return nil end
  local meta = self.meta[ev.call]
  local wall = self.wall()
  c.status = ev.status
  c.date_updated = rfc2822(wall)
  if ev.status == "in-progress" then
    c.start_time = c.date_updated
    meta.started = wall
    if meta.machine_detection then c.answered_by = "human" end
  end
  if CALL_RANK[ev.status] == 4 then
    c.end_time = c.date_updated
    local dur = meta.started and floor(wall - meta.started + 0.5) or 0
    c.duration = tostring(dur)
    c.price = fmt("-%.5f", 0.014 * math.max(1, math.ceil(dur / 60)))
  end
  local out = {}
  -- when answered, Twilio fetches the TwiML from the call's Url
  if ev.status == "in-progress" and meta.url then
    local cb = self:callback(meta.url, self:call_params(c, meta), c.sid)
    cb.kind = "voice"
    out[#out + 1] = cb
  end
  local evname = CALL_EVENT[ev.status]
  if meta.status_callback and meta.events[evname] then
    meta.seq = meta.seq + 1
    local p = self:call_params(c, meta)
    p[#p + 1] = { "CallbackSource", "call-progress-events" }
    p[#p + 1] = { "SequenceNumber", tostring(meta.seq - 1) }
    p[#p + 1] = { "Timestamp", rfc2822(wall) }
    if c.duration ~= NULL then
      p[#p + 1] = { "CallDuration", c.duration }
      p[#p + 1] = { "Duration", tostring(math.max(1, math.ceil(tonumber(c.duration) / 60))) }
    end
    out[#out + 1] = self:callback(meta.status_callback, p, c.sid)
  end
  return out
end

function Sandbox:call_resource(sid, method, f)
  local c = self.calls[sid]
  if not c then
    return err_body(404, 20404, "The requested resource /" .. API .. "/Accounts/" .. self.account_sid .. "/Calls/" .. sid .. ".json was not found")
  end
  if method == "GET" then return 200, "application/json", cjson_encode(c) end
  if method == "DELETE" then
    self.calls[sid] = nil
    return 204, "application/json", ""
  end
  local meta = self.meta[sid]
  if f.Status then
    if f.Status ~= "completed" and f.Status ~= "canceled" then return err_body(400, 20001, "Invalid parameter: Status") end
    if CALL_RANK[c.status] == 4 then
      return err_body(400, 21220, "Call is not in-progress. Cannot redirect.")
    end
    local st = (f.Status == "canceled" or c.status ~= "in-progress") and "canceled" or "completed"
    if f.Status == "completed" and c.status == "in-progress" then st = "completed" end
    self:schedule(self.clock(), { call = sid, status = st })
  end
  if f.Url or f.Twiml then
    if CALL_RANK[c.status] == 4 then return err_body(400, 21220, "Call is not in-progress. Cannot redirect.") end
    if f.Url then meta.url = f.Url end
    if f.Twiml then meta.twiml = f.Twiml end
    meta.redirects = (meta.redirects or 0) + 1
  end
  c.date_updated = rfc2822(self.wall())
  return 200, "application/json", cjson_encode(c)
end

function Sandbox:list_calls(q)
  local function match(c)
    if q.To and c.to ~= q.To then return false end
    if q.From and c.from ~= q.From then return false end
    if q.Status and c.status ~= q.Status then return false end
    return true
  end
  return self:page(self.call_list, "calls", "/" .. API .. "/Accounts/" .. self.account_sid .. "/Calls.json", q, match)
end

-- ---------------------------------------------------------------------------
-- Verify v2

local CHANNELS = { sms = true, call = true, email = true, whatsapp = true, sna = true }

function Sandbox:verification_view(v, check)
  if check then
    return { _order = CHECK_FIELDS, sid = v.sid, service_sid = v.service_sid, account_sid = v.account_sid,
             to = v.to, channel = v.channel, status = v.status, valid = v.status == "approved", amount = NULL,
             payee = NULL, sna_attempts_error_codes = array(), date_created = v.date_created,
             date_updated = v.date_updated }
  end
  local att = array()
  for i, a in ipairs(v.attempts) do
    att[i] = { _order = { "time", "channel", "attempt_sid" }, time = a.time, channel = a.channel, attempt_sid = a.sid }
  end
  return { _order = VERIFICATION_FIELDS, sid = v.sid, service_sid = v.service_sid, account_sid = v.account_sid,
           to = v.to, channel = v.channel, status = v.status, valid = v.status == "approved",
           date_created = v.date_created, date_updated = v.date_updated, lookup = {}, amount = NULL, payee = NULL,
           send_code_attempts = att, sna = NULL,
           url = self.base_url .. "/v2/Services/" .. v.service_sid .. "/Verifications/" .. v.sid }
end

-- Expires a pending verification whose code is older than verify_ttl.
function Sandbox:live(v)
  if v and v.status == "pending" and self.clock() - v.created_at > self.verify_ttl then
    v.status = "expired"
    self.pending_by_to[v.service_sid .. "|" .. v.to] = nil
  end
  return v
end

function Sandbox:start_verification(service, f)
  local channel, to = f.Channel, f.To
  if not CHANNELS[channel or ""] then return err_body(400, 60200, "Invalid parameter: Channel") end
  if not to or to == "" then return err_body(400, 60200, "Invalid parameter `To`: " .. tostring(to)) end
  if channel == "email" then
    if not to:find("^[^@%s]+@[^@%s]+$") then return err_body(400, 60200, "Invalid parameter `To`: " .. to) end
  elseif not (to:sub(1, 1) == "+" and e164.normalize(to)) then
    return err_body(400, 60200, "Invalid parameter `To`: " .. to)
  end
  if channel == "sms" and to == "+15005550009" then
    return err_body(400, 60205, "SMS is not supported by landline phone number")
  end
  local key = service .. "|" .. to
  local now, wall = self.clock(), self.wall()
  local v = self:live(self.pending_by_to[key])
  if v and v.status ~= "pending" then v = nil end
  if v then
    if #v.attempts >= 5 then
      return err_body(429, 60203, "Max send attempts reached")
    end
  else
    v = { sid = self:new_sid("VE"), service_sid = service, account_sid = self.account_sid, to = to,
          channel = channel, status = "pending", attempts = {}, checks = 0, created_at = now,
          date_created = iso(wall),
          code = f.CustomCode or fmt("%06d", tonumber(core.random_hex(4), 16) % 1000000) }
    self.verifications[v.sid] = v
    self.pending_by_to[key] = v
  end
  v.channel = channel
  v.date_updated = iso(wall)
  v.attempts[#v.attempts + 1] = { time = iso(wall), channel = channel:upper(), sid = self:new_sid("VL") }
  self.log(fmt("verification %s to %s over %s: code %s", v.sid, to, channel, v.code))
  return 201, "application/json", encode(self:verification_view(v))
end

function Sandbox:not_found(path)
  return err_body(404, 20404, "The requested resource " .. path .. " was not found")
end

function Sandbox:check_verification(service, f, path)
  local code = f.Code
  if not code or not code:find("^%w+$") or #code < 4 or #code > 10 then
    return err_body(400, 60200, "Invalid parameter: Code")
  end
  local v
  if f.VerificationSid then v = self.verifications[f.VerificationSid]
  elseif f.To then v = self.pending_by_to[service .. "|" .. f.To]
  else return err_body(400, 60200, "Either a 'To' or a 'VerificationSid' is required") end
  v = self:live(v)
  if not v or v.service_sid ~= service or v.status ~= "pending" then return self:not_found(path) end
  if v.checks >= 5 then
    return err_body(429, 60202, "Max check attempts reached")
  end
  v.checks = v.checks + 1
  v.date_updated = iso(self.wall())
  if code == v.code then
    v.status = "approved"
    self.pending_by_to[service .. "|" .. v.to] = nil
  end
  return 200, "application/json", encode(self:verification_view(v, true))
end

function Sandbox:verification_resource(service, sid, method, f, path)
  local v = self:live(self.verifications[sid])
  if not v or v.service_sid ~= service then return self:not_found(path) end
  if method == "POST" then
    if f.Status ~= "canceled" and f.Status ~= "approved" then return err_body(400, 60200, "Invalid parameter: Status") end
    if v.status ~= "pending" then return self:not_found(path) end
    v.status = f.Status
    v.date_updated = iso(self.wall())
    self.pending_by_to[service .. "|" .. v.to] = nil
  end
  return 200, "application/json", encode(self:verification_view(v))
end

-- ---------------------------------------------------------------------------
-- control endpoints

function Sandbox:control(method, what, f, q)
  local ok = function(o) return 200, "application/json", encode(o or { ok = true }) end
  if method == "POST" and what == "inject" then
    local n = tonumber(f.Count) or 1
    for _ = 1, n do
      self.injections[#self.injections + 1] = {
        status = tonumber(f.Status) or 429, code = tonumber(f.Code), retry_after = f.RetryAfter,
        drop = f.Drop == "true", path = f.Path,
      }
    end
    return ok{ queued = #self.injections }
  elseif method == "POST" and what == "outcome" then
    local code = tonumber(f.ErrorCode)
    if not f.To or not code then return 400, "application/json", encode{ error = "To and ErrorCode are required" } end
    self.outcomes[f.To] = { status = f.Status or (code == 30006 and "failed" or "undelivered"), code = code,
                            count = tonumber(f.Count) or 1 }
    return ok()
  elseif method == "POST" and what == "optout" then
    if not f.To then return 400, "application/json", encode{ error = "To is required" } end
    self.optouts[(f.From or "*") .. "|" .. f.To] = f.Remove ~= "true" or nil
    return ok()
  elseif method == "POST" and what == "reset" then
    self:reset()
    return ok()
  elseif method == "GET" and what == "messages" then
    local out = array()
    for _, m in ipairs(self.message_list) do
      local meta = self.meta[m.sid]
      if self.messages[m.sid] == m and (not q.To or q.To == m.to) then
        out[#out + 1] = { sid = m.sid, to = m.to, from = m.from, body = m.body, status = m.status,
                          error_code = m.error_code, num_segments = m.num_segments,
                          received_at = meta.received_at, status_callback = meta.status_callback or NULL,
                          content_sid = meta.content_sid or NULL, content_variables = meta.content_variables or NULL }
      end
    end
    return ok{ messages = out }
  elseif method == "GET" and what == "calls" then
    local out = array()
    for _, c in ipairs(self.call_list) do
      local meta = self.meta[c.sid]
      out[#out + 1] = { sid = c.sid, to = c.to, from = c.from, status = c.status, url = meta.url or NULL,
                        twiml = meta.twiml or NULL, answer = meta.answer or NULL, redirects = meta.redirects or 0,
                        received_at = meta.received_at }
    end
    return ok{ calls = out }
  elseif method == "GET" and what == "verifications" then
    local out = array()
    for _, v in pairs(self.verifications) do
      if not q.To or q.To == v.to then
        out[#out + 1] = { sid = v.sid, service_sid = v.service_sid, to = v.to, channel = v.channel,
                          status = self:live(v).status, code = v.code, checks = v.checks,
                          send_attempts = #v.attempts }
      end
    end
    return ok{ verifications = out }
  elseif method == "GET" and what == "callbacks" then
    return ok{ callbacks = array(self.callback_log) }
  elseif method == "GET" and what == "stats" then
    return ok(self.stats)
  end
  return 404, "application/json", encode{ error = "no such sandbox control: " .. method .. " " .. what }
end

-- ---------------------------------------------------------------------------
-- dispatch

local function unauthorized()
  local s, ct, b = err_body(401, 20003, "Authenticate",
    { detail = "Your AccountSid or AuthToken was incorrect." })
  return s, ct, b, { ["WWW-Authenticate"] = 'Basic realm="Twilio API"' }
end

--- Answers one request.
-- @tparam string method
-- @tparam string target the request target as received (path and query)
-- @tparam table headers lower-case header names to values
-- @tparam string body the request body ("" when none)
-- @tparam[opt] number arrived when the request's headers arrived (the
--   sandbox's monotonic clock, seconds): the message's `received_at`
-- @return status, content type, body, extra headers (a table or nil); or
--   the string `"drop"` when an injected failure closes the connection
function Sandbox:handle(method, target, headers, body, arrived)
  -- the receive time tests measure: when the server had the request's
  -- headers (the C side passes it), else now, before any parsing
  self.arrived = arrived or self.clock()
  local path, query = target:match("^([^?]*)%??(.*)$")
  if path:sub(1, 3) == "/-/" then
    if path == "/-/health" then return 200, "text/plain", "ok\n" end
    local what = path:match("^/%-/sandbox/(%w+)$")
    if not what then return 404, "application/json", encode{ error = "not found" } end
    local f = form(body) or {}
    local q = query_params(query) or {}
    return self:control(method, what, f, q)
  end
  self.stats.api_requests = self.stats.api_requests + 1
  -- injected failures come first, as a proxy in front of Twilio would
  local inj = self.injections[1]
  if inj and (not inj.path or path:find(inj.path, 1, true)) then
    table.remove(self.injections, 1)
    if inj.drop then return "drop" end
    local code = inj.code or (inj.status == 429 and 20429) or (inj.status == 503 and 20503) or 20500
    local msg = inj.status == 429 and "Too Many Requests" or "Service Unavailable"
    local s, ct, b = err_body(inj.status, code, msg)
    return s, ct, b, inj.retry_after and { ["Retry-After"] = inj.retry_after } or nil
  end
  if not self.check_auth(headers.authorization) then return unauthorized() end
  local f, all = form(method == "POST" and body or nil)
  if not f then return err_body(400, 20001, "Malformed form body: " .. tostring(all)) end
  local q = query_params(query)
  if not q then return err_body(400, 20001, "Malformed query string") end
  -- 2010-04-01
  local acct, rest = path:match("^/2010%-04%-01/Accounts/([^/]+)(/.*)$")
  if acct then
    if acct ~= self.account_sid then return self:not_found(path) end
    if rest == "/Messages.json" then
      if method == "POST" then return self:create_message(f, all) end
      if method == "GET" then return self:list_messages(q) end
    elseif rest == "/Calls.json" then
      if method == "POST" then return self:create_call(f, all) end
      if method == "GET" then return self:list_calls(q) end
    else
      local msid = rest:match("^/Messages/([SM]M%x+)%.json$")
      if msid then return self:message_resource(msid, method, f) end
      local csid = rest:match("^/Calls/(CA%x+)%.json$")
      if csid then return self:call_resource(csid, method, f) end
    end
    return self:not_found(path)
  end
  local svc, vrest = path:match("^/v2/Services/(VA%x+)(/.*)$")
  if svc and #svc == 34 then
    if vrest == "/Verifications" and method == "POST" then return self:start_verification(svc, f) end
    if vrest == "/VerificationCheck" and method == "POST" then return self:check_verification(svc, f, path) end
    local vsid = vrest:match("^/Verifications/(VE%x+)$")
    if vsid and (method == "GET" or method == "POST") then return self:verification_resource(svc, vsid, method, f, path) end
  end
  return self:not_found(path)
end

--- Runs the events that are due.
-- @tparam[opt] number now monotonic seconds (default the sandbox's clock)
-- @treturn table callbacks to deliver: `{ url, body, signature, idempotency, about }`
-- @treturn number seconds until the next event (nil when none)
function Sandbox:tick(now)
  now = now or self.clock()
  local out = {}
  local ev = self.events:peek()
  while ev and ev.at <= now do
    self.events:pop()
    if ev.sid then
      local cb = self:apply_message(ev)
      if cb then out[#out + 1] = cb end
    elseif ev.call then
      local cbs = self:apply_call(ev)
      if cbs then for _, cb in ipairs(cbs) do out[#out + 1] = cb end end
    end
    ev = self.events:peek()
  end
  return out, ev and (ev.at - now) or nil
end

--- Records how a callback went (the C side calls this after delivery).
-- @tparam table cb the callback from `tick`
-- @tparam number status the HTTP status, or 0 when the request failed
-- @tparam[opt] string answer the response body (TwiML for a voice request)
function Sandbox:delivered(cb, status, answer)
  local log = self.callback_log
  log[#log + 1] = { url = cb.url, about = cb.about, status = status, at = self.clock(), body = cb.body }
  if #log > 10000 then table.remove(log, 1) end
  if cb.kind == "voice" and self.meta[cb.about] then self.meta[cb.about].answer = answer end
end

-- ---------------------------------------------------------------------------
-- inbound: what Twilio posts to a number's webhook (§g.1, §g.3)

--- Builds a signed inbound request as Twilio sends it.
-- @tparam table o `url` (the webhook), `auth_token`, `account_sid`,
--   `from`, `to`, and `body` (a message) or `voice = true` (a call;
--   `digits` adds a Gather result), `media_url` (list)
-- @treturn table `{ url, body, signature, params }`
function _M.inbound_request(o)
  local params
  if o.voice then
    params = {
      { "AccountSid", o.account_sid }, { "ApiVersion", API }, { "CallSid", o.call_sid or ("CA" .. core.random_hex(16)) },
      { "CallStatus", o.call_status or "ringing" }, { "Called", o.to }, { "Caller", o.from },
      { "Direction", "inbound" }, { "From", o.from }, { "To", o.to },
    }
    if o.digits then params[#params + 1] = { "Digits", o.digits } end
  else
    local sid = "SM" .. core.random_hex(16)
    local media = o.media_url or {}
    params = {
      { "AccountSid", o.account_sid }, { "ApiVersion", API }, { "Body", o.body or "" }, { "From", o.from },
      { "MessageSid", sid }, { "NumMedia", tostring(#media) },
      { "NumSegments", tostring((segments.count(o.body or "") or { segments = 1 }).segments) },
      { "SmsMessageSid", sid }, { "SmsSid", sid }, { "SmsStatus", "received" }, { "To", o.to },
    }
    for i, u in ipairs(media) do
      params[#params + 1] = { "MediaContentType" .. (i - 1), "image/jpeg" }
      params[#params + 1] = { "MediaUrl" .. (i - 1), u }
    end
    if o.to:find("^whatsapp:") then
      params[#params + 1] = { "WaId", (o.from:gsub("^whatsapp:%+", "")) }
      params[#params + 1] = { "ProfileName", o.profile_name or "Sandbox User" }
    end
  end
  return { url = o.url, params = params, body = core.form_encode(params),
           signature = core.signature(o.auth_token, o.url, params) }
end

-- XML text and attribute values back to what they say.
local XML_ENT = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }
local function xml_unescape(v)
  return (v:gsub("&(#?x?)(%w+);", function(kind, name)
    if kind == "" then return XML_ENT[name] end
    local n = tonumber(name, kind == "#x" and 16 or 10)
    return n and n < 128 and string.char(n) or nil -- URLs: ASCII
  end))
end

local function xml_attr(attrs, name)
  local v = attrs:match("%f[%w]" .. name .. '%s*=%s*"([^"]*)"') or attrs:match("%f[%w]" .. name .. "%s*=%s*'([^']*)'")
  return v and xml_unescape(v)
end

-- An action or Redirect URL against the URL of the TwiML that gave it.
local function resolve(base, ref)
  if ref:find("^https?://") then return ref end
  local origin, path = base:match("^(https?://[^/?#]+)([^?#]*)")
  if ref:sub(1, 1) == "/" then return origin .. ref end
  return origin .. (path:match("^(.*/)") or "/") .. ref
end

-- What Twilio does next with one voice answer: the first <Gather> (with
-- the next keys, its action or else the same URL) or <Redirect>; nil when
-- the call would end there (a <Hangup>, the end of the document, or a
-- <Gather> with no keys left to press: the caller hung up).
local function next_hop(url, twiml, keys)
  for tag, attrs, rest in twiml:gmatch("<(%a+)([^>]*)>([^<]*)") do
    if tag == "Gather" then
      if #keys == 0 then return nil end
      return resolve(url, xml_attr(attrs, "action") or url), (xml_attr(attrs, "method") or "POST"):upper(),
             table.remove(keys, 1)
    elseif tag == "Redirect" then
      local target = xml_unescape(rest):match("^%s*(.-)%s*$")
      if target == "" then return nil end
      return resolve(url, target), (xml_attr(attrs, "method") or "POST"):upper(), nil
    elseif tag == "Hangup" or tag == "Reject" then
      return nil
    end
  end
  return nil
end

--- `telua sandbox inbound` and `telua sandbox call`: posts a signed
-- inbound webhook to a URL the way Twilio does and returns the answer.
-- A call goes on as Twilio's would: each `<Gather>` gets the next keys of
-- `digits` (a comma-separated list, "1" or "2,1") and its answer is posted
-- to the Gather's action, a `<Redirect>` is followed, up to 20 requests,
-- until the TwiML ends the call or no keys are left for a `<Gather>`; the
-- answer is then every TwiML document of the call, one a line.
-- @tparam table a `to` (the webhook URL), `from` (the sender's number),
--   `body`, `number` (the Twilio number written, default +15005550006),
--   `media`, `digits`, `voice`, `auth_token`, `account_sid`
-- @return the answer body | nil, message
function _M.cli_post(a)
  if not a.to or not a.to:find("^https?://") then return nil, "--to must be the webhook URL (http or https)" end
  if not a.from then return nil, "--from NUMBER is required" end
  if not a.voice and not a.body then return nil, "--body TEXT is required" end
  if not a.auth_token or a.auth_token == "" then return nil, "TWILIO_AUTH_TOKEN is not set" end
  local http = require "telua.http"
  local function post(url, method, o)
    local req = _M.inbound_request(o)
    local target, body = url, req.body
    if method == "GET" then -- the parameters in the query; signed as the whole URL (twilio.md §a)
      target = url .. (url:find("?", 1, true) and "&" or "?") .. req.body
      body = nil
      req.signature = core.signature(o.auth_token, target, {})
    end
    local res, err = http.request{
      url = target, method = method, body = body, timeout = 15, connect_timeout = 5,
      headers = { ["Content-Type"] = body and "application/x-www-form-urlencoded" or nil,
                  ["X-Twilio-Signature"] = req.signature,
                  ["I-Twilio-Idempotency-Token"] = core.random_hex(16), ["User-Agent"] = "TwilioProxy/1.1" },
    }
    if not res then return nil, err end
    if res.status < 200 or res.status >= 300 then
      return nil, ("the webhook %s answered HTTP %d: %s"):format(url, res.status, res.body)
    end
    return res.body
  end
  local o = {
    url = a.to, auth_token = a.auth_token, account_sid = a.account_sid or ("AC" .. ("0"):rep(32)),
    from = a.from, to = a.number or "+15005550006", body = a.body, voice = a.voice,
    media_url = a.media and { a.media } or nil,
  }
  if not a.voice then
    local body, err = post(a.to, "POST", o)
    if not body then return nil, err end
    return body .. (body:sub(-1) == "\n" and "" or "\n")
  end
  local keys = {}
  for k in (a.digits or ""):gmatch("[^,%s]+") do keys[#keys + 1] = k end
  o.call_sid = "CA" .. core.random_hex(16)
  local out, url, method = {}, a.to, "POST"
  for hop = 1, 20 do
    o.url, o.call_status = url, hop == 1 and "ringing" or "in-progress"
    local body, err = post(url, method, o)
    if not body then return nil, err end
    out[#out + 1] = (body:gsub("\n+$", ""))
    local nurl, nmethod, pressed = next_hop(url, body, keys)
    if not nurl then break end
    url, method, o.digits = nurl, nmethod, pressed
  end
  return concat(out, "\n") .. "\n"
end

return _M
