-- The README's five-minute tour, walked as a newcomer would: `make run`'s
-- script (tools/run.sh: the host and `telua sandbox`, no Twilio account)
-- in a copy of the checkout's rules, then every command of the tour's
-- shell blocks as written, on other ports; what they print is compared
-- with the `#` lines under them ("..." stands for any text).
local h = require "spec.helpers"
local socket = require "socket"

local ROOT = h.root
local BUILD = os.getenv("TELUA_BUILD") or (ROOT .. "/build")
local q, sh = h.quote, h.sh

-- The tour's shell blocks: { commands = {...}, expected = {...} } each,
-- without the block that is only `make run`.
local function tour_blocks()
  local readme = h.read_file(ROOT .. "/README.md")
  local section = assert(readme:match("\n## Five%-minute tour\n(.-)\n## "), "no tour in the README")
  local blocks = {}
  for body in section:gmatch("```sh\n(.-)```") do
    if body ~= "make run\n" then
      local b = { commands = {}, expected = {} }
      for line in body:gmatch("([^\n]*)\n") do
        if line:sub(1, 2) == "# " then b.expected[#b.expected + 1] = line:sub(3)
        else b.commands[#b.commands + 1] = line end
      end
      blocks[#blocks + 1] = b
    end
  end
  return blocks
end

local function pattern(expected)
  local parts = {}
  for piece in (expected .. "..."):gmatch("(.-)%.%.%.") do parts[#parts + 1] = (piece:gsub("%p", "%%%0")) end
  local p = table.concat(parts, ".-")
  if expected:sub(-3) ~= "..." then p = p:gsub("%.%-$", "") end
  return "^" .. p .. "$"
end

describe("the README's five-minute tour", function()
  local work, pgid

  teardown(function()
    if pgid then os.execute("kill -TERM -" .. pgid .. " 2>/dev/null") end -- the group (dash: no "--")
    if work then os.execute("rm -rf " .. q(work)) end
  end)

  it("prints what the README says it prints", function()
    local blocks = tour_blocks()
    assert.is_true(#blocks >= 6)
    work = h.tmpdir()
    assert(os.execute("cp -r " .. q(ROOT .. "/rules") .. " " .. q(work .. "/rules") .. " && mkdir " .. q(work .. "/tools") ..
                      " && cp " .. q(ROOT .. "/tools/run.sh") .. " " .. q(work .. "/tools/") ..
                      " && ln -s " .. q(BUILD) .. " " .. q(work .. "/build")))
    local hp, sp, ap = h.free_port(), h.free_port(), h.free_port()
    while sp == hp do sp = h.free_port() end
    while ap == hp or ap == sp do ap = h.free_port() end
    -- `make run` is `sh tools/run.sh BUILD` after the build; in its own
    -- process group, so the teardown stops the host and the sandbox with it
    local p = io.popen("cd " .. q(work) .. " && env -u TWILIO_ACCOUNT_SID -u TWILIO_AUTH_TOKEN TELUA_LISTEN=127.0.0.1:" ..
                       hp .. " TELUA_SANDBOX_LISTEN=127.0.0.1:" .. sp .. " TELUA_ADMIN_LISTEN=127.0.0.1:" .. ap ..
                       " setsid sh tools/run.sh build > run.out 2> run.log & echo $!")
    pgid = p:read("*l")
    p:close()
    local up = false
    for _ = 1, 200 do
      if sh("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:" .. hp .. "/-/health") == "200" and
         sh("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:" .. sp .. "/-/sandbox/messages") == "200" then
        up = true
        break
      end
      socket.sleep(0.05)
    end
    assert(up, "make run's host did not come up: " .. h.read_file(work .. "/run.log"))

    local script, expected = { "set -u" }, {}
    for _, b in ipairs(blocks) do
      for _, c in ipairs(b.commands) do
        script[#script + 1] = (c:gsub("127%.0%.0%.1:8080", "127.0.0.1:" .. hp):gsub("127%.0%.0%.1:8090", "127.0.0.1:" .. sp)
                                :gsub("127%.0%.0%.1:9180", "127.0.0.1:" .. ap))
      end
      for _, e in ipairs(b.expected) do expected[#expected + 1] = e end
    end
    local f = assert(io.open(work .. "/tour.sh", "wb"))
    f:write(table.concat(script, "\n"), "\n")
    f:close()
    local out = sh("cd " .. q(work) .. " && sh tour.sh 2>&1")
    local got = {}
    for line in (out .. "\n"):gmatch("([^\n]*)\n") do got[#got + 1] = line end
    while got[#got] == "" do got[#got] = nil end
    for i, e in ipairs(expected) do
      assert(got[i] and got[i]:find(pattern(e)),
             ("tour line %d: the README prints\n  %s\nbut the command printed\n  %s\n(all of it:\n%s)"):format(
               i, e, tostring(got[i]), out))
    end
    assert.equal(#expected, #got, out)
    -- and the host logged what the README says it logs
    local log = h.read_file(work .. "/run.log")
    -- (the tour appends a line to rules/sms.lua: the error is on the line after its last)
    local last = select(2, h.read_file(ROOT .. "/rules/sms.lua"):gsub("\n", "")) + 1
    assert.matches("rules/sms.lua:" .. last .. ": <eof> expected near 'oops'", log, 1, true)
    assert.matches("rules are back to generation 2's files", log, 1, true)
    assert.is_nil(log:find("dev-token-not-secret", 1, true))
  end)

  it("the campaign dry run of the README prints what it says (examples/customers.csv)", function()
    local readme = h.read_file(ROOT .. "/README.md")
    local block = assert(readme:match("```sh\n(build/telua campaign %-%-csv examples/customers%.csv.-)```"))
    local cmd, expected = {}, {}
    for line in block:gmatch("([^\n]*)\n") do
      if line:sub(1, 2) == "# " then expected[#expected + 1] = line:sub(3) else cmd[#cmd + 1] = line end
    end
    local dir = h.tmpdir()
    assert(os.execute("cd " .. q(dir) .. " && ln -s " .. q(ROOT .. "/examples") .. " examples && ln -s " ..
                      q(ROOT .. "/rules") .. " rules && ln -s " .. q(BUILD) .. " build && mkdir var"))
    local out = sh("cd " .. q(dir) .. " && " .. table.concat(cmd, "\n") .. " 2>&1")
    os.execute("rm -rf " .. q(dir))
    local got = {}
    for line in (out .. "\n"):gmatch("([^\n]*)\n") do if line ~= "" then got[#got + 1] = line end end
    assert.equal(#expected, #got, out)
    -- the encoding and warning lines come in the order of a hash table: any order
    for _, e in ipairs(expected) do
      local found = false
      for _, g in ipairs(got) do if g:find(pattern(e)) then found = true break end end
      assert(found, "the README prints\n  " .. e .. "\nwhich the command did not:\n" .. out)
    end
  end)
end)
