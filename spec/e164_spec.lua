-- telua.e164 against google-libphonenumber: every row of
-- spec/fixtures/e164_corpus.json (tools/gen_e164_corpus.js) holds the
-- oracle's answer for one input. The bars are the issue's: "E.164 if valid,
-- else none" on at least 99.9 % of rows, type and region on at least 99.5 %;
-- every disagreement is printed with its row.
local e164 = require "telua.e164"
local cjson = require "cjson"
local h = require "spec.helpers"

local corpus = h.fixture("e164_corpus.json")
local NULL = cjson.null

local function opt(v) if v == NULL then return nil end return v end

describe("telua.e164 corpus", function()
  local rows = corpus.rows
  local results = {}
  setup(function()
    for i, r in ipairs(rows) do
      local n, msg, code = e164.parse(r.input, r.region ~= "" and r.region or nil)
      results[i] = { n = n, msg = msg, code = code }
    end
  end)

  local function report(what, bad)
    if #bad == 0 then return end
    io.stderr:write(("\n%s: %d disagreement(s) with %s\n"):format(what, #bad, corpus.source))
    for i = 1, math.min(#bad, 40) do io.stderr:write("  " .. bad[i] .. "\n") end
  end

  it("is checked against " .. corpus.source .. " on at least 2,000 rows", function()
    assert.is_true(#rows >= 2000)
    assert.are.equal(corpus.source, e164.METADATA) -- tables made from the oracle's own metadata
  end)

  it("agrees on 'E.164 if valid, else none' on at least 99.9 % of rows", function()
    local bad = {}
    for i, r in ipairs(rows) do
      local want = (r.valid == true) and r.e164 or nil
      local n = results[i].n
      local got = n and n.valid and n.e164 or nil
      if want ~= got then
        bad[#bad + 1] = ("%q %s [%s]: want %s, got %s%s"):format(r.input, r.region, r.tag, tostring(want),
          tostring(got), n and "" or (" (" .. tostring(results[i].code) .. ")"))
      end
    end
    report("E.164 if valid", bad)
    assert.is_true((#rows - #bad) / #rows >= 0.999, #bad .. " of " .. #rows .. " disagree")
  end)

  it("agrees on type and region on at least 99.5 % of the rows that parse", function()
    local bad, total = {}, 0
    for i, r in ipairs(rows) do
      if r.e164 then
        total = total + 1
        local n = results[i].n
        if not n or n.type ~= r.type or n.region ~= opt(r.number_region) then
          bad[#bad + 1] = ("%q %s: want %s/%s, got %s/%s"):format(r.input, r.region, r.type,
            tostring(opt(r.number_region)), n and n.type or "-", n and tostring(n.region) or "-")
        end
      end
    end
    report("type and region", bad)
    assert.is_true((total - #bad) / total >= 0.995, #bad .. " of " .. total .. " disagree")
  end)

  it("agrees on the parse result (E.164, possible, extension) or the error kind", function()
    local bad = {}
    for i, r in ipairs(rows) do
      local res = results[i]
      local ok
      if r.error then
        ok = res.n == nil and res.code == r.error
      else
        ok = res.n ~= nil and res.n.e164 == r.e164 and res.n.possible == r.possible
             and res.n.extension == opt(r.extension)
      end
      if not ok then
        bad[#bad + 1] = ("%q %s: want %s, got %s"):format(r.input, r.region,
          r.error or (r.e164 .. " possible=" .. tostring(r.possible) .. " ext=" .. tostring(opt(r.extension))),
          res.n and (res.n.e164 .. " possible=" .. tostring(res.n.possible) .. " ext=" .. tostring(res.n.extension))
                or tostring(res.code))
      end
    end
    report("parse result", bad)
    assert.is_true((#rows - #bad) / #rows >= 0.999, #bad .. " of " .. #rows .. " disagree")
  end)
end)

describe("telua.e164 API", function()
  -- expected values: google-libphonenumber 3.2.47's answers for these inputs
  -- (the same as its rows in spec/fixtures/e164_corpus.json where present)
  it("normalizes a valid number and refuses the rest with a code", function()
    assert.are.equal("+14155551234", e164.normalize("(415) 555-1234", "US"))
    assert.are.equal("+442079460958", e164.normalize("011 44 20 7946 0958", "US"))
    local v, msg, code = e164.normalize("0044 20 7946 0958", "US")
    assert.is_nil(v)
    assert.are.equal("NOT_VALID", code)
    assert.matches("+100442079460958", msg, 1, true)
    assert.are.same({ nil, "no valid country calling code (write the number with + or give a default region)",
                      "INVALID_COUNTRY_CODE" }, { e164.normalize("(415) 555-1234") })
    assert.are.same({ nil, "not a phone number", "NOT_A_NUMBER" }, { e164.normalize("hello", "US") })
    assert.are.same({ nil, "too long for a phone number", "TOO_LONG" }, { e164.parse(string.rep("1", 251), "US") })
  end)

  it("returns every field of a parse", function()
    assert.are.same({ e164 = "+16502530000", valid = true, possible = true, type = "FIXED_LINE_OR_MOBILE",
                      region = "US", country_code = 1, national_number = "6502530000", extension = "1234" },
                    e164.parse("650-253-0000 ext. 1234", "us"))
    -- google-libphonenumber: +39 06 4991 1234 is IT with NSN 0649911234 (the
    -- leading zero stays); +39 06 698... is the Vatican's range of +39
    local rome, vatican = e164.parse("+39 06 4991 1234"), e164.parse("+39 06 6982 0000")
    assert.are.equal("0649911234", rome.national_number)
    assert.are.equal("IT", rome.region)
    assert.are.equal("VA", vatican.region)
  end)

  it("counts MOBILE and FIXED_LINE_OR_MOBILE as mobile", function()
    assert.is_true(e164.is_mobile("+1 650 253 0000"))
    assert.is_true(e164.is_mobile("+44 7400 123456"))
    assert.is_false(e164.is_mobile("+44 20 7946 0958"))
    assert.is_false(e164.is_mobile("+1 800 356 9377"))
    assert.is_false((e164.is_mobile("nope", "US")))
    assert.is_true(e164.is_mobile(e164.parse("+447400123456")))
  end)

  it("raises on arguments of the wrong type, and never on bad text", function()
    assert.has_error(function() e164.parse(nil, "US") end, "e164: number must be a string, got nil")
    assert.has_error(function() e164.parse("1", 1) end)
    assert.is_nil((e164.parse("\255\254\0", "US")))
    assert.is_nil((e164.parse("", "US")))
    assert.is_true(e164.region_known("gb"))
    assert.is_false(e164.region_known("ZZ"))
  end)
end)
