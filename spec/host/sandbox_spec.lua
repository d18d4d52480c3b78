-- The official twilio npm client (spec/oracle/sandbox_twilio.js), pointed at
-- `telua sandbox` with only its base URL changed: what it reads back must be
-- what Twilio's API would answer, and its validateRequest must accept the
-- sandbox's callback signatures.
local cjson = require "cjson"
local h = require "spec.helpers"

local ROOT = h.root
local BUILD = os.getenv("TELUA_BUILD") or (ROOT .. "/build")
local SID = "AC" .. ("f"):rep(32)
local TOKEN = "sandbox-spec-token-0123"

describe("telua sandbox with the official twilio client", function()
  local pipe, pid, port, out

  setup(function()
    pipe = assert(io.popen("sh -c 'echo $$; exec env TWILIO_ACCOUNT_SID=" .. SID .. " TWILIO_AUTH_TOKEN=" .. TOKEN ..
      " " .. BUILD .. "/telua sandbox --listen 127.0.0.1:0 --delivery-ms 100 2>/dev/null'"))
    pid = pipe:read("*l")
    port = assert((pipe:read("*l") or ""):match("port (%d+)"))
    local p = assert(io.popen("node " .. ROOT .. "/spec/oracle/sandbox_twilio.js http://127.0.0.1:" .. port ..
      " " .. SID .. " " .. TOKEN))
    out = cjson.decode(p:read("*a"))
    p:close()
  end)

  teardown(function()
    os.execute("kill " .. pid .. " 2>/dev/null")
    pipe:close()
  end)

  it("creates a message", function()
    assert.matches("^SM%x+$", out.create.sid)
    assert.equal("queued", out.create.status)
    assert.equal("+14155552671", out.create.to)
    assert.equal("1", out.create.numSegments)
    assert.equal(SID, out.create.accountSid)
    assert.equal("outbound-api", out.create.direction)
    assert.equal("Hello from the official client 👋", out.create.body)
    assert.not_matches("Invalid Date", out.create.dateCreated) -- RFC 2822 dates parse
  end)

  it("fetches it", function()
    assert.equal(out.create.sid, out.fetch.sid)
    assert.equal(out.create.body, out.fetch.body)
  end)

  it("lists across pages, newest first", function()
    assert.equal(4, out.list.count)
    assert.same({ "list 3", "list 2", "list 1", "list 0" }, out.list.bodies)
  end)

  it("turns test-number errors into RestException with Twilio's code", function()
    assert.equal(21211, out.error_21211.code)
    assert.equal(400, out.error_21211.status)
    assert.equal(21610, out.error_21610.code)
  end)

  it("creates and fetches a call", function()
    assert.matches("^CA%x+$", out.call_create.sid)
    assert.equal("queued", out.call_create.status)
    assert.equal("(500) 555-0006", out.call_create.fromFormatted)
    assert.equal(out.call_create.sid, out.call_fetch.sid)
  end)

  it("starts and checks a verification", function()
    assert.matches("^VE%x+$", out.verify_start.sid)
    assert.equal("pending", out.verify_start.status)
    assert.equal(1, out.verify_start.attempts)
    assert.same({ status = "pending", valid = false }, out.verify_wrong)
    assert.equal("approved", out.verify_check.status)
    assert.is_true(out.verify_check.valid)
    assert.equal(20404, out.verify_after.code)
  end)

  it("signs every callback so that validateRequest accepts it", function()
    local statuses = {}
    for _, cb in ipairs(out.callbacks) do
      assert.is_true(cb.valid)
      assert.is_false(cb.tampered)
      if cb.sid == out.create.sid then statuses[#statuses + 1] = cb.status end
    end
    assert.same({ "sending", "sent", "delivered" }, statuses)
    local call = {}
    for _, cb in ipairs(out.callbacks) do if cb.sid == out.call_create.sid then call[#call + 1] = cb.status end end
    assert.same({ "initiated", "in-progress", "completed" }, call)
  end)
end)
