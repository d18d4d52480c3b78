-- A slowloris client for the host specs: holds N connections to
-- 127.0.0.1:PORT from local addresses 127.0.0.FIRST and up (PER_ADDR each),
-- sends one byte of a request's headers on each every second, reconnects
-- any the server closes, and stops after SECONDS. Prints "open N" once all
-- are connected, and at the end "opened N closed_by_server N".
--   lua5.4 spec/helpers/trickle.lua PORT N PER_ADDR FIRST SECONDS
local socket = require "socket"
local port, n, per, first, seconds = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4]),
                                     tonumber(arg[5])
local HEADERS = "POST /sms/incoming HTTP/1.1\r\nHost: telua.example.com\r\nContent-Type: " ..
                "application/x-www-form-urlencoded\r\nX-Twilio-Signature: " .. ("x"):rep(4000)
local conns, opened, closed = {}, 0, 0

local function connect(i)
  local s = socket.tcp()
  local addr = "127.0.0." .. (first + (i - 1) // per)
  assert(s:bind(addr, 0))
  s:settimeout(0)
  s:connect("127.0.0.1", port) -- in progress
  opened = opened + 1
  conns[i] = { sock = s, pos = 1 }
end

for i = 1, n do connect(i) end
io.stdout:write("open ", n, "\n")
io.stdout:flush()
local deadline = socket.gettime() + seconds
while socket.gettime() < deadline do
  local t0 = socket.gettime()
  for i = 1, n do
    local c = conns[i]
    local _, err = c.sock:send(HEADERS:sub(c.pos, c.pos))
    if err == "closed" or (err and err ~= "timeout" and err ~= "Operation already in progress") then
      c.sock:close()
      closed = closed + 1
      connect(i)
    elseif not err then
      c.pos = c.pos % #HEADERS + 1
    end
  end
  socket.sleep(math.max(0, 1 - (socket.gettime() - t0)))
end
io.stdout:write("opened ", opened, " closed_by_server ", closed, "\n")
for i = 1, n do conns[i].sock:close() end
