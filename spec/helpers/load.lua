-- A load client for the host specs: POSTs one signed request to
-- 127.0.0.1:PORT again and again (new connection each time) until STOP
-- exists or SECONDS pass, writing "status generation body" per answer to OUT.
--   lua5.4 spec/helpers/load.lua PORT PATH SIGNATURE BODY OUT STOP SECONDS
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"
local port, path, sig, body, out, stop, seconds = arg[1], arg[2], arg[3], arg[4], arg[5], arg[6], tonumber(arg[7])
local f = assert(io.open(out, "w"))
local deadline = socket.gettime() + seconds
while socket.gettime() < deadline do
  local probe = io.open(stop)
  if probe then probe:close() break end
  local chunks = {}
  local _, code, headers = http.request{
    url = "http://127.0.0.1:" .. port .. path, method = "POST", sink = ltn12.sink.table(chunks),
    source = ltn12.source.string(body),
    headers = { ["content-type"] = "application/x-www-form-urlencoded", ["x-twilio-signature"] = sig,
                ["content-length"] = tostring(#body) },
  }
  local text = table.concat(chunks):gsub("\n", " ")
  f:write(tostring(code), " ", tostring(headers and headers["x-telua-generation"]), " ", text, "\n")
end
f:close()
