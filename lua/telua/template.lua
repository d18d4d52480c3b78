--- Message templates: `{{name}}` placeholders filled from a table.
--
-- A placeholder is `{{name}}` or `{{ name }}` (letters, digits, `_`, `.`
-- for nested tables). A missing value is an error, never an empty string,
-- so a message is not sent with a hole in it.
--
-- @module telua.template
-- @usage
-- local template = require "telua.template"
-- template.render("Hi {{name}}, order {{order.id}} shipped.", { name = "Ana", order = { id = "42" } })

local type, tostring, error, format = type, tostring, error, string.format

local _M = { _VERSION = "0.1.0" }

local function lookup(vars, path)
  local v = vars
  for part in path:gmatch("[^%.]+") do
    if type(v) ~= "table" then return nil end
    v = v[part]
  end
  return v
end

--- Renders a template.
-- @tparam string text the template
-- @tparam table vars values for the placeholders (strings or numbers)
-- @return the text, or `nil, "missing value for 'name'", "missing"`
-- @raise when text is not a string or vars not a table
function _M.render(text, vars)
  if type(text) ~= "string" then error("template must be a string", 2) end
  if type(vars) ~= "table" then error("vars must be a table", 2) end
  local missing
  local out = text:gsub("{{%s*([%w_%.]+)%s*}}", function(name)
    local v = lookup(vars, name)
    local tv = type(v)
    if tv == "string" then return v end
    if tv == "number" then return tostring(v) end
    missing = missing or name
    return ""
  end)
  if missing then return nil, format("missing value for '%s'", missing), "missing" end
  return out
end

return _M
