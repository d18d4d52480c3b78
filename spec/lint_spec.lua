-- telua.lint: each finding of the fixture folder at the line its
-- "expect:" comment names (the expectations are read from the fixture's
-- own text, not from the linter), and nothing on the example rules.
local h = require "spec.helpers"
local lint = require "telua.lint"

local FIXTURE = h.root .. "/spec/fixtures/lint"

-- { "file:line:code" = true } from the fixture's comments
local function expectations()
  local want = {}
  local core = require "telua.core"
  for _, sub in ipairs{ "", "/lib", "/templates" } do
    local dir = FIXTURE .. sub
    for _, name in ipairs(core.list_dir(dir, ".lua")) do
      local n = 0
      for line in (h.read_file(dir .. "/" .. name) .. "\n"):gmatch("([^\n]*)\n") do
        n = n + 1
        local codes = line:match("%-%- expect: (.+)$")
        if codes then
          for code in codes:gmatch("%S+") do want[dir .. "/" .. name .. ":" .. n .. ":" .. code] = true end
        end
      end
    end
  end
  return want
end

describe("telua.lint", function()
  it("reports each finding of the fixture at its line, and nothing more", function()
    local findings, notes = lint.check(FIXTURE)
    assert.same({}, notes) -- luacheck was found: every check ran
    local got = {}
    for _, f in ipairs(findings) do got[f.file .. ":" .. f.line .. ":" .. f.code] = true end
    local want = expectations()
    assert.is_true(next(want) ~= nil)
    assert.same(want, got)
  end)

  it("grades credentials and missing steps as errors, the rest as warnings", function()
    local sev = {}
    for _, f in ipairs((lint.check(FIXTURE))) do sev[f.code] = f.severity end
    for _, code in ipairs{ "account-sid", "api-key", "auth-token", "missing-step" } do assert.equal("error", sev[code]) end
    for _, code in ipairs{ "phone-number", "opt-out", "W111", "W113", "duplicate-route" } do
      assert.equal("warning", sev[code])
    end
  end)

  it("never prints a credential whole", function()
    local text = lint.format((lint.check(FIXTURE)))
    assert.is_nil(text:find("0123456789abcdef0123456789abcdef", 1, true))
    assert.is_nil(text:find("fedcba9876543210fedcba9876543210", 1, true))
  end)

  it("prints file:line: code: message", function()
    local text = lint.format((lint.check(FIXTURE)))
    local n = 0
    for line in text:gmatch("[^\n]+") do
      n = n + 1
      assert.matches("^[^:]+%.lua:%d+: [%w%-]+: %S.*$", line)
    end
    assert.is_true(n >= 10)
  end)

  it("finds nothing in the example rules", function()
    local findings, notes = lint.check(h.root .. "/rules")
    assert.same({}, notes)
    assert.same({}, findings)
  end)

  it("passes --strict on warnings only when there are none", function()
    local _, ok = lint.report(FIXTURE, { strict = false, files = 1 })
    assert.is_false(ok) -- errors anyway
    local _, ok_rules = lint.report(h.root .. "/rules", { strict = true, files = 2 })
    assert.is_true(ok_rules)
  end)
end)
