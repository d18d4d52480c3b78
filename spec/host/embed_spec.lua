-- The embedding API end to end: examples/game/game_server.c (built by
-- `make examples` against libtelua.so through pkg-config) embeds the host,
-- gives its rules the `game` C module, sends a player a verification code
-- with telua_send through the outbox to `telua sandbox` (standing in for
-- Twilio), and the player's SMS reply goes through the rules back into the
-- game, whose loop sees the verified player. Events and log lines reach
-- the program's callbacks.
local cjson = require "cjson"
local socket = require "socket"
local h = require "spec.helpers"

local ROOT = h.root
local BUILD = os.getenv("TELUA_BUILD") or (ROOT .. "/build")
local SID = "AC" .. ("5"):rep(32)
local TOKEN = "embed-spec-token-77"
local ENV = "env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN .. " "
local q, sh = h.quote, h.sh
local PLAYER = "+14155550111"

local function wait_for(fn, seconds)
  local deadline = socket.gettime() + (seconds or 10)
  while socket.gettime() < deadline do
    local v = fn()
    if v then return v end
    socket.sleep(0.05)
  end
end

describe("a game server embedding telua", function()
  local dir, sandbox, game

  setup(function()
    dir = h.tmpdir()
    sandbox = h.spawn(ENV .. BUILD .. "/telua sandbox --listen 127.0.0.1:0 --delivery-ms 50", dir .. "/sandbox.log")
  end)

  teardown(function()
    if game then os.execute("kill " .. game.pid .. " 2>/dev/null") game.pipe:close() end
    h.kill(sandbox)
    os.execute("rm -rf " .. dir)
  end)

  it("sends the player a code, and the player's reply verifies them in the game", function()
    local port = h.free_port()
    local base = "http://127.0.0.1:" .. port
    game = h.spawn(ENV .. "TELUA_TWILIO_BASE_URL=http://127.0.0.1:" .. sandbox.port .. " " .. BUILD ..
                   "/examples/game_server --rules " .. ROOT .. "/examples/game/rules --listen 127.0.0.1:" .. port ..
                   " --public-url " .. base .. " --store sqlite:" .. dir .. "/game.db --player " .. PLAYER ..
                   " --timeout 30", dir .. "/game.log")
    assert.equal(port, game.port)
    local sent = game.pipe:read("*l")
    assert.matches("^game: code sent to %+14155550111 %(outbox %d+%)$", sent)
    local outbox_id = sent:match("outbox (%d+)")

    -- the game hears the message go out and be delivered (on_event: the
    -- sender thread's "queued", then the status callback's "delivered")
    local lines = {}
    for line in game.pipe:lines() do
      lines[#lines + 1] = line
      if line:find(" is delivered", 1, true) then break end
    end
    local early = table.concat(lines, "\n")
    assert.matches("event: message " .. outbox_id .. " to %+14155550111 is queued", early)
    assert.matches("event: message " .. outbox_id .. " to %+14155550111 is delivered", early)

    -- the code, as the player's phone received it (the sandbox's message list)
    local msg = wait_for(function()
      local list = cjson.decode(sh("curl -s 'http://127.0.0.1:" .. sandbox.port ..
                                   "/-/sandbox/messages?To=%2B14155550111'")).messages
      return list and list[1]
    end)
    assert.truthy(msg, "the code never reached the sandbox")
    local code = msg.body:match("code is (%d%d%d%d%d%d)")
    assert.truthy(code, msg.body)
    assert.equal("+15005550006", msg.from)

    -- a wrong code first, then the right one
    local function reply(text)
      return sh(ENV .. BUILD .. "/telua sandbox inbound --to " .. base .. "/sms/incoming --from " .. PLAYER ..
                " --number +15005550006 --body " .. q(text))
    end
    local wrong = code:sub(1, 5) .. ((tonumber(code:sub(6)) + 1) % 10)
    assert.matches("That code is not right", reply(wrong))
    assert.matches("Welcome, Ana! Your phone is linked %(level 12%)%.", reply(code))

    -- the game loop sees it and ends; its callbacks saw the events
    lines = {}
    for line in game.pipe:lines() do lines[#lines + 1] = line end
    local out = table.concat(lines, "\n")
    assert.matches("game: player Ana %(%+14155550111, level 12%) verified", out)
    assert.matches("event: inbound from %+14155550111", out)
    assert.is_true(game.pipe:close()) -- exit status 0
    game = nil
    local log = h.read_file(dir .. "/game.log")
    assert.matches("%[game%] telua info: ", log) -- telua's lines went through the log callback
    assert.is_nil(log:find(TOKEN, 1, true))
    assert.is_nil(log:find(code, 1, true)) -- no message body in any line
  end)
end)
