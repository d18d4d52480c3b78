-- Bench rule for BREAKDOWN=1 sh bench/webhook.sh: the router's work (E.164
-- of From/To, opt-out lookup, routing) with a constant answer, so the
-- TwiML building of bench/rules/sms.lua is left out.
return {
  messages = {
    { path = "/sms/incoming", handler = function()
        return '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Thanks</Message></Response>'
      end },
  },
}
