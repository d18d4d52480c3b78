-- Inbound SMS at /sms/incoming answered from templates. STOP, START and
-- HELP (and their synonyms) are handled by the router before these rules.
local twiml = require "telua.twiml"
local template = require "telua.template"
local templates = require "lib.templates"

local function answer(text, vars)
  local body = assert(template.render(text, vars))
  local r = twiml.messaging()
  r:message(body)
  return r
end

return {
  messages = {
    { path = "/sms/incoming", keyword = "HOURS", handler = function(req)
        return answer(templates.hours, {})
      end },
    { path = "/sms/incoming", handler = function(req)
        return answer(templates.welcome, { from = req.from, text = req.text or "" })
      end },
  },
  status = {
    ["/status/messages"] = function() end, -- the router logs every status callback
  },
}
