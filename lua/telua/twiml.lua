--- TwiML builders: voice and messaging responses, as Twilio's helper libraries build them.
--
-- A verb or noun is a method named after it in snake_case (`say`, `say_as`,
-- `conversation_relay`; SSML `<break>` is `break_`), called as
-- `el:verb([text][, attrs])` (or `el:verb(attrs[, text])`) and returning the
-- new element, so nesting reads like the XML. `tostring(response)` is the
-- document. The verbs, their nesting and their tag names are those of
-- twilio-node 6.2.0 `src/twiml/VoiceResponse.ts` and `MessagingResponse.ts`.
--
-- Attribute keys may be snake_case (`status_callback`, `xml_lang`,
-- `interpret_as`) or spelled exactly as Twilio does (`statusCallback`,
-- `xml:lang`, `interpret-as`). Values: strings; numbers (integral values
-- print without a fraction); booleans (`true`/`false`); lists (joined by a
-- single space, as twilio-node joins arrays). Attributes are written in
-- sorted order, so output is deterministic. Escaping follows twilio-node
-- (text: & < > CR; attributes: & < " TAB LF CR). A character XML 1.0 forbids
-- (a C0 control other than TAB/LF/CR, U+FFFE/U+FFFF, bad UTF-8) raises.
--
-- @module telua.twiml
-- @usage
-- local twiml = require "telua.twiml"
-- local r = twiml.voice()
-- local g = r:gather{ num_digits = 1, action = "/voice/menu" }
-- g:say("Press 1 for sales.", { voice = "Polly.Joanna" })
-- r:redirect("/voice/incoming")
-- print(tostring(r))

local core = require "telua.core"

local type, tostring, pairs, ipairs, error, setmetatable, getmetatable, rawget =
      type, tostring, pairs, ipairs, error, setmetatable, getmetatable, rawget
local concat, floor, format = table.concat, math.floor, string.format
local xml_check, xml_render = core.xml_check, core.xml_render

local _M = { _VERSION = "0.1.0", content_type = "text/xml" }

local SSML_ALL = { "break_", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say_as", "sub", "w" }
local SSML_NO_P_S = { "break_", "emphasis", "lang", "phoneme", "prosody", "say_as", "sub", "w" }

-- Which methods each element offers (by element kind), from twilio-node.
local CHILDREN = {
  VoiceResponse = { "connect", "dial", "echo", "enqueue", "gather", "hangup", "leave", "pause",
                    "pay", "play", "prompt", "queue", "record", "redirect", "refer", "reject",
                    "say", "sms", "start", "stop" },
  MessagingResponse = { "message", "redirect" },
  Message = { "body", "media" },
  Gather = { "pause", "play", "say" },
  Prompt = { "pause", "play", "say" },
  Say = SSML_ALL,
  emphasis = SSML_NO_P_S,
  lang = SSML_ALL,
  p = { "break_", "emphasis", "lang", "phoneme", "prosody", "s", "say_as", "sub", "w" },
  prosody = SSML_ALL,
  s = SSML_NO_P_S,
  w = { "break_", "emphasis", "phoneme", "prosody", "say_as", "sub" },
  Dial = { "application", "client", "conference", "number", "queue", "sim", "sip", "whatsapp" },
  Application = { "application_sid", "parameter" },
  Client = { "identity", "parameter" },
  Sip = { "headers", "uri" },
  Headers = { "header" },
  Enqueue = { "task" },
  Connect = { "ai_session", "autopilot", "conversation", "conversation_relay",
              "conversation_relay_session", "room", "stream", "virtual_agent" },
  ConversationRelay = { "language", "parameter" },
  VirtualAgent = { "config", "parameter" },
  Stream = { "parameter" },
  Siprec = { "parameter" },
  Transcription = { "config", "parameter" },
  Start = { "recording", "siprec", "stream", "transcription" },
  Stop = { "siprec", "stream", "transcription" },
  Pay = { "parameter", "prompt" },
  Refer = { "sip" },
  Hangup = { "parameter" },
  Reject = { "parameter" },
}

-- Tag names that are not the method name in PascalCase.
local TAGS = {
  break_ = "break", emphasis = "emphasis", lang = "lang", p = "p", phoneme = "phoneme",
  prosody = "prosody", s = "s", say_as = "say-as", sub = "sub", w = "w",
  whatsapp = "WhatsApp", ai_session = "AiSession",
}

-- Elements whose children differ from another element of the same tag.
local KINDS = { ["Refer.sip"] = "ReferSip" }

-- Attribute keys that snake_case cannot reach by camelising.
local ATTR_KEYS = { xml_lang = "xml:lang", interpret_as = "interpret-as", from_ = "from", for_ = "for" }

local function tag_of(method)
  local t = TAGS[method]
  if t then return t end
  return (method:gsub("^%l", string.upper):gsub("_(%l)", string.upper))
end

local function wire_key(k)
  local special = ATTR_KEYS[k]
  if special then return special end
  if not k:find("_", 1, true) then return k end
  return (k:gsub("_(%w)", string.upper))
end

local function checked(s, what, level)
  local ok, pos = xml_check(s)
  if not ok then
    error(format("twiml: %s has a character XML does not allow at byte %d", what, pos), level + 1)
  end
  return s
end

local function scalar(v, key, level)
  local tv = type(v)
  if tv == "string" then return v end
  if tv == "number" then
    if v == floor(v) and v > -2^53 and v < 2^53 then return format("%d", v) end
    return tostring(v)
  end
  if tv == "boolean" then return v and "true" or "false" end
  error(format("twiml: attribute '%s' must be a string, number, boolean or list, got %s", key, tv),
        level + 1)
end

local function attr_value(v, key, level)
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = scalar(x, key, level + 1) end
    return checked(concat(parts, " "), "attribute '" .. key .. "'", level + 1)
  end
  return checked(scalar(v, key, level + 1), "attribute '" .. key .. "'", level + 1)
end

-- Converts a user attrs table to { wire_key = string }, or nil when it
-- has none.
local function wire_attrs(attrs, level)
  if attrs == nil then return nil end
  if type(attrs) ~= "table" then
    error("twiml: attributes must be a table, got " .. type(attrs), level + 1)
  end
  local out
  for k, v in pairs(attrs) do
    if type(k) ~= "string" then error("twiml: attribute names must be strings", level + 1) end
    if v ~= nil then
      out = out or {}
      out[wire_key(k)] = attr_value(v, k, level + 1)
    end
  end
  return out
end

-- The text of a new element, checked ("" as nil); `level` is the error
-- level of the user's call.
local function element_text(text, tag, level)
  local tt = type(text)
  if tt == "number" then text = scalar(text, tag, level + 1)
  elseif tt ~= "string" then
    error(format("twiml: text of <%s> must be a string or number, got %s", tag, tt), level + 1)
  end
  if text == "" then return nil end
  if not xml_check(text) then checked(text, "text of <" .. tag .. ">", level + 1) end
  return text
end

-- An element is { tag = s, attrs = nil | { wire name = s }, [1..n] =
-- children (text or elements) }, the shape core.xml_render writes.
local Element = {}
local metas = {}
local meta_for

-- Adds a child element to parent; `level` is the error level of the user's call.
local function add(parent, tag, kind, text, attrs, level)
  local w = attrs ~= nil and wire_attrs(attrs, level + 1) or nil
  local el
  if text ~= nil then
    if type(text) ~= "string" or text == "" or not xml_check(text) then text = element_text(text, tag, level + 1) end
    el = { text, tag = tag, attrs = w }
  else
    el = { tag = tag, attrs = w }
  end
  setmetatable(el, metas[kind] or meta_for(kind))
  parent[#parent + 1] = el
  return el
end

-- (built once per kind, apart from meta_for: a function that makes closures
-- cannot be compiled by LuaJIT, and meta_for runs for every element)
local function build_meta(kind)
  local methods = setmetatable({}, { __index = Element })
  for _, m in ipairs(CHILDREN[kind] or {}) do
    local tag = tag_of(m)
    local child_kind = KINDS[kind .. "." .. m] or tag
    methods[m] = function(self, a, b)
      if type(a) == "table" then return add(self, tag, child_kind, b, a, 2) end
      return add(self, tag, child_kind, a, b, 2)
    end
  end
  local mt = { __index = methods, __tostring = xml_render }
  metas[kind] = mt
  return mt
end

meta_for = function(kind)
  return metas[kind] or build_meta(kind)
end

--- Adds an element Twilio supports that telua has no method for.
-- @tparam string tag the tag name, exactly as Twilio spells it
-- @tparam[opt] string text its text
-- @tparam[opt] table attrs its attributes
-- @treturn table the new element (it offers only add_child and add_text)
function Element:add_child(tag, text, attrs)
  if type(tag) ~= "string" or not tag:match("^[%a_][%w_%-%.:]*$") then
    error("twiml: add_child needs a valid XML tag name", 2)
  end
  if type(text) == "table" then text, attrs = attrs, text end
  return add(self, tag, "generic", text, attrs, 2)
end

--- Appends text to this element (mixed content, e.g. SSML between tags).
-- @tparam string text
-- @treturn table this element
function Element:add_text(text)
  if type(text) == "number" then text = scalar(text, self.tag, 2) end
  if type(text) ~= "string" then error("twiml: add_text needs a string", 2) end
  if text ~= "" then self[#self + 1] = checked(text, "text", 2) end
  return self
end

--- The XML document, with the declaration twilio-node writes (rendered in C:
-- `core.xml_render`, attributes sorted by name, empty elements as `<Tag/>`).
-- @treturn string
function Element:to_xml()
  return xml_render(self)
end

local function response(kind)
  -- (room for four children made with the table: appending to an array
  -- part that exists needs no rehash)
  return setmetatable({ nil, nil, nil, nil, tag = "Response" }, metas[kind] or meta_for(kind))
end

--- A new voice response (`<Response>` for calls).
-- @treturn table the root element; `tostring` gives the XML
function _M.voice() return response("VoiceResponse") end

--- A new messaging response (`<Response>` for SMS, MMS and WhatsApp).
-- @treturn table the root element; `tostring` gives the XML
function _M.messaging() return response("MessagingResponse") end

--- True when `v` is an element built by this module.
function _M.is_element(v)
  if type(v) ~= "table" then return false end
  local mt = getmetatable(v)
  return mt ~= nil and rawget(mt, "__tostring") == xml_render and type(rawget(v, "tag")) == "string"
end

return _M
