--- Fallback channels: the next channel when a message does not arrive.
--
-- `req.send{ ..., fallback = { HOP, ... } }` gives a message a chain of
-- hops, each tried once, in order, when the one before it
--
-- * ends `undelivered` or `failed` (its status callback, or Twilio refusing
--   the send) with one of the hop's `on` codes (any code when it has none),
--   or
-- * is still not delivered `after` seconds after Twilio took it.
--
-- A hop is `{ channel = "sms" | "whatsapp" | "voice", from = SENDER,
-- after = SECONDS, on = { CODES }, ... }`:
--
-- * `sms`: the text again by SMS to the bare number (`from` defaults to the
--   first message's sender when that is not a WhatsApp address);
-- * `whatsapp`: to `whatsapp:NUMBER` from `from` (a `whatsapp:` address),
--   through WhatsApp's rules: the free-form text inside the user's 24-hour
--   window, else the hop's `content_sid` (+ `content_variables`), an
--   approved template; with neither the hop is skipped, and says why;
-- * `voice`: a call from `from` (a voice number; default the first
--   message's sender) that says the text, twice (TwiML `<Say loop="2">`),
--   in the hop's `language`, else the send's `locale` (`"es"` is read as
--   `es-ES`, `"es-MX"` as it is; Twilio's `<Say>` languages), else en-US;
--   `voice` picks a `<Say>` voice (e.g. `"Polly.Lupe"`).
--
-- Each hop is an outbox entry of its own (`resend_of` is the first
-- message's id, `policy.prev` the hop before), so it is in the message log
-- with its own SID, linked to the first message; it keeps the first
-- message's quiet hours. A recipient who opted out (on any of the chain's
-- senders, in the send's scope) stops the chain: the hop is skipped. The
-- failures come from status callbacks, so a chain needs `status_callback`
-- (or `settings.status_callback`) for `on`; `after` needs none.
--
-- @module telua.fallback

local twiml = require "telua.twiml"

local type, ipairs, pairs, tostring, tonumber, format = type, ipairs, pairs, tostring, tonumber, string.format

local _M = { _VERSION = "0.1.0" }

local CHANNELS = { sms = true, whatsapp = true, voice = true }
local FIELDS = { channel = true, from = true, after = true, on = true, content_sid = true,
                 content_variables = true, language = true, voice = true }

--- A bare language's `<Say>` language (a locale with a region is used as it is).
_M.LANGUAGES = { en = "en-US", es = "es-ES", pt = "pt-BR", fr = "fr-FR", de = "de-DE", it = "it-IT",
                 nl = "nl-NL", ja = "ja-JP", ko = "ko-KR", zh = "cmn-CN", ru = "ru-RU", pl = "pl-PL",
                 sv = "sv-SE", da = "da-DK", nb = "nb-NO", tr = "tr-TR", ar = "arb", hi = "hi-IN" }

local function bare(addr) return (addr:gsub("^%a+:", "")) end

--- Checks a send's fallback chain.
-- @tparam table list the hops (see the module notes)
-- @treturn table the chain as kept with the entry (`on` as a list of codes)
-- @return or `nil, message`
function _M.check(list)
  if type(list) ~= "table" or #list == 0 then return nil, "fallback must be a list of hops { channel = ... }" end
  local out = {}
  for i, hop in ipairs(list) do
    local where = format("fallback[%d]", i)
    if type(hop) ~= "table" then return nil, where .. " must be a table" end
    for k in pairs(hop) do
      if not FIELDS[k] then return nil, format("%s: unknown field '%s'", where, tostring(k)) end
    end
    if not CHANNELS[hop.channel] then return nil, where .. '.channel must be "sms", "whatsapp" or "voice"' end
    if hop.after ~= nil and (type(hop.after) ~= "number" or hop.after ~= hop.after or hop.after <= 0 or
                              hop.after > 7 * 86400) then
      return nil, where .. ".after must be seconds > 0 (at most 7 days)"
    end
    if hop.on ~= nil then
      if type(hop.on) ~= "table" or #hop.on == 0 then return nil, where .. ".on must be a list of error codes" end
      for _, c in ipairs(hop.on) do
        if type(c) ~= "number" or c % 1 ~= 0 then return nil, where .. ".on must be a list of error codes" end
      end
    end
    if hop.from ~= nil and type(hop.from) ~= "string" then return nil, where .. ".from must be a string" end
    if hop.channel == "whatsapp" and not (hop.from and hop.from:find("^whatsapp:%+%d+$")) then
      return nil, where .. '.from must be the WhatsApp sender, "whatsapp:+NUMBER"'
    end
    if hop.content_sid ~= nil and not (type(hop.content_sid) == "string" and hop.content_sid:find("^HX%x+$")) then
      return nil, where .. ".content_sid must be a Content SID (HX...)"
    end
    if hop.content_variables ~= nil and type(hop.content_variables) ~= "table" then
      return nil, where .. ".content_variables must be a table"
    end
    for _, k in ipairs{ "language", "voice" } do
      if hop[k] ~= nil and not (type(hop[k]) == "string" and hop[k]:find("^[%w%.%-]+$")) then
        return nil, format("%s.%s must be a name such as \"es-MX\"", where, k)
      end
    end
    local h = {}
    for k, v in pairs(hop) do h[k] = v end
    out[i] = h
  end
  return out
end

-- The <Say> language of a hop.
local function language(hop, locale)
  local l = hop.language or locale
  if type(l) ~= "string" or l == "" then return "en-US" end
  if l:find("[-_]") then return (l:gsub("_", "-")) end
  return _M.LANGUAGES[l:lower()] or "en-US"
end

--- The TwiML of a voice hop: the text said twice.
-- @tparam string text
-- @tparam string lang a `<Say>` language
-- @tparam[opt] string voice
-- @treturn string the document
function _M.voice_twiml(text, lang, voice)
  local r = twiml.voice()
  r:say(text, { language = lang, loop = 2, voice = voice })
  return tostring(r)
end

-- The create parameters and policy of hop n of a chain whose first entry is
-- root and whose previous hop is prev; nil, why when it cannot be made.
local function hop_entry(root, prev, n)
  local pol = root.policy
  local chain = pol.fallback
  local hop = chain[n]
  local p = root.params
  local to = bare(p.to)
  local text = p.body
  local policy = { fallback = chain, hop = n, root = root.id, prev = prev.id, channel = hop.channel,
                   quiet = pol.quiet }
  -- a phone number to send or call from: the hop's, else the first message's (not a WhatsApp address)
  local from = hop.from or (p.from and not p.from:find("^whatsapp:") and p.from) or nil
  local params
  if hop.channel == "voice" then
    if not text or text == "" then return nil, "a voice hop needs the message's text" end
    if not from then return nil, "a voice hop needs a from number" end
    params = { to = to, from = from, twiml = _M.voice_twiml(text, language(hop, pol.locale), hop.voice) }
  elseif hop.channel == "whatsapp" then
    params = { to = "whatsapp:" .. to, from = hop.from, body = text, status_callback = p.status_callback }
    if hop.content_sid then policy.template = { hop.content_sid, hop.content_variables } end
  else
    if not text then return nil, "an sms hop needs the message's text" end
    if not from and not p.messaging_service_sid then return nil, "an sms hop needs a from number" end
    params = { to = to, from = from, messaging_service_sid = not from and p.messaging_service_sid or nil,
               body = text, status_callback = p.status_callback }
  end
  return params, policy
end

local function root_of(store, e)
  if not (e.policy and e.policy.root) then return e end
  return store.outbox:get(e.policy.root)
end

local function matches(hop, code)
  if not hop.on then return true end
  for _, c in ipairs(hop.on) do if c == code then return true end end
  return false
end

-- Queues hop n (once: its dedupe key) due at `at`, or brings a queued one
-- forward to `at`.
local function queue_hop(store, root, prev, n, at, log, why)
  local params, policy = hop_entry(root, prev, n)
  if not params then
    log("warn", format("outbox %d: fallback %d not queued: %s", root.id, n, policy))
    return nil
  end
  local id, new = store.outbox:enqueue(params, { dedupe = format("fallback:%d:%d", root.id, n), not_before = at,
                                                resend_of = root.id, policy = policy,
                                                optout_scope = root.optout_scope })
  if not id then return nil end
  if new then
    log("info", format("outbox %d: fallback %d (%s) queued as outbox %d: %s", root.id, n, policy.channel, id, why))
  else
    local e = store.outbox:get(id)
    if e and e.state == "queued" and e.not_before > at then
      store.outbox:requeue(id, why, at)
      log("info", format("outbox %d: fallback %d (outbox %d) goes now: %s", root.id, n, id, why))
    end
  end
  return id
end

-- The next hop after entry e (its index), or nil.
local function next_hop(e)
  local pol = e.policy
  local chain = pol and pol.fallback
  if not chain then return nil end
  local n = (pol.hop or 0) + 1
  return chain[n] and n or nil
end

--- The sender filed `e` as sent: a next hop with `after` is queued for
-- then (it goes unless `e` is delivered by that time).
-- @tparam table store
-- @tparam table e the outbox entry (with `policy`)
-- @tparam number now epoch seconds
-- @tparam function log
function _M.on_sent(store, e, now, log)
  local n = next_hop(e)
  if not n then return end
  local hop = e.policy.fallback[n]
  if not hop.after then return end
  local root = root_of(store, e)
  if root then queue_hop(store, root, e, n, now + hop.after, log, format("not delivered %gs after sending", hop.after)) end
end

--- `e` ended undelivered or failed with `code` (a status callback, or
-- Twilio refused the send): the next hop goes now when `code` is one of
-- its `on` codes.
-- @tparam table store
-- @tparam table e the outbox entry
-- @tparam number|nil code the ErrorCode
-- @tparam number now epoch seconds
-- @tparam function log
-- @treturn boolean whether a hop follows
function _M.on_failed(store, e, code, now, log)
  local n = next_hop(e)
  if not n then return false end
  local hop = e.policy.fallback[n]
  if not matches(hop, code) then
    log("info", format("outbox %d ended with %s, not one of fallback %d's codes: no fallback", e.id,
                       tostring(code), n))
    return false
  end
  local root = root_of(store, e)
  return root ~= nil and queue_hop(store, root, e, n, now, log, format("outbox %d ended with %s", e.id,
                                                                      tostring(code))) ~= nil
end

local FINAL_FAILED = { undelivered = true, failed = true }
local DELIVERED = { delivered = true, read = true }

--- Whether a claimed hop still goes, at its send time: nil when it goes
-- (its params made ready for the channel), else why it is skipped — the
-- hop before it was delivered, or ended with a code not in `on`, or the
-- recipient opted out on the chain's first sender, or a WhatsApp hop is
-- outside the window without a content template.
-- @tparam table store
-- @tparam table e the claimed entry
-- @treturn string|nil
function _M.gate(store, e)
  local pol = e.policy
  if pol.channel == "verify" then -- telua.verify's call after an SMS code
    if store:kv_get("verify_approved", e.params.to) then return "the code was approved before the call" end
    return nil
  end
  local prev = pol.prev and store.outbox:get(pol.prev)
  if prev and prev.sid then
    local m = store:message_get(prev.sid)
    local status = m and m.status
    if DELIVERED[status] then return "the message before it was delivered" end
    if FINAL_FAILED[status] and not matches(pol.fallback[pol.hop], tonumber(m.error_code)) then
      return format("the message before it ended with %s, not one of the hop's codes", tostring(m.error_code))
    end
  end
  local root = pol.root and store.outbox:get(pol.root)
  if root then
    local rp = root.params
    local out = store:is_opted_out(rp.from or rp.messaging_service_sid, bare(rp.to),
                                   { scope = root.optout_scope, service = rp.messaging_service_sid })
    if out then return "the recipient opted out" end
  end
  if pol.channel == "whatsapp" then
    local p = e.params
    if not store:window_open(p.from, p.to) then
      if not pol.template then return "outside the WhatsApp 24-hour window and the hop has no content_sid" end
      p.body = nil
      p.content_sid = pol.template[1]
      p.content_variables = pol.template[2]
    end
  end
  return nil
end

return _M
