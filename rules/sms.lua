-- Inbound SMS at /sms/incoming. STOP, START and HELP (and their synonyms)
-- are handled by the router before these rules.
--
-- ORDER 1234 is answered by a REST send (req.send queues it in the outbox;
-- the host's sender paces and sends it), not by TwiML. Its status callbacks
-- come back to /status/messages, where the router moves the message log
-- forward only. An undelivered message with a transient carrier error
-- (30003, 30008) is sent again after resend_backoff seconds, doubling up
-- to resend_max times; a 21610 answer records the opt-out.
local twiml = require "telua.twiml"
local template = require "telua.template"
local verify = require "telua.verify"
local templates = require "lib.templates"

-- CODE / VERIFY 123456: phone verification through Twilio Verify, at most
-- 3 codes per number per 10 minutes (telua.verify). The service comes from
-- TWILIO_VERIFY_SERVICE_SID; the sandbox accepts any VA... SID.
local VERIFY_SERVICE = os.getenv("TWILIO_VERIFY_SERVICE_SID") or ("VA" .. ("0"):rep(32))
local function verifier(req)
  local v, err = verify.new{ service_sid = VERIFY_SERVICE, store = req.store, default_region = "US" }
  if not v then req.log("error", "verify: " .. err) end -- no Twilio credentials
  return v
end

local function answer(text, vars)
  local body = assert(template.render(text, vars or {}))
  local r = twiml.messaging()
  r:message(body)
  return r
end

return {
  settings = {
    default_region = "US",
    status_callback = "/status/messages", -- for req.send: on this host's public URL
    resend_codes = { [30003] = true, [30008] = true },
    resend_backoff = 60, resend_max = 3,
  },
  messages = {
    { path = "/sms/incoming", keyword = "HOURS", handler = function()
        return answer(templates.hours, {})
      end },
    { path = "/sms/incoming", keyword = "ORDER", handler = function(req)
        local order = req.args and req.args:match("^#?(%d+)$")
        if not order then return answer(templates.order_usage) end
        local id, err = req.send{ to = req.from,
                                  body = assert(template.render(templates.order_status, { order = order })) }
        if not id then
          req.log("warn", "ORDER " .. order .. " for " .. tostring(req.from) .. ": " .. tostring(err))
          return answer(templates.order_later)
        end
        return nil -- no TwiML reply: the answer goes out by REST
      end },
    { path = "/sms/incoming", keyword = "CODE", handler = function(req)
        local vf = verifier(req)
        if not vf then return answer(templates.code_failed) end
        local v, err = vf:start(req.from, "sms")
        if v then return nil end -- Twilio texts the code itself
        if err.code == 60203 and err.retry_after then
          return answer(templates.code_wait, { minutes = tostring(math.ceil(err.retry_after / 60)) })
        end
        req.log("warn", "CODE for " .. tostring(req.from) .. ": " .. tostring(err))
        return answer(templates.code_failed)
      end },
    { path = "/sms/incoming", keyword = "VERIFY", handler = function(req)
        local code = req.args and req.args:match("^(%d%d%d%d%d?%d?%d?%d?%d?%d?)$")
        if not code then return answer(templates.verify_usage) end
        local vf = verifier(req)
        local ok = vf and vf:check(req.from, code)
        return answer(ok and templates.verified or templates.not_verified)
      end },
    { path = "/sms/incoming", handler = function(req)
        return answer(templates.welcome, { from = req.from, text = req.text or "" })
      end },
  },
  status = {
    ["/status/messages"] = function() end, -- the router updates the message log
  },
}
