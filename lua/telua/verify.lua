--- Phone verification with an attempt limit, for rules.
--
-- Starts and checks Twilio Verify v2 verifications through `telua.client`
-- and counts, per number in the store, the starts: at most `limit`
-- (default 3) per `window` seconds (default 600), stricter than Twilio's
-- own 5 sends (60203); and the checks: at most `check_limit` (default 3)
-- in the same window, stricter than the 5 check attempts Twilio allows a
-- verification (60202), so a guesser is stopped earlier. Over a limit
-- nothing reaches Twilio and the answer says how long to wait. A number
-- is counted in its E.164 form (`telua.e164.normalize` with
-- `default_region`), so `(415) 555-0100` and `+14155550100` are one
-- number; what is no valid number is counted as written, without spaces.
-- In the host the REST calls yield (`telua.http`), so a rule using this
-- does not hold its worker.
--
--     local verify = require("telua.verify").new{ service_sid = "VA...", store = req.store }
--     local v, err = verify:start(req.from, "sms")
--     if not v and err.code == 60203 then
--       return reply(("Too many codes asked for; try again in %d minutes."):format(math.ceil(err.retry_after / 60)))
--     end
--     local ok, why = verify:check(req.from, code)   -- true | false (wrong code) | nil, err
--
-- @module telua.verify

local client_mod = require "telua.client"
local core = require "telua.core"
local e164 = require "telua.e164"

local type, error, setmetatable, tostring, ipairs, ceil = type, error, setmetatable, tostring, ipairs, math.ceil

local _M = { _VERSION = "0.1.0", LIMIT = 3, CHECK_LIMIT = 3, WINDOW = 600 }

local Verify = {}
Verify.__index = Verify

--- Makes a helper.
-- @tparam table opts `service_sid` (VA…, required), `store` (a
--   `telua.store`, required: it keeps the counts), `client` (default: a
--   `telua.client` from the environment's credentials), `limit` (starts
--   per number per window), `check_limit` (checks per number per window),
--   `window` (seconds), `default_region` (ISO 3166 alpha-2, for numbers
--   written without their country code: the counting and the client)
-- @return the verifier, or `nil, message` when no client was given and
--   none can be made from the credentials (`telua.client.new`)
-- @raise on a missing service SID or store
function _M.new(opts)
  if type(opts) ~= "table" then error("verify.new needs a table", 2) end
  if type(opts.service_sid) ~= "string" or not opts.service_sid:find("^VA%x+$") then
    error("verify.new: service_sid must be a Verify service SID (VA...)", 2)
  end
  if type(opts.store) ~= "table" or not opts.store.counter_hit then error("verify.new: store is required", 2) end
  for _, k in ipairs{ "limit", "check_limit", "window" } do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v < 1 or v ~= math.floor(v)) then
      error("verify.new: " .. k .. " must be a whole number >= 1", 2)
    end
  end
  if opts.default_region ~= nil and not e164.region_known(opts.default_region) then
    error("verify.new: default_region must be a region code libphonenumber knows (e.g. \"US\")", 2)
  end
  local client = opts.client
  if not client then
    local err
    client, err = client_mod.new{ default_region = opts.default_region }
    if not client then return nil, err end
  end
  return setmetatable({
    service_sid = opts.service_sid,
    store = opts.store,
    client = client,
    limit = opts.limit or _M.LIMIT,
    check_limit = opts.check_limit or _M.CHECK_LIMIT,
    window = opts.window or _M.WINDOW,
    region = opts.default_region,
  }, Verify)
end

-- The number as counted: its E.164 form, or as written without spaces.
local function counted(self, to)
  return e164.normalize(to, self.region) or (to:gsub("%s", ""))
end

-- One more attempt on counter ns for the number: nil and the number's
-- count in the window when it may go, else the error to answer with.
local function over(self, ns, to, limit, code, what)
  local allowed, count, wait = self.store:counter_hit(ns, counted(self, to), limit, self.window)
  if allowed == nil then
    return client_mod.error{ message = "verify store: " .. tostring(count), where = "client" }
  end
  if allowed then return nil, count end
  return client_mod.error{
    code = code, status = 429, where = "client", retryable = true, retry_after = wait,
    message = ("Max %s attempts reached: %d in %d minutes; try again in %d seconds")
      :format(what, limit, ceil(self.window / 60), wait),
  }
end

--- How long after an SMS code a voice call follows when the code was not
-- approved meanwhile (seconds; `fallback.after`).
_M.FALLBACK_AFTER = 30

--- Sends a code, unless the number asked too often.
-- @tparam string to the number (E.164, or national with the client's default region)
-- @tparam[opt="sms"] string channel `sms`, `call`, `whatsapp`, `email`
-- @tparam[opt] table opts `locale` (the code's language, Verify's
--   `Locale`), `fallback` (`{ channel = "call", after = SECONDS }`, or
--   `"call"` for `FALLBACK_AFTER`): when the code is not approved within
--   `after` seconds (an SMS that was not delivered, or not read), the
--   same verification goes on by a voice call, once (Verify reads the
--   code; a second start within its lifetime changes its channel). The
--   call is queued in the store's outbox and sent by the host's sender,
--   paced with the other calls and skipped when `check` approved the code
--   first or the number opted out. Twilio counts it as one more send of
--   the verification (of its 5); telua's `limit` counts only this start.
-- @treturn table the Verification (`sid`, `status` "pending", ...) plus
--   `attempt` (this number's count in the window) and `fallback_id` (the
--   outbox entry of the call)
-- @return or `nil, err`: err.code 60203 with `retry_after` (seconds until
--   the window ends) when over the limit; otherwise the client's error
-- @raise on a fallback that is not a call
function Verify:start(to, channel, opts)
  if type(to) ~= "string" then error("verify:start: to must be a string", 2) end
  opts = opts or {}
  local fb = opts.fallback
  if fb == "call" then fb = { channel = "call" } end
  if fb ~= nil and (type(fb) ~= "table" or fb.channel ~= "call" or
                    (fb.after ~= nil and (type(fb.after) ~= "number" or fb.after <= 0))) then
    error('verify:start: fallback must be "call" or { channel = "call", after = SECONDS > 0 }', 2)
  end
  local refused, count = over(self, "verify", to, self.limit, 60203, "send")
  if refused then return nil, refused end
  local v, err = self.client.verify.start(self.service_sid, { to = to, channel = channel or "sms", locale = opts.locale })
  if not v then return nil, err end
  v.attempt = count
  if fb then
    local number = counted(self, to)
    local id, qerr = self.store.outbox:enqueue({ to = number, from = self.service_sid, channel = "call", locale = opts.locale },
      { dedupe = "verify-fallback:" .. tostring(v.sid), not_before = core.time() + (fb.after or _M.FALLBACK_AFTER),
        policy = { channel = "verify", hop = 1, service = self.service_sid, verification = v.sid } })
    if not id then return nil, client_mod.error{ message = "verify: the call fallback: " .. tostring(qerr), where = "client" } end
    v.fallback_id = id
  end
  return v
end

--- Checks a code, unless the number was checked too often.
-- @treturn boolean true when approved, false when the code is wrong
-- @return or `nil, err`: err.code 60202 with `retry_after` (seconds until
--   the window ends) past `check_limit` checks of this number in the
--   window (nothing is sent to Twilio then); from Twilio 20404 (expired,
--   already approved or never started) or 60202 (its own 5 attempts)
function Verify:check(to, code)
  if type(to) ~= "string" or type(code) ~= "string" then error("verify:check: to and code must be strings", 2) end
  local refused = over(self, "verify_check", to, self.check_limit, 60202, "check")
  if refused then return nil, refused end
  local r, err = self.client.verify.check(self.service_sid, { to = to, code = code })
  if not r then return nil, err end
  if r.status == "approved" then -- a call fallback still queued for this number is not needed now
    self.store:kv_set("verify_approved", counted(self, to), "1", self.window)
  end
  return r.status == "approved", r
end

return _M
