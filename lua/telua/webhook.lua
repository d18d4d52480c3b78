--- Twilio webhook requests: signature validation and form bodies.
--
-- Follows Twilio's "Webhooks security" algorithm as the official helper
-- libraries implement it (twilio-node 6.2.0 `validateRequest` and
-- `validateRequestWithBody`); the work is done in C (telua.core).
--
-- @module telua.webhook
-- @usage
-- local webhook = require "telua.webhook"
-- local ok, why = webhook.validate(token, "https://example.com/sms?x=1",
--                                  webhook.parse_form(body), headers["x-twilio-signature"])

local core = require "telua.core"

local type, error, pairs = type, error, pairs

local _M = { _VERSION = "0.1.0" }

-- A map's `true` values (a key without `=`) as "" (a copy, only when there is one).
local function plain_values(map)
  local copy
  for k, v in pairs(map) do
    if v == true then
      copy = copy or {}
      copy[k] = ""
    elseif type(v) == "table" then
      for i = 1, #v do
        if v[i] == true then
          local list = {}
          for j = 1, #v do list[j] = v[j] == true and "" or v[j] end
          copy = copy or {}
          copy[k] = list
          break
        end
      end
    end
  end
  if not copy then return map end
  for k, v in pairs(map) do if copy[k] == nil then copy[k] = v end end
  return copy
end

local function check_common(auth_token, url)
  if type(auth_token) ~= "string" then error("auth_token must be a string", 3) end
  if type(url) ~= "string" then error("url must be a string", 3) end
end

--- Validates the X-Twilio-Signature of a request.
--
-- The URL is the one Twilio requested, query string included, exactly as
-- received. It is tried without and with the default port, then in the
-- WHATWG-normalised spellings twilio-node also tries.
--
-- @tparam string auth_token the account's auth token (never logged)
-- @tparam string url the full URL Twilio requested
-- @tparam table params the decoded form fields: a list of `{key, value}`
--   pairs (order kept, keys may repeat) or a map of key to a string or a
--   list of strings (`true` counts as the empty string: what
--   `ngx.req.get_post_args()` gives for a key written without `=`, which
--   the WHATWG form rules and Twilio's signature take as `key=`); ignored
--   when `body` is given
-- @tparam string signature the X-Twilio-Signature header (nil counts as missing)
-- @tparam[opt] string body the raw body of a non-form (JSON) request; its
--   SHA-256 must equal the URL's `bodySHA256` query parameter
-- @return `true`, or `nil, reason, code` where code is one of `"missing"`,
--   `"mismatch"`, `"no_body_hash"`, `"body_hash_mismatch"`, `"no_auth_token"`
-- @raise when an argument has the wrong type
function _M.validate(auth_token, url, params, signature, body)
  check_common(auth_token, url)
  if signature ~= nil and type(signature) ~= "string" then error("signature must be a string", 2) end
  if body ~= nil and type(body) ~= "string" then error("body must be a string", 2) end
  if body == nil and type(params) ~= "table" then error("params must be a table", 2) end
  if body == nil and params[1] == nil then params = plain_values(params) end
  return core.validate(auth_token, url, params, signature or "", body)
end

--- Computes the signature Twilio would send for a request.
-- @tparam string auth_token
-- @tparam string url the full URL, query included
-- @tparam table params as for `validate` (use `{}` for JSON bodies)
-- @treturn string base64 HMAC-SHA1, 28 characters
-- @raise when an argument has the wrong type or the token is empty
function _M.signature(auth_token, url, params)
  check_common(auth_token, url)
  if type(params) ~= "table" then error("params must be a table", 2) end
  return core.signature(auth_token, url, params)
end

--- Decodes an `application/x-www-form-urlencoded` body.
-- WHATWG URL Standard parsing, except that a malformed percent escape is
-- an error rather than literal text.
-- @tparam string body
-- @return a list of `{key, value}` pairs in order, or
--   `nil, "malformed percent escape at byte N", "bad_escape"`
function _M.parse_form(body)
  if type(body) ~= "string" then error("body must be a string", 2) end
  return core.form_decode(body)
end

--- Encodes form fields (space as `+`, as HTML forms and URLSearchParams do).
-- @tparam table params pairs (order kept) or a map (sorted by key)
-- @treturn string
function _M.encode_form(params)
  if type(params) ~= "table" then error("params must be a table", 2) end
  return core.form_encode(params)
end

--- Collapses a pair list into a map of key to its first value.
-- @tparam table list a list of `{key, value}`
-- @treturn table
function _M.first_values(list)
  local map = {}
  for i = 1, #list do
    local p = list[i]
    if map[p[1]] == nil then map[p[1]] = p[2] end
  end
  return map
end

return _M
