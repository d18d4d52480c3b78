--- Opt-out, opt-in and help keywords of Twilio's default STOP filtering.
--
-- Keywords and replies are those Twilio applies on long codes by default
-- ("Twilio support for opt-out keywords (SMS STOP filtering)", Twilio Help
-- Center; REVOKE and OPTOUT from the Advanced Opt-Out guide). Only a
-- single-word message counts: the body, trimmed and case-folded, must equal
-- the keyword ("STOP PLEASE" does not opt out).
--
-- @module telua.optout

local type, upper = type, string.upper

local _M = { _VERSION = "0.1.0" }

_M.OPT_OUT = { "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT" }
_M.OPT_IN = { "START", "YES", "UNSTOP" }
_M.HELP = { "HELP", "INFO" }

--- Twilio's standard replies.
_M.REPLIES = {
  STOP = "You have successfully been unsubscribed. You will not receive any more messages "
      .. "from this number. Reply START to resubscribe.",
  START = "You have successfully been re-subscribed to messages from this number. Reply HELP "
       .. "for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
  HELP = "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
}

local KIND = {}
for _, k in ipairs(_M.OPT_OUT) do KIND[k] = "STOP" end
for _, k in ipairs(_M.OPT_IN) do KIND[k] = "START" end
for _, k in ipairs(_M.HELP) do KIND[k] = "HELP" end

--- Classifies a message body.
-- @tparam string body the inbound `Body`
-- @treturn[1] string `"STOP"`, `"START"` or `"HELP"` (Twilio's `OptOutType` values)
-- @treturn[1] string the keyword as matched (upper case)
-- @treturn[2] nil when the body is not a keyword
function _M.classify(body)
  if type(body) ~= "string" or #body > 32 then return nil end
  local word = body:match("^%s*(%S+)%s*$")
  if not word then return nil end
  word = upper(word)
  local kind = KIND[word]
  if kind then return kind, word end
  return nil
end

return _M
