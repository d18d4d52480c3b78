-- Shared helpers for telua's specs: fixtures and XML canonical form.
local cjson = require "cjson.safe"

local _M = {}

local root = (debug.getinfo(1, "S").source:match("^@(.*)/spec/helpers/init%.lua$")) or "."
_M.root = root

function _M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- A fixture written by a generator under spec/oracle (an independent source).
function _M.fixture(name)
  local data = assert(cjson.decode(_M.read_file(root .. "/spec/fixtures/" .. name)))
  return data
end

local ENT = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }
local function unescape(s)
  return (s:gsub("&(#?[xX]?)(%w+);", function(kind, v)
    if kind == "" then return ENT[v] end
    local n = tonumber(v, (kind == "#x" or kind == "#X") and 16 or 10)
    if n < 128 then return string.char(n) end
    if n < 0x800 then return string.char(0xC0 + math.floor(n / 64), 0x80 + n % 64) end
    return string.char(0xE0 + math.floor(n / 4096), 0x80 + math.floor(n / 64) % 64, 0x80 + n % 64)
  end))
end

local function esc(s) return (s:gsub("[&<>\"\r\n\t]", function(c) return string.format("&#%d;", c:byte()) end)) end

-- Canonical form of an XML document: declaration dropped, attributes
-- sorted, entities resolved then escaped one way, empty elements written
-- as start+end tags. Two documents are semantically equal when their
-- canonical forms are equal. Raises on input it cannot parse.
function _M.canonical_xml(xml)
  local s = xml:gsub("^%s*<%?xml.-%?>", "")
  local out, pos, stack = {}, 1, {}
  while pos <= #s do
    local lt = s:find("<", pos, true)
    if not lt then
      out[#out + 1] = esc(unescape(s:sub(pos)))
      break
    end
    if lt > pos then out[#out + 1] = esc(unescape(s:sub(pos, lt - 1))) end
    local gt = s:find(">", lt, true)
    assert(gt, "unterminated tag")
    local tag = s:sub(lt + 1, gt - 1)
    if tag:sub(1, 1) == "/" then
      local name = tag:sub(2)
      assert(table.remove(stack) == name, "mismatched </" .. name .. ">")
      out[#out + 1] = "</" .. name .. ">"
    else
      local selfclose = tag:sub(-1) == "/"
      if selfclose then tag = tag:sub(1, -2) end
      local name, rest = tag:match("^([^%s]+)(.*)$")
      local attrs = {}
      for k, v in rest:gmatch('([^%s=]+)%s*=%s*"([^"]*)"') do attrs[#attrs + 1] = { k, unescape(v) } end
      table.sort(attrs, function(a, b) return a[1] < b[1] end)
      local parts = { "<" .. name }
      for _, a in ipairs(attrs) do parts[#parts + 1] = " " .. a[1] .. '="' .. esc(a[2]) .. '"' end
      out[#out + 1] = table.concat(parts) .. ">"
      if selfclose then out[#out + 1] = "</" .. name .. ">" else stack[#stack + 1] = name end
    end
    pos = gt + 1
  end
  assert(#stack == 0, "unclosed <" .. tostring(stack[#stack]) .. ">")
  return table.concat(out)
end

-- Asks Python's zoneinfo (spec/helpers/tzoracle.py, which says what it
-- answers) with one request table; returns its answer table.
function _M.tz_oracle(req)
  local inp = os.tmpname()
  local f = assert(io.open(inp, "wb"))
  f:write(cjson.encode(req))
  f:close()
  local p = assert(io.popen("/usr/bin/python3 " .. root .. "/spec/helpers/tzoracle.py < " .. inp))
  local text = p:read("*a")
  p:close()
  os.remove(inp)
  return assert(cjson.decode(text), "tzoracle.py: " .. text)
end

-- A fresh temporary directory path (created).
function _M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

function _M.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. p))
  return p
end


-- Shell helpers for the specs that run the real binaries.
function _M.quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

function _M.sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

-- A free loopback port (bound, then released).
function _M.free_port()
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- Starts a server that prints "... port N" as its first line; stderr goes
-- to log. Returns { pipe, pid, port }.
function _M.spawn(cmd, log)
  local p = assert(io.popen("exec sh -c " .. _M.quote("echo $$; exec " .. cmd .. " 2>>" .. log)))
  local pid = p:read("*l")
  local port = (p:read("*l") or ""):match("port (%d+)")
  assert(port, "did not start: " .. _M.read_file(log))
  return { pipe = p, pid = pid, port = tonumber(port) }
end

function _M.kill(proc)
  os.execute("kill " .. proc.pid .. " 2>/dev/null")
  proc.pipe:close()
end

return _M
