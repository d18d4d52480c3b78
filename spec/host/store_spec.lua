-- Where the host keeps its state when not told, and the shared memory
-- store: a STOP taken by one worker holds for the other worker, for the
-- next rules generation and (with a file) for the next run of the host.
-- Before, each worker state of each generation opened a private
-- :memory: database: 7 of 12 messages after a STOP still got a reply.
local h = require "spec.helpers"
local H = require "spec.helpers.host"

local ROOT = h.root
local q = h.quote
local EMPTY = H.DECL .. "<Response/>"

local function rules_copy()
  local dir = h.tmpdir()
  assert(os.execute("cp -r " .. q(ROOT .. "/rules") .. "/. " .. q(dir)))
  return dir
end

-- n messages after a STOP, on fresh connections (spread over the workers):
-- how many got a reply
local function replies_after_stop(host, n)
  local code, body = host:twilio("/sms/incoming", H.sms("STOP"))
  assert.are.equal(200, code)
  assert.matches("unsubscribed", body, 1, true)
  local replied = 0
  local sig = H.sign(H.PUBLIC .. "/sms/incoming", H.sms("hello"))
  for _ = 1, n do
    local c, b = host:twilio("/sms/incoming", H.sms("hello"), { signature = sig })
    assert.are.equal(200, c)
    if b ~= EMPTY then replied = replied + 1 end
  end
  return replied
end

describe("the host's store", function()
  after_each(H.clean_up)

  it("is a SQLite file by default (var/telua.db, its folder made): a STOP holds on every worker and after a restart", function()
    local dir = rules_copy()
    local cwd = h.tmpdir()
    H.on_exit(function() os.execute("rm -rf " .. q(dir) .. " " .. q(cwd)) end)
    local host = H.started{ rules = dir, store = false, prefix = "cd " .. q(cwd) .. ";", workers = 2 }
    assert.is_true(h.exists(cwd .. "/var/telua.db"))
    assert.matches("store sqlite:var/telua.db", host:logs(), 1, true)
    assert.are.equal("sqlite:var/telua.db", host:status().store)
    assert.are.equal(0, replies_after_stop(host, 12))
    host:stop()
    host = H.started{ rules = dir, store = false, prefix = "cd " .. q(cwd) .. ";", workers = 2 }
    local sig = H.sign(H.PUBLIC .. "/sms/incoming", H.sms("hello"))
    for _ = 1, 6 do
      local _, b = host:twilio("/sms/incoming", H.sms("hello"), { signature = sig })
      assert.are.equal(EMPTY, b)
    end
  end)

  it("'memory' is one store for the process: a STOP holds on every worker and in the next generation", function()
    local dir = rules_copy()
    H.on_exit(function() os.execute("rm -rf " .. q(dir)) end)
    local host = H.started{ rules = dir, store = "memory", workers = 2 }
    assert.are.equal(0, replies_after_stop(host, 12))
    local gen = host:status().generation
    H.write(dir .. "/extra.lua", "return {}\n")
    assert.is_true(H.wait_for(function() return host:status().generation == gen + 1 end))
    local sig = H.sign(H.PUBLIC .. "/sms/incoming", H.sms("hello"))
    for _ = 1, 6 do
      local _, b = host:twilio("/sms/incoming", H.sms("hello"), { signature = sig })
      assert.are.equal(EMPTY, b)
    end
    -- START through any worker opts back in for all
    local _, b = host:twilio("/sms/incoming", H.sms("START"))
    assert.matches("re%-subscribed", b)
    for _ = 1, 4 do
      local _, b2 = host:twilio("/sms/incoming", H.sms("hello"), { signature = sig })
      assert.are_not.equal(EMPTY, b2)
    end
  end)
end)
