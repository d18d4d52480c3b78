-- Bench rule: a signed inbound SMS answered by a routing rule with TwiML.
local twiml = require "telua.twiml"
return {
  messages = {
    { path = "/sms/incoming", handler = function(req)
        local r = twiml.messaging()
        r:message("Thanks " .. req.from .. ", we got: " .. req.text)
        return r
      end },
  },
}
