-- The game server's rules: its players reply to their verification code
-- by SMS, and ask for their level. `game` is the server's own C module
-- (examples/game/game_server.c), given to the rules by telua_config.modules.
local game = require "game"
local twiml = require "telua.twiml"

local function reply(text)
  local r = twiml.messaging()
  r:message(text)
  return r
end

return {
  messages = {
    { path = "/sms/incoming", match = "^%s*%d%d%d%d%d%d%s*$", handler = function(req)
        local player = game.player(req.from)
        if not player then return reply("This number is not linked to a player.") end
        if game.verify(req.from, req.text:match("%d+")) then
          return reply(("Welcome, %s! Your phone is linked (level %d)."):format(player.name, player.level))
        end
        return reply("That code is not right (or was used). Ask the game for a new one.")
      end },
    { path = "/sms/incoming", keyword = "LEVEL", handler = function(req)
        local player = game.player(req.from)
        if not player then return reply("This number is not linked to a player.") end
        return reply(("%s is level %d."):format(player.name, player.level))
      end },
  },
  status = {
    ["/status/messages"] = function() return nil end, -- the game hears statuses through on_event
  },
}
