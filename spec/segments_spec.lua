-- telua.segments against Twilio's message-segment-calculator: every case
-- of spec/fixtures/segments_cases.json (spec/oracle/gen_segments.js) holds
-- the npm sms-segments-calculator's answer for one text.
local segments = require "telua.segments"
local h = require "spec.helpers"

local fixture = h.fixture("segments_cases.json")

describe("telua.segments", function()
  it("is checked against " .. fixture.source .. " on at least 50 texts", function()
    assert.is_true(#fixture.cases >= 50)
    assert.matches(fixture.source, segments.SOURCE, 1, true) -- tables from the oracle's own package
  end)

  it("counts encoding, segments, characters and graphemes as the calculator does", function()
    local bad = {}
    for _, c in ipairs(fixture.cases) do
      local r = assert(segments.count(c.text, { smart_encoding = c.smart_encoding, non_gsm = true }))
      local ok = r.encoding == c.encoding and r.segments == c.segments and r.characters == c.characters
                 and r.graphemes == c.graphemes and #r.non_gsm == #c.non_gsm
      for i = 1, #c.non_gsm do ok = ok and r.non_gsm[i] == c.non_gsm[i] end
      if c.smart_encoding then ok = ok and r.text == c.smart_text end
      if not ok then
        bad[#bad + 1] = ("%q smart=%s: want %s/%d/%d/%d, got %s/%d/%d/%d"):format(c.text:sub(1, 60),
          tostring(c.smart_encoding), c.encoding, c.segments, c.characters, c.graphemes,
          r.encoding, r.segments, r.characters, r.graphemes)
      end
    end
    for i = 1, math.min(#bad, 30) do io.stderr:write(bad[i], "\n") end
    assert.are.equal(0, #bad, #bad .. " of " .. #fixture.cases .. " cases differ")
  end)

  -- expected values below: sms-segments-calculator 1.3.0 run by hand on the
  -- same input (new SegmentedMessage(text, encoding, smartEncoding)):
  -- "hello" as UCS-2 -> UCS-2, 1 segment, 5 characters, 5 graphemes;
  -- "héllo ą" as GSM-7 -> "incompatible with GSM-7"; the smart text of
  -- "“Hi” — it’s ½ off…" -> "\"Hi\" - it's 1/2 off..."
  it("forces an encoding, and refuses GSM-7 for text it cannot carry", function()
    local r = assert(segments.count("hello", { encoding = "UCS-2" }))
    assert.are.same({ encoding = "UCS-2", segments = 1, characters = 5, graphemes = 5 }, r)
    local n, msg, code = segments.count("héllo ą", { encoding = "GSM-7" })
    assert.is_nil(n)
    assert.are.equal("NOT_GSM", code)
    assert.matches("byte 8", msg, 1, true)
  end)

  it("smart-encodes as a Messaging Service would", function()
    assert.are.equal('"Hi" - it\'s 1/2 off...', segments.smart_encode("“Hi” — it’s ½ off…"))
  end)

  it("rejects bad input with an error value or a raise, never a crash", function()
    local n, msg, code = segments.count("ok\255bad")
    assert.is_nil(n)
    assert.are.equal("INVALID_UTF8", code)
    assert.matches("byte 3", msg, 1, true)
    assert.are.equal("INVALID_UTF8", select(3, segments.smart_encode("\237\160\128")))
    assert.has_error(function() segments.count(nil) end, "segments: text must be a string, got nil")
    assert.has_error(function() segments.count("x", { encoding = "UTF-8" }) end)
  end)
end)
