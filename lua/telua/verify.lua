--- Phone verification with an attempt limit, for rules.
--
-- Starts and checks Twilio Verify v2 verifications through `telua.client`
-- and counts the starts per number in the store: at most `limit` (default
-- 3) per `window` seconds (default 600), stricter than Twilio's own 5
-- sends (60203). Over the limit nothing is sent and the answer says how
-- long to wait. In the host the REST calls yield (`telua.http`), so a rule
-- using this does not hold its worker.
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

local type, error, setmetatable, tostring, ceil = type, error, setmetatable, tostring, math.ceil

local _M = { _VERSION = "0.1.0", LIMIT = 3, WINDOW = 600 }

local Verify = {}
Verify.__index = Verify

--- Makes a helper.
-- @tparam table opts `service_sid` (VA…, required), `store` (a
--   `telua.store`, required: it keeps the counts), `client` (default: a
--   `telua.client` from the environment's credentials), `limit`, `window`
--   (seconds), `default_region`
-- @return the verifier, or `nil, message` when no client was given and
--   none can be made from the credentials (`telua.client.new`)
-- @raise on a missing service SID or store
function _M.new(opts)
  if type(opts) ~= "table" then error("verify.new needs a table", 2) end
  if type(opts.service_sid) ~= "string" or not opts.service_sid:find("^VA%x+$") then
    error("verify.new: service_sid must be a Verify service SID (VA...)", 2)
  end
  if type(opts.store) ~= "table" or not opts.store.counter_hit then error("verify.new: store is required", 2) end
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
    window = opts.window or _M.WINDOW,
  }, Verify)
end

--- Sends a code, unless the number asked too often.
-- @tparam string to the number (E.164, or national with the client's default region)
-- @tparam[opt="sms"] string channel `sms`, `call`, `whatsapp`, `email`
-- @treturn table the Verification (`sid`, `status` "pending", ...) plus
--   `attempt` (this number's count in the window)
-- @return or `nil, err`: err.code 60203 with `retry_after` (seconds until
--   the window ends) when over the limit; otherwise the client's error
function Verify:start(to, channel)
  if type(to) ~= "string" then error("verify:start: to must be a string", 2) end
  local key = to:gsub("%s", "")
  local allowed, count, wait = self.store:counter_hit("verify", key, self.limit, self.window)
  if allowed == nil then
    return nil, client_mod.error{ message = "verify store: " .. tostring(count), where = "client" }
  end
  if not allowed then
    return nil, client_mod.error{
      code = 60203, status = 429, where = "client", retryable = true, retry_after = wait,
      message = ("Max send attempts reached: %d codes in %d minutes; try again in %d seconds")
        :format(self.limit, ceil(self.window / 60), wait),
    }
  end
  local v, err = self.client.verify.start(self.service_sid, { to = to, channel = channel or "sms" })
  if not v then return nil, err end
  v.attempt = count
  return v
end

--- Checks a code.
-- @treturn boolean true when approved, false when the code is wrong
-- @return or `nil, err` (20404: expired, already approved or never started;
--   60202: too many wrong codes)
function Verify:check(to, code)
  if type(to) ~= "string" or type(code) ~= "string" then error("verify:check: to and code must be strings", 2) end
  local r, err = self.client.verify.check(self.service_sid, { to = to, code = code })
  if not r then return nil, err end
  return r.status == "approved", r
end

return _M
