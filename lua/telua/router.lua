--- Routes Twilio webhooks to the rules: voice by path, messages by number and keyword, status callbacks.
--
-- Rules are tables (one per rules file, see `telua.rules`):
--
--     return {
--       voice = { ["/voice/incoming"] = flow_or_function },   -- path -> handler
--       messages = {                                          -- tried in order
--         { path = "/sms/incoming", keyword = "ORDER", handler = fn },
--         { path = "/sms/incoming", to = "+14155550100", handler = fn },
--         { path = "/sms/incoming", match = "^%d+$", handler = fn },
--         { path = "/sms/incoming", handler = fn },           -- everything else
--       },
--       status = { ["/status/messages"] = fn },               -- path -> handler
--       settings = { optout_replies = true, help_reply = "...", default_region = "US" },
--     }
--
-- Numbers are compared in E.164: `From` and `To` of a webhook, and the
-- `to`/`from` of a message rule, go through `telua.e164.normalize` with
-- `settings.default_region` (ISO 3166 alpha-2; none by default), so a rule
-- may say `to = "(415) 555-0100"` with `default_region = "US"`. A channel
-- prefix stays (`whatsapp:+14155550100`). What is not a valid number
-- (short codes, alphanumeric sender IDs, `client:alice`) is kept as
-- written. `req.from_number` and `req.to_number` give the full parse
-- (`telua.e164.parse`) on demand.
--
-- On a message path the standard opt-out, opt-in and help keywords
-- (`telua.optout`) are handled before any rule: the opt-out store is
-- updated and Twilio's standard reply sent. While a number is opted out,
-- rules still see its messages (`req.opted_out` is true) but any reply they
-- return is dropped: the answer is an empty `<Response/>`.
-- `settings.optout_scope` says how far a STOP reaches: `"account"` (the
-- default: every send to that person from any of the business's numbers
-- or services), `"service"` (the Messaging Service it came through, from
-- the webhook's `MessagingServiceSid`) or `"number"` (the one number), as
-- `telua.store.OPTOUT_SCOPES` describes; the same scope is used for
-- replies, at `req.send` and again at send time.
--
-- A status callback goes to its handler; the host first keeps the message
-- log with it (`telua.status`, given as `opts.on_status`: a status
-- only moves forward, the handler sees `req.status_changed` and
-- `req.message_status`, transient carrier errors are resent). An inbound
-- WhatsApp message opens the user's 24-hour window (`store:window_open`).
--
-- `req.send{ to, body | content_sid, ... }` queues an outbound message in
-- the store's outbox for the host's sender (`telua.sender`) and returns its
-- id at once, or `nil, err` (`telua.client`'s error shape: 21211 and the
-- other checks of `client.check_message`, 21610 when the number opted
-- out, 63016 for free-form WhatsApp outside the 24-hour window). `from`
-- defaults to the number the user wrote to; `status_callback` to
-- `settings.status_callback` (a path on the host's public URL, or a URL).
-- `dedupe = key` makes a second send with the same key return the first id.
-- `quiet_hours = { from = "21:00", to = "08:00" }` (or `true` for that
-- window, the TCPA's) holds the message in the outbox while it is inside
-- those hours in any of the recipient's time zones (`telua.quiet`);
-- `settings.quiet_hours` gives every send of the rules that window (off
-- by default: a reply or a code goes at once; `quiet_hours = false` on a
-- send exempts it). `max_per_day = n` sends at most n messages a day to
-- the recipient (the store's counters; the rest wait for the next day).
-- `fallback = { { channel = "whatsapp" | "voice" | "sms", after = SECONDS,
-- on = { CODES }, from = ... }, ... }` tries the next channel once when the
-- message ends undelivered or failed with one of the codes, or is not
-- delivered after `after` seconds (`telua.fallback`); `locale` is the
-- text's language for a voice hop.
--
-- A handler gets a request table and returns a TwiML element, a string
-- of TwiML, `nil` (an empty `<Response/>`; 204 for status callbacks) or
-- `{ status = n, body = s, content_type = s }`.
--
-- @module telua.router

local e164 = require "telua.e164"
local metrics = require "telua.metrics"
local optout = require "telua.optout"
local quiet = require "telua.quiet"
local fallback = require "telua.fallback"
local store_mod = require "telua.store"
local twiml = require "telua.twiml"
local webhook = require "telua.webhook"

local type, pairs, ipairs, tostring, error, setmetatable, rawset, rawget, format, upper, byte, getinfo =
      type, pairs, ipairs, tostring, error, setmetatable, rawset, rawget, string.format, string.upper, string.byte,
      debug.getinfo

local _M = { _VERSION = "0.1.0" }
local Router = {}
Router.__index = Router

local EMPTY_RESPONSE = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
local XML = "text/xml"

local function default_log(level, msg)
  io.stderr:write("[", level, "] ", msg, "\n")
end

--- Creates an empty router.
-- @tparam[opt] table opts `store` (a `telua.store`, needed for opt-outs and
--   flow state), `log` (function(level, message)), `settings` (defaults
--   for the rules' settings), `on_event` (function(kind, fields), called
--   with `"inbound"` {from, to, body, message_sid} before the rules see a
--   message, `"optout"` / `"optin"` {from, to, keyword} once the store has
--   it, `"status"` {from, to, message_sid, status, error_code} when a
--   status callback moved a message forward; what it raises is logged and
--   dropped), `on_status` (function(router, req) run on a status
--   callback before its handler: the host's message log and resends,
--   `telua.status`; it sets `req.status_changed` and
--   `req.message_status`, and may answer instead, e.g. 503 when the store
--   failed)
-- @treturn table the router
function _M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("opts must be a table", 2) end
  return setmetatable({
    store = opts.store,
    log = opts.log or default_log,
    on_event = opts.on_event,
    on_status = opts.on_status,
    voice = {},      -- path -> { handler = fn | flow, source = "file:line" }
    flows = {},      -- list of { base = path, flow = flow, source = ... }
    messages = {},   -- list of entries
    message_paths = {},
    status = {},     -- path -> { handler, source }
    settings = { optout_replies = true },
    scope_plain = {},  -- { scope = settings.optout_scope }, kept by add
    canon = {},      -- rule number -> canonical form, for settings.default_region
  }, Router)
end

-- "file:line" of a handler: the file as it was loaded (never cut short
-- as short_src is past 60 bytes), so the host can show it relative to the
-- rules folder.
local function where(fn, file)
  if type(fn) == "function" then
    local info = getinfo(fn, "S")
    if info and info.linedefined and info.linedefined > 0 then
      local src = info.source
      src = src:sub(1, 1) == "@" and src:sub(2) or info.short_src
      return (file or src) .. ":" .. info.linedefined
    end
  end
  return file or "?"
end

local function is_flow(v)
  return type(v) == "table" and v.is_flow == true
end

local KNOWN = { voice = true, messages = true, status = true, settings = true }
local ENTRY_KEYS = { path = true, keyword = true, to = true, from = true, match = true, handler = true }

--- Adds one rules table. All checks run before anything is added, so a
-- failing table leaves the router unchanged.
-- @tparam string file the rules file name, used in messages
-- @tparam table rules the table the file returned
-- @return `true`, or `nil, message` naming the file
function Router:add(file, rules)
  if type(rules) ~= "table" then
    return nil, format("%s: must return a table of rules, got %s", file, type(rules))
  end
  for k in pairs(rules) do
    if not KNOWN[k] then
      return nil, format("%s: unknown rules key '%s' (expected voice, messages, status, settings)",
                         file, tostring(k))
    end
  end
  local voice, status, messages = rules.voice or {}, rules.status or {}, rules.messages or {}
  for name, t in pairs({ voice = voice, status = status, messages = messages }) do
    if type(t) ~= "table" then return nil, format("%s: '%s' must be a table", file, name) end
  end
  for path, h in pairs(voice) do
    if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
      return nil, format("%s: voice path %s must be a string starting with '/'", file, tostring(path))
    end
    if type(h) ~= "function" and not is_flow(h) then
      return nil, format("%s: voice['%s'] must be a function or a telua.flow", file, path)
    end
    if self.voice[path] then
      return nil, format("%s: voice path '%s' is already routed by %s", file, path, self.voice[path].source)
    end
  end
  for path, h in pairs(status) do
    if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
      return nil, format("%s: status path %s must be a string starting with '/'", file, tostring(path))
    end
    if type(h) ~= "function" then return nil, format("%s: status['%s'] must be a function", file, path) end
    if self.status[path] then
      return nil, format("%s: status path '%s' is already routed by %s", file, path, self.status[path].source)
    end
  end
  for i, e in ipairs(messages) do
    if type(e) ~= "table" then return nil, format("%s: messages[%d] must be a table", file, i) end
    for k in pairs(e) do
      if not ENTRY_KEYS[k] then
        return nil, format("%s: messages[%d] has unknown key '%s'", file, i, tostring(k))
      end
    end
    if type(e.handler) ~= "function" then
      return nil, format("%s: messages[%d].handler must be a function", file, i)
    end
    for _, k in ipairs({ "path", "keyword", "to", "from", "match" }) do
      if e[k] ~= nil and type(e[k]) ~= "string" then
        return nil, format("%s: messages[%d].%s must be a string", file, i, k)
      end
    end
    if e.path and e.path:sub(1, 1) ~= "/" then
      return nil, format("%s: messages[%d].path must start with '/'", file, i)
    end
    if e.match and not pcall(string.find, "", e.match) then
      return nil, format("%s: messages[%d].match is not a valid Lua pattern", file, i)
    end
  end
  if rules.settings ~= nil and type(rules.settings) ~= "table" then
    return nil, format("%s: settings must be a table", file)
  end
  local region = rules.settings and rules.settings.default_region
  if region ~= nil and (type(region) ~= "string" or not e164.region_known(region)) then
    return nil, format("%s: settings.default_region must be a region code libphonenumber knows (e.g. \"US\"), got %s",
                       file, tostring(region))
  end
  local qh = rules.settings and rules.settings.quiet_hours
  if qh ~= nil then
    local ok, qerr = quiet.window(qh)
    if ok == nil then return nil, format("%s: settings.%s", file, qerr) end
  end
  local scope = rules.settings and rules.settings.optout_scope
  if scope ~= nil and not store_mod.OPTOUT_SCOPES[scope] then
    return nil, format("%s: settings.optout_scope must be \"account\", \"service\" or \"number\", got %s",
                       file, tostring(scope))
  end

  -- all checks passed: register
  for path, h in pairs(voice) do
    local src = where(is_flow(h) and h.source_fn or h, nil)
    self.voice[path] = { handler = h, source = src }
    if is_flow(h) then self.flows[#self.flows + 1] = { base = path, flow = h } end
  end
  for path, h in pairs(status) do self.status[path] = { handler = h, source = where(h) } end
  for _, e in ipairs(messages) do
    local path = e.path or "/sms/incoming"
    self.messages[#self.messages + 1] = {
      path = path, keyword = e.keyword and upper(e.keyword), to = e.to, from = e.from,
      match = e.match, handler = e.handler, source = where(e.handler),
    }
    self.message_paths[path] = true
  end
  for k, v in pairs(rules.settings or {}) do self.settings[k] = v end
  self.scope_plain = { scope = self.settings.optout_scope } -- the opt-out lookups' options, made once
  return true
end

-- Turns a handler's return value into a response table.
local function respond(v, kind)
  if v == nil then
    if kind == "status" then return { status = 204, body = "" } end
    return { status = 200, content_type = XML, body = EMPTY_RESPONSE }
  end
  if type(v) == "string" then return { status = 200, content_type = XML, body = v } end
  if twiml.is_element(v) then return { status = 200, content_type = XML, body = tostring(v) } end
  if type(v) == "table" and (v.status or v.body) then
    return { status = v.status or 200, content_type = v.content_type or XML, body = v.body or "" }
  end
  error("handler returned " .. type(v) .. "; expected TwiML, a string, nil or {status, body}", 0)
end

local function not_found(path)
  return { status = 404, content_type = "text/plain", body = "no route for " .. path .. "\n" }
end

local function reply(text)
  local r = twiml.messaging()
  if text and text ~= "" then r:message(text) end
  return { status = 200, content_type = XML, body = tostring(r) }
end

-- An address in the form rules and the store use: a channel prefix kept
-- ("whatsapp:"), the number in E.164 when it is a valid one, else as given.
local normalize = e164.normalize
local function parse_canonical(addr, region)
  local prefix, rest = addr:match("^(%a[%w.+-]*:)(.+)$")
  if not prefix or prefix == "tel:" then prefix, rest = "", addr end
  local n = normalize(rest, region)
  return n and (prefix .. n) or addr
end

-- The canonical form is a pure function of the address and the region, and
-- the same numbers write again and again: the last CANON_MAX answers per
-- region are kept (the table starts afresh when full), which saves the two
-- E.164 parses of most webhooks.
local CANON_MAX = 10000
local canon_cache, canon_n = {}, 0
local function canonical(addr, region)
  if type(addr) ~= "string" or addr == "" then return addr end
  local key = region or ""
  local byregion = canon_cache[key]
  if not byregion then
    byregion = {}
    canon_cache[key] = byregion
  end
  local c = byregion[addr]
  if c then return c end
  c = parse_canonical(addr, region)
  if canon_n >= CANON_MAX then
    canon_cache, canon_n = { [key] = {} }, 0
    byregion = canon_cache[key]
  end
  byregion[addr] = c
  canon_n = canon_n + 1
  return c
end
_M.canonical = canonical

--- The delivery policy an outbox entry carries for the sender
-- (`telua.sender`): quiet hours by the recipient's local time, a cap of
-- messages per recipient a day, and fallback channels.
-- @tparam table send the message's own fields: `quiet_hours` (`true`,
--   `false` or `{ from = "HH:MM", to = "HH:MM" }`, see
--   `telua.quiet.window`; nil: `default_quiet`), `max_per_day` (at most
--   this many messages to the recipient in 24 hours, counted when each
--   goes, `store:counter_hit`), `fallback` (a chain of hops,
--   `telua.fallback`), `locale` (the text's language, for a voice hop)
-- @param[opt] default_quiet the rules' `settings.quiet_hours` (off when nil)
-- @treturn table|boolean `{ quiet = WINDOW, max_per_day = N, fallback =
--   CHAIN, locale = L }`, or `true` when none applies
-- @return or `nil, message`
function _M.policy(send, default_quiet)
  local quiet_hours, max_per_day = send.quiet_hours, send.max_per_day
  if quiet_hours == nil then quiet_hours = default_quiet end
  local w, err = quiet.window(quiet_hours)
  if w == nil then return nil, err end
  if max_per_day ~= nil and (type(max_per_day) ~= "number" or max_per_day < 1 or max_per_day % 1 ~= 0) then
    return nil, "max_per_day must be a whole number >= 1"
  end
  local chain
  if send.fallback ~= nil then
    chain, err = fallback.check(send.fallback)
    if not chain then return nil, err end
  end
  if send.locale ~= nil and type(send.locale) ~= "string" then return nil, "locale must be a string such as \"es-MX\"" end
  if not w and not max_per_day and not chain then return true end
  return { quiet = w or nil, max_per_day = max_per_day, fallback = chain, locale = chain and send.locale or nil }
end

--- Queues an outbound message in a store's outbox for the host's sender
-- (`telua.sender`), with the checks of `req.send` (see the module notes):
-- `client.check_message`, the opt-out list, WhatsApp's 24-hour window.
-- Used by `req.send` and by the embedding API (`telua_send`).
-- @tparam table store a `telua.store`
-- @tparam table p the message: `to`, `from` or `messaging_service_sid`,
--   `body` or `content_sid` (+ `content_variables`), `media_url`,
--   `status_callback`, `dedupe` (key: a second send returns the first
--   id), `not_before` (epoch seconds), `quiet_hours` and `max_per_day`
--   (see `policy`)
-- @tparam[opt] table o `region` (for numbers without +country), `log`
--   (function(level, message)), `where` (for the log line), `optout_scope`
--   (`"account"`, the default, `"service"` or `"number"`: see
--   `telua.store.OPTOUT_SCOPES`; kept with the entry, so the sender checks
--   it again in the same scope), `service` (the Messaging Service of the
--   sending number, when known), `quiet_hours` (the default window of
--   `policy`)
-- @treturn[1] integer the outbox id
-- @treturn[2] nil
-- @treturn[2] table `telua.client`'s error shape (`code`, `message`)
function _M.queue(store, p, o)
  o = o or {}
  local client = require "telua.client"
  local q = {}
  for k, v in pairs(p) do q[k] = v end
  local dedupe, not_before = q.dedupe, q.not_before
  local policy, perr = _M.policy(q, o.quiet_hours)
  q.dedupe, q.not_before, q.quiet_hours, q.max_per_day, q.fallback, q.locale = nil, nil, nil, nil, nil, nil
  if not policy then return nil, client.error{ message = perr, where = "client" } end
  local m, err = client.check_message(q, o.region)
  if not m then return nil, err end
  m._segments, m._channel = nil, nil
  local sender = m.from or m.messaging_service_sid
  local scope = { scope = o.optout_scope, service = m.messaging_service_sid or o.service }
  local out, oerr = store:is_opted_out(sender, m.to, scope)
  if out == nil and oerr then
    return nil, client.error{ message = "opt-out lookup failed: " .. tostring(oerr), where = "client" }
  end
  if out then
    return nil, client.error{ code = 21610, message = "Attempt to send to unsubscribed recipient " .. m.to,
                              where = "client", status = 400, retryable = false }
  end
  if m.to:sub(1, 9) == "whatsapp:" and not m.content_sid then
    local open = store:window_open(sender, m.to)
    if not open then
      return nil, client.error{ code = 63016, where = "client", status = 400, retryable = false,
        message = "Outside the 24-hour WhatsApp window of " .. m.to .. ": send a template (content_sid)" }
    end
  end
  local id, aerr = store.outbox:enqueue(m, { dedupe = dedupe, not_before = not_before, optout_scope = o.optout_scope,
                                             policy = policy ~= true and policy or nil })
  if not id then return nil, client.error{ message = "outbox: " .. tostring(aerr), where = "client" } end
  if o.log then o.log("info", format("outbox %d: queued to %s (%s)", id, m.to, tostring(o.where))) end
  return id
end
local queue = _M.queue

-- req.send: see the module notes.
local function send(r, p)
  if type(p) ~= "table" then error("req.send needs a table of message parameters", 2) end
  local store, settings = r.store, r.settings
  if not store then error("req.send needs a store", 2) end
  local q = {}
  for k, v in pairs(p) do q[k] = v end
  if q.from == nil and q.messaging_service_sid == nil then q.from = r.to end -- answer from the number they wrote to
  if q.status_callback == nil and settings.status_callback then
    local cb = settings.status_callback
    q.status_callback = cb:find("^https?://") and cb or ((r.url or ""):match("^(https?://[^/]+)") or "") .. cb
  end
  return queue(store, q, { region = r.default_region, log = r.log, where = r.path,
                           optout_scope = settings.optout_scope, service = r.params.MessagingServiceSid,
                           quiet_hours = settings.quiet_hours })
end

-- Header lines as the host gives them ("name: value\n", names in lower
-- case) as a table.
local function parse_header_lines(lines)
  local t = {}
  for name, value in lines:gmatch("([^:\n]+): ([^\n]*)\n") do t[name] = value end
  return t
end

-- What a request table offers only on first use: req.from_number and
-- req.to_number (the parse of From / To), req.send (queue an outbound
-- message), and from the host's raw forms req.form (the body's pairs) and
-- req.headers.
local lazy = {
  __index = function(r, k)
    if k == "send" then
      local fn = function(p) return send(r, p) end
      rawset(r, "send", fn)
      return fn
    end
    if k == "form" then
      local raw = rawget(r, "form_raw")
      local form = raw and webhook.parse_form(raw) or {}
      rawset(r, "form", form)
      return form
    end
    if k == "headers" then
      local lines = rawget(r, "header_lines")
      local t = lines and parse_header_lines(lines) or {}
      rawset(r, "headers", t)
      return t
    end
    local raw
    if k == "from_number" then raw = r.params.From elseif k == "to_number" then raw = r.params.To else return nil end
    if type(raw) ~= "string" then return nil end
    local addr = raw:match("^%a[%w.+-]*:(.+)$")
    if raw:match("^tel:") then addr = raw end
    local n = e164.parse(addr or raw, r.default_region)
    rawset(r, k, n or false)
    return n or false
  end,
}

-- A plain Lua caller's request fields: the body's pairs (their first
-- values win) with the query's filled in.
local function params_of(req)
  local params = webhook.first_values(req.form or {})
  if req.query and req.query ~= "" then
    local q = webhook.parse_form(req.query)
    if q then for _, p in ipairs(q) do if params[p[1]] == nil then params[p[1]] = p[2] end end end
  end
  return params
end

-- Builds the table handlers see from the transport-level request. A
-- request in the host's forms (with `params`) becomes that table itself
-- (the host makes it with room for these fields); any other is copied.
local function view(req, store, log, region, settings)
  local params = req.params
  if params then
    local r = req
    r.store, r.log, r.default_region, r.settings = store, log, region, settings
    r.from, r.to, r.text = canonical(params.From, region), canonical(params.To, region), params.Body
    r.call_sid, r.message_sid, r.digits, r.opted_out = params.CallSid, params.MessageSid, params.Digits, false
    return setmetatable(r, lazy)
  end
  params = params_of(req)
  return setmetatable({
    method = req.method, path = req.path, url = req.url, query = req.query, headers = req.headers,
    body = req.body, form = req.form, params = params,
    store = store, from = canonical(params.From, region), to = canonical(params.To, region), text = params.Body,
    call_sid = params.CallSid, message_sid = params.MessageSid, digits = params.Digits,
    log = log, default_region = region, settings = settings,
    opted_out = false, args = nil, -- (room made for what the router sets: no rehash then)
  }, lazy)
end

-- A store read or write the answer depends on failed (disk full, database
-- locked past the busy timeout): 503, so that Twilio does not take the
-- webhook as handled, tries the fallback URL and raises its 11200 alert.
local function store_failed(log, what, err)
  log("error", format("%s failed, answering 503: %s", what, tostring(err)))
  return { status = 503, content_type = "text/plain", body = what .. " failed; try again later\n",
           store_failed = true }
end
_M.store_failed = store_failed

--- Tells `opts.on_event` of an event (callers build `fields` only when
-- `router.on_event` is set); an error there is the embedder's, logged and
-- dropped.
function Router:emit(kind, fields)
  local fn = self.on_event
  if not fn then return end
  local ok, err = pcall(fn, kind, fields)
  if not ok then self.log("error", format("event handler (%s): %s", kind, tostring(err))) end
end

function Router:_message(r, ctx)
  local store, settings, log = self.store, self.settings, self.log
  local sender, recipient = r.to, r.from
  local kind, word = optout.classify(r.text)
  local replies = settings.optout_replies ~= false
  -- the scope of the opt-out list (telua.store.OPTOUT_SCOPES) and the
  -- Messaging Service the message came through, if any
  local service = r.params.MessagingServiceSid
  local scope = service and { scope = settings.optout_scope, service = service } or self.scope_plain
  ctx.kind = "messaging"
  if kind and sender and recipient then
    if not store then error("opt-out keywords need a store (router.new{store = ...})", 0) end
    local out, err = store:is_opted_out(sender, recipient, scope)
    if out == nil then return store_failed(log, "opt-out lookup", err) end
    if kind == "STOP" then
      local ok, werr = store:optout_add(sender, recipient, word, scope)
      if not ok then return store_failed(log, format("opt-out of %s (%s)", recipient, word), werr) end
      log("info", format("opt-out: %s sent %s to %s", recipient, word, sender))
      metrics.record("telua_optouts_total", 1, "keyword")
      if self.on_event then self:emit("optout", { from = recipient, to = sender, keyword = word }) end
      return reply(replies and (settings.stop_reply or optout.REPLIES.STOP))
    elseif kind == "START" then
      local ok, werr = store:optout_remove(sender, recipient, scope)
      if not ok then return store_failed(log, format("opt-in of %s (%s)", recipient, word), werr) end
      log("info", format("opt-in: %s sent %s to %s", recipient, word, sender))
      metrics.record("telua_optins_total", 1)
      if self.on_event then self:emit("optin", { from = recipient, to = sender, keyword = word }) end
      return reply(replies and (settings.start_reply or optout.REPLIES.START))
    else -- HELP: Twilio sends no help reply to an opted-out number
      return reply(replies and not out and (settings.help_reply or optout.REPLIES.HELP))
    end
  end
  if store and sender and recipient then
    local out, err = store:is_opted_out(sender, recipient, scope)
    if out == nil then return store_failed(log, "opt-out lookup", err) end
    r.opted_out = out
    if byte(recipient, 1) == 119 and recipient:sub(1, 9) == "whatsapp:" then -- their message opens the 24-hour window
      local ok, werr = store:window_touch(sender, recipient)
      if not ok then return store_failed(log, "WhatsApp window update", werr) end
    end
  end
  if recipient and self.on_event then
    self:emit("inbound", { from = recipient, to = sender, body = r.text, message_sid = r.message_sid })
  end
  local text = r.text or ""
  local first -- the first word in upper case, once a rule has a keyword
  local region, canon = settings.default_region, self.canon
  if self.canon_region ~= region then -- the rules' own numbers, once per region
    canon = {}
    self.canon, self.canon_region = canon, region
  end
  local entries = self.messages
  for i = 1, #entries do
    local e = entries[i]
    local want_to, want_from = e.to, e.from
    if e.keyword and not first then first = upper(text:match("^%s*(%S*)") or "") end
    if want_to then
      want_to = canon[e.to] or canonical(e.to, region)
      canon[e.to] = want_to
    end
    if want_from then
      want_from = canon[e.from] or canonical(e.from, region)
      canon[e.from] = want_from
    end
    if e.path == r.path
       and (not e.keyword or e.keyword == first)
       and (not want_to or want_to == sender)
       and (not want_from or want_from == recipient)
       and (not e.match or text:find(e.match)) then
      ctx.rule = e.source
      if e.keyword then r.args = text:match("^%s*%S+%s*(.-)%s*$") end
      local res = respond(e.handler(r), "messaging")
      if r.opted_out then
        log("info", format("reply to opted-out %s suppressed (%s)", recipient, e.source))
        return { status = 200, content_type = XML, body = EMPTY_RESPONSE }
      end
      return res
    end
  end
  return { status = 200, content_type = XML, body = EMPTY_RESPONSE }
end

--- Handles one webhook request.
-- @tparam table req `method`, `path`, `query` (raw, without `?`), `url`
--   (the full public URL), `form` (decoded `{key, value}` pairs),
--   `headers` (lower-case names), `body` (raw, for non-form bodies). The
--   host gives cheaper forms instead, which handlers see unchanged: `params`
--   (the map of first values, the body's before the query's) for `form`
--   and `query`, with `form_raw` (the urlencoded body) from which
--   `req.form` is decoded if a handler reads it; `header_lines`
--   (`"name: value\n"` each, names in lower case) for `headers`. A request
--   with `params` becomes the table the handler sees (the router adds its
--   fields to it: give each call a fresh one, made with room for about 20
--   fields).
-- @tparam[opt] table ctx filled with `kind` (`"voice"`, `"messaging"`,
--   `"status"`), `rule` (`"file:line"` of the handler) and `route` (the
--   route's path as the rules wrote it, `"/base/*"` for a flow's steps;
--   unset when no route matched) before the handler runs, so a caller can
--   answer with the right fallback and count by route
-- @treturn table `{ status = n, content_type = s, body = s }`
-- @raise whatever the handler raises
--
-- Retried deliveries: Twilio sends the same `I-Twilio-Idempotency-Token`
-- header when it delivers a webhook again. With `settings.idempotency =
-- true` and a store, the first answer is kept (`settings.idempotency_ttl`
-- seconds, default 86400) and a retry gets it back without running the
-- rules again (`ctx.replayed` is set), so a rule that sends a message does
-- not send it twice. It is off by default: it costs a store write per
-- webhook (with SQLite and 2 workers, 7,400 instead of 30,000 webhooks a
-- second on the bench machine), and Twilio retries only when a delivery
-- failed or when the webhook URL asks for retries.
function Router:handle(req, ctx)
  ctx = ctx or {}
  local store, settings = self.store, self.settings
  if settings.idempotency ~= true or not store then return self:_handle(req, ctx) end
  local token
  if req.headers then token = req.headers["i-twilio-idempotency-token"]
  elseif req.header_lines then token = parse_header_lines(req.header_lines)["i-twilio-idempotency-token"] end
  if type(token) ~= "string" or token == "" then return self:_handle(req, ctx) end
  local key = (req.method or "") .. " " .. (req.path or "") .. " " .. token
  local hit = store:kv_get("webhook", key)
  if hit then -- "status content-type\nbody"
    local status, ctype, body = hit:match("^(%d+) ([^\n]*)\n(.*)$")
    if status then
      ctx.replayed = true
      self.log("info", format("replayed the answer to a retried webhook %s %s", tostring(req.method), tostring(req.path)))
      return { status = tonumber(status), content_type = ctype ~= "" and ctype or nil, body = body }
    end
  end
  local res = self:_handle(req, ctx)
  local ok, err = store:kv_set("webhook", key, tostring(res.status or 200) .. " " .. (res.content_type or "") ..
                               "\n" .. (res.body or ""), settings.idempotency_ttl or 86400)
  if not ok then self.log("warn", "idempotency store: " .. tostring(err)) end
  return res
end

-- The routing itself (handle without the idempotency replay).
function Router:_handle(req, ctx)
  local path = req.path
  local region = self.settings.default_region
  local r = view(req, self.store, self.log, region, self.settings)
  local v = self.voice[path]
  if v then
    ctx.kind, ctx.rule, ctx.route = "voice", v.source, path
    if is_flow(v.handler) then return v.handler:run(r, path, nil, ctx, respond) end
    return respond(v.handler(r), "voice")
  end
  local flows = self.flows
  for i = 1, #flows do
    local f = flows[i]
    local base = f.base
    if path:sub(1, #base + 1) == base .. "/" then
      ctx.kind, ctx.route = "voice", base .. "/*"
      return f.flow:run(r, base, path:sub(#base + 2), ctx, respond)
    end
  end
  if self.message_paths[path] then
    ctx.route = path
    return self:_message(r, ctx)
  end
  local s = self.status[path]
  if s then
    ctx.kind, ctx.rule, ctx.route = "status", s.source, path
    if self.on_status then -- the host's bookkeeping (telua.status): the message log, resends
      local res = self.on_status(self, r)
      if res then return res end
    end
    return respond(s.handler(r), "status")
  end
  return not_found(path)
end

_M.respond = respond
_M.EMPTY_RESPONSE = EMPTY_RESPONSE

return _M
