-- `telua check`: loads the rules, then lints them (telua.lint); exit
-- status, --strict and --format json, on the real binary.
local cjson = require "cjson"
local h = require "spec.helpers"
local H = require "spec.helpers.host"

local BUILD = H.BUILD
local FIXTURE = h.root .. "/spec/fixtures/lint"
local q = h.quote

local function check(args)
  local out = h.sh(BUILD .. "/telua check " .. args .. " 2>&1; echo rc=$?")
  return out:gsub("\nrc=%d+%s*$", ""), tonumber(out:match("rc=(%d+)%s*$"))
end

describe("telua check", function()
  it("prints each finding as file:line: code: message and fails on an error", function()
    local out, rc = check(q(FIXTURE))
    assert.equal(1, rc)
    assert.matches(FIXTURE .. "/app.lua:8: account-sid: ", out, 1, true)
    assert.matches(FIXTURE .. "/templates/spring_sale.lua:8: opt-out: ", out, 1, true)
    assert.matches("errors, %d+ warnings", out)
  end)

  it("says ok with nothing else on the example rules, strict or not", function()
    local out, rc = check(q(h.root .. "/rules"))
    assert.equal(0, rc)
    assert.matches("^telua: rules in .- are ok %(2 files%)$", out)
    local _, src = check("--strict " .. q(h.root .. "/rules"))
    assert.equal(0, src)
  end)

  it("fails warnings only with --strict", function()
    local dir = h.tmpdir()
    assert(os.execute("cp -r " .. q(h.root .. "/rules") .. "/. " .. q(dir)))
    H.write(dir .. "/extra.lua", 'local twiml = require "telua.twiml"\nreturn { voice = { ["/voice/x"] = function()\n' ..
            '  local r = twiml.voice()\n  r:dial("+14155550109")\n  return r\nend } }\n')
    local out, rc = check(q(dir))
    assert.equal(0, rc, out)
    assert.matches(dir .. "/extra.lua:4: phone-number: ", out, 1, true)
    local _, src = check("--strict " .. q(dir))
    assert.equal(1, src)
  end)

  it("writes one JSON object with --format json", function()
    local out, rc = check("--format json " .. q(FIXTURE))
    assert.equal(1, rc)
    local r = cjson.decode(out)
    assert.is_false(r.ok)
    assert.is_true(r.errors >= 4)
    local codes = {}
    for _, f in ipairs(r.findings) do codes[f.code] = true end
    for _, c in ipairs{ "account-sid", "api-key", "auth-token", "phone-number", "opt-out", "W113", "duplicate-route",
                        "missing-step" } do
      assert.is_true(codes[c], c)
    end
    -- a folder that does not load: the load error, as JSON
    local dir = h.tmpdir()
    H.write(dir .. "/bad.lua", "return {\n")
    local bad, brc = check("--format json " .. q(dir))
    assert.equal(1, brc)
    local b = cjson.decode(bad)
    assert.is_false(b.ok)
    assert.equal(2, b.load_error.line)
  end)
end)
