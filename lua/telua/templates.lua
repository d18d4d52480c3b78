--- Named message templates with locales, segment previews and WhatsApp content templates.
--
-- Each file `NAME.lua` in a templates folder (`rules/templates/` by
-- default) returns one template:
--
--     return {
--       default_locale = "en",
--       locales = {
--         en = "Hi {{name}}, order {{order}} has shipped.",
--         es = "Hola {{name}}, tu pedido {{order}} ha sido enviado.",
--         ["pt-BR"] = "Oi {{name}}, seu pedido {{order}} foi enviado.",
--       },
--       -- optional: "marketing", "utility" or "authentication" (WhatsApp's
--       -- categories); a marketing text must carry opt-out wording
--       category = "utility",
--       -- optional: the approved WhatsApp template (Content API) for the same message
--       whatsapp = { content_sid = "HX...", variables = { "name", "order" } },
--       -- optional: the quiet hours a campaign of this template keeps
--       -- (`telua.quiet.window`; campaigns keep 21:00-08:00 by default)
--       quiet_hours = { from = "20:00", to = "08:00" },
--     }
--
-- A locale is looked up as written (`es-MX`), then by its language (`es`),
-- then the template's `default_locale`. Placeholders are `telua.template`'s
-- `{{name}}`; a missing value is an error, never an empty hole.
--
-- `render` also gives the body's encoding and segments (Twilio's
-- message-segment-calculator rules, `telua.segments`) and warns when a few
-- characters force UCS-2, with what Smart Encoding would send instead.
-- For WhatsApp outside the 24-hour window only a content template may be
-- sent (63016): `render{ channel = "whatsapp", window_open = false }`
-- answers with `content_sid` and `content_variables` (the JSON Twilio
-- takes: position -> value), or an error when the template has none.
--
-- @module telua.templates

local core = require "telua.core"
local template = require "telua.template"
local segments = require "telua.segments"
local quiet = require "telua.quiet"

local type, pairs, ipairs, tostring, error, setmetatable, format, concat =
  type, pairs, ipairs, tostring, error, setmetatable, string.format, table.concat

local _M = { _VERSION = "0.1.0" }

-- WhatsApp's template categories, used for SMS too: a marketing template
-- must say how to opt out (`telua check` warns when it does not)
local CATEGORIES = { marketing = true, utility = true, authentication = true }

local Set = {}
Set.__index = Set

local function check(name, t, file)
  if type(t) ~= "table" then return nil, format("%s: a template file must return a table", file) end
  if type(t.locales) ~= "table" or next(t.locales) == nil then
    return nil, format("%s: locales must be a table of locale -> text", file)
  end
  for loc, text in pairs(t.locales) do
    if type(loc) ~= "string" or type(text) ~= "string" then
      return nil, format("%s: locales must map locale names to strings", file)
    end
  end
  local def = t.default_locale or "en"
  if not t.locales[def] then
    return nil, format("%s: default_locale '%s' has no text", file, tostring(def))
  end
  if t.category ~= nil and not CATEGORIES[t.category] then
    return nil, format('%s: category must be "marketing", "utility" or "authentication", got %s', file,
                       tostring(t.category))
  end
  local wa = t.whatsapp
  if wa ~= nil then
    if type(wa) ~= "table" or type(wa.content_sid) ~= "string" or not wa.content_sid:find("^HX%x+$") then
      return nil, format("%s: whatsapp.content_sid must be a Content SID (HX...)", file)
    end
    if wa.variables ~= nil and type(wa.variables) ~= "table" then
      return nil, format("%s: whatsapp.variables must be a list of variable names", file)
    end
  end
  if t.quiet_hours ~= nil then
    local w, qerr = quiet.window(t.quiet_hours)
    if w == nil then return nil, format("%s: %s", file, qerr) end
  end
  return { name = name, default_locale = def, locales = t.locales, whatsapp = wa, file = file, category = t.category,
           quiet_hours = t.quiet_hours }
end

--- A template's own `quiet_hours` setting (nil when it has none).
-- @tparam string name
function Set:quiet_hours(name)
  local tpl = self.by_name[name]
  return tpl and tpl.quiet_hours
end

--- Loads every `*.lua` file of a folder.
-- @tparam string dir the folder
-- @treturn table a template set (`set:render`, `set:names`)
-- @return or `nil, "file: message"`
function _M.load(dir)
  if type(dir) ~= "string" then error("templates.load: dir must be a string", 2) end
  local files, lerr = core.list_dir(dir, ".lua")
  if not files then return nil, lerr end
  local set = setmetatable({ dir = dir, by_name = {} }, Set)
  for _, f in ipairs(files) do
    local name = f:match("^([%w_%-]+)%.lua$")
    if name then
      local path = dir .. "/" .. f
      local chunk, err = loadfile(path, "t", {})
      if not chunk then return nil, err end
      local ok, t = pcall(chunk)
      if not ok then return nil, path .. ": " .. tostring(t) end
      local tpl, cerr = check(name, t, path)
      if not tpl then return nil, cerr end
      set.by_name[name] = tpl
    end
  end
  return set
end

--- Makes a set from tables (for tests and rules that build templates in code).
-- @tparam table t name -> template table (as a file returns)
function _M.from_tables(t)
  local set = setmetatable({ dir = "(tables)", by_name = {} }, Set)
  for name, v in pairs(t) do
    local tpl, err = check(name, v, name)
    if not tpl then return nil, err end
    set.by_name[name] = tpl
  end
  return set
end

--- The template names, sorted.
function Set:names()
  local out = {}
  for n in pairs(self.by_name) do out[#out + 1] = n end
  table.sort(out)
  return out
end

-- locale -> the locale whose text is used
local function pick(tpl, locale)
  if type(locale) == "string" and locale ~= "" then
    if tpl.locales[locale] then return locale end
    local lang = locale:match("^(%a+)[-_]")
    if lang and tpl.locales[lang] then return lang end
    local lower = locale:lower()
    for l in pairs(tpl.locales) do if l:lower() == lower then return l end end
  end
  return tpl.default_locale
end

-- Clusters that force UCS-2, and what Smart Encoding would give.
local function ucs2_advice(body)
  local seg = segments.count(body, { non_gsm = true })
  if not seg or seg.encoding ~= "UCS-2" then return nil end
  local chars = seg.non_gsm or {}
  local w = {
    non_gsm = chars,
    message = format("%d character%s (%s) force%s UCS-2: %d segment%s of 70/67 units instead of 160/153 characters",
      #chars, #chars == 1 and "" or "s", concat(chars, " "), #chars == 1 and "s" or "",
      seg.segments, seg.segments == 1 and "" or "s"),
  }
  local smart = segments.count(body, { smart_encoding = true })
  if smart and smart.encoding == "GSM-7" then
    w.smart_encoding = { encoding = "GSM-7", segments = smart.segments, text = smart.text }
    w.message = w.message .. format("; Smart Encoding would send it as GSM-7 in %d segment%s",
      smart.segments, smart.segments == 1 and "" or "s")
  else
    w.message = w.message .. "; Smart Encoding cannot help (not every such character has a GSM look-alike)"
  end
  return w
end

--- Renders a template.
-- @tparam string name the template's name (its file name without `.lua`)
-- @tparam table vars values for the placeholders
-- @tparam[opt] table opts `locale` (e.g. `"es-MX"`), `channel` (`"sms"`,
--   default, or `"whatsapp"`), `window_open` (WhatsApp: whether the user's
--   24-hour window is open; when false the content template is used)
-- @treturn table `{ body, locale, encoding, segments, characters, warnings }`
--   or, for a WhatsApp content template, `{ content_sid, content_variables,
--   locale }` (content_variables as a table: "1" -> value, ...)
-- @return or `nil, message, code`: `"unknown"` template, `"missing"`
--   variable, `"no_content_template"` (63016: WhatsApp outside the window
--   and the template has no `whatsapp.content_sid`)
function Set:render(name, vars, opts)
  local tpl = self.by_name[name]
  if not tpl then return nil, format("no template named '%s' in %s", tostring(name), self.dir), "unknown" end
  vars = vars or {}
  opts = opts or {}
  local locale = pick(tpl, opts.locale)
  if opts.channel == "whatsapp" and opts.window_open == false then
    local wa = tpl.whatsapp
    if not wa then
      return nil, format("template '%s' has no WhatsApp content template, and a free-form message "
        .. "outside the 24-hour window is refused (63016)", name), "no_content_template"
    end
    local cv = {}
    for i, v in ipairs(wa.variables or {}) do
      local x = vars[v]
      if x == nil then return nil, format("missing value for '%s'", v), "missing" end
      cv[tostring(i)] = tostring(x)
    end
    return { content_sid = wa.content_sid, content_variables = cv, locale = locale }
  end
  local body, err, code = template.render(tpl.locales[locale], vars)
  if not body then return nil, err, code end
  local seg, serr = segments.count(body)
  if not seg then return nil, serr, "invalid_utf8" end
  local warnings = {}
  local adv = ucs2_advice(body)
  if adv then warnings[#warnings + 1] = adv end
  return { body = body, locale = locale, encoding = seg.encoding, segments = seg.segments,
           characters = seg.characters, warnings = warnings }
end

--- A preview of every locale of a template with sample values: encoding,
-- segments and warnings, for `telua campaign --dry-run` and editors.
-- @treturn table locale -> render result (or `{ error = message }`)
function Set:preview(name, vars)
  local tpl = self.by_name[name]
  if not tpl then return nil, format("no template named '%s'", tostring(name)), "unknown" end
  local out = {}
  for loc in pairs(tpl.locales) do
    local r, err = self:render(name, vars, { locale = loc })
    out[loc] = r or { error = err }
  end
  return out
end

return _M
