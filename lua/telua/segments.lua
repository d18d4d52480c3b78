--- SMS segments: how many parts a message body is sent in, and how it is encoded.
--
-- Counts exactly as Twilio's message-segment-calculator (npm
-- sms-segments-calculator; `telua.core.segments_source` names the version
-- whose tables are compiled in): the text is split into grapheme clusters
-- (UAX #29); it is GSM-7 when every cluster is one GSM 03.38 character
-- (extension characters `^ { } \ [ ~ ] | €` and form feed take two septets),
-- else UCS-2 (3GPP TS 23.038). One segment holds 160 septets or 70 UTF-16
-- units; a longer message is sent in segments of 153 septets or 67 units
-- (each carries a 6-octet user data header, 3GPP TS 23.040), and a cluster
-- never straddles two segments. Twilio bills and paces per segment.
--
--     local segments = require "telua.segments"
--     segments.count("Hello!")   --> { encoding = "GSM-7", segments = 1, characters = 6, graphemes = 6 }
--     segments.count("“Hi” — you", { smart_encoding = true }).encoding  --> "GSM-7"
--
-- @module telua.segments

local core = require "telua.core"

local type, error = type, error
local c_count = core.segments_count

local _M = { _VERSION = "0.1.0", SOURCE = core.segments_source }

local ENCODINGS = { auto = true, ["GSM-7"] = true, ["UCS-2"] = true }

--- Counts the segments of a message body.
-- @tparam string text the body (UTF-8)
-- @tparam[opt] table opts `encoding` (`"auto"`, the default, or `"GSM-7"` /
--   `"UCS-2"` to force one), `smart_encoding` (true: first replace
--   look-alikes such as curly quotes, dashes, `…` and odd spaces with GSM
--   characters, as a Messaging Service with Smart Encoding does; the result
--   then has `text`, the body as it would be sent), `non_gsm` (true: list
--   the clusters that are not GSM-7, in order, as `non_gsm`)
-- @treturn table `{ encoding = "GSM-7" | "UCS-2", segments = n, characters = n,
--   graphemes = n [, non_gsm = {...}] [, text = s] }`; `characters` is the
--   calculator's count: septets for GSM-7, clusters for UCS-2
-- @return or `nil, message, code`: `INVALID_UTF8`, or `NOT_GSM` when GSM-7 was
--   forced and the text has a character GSM 03.38 lacks
-- @raise when text is not a string or opts is malformed
function _M.count(text, opts)
  if type(text) ~= "string" then error("segments: text must be a string, got " .. type(text), 2) end
  local encoding, smart, list
  if opts ~= nil then
    if type(opts) ~= "table" then error("segments: opts must be a table", 2) end
    encoding, smart, list = opts.encoding or "auto", opts.smart_encoding, opts.non_gsm
    if not ENCODINGS[encoding] then
      error("segments: encoding must be \"auto\", \"GSM-7\" or \"UCS-2\", got " .. tostring(encoding), 2)
    end
  end
  local enc, segs, chars, graphemes, a, b = c_count(text, encoding, smart, list)
  if not enc then return nil, segs, chars end
  local r = { encoding = enc, segments = segs, characters = chars, graphemes = graphemes }
  if list then r.non_gsm, r.text = a, b else r.text = a end
  return r
end

--- Smart Encoding of a body: the text a Messaging Service with Smart
-- Encoding on would send.
-- @tparam string text
-- @treturn string, or `nil, message, "INVALID_UTF8"`
function _M.smart_encode(text)
  if type(text) ~= "string" then error("segments: text must be a string, got " .. type(text), 2) end
  local enc, a, b, _, d = c_count(text, "UCS-2", true, false)
  if not enc then return nil, a, b end
  return d
end

return _M
