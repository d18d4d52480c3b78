-- The classic Twilio IVR menu at /voice/incoming.
--   1 -> sales (Dial), 2 -> support (Dial), 3 -> leave a message (Record
--   with a transcription callback); any other key is told so and hears the
--   menu again; silence (the Gather times out) repeats the menu.
local twiml = require "telua.twiml"
local flow = require "telua.flow"

local MENU = "Thanks for calling telua. For sales, press 1. For support, press 2. "
          .. "To leave a message, press 3."

local menu = flow.new{
  start = "menu",
  steps = {
    menu = function(call)
      local r = twiml.voice()
      local g = r:gather{ num_digits = 1, action = call:url("choice"), method = "POST", timeout = 5 }
      g:say(MENU)
      -- no key pressed: Twilio falls through to the next verb
      r:redirect(call:url("menu"), { method = "POST" })
      return r
    end,

    choice = function(call)
      local r = twiml.voice()
      local digit = call.digits
      if digit == "1" then
        r:say("Connecting you to sales.")
        r:dial(call.settings.sales_number, { action = call:url("after_dial"), timeout = 20 })
      elseif digit == "2" then
        r:say("Connecting you to support.")
        r:dial(call.settings.support_number, { action = call:url("after_dial"), timeout = 20 })
      elseif digit == "3" then
        r:say("Please leave a message after the beep. Press the pound key when you are done.")
        r:record{ action = call:url("recorded"), max_length = 120, finish_on_key = "#",
                  play_beep = true, transcribe = true,
                  transcribe_callback = "/voice/transcription" }
      else
        r:say("Sorry, that is not a valid choice.")
        r:redirect(call:url("menu"), { method = "POST" })
      end
      return r
    end,

    after_dial = function(call)
      local r = twiml.voice()
      if call.params.DialCallStatus ~= "completed" and call.params.DialCallStatus ~= "answered" then
        r:say("Nobody is available right now.")
        r:redirect(call:url("menu"), { method = "POST" })
      else
        r:hangup()
      end
      return r
    end,

    recorded = function()
      local r = twiml.voice()
      r:say("Thank you for your message. Goodbye.")
      r:hangup()
      return r
    end,
  },
}

return {
  -- the numbers calls are put through to (settings, not code: `telua check`
  -- warns about phone numbers written in handlers)
  settings = { sales_number = "+14155550101", support_number = "+14155550102" },
  voice = { ["/voice/incoming"] = menu },
  status = {
    ["/voice/transcription"] = function(req)
      local p = req.params
      -- (the text itself stays out of the log: it is what the caller said)
      req.log("info", string.format("transcription for %s (%s): %d characters", tostring(p.CallSid),
                                    tostring(p.RecordingUrl), #(p.TranscriptionText or "")))
    end,
    ["/status/calls"] = function() end, -- the router logs every status callback
  },
}
