--- Loads a rules folder into a router: one generation, all or nothing.
--
-- Every `*.lua` file directly in the folder is a rules file, compiled in
-- text mode with its own environment (reads fall through to the globals,
-- writes stay in the file's table) and run once; it must return a rules
-- table (`telua.router`). Helper modules go in `DIR/lib/` and are
-- `require`d as `lib.name` (loaded once per generation). The first error stops the load and is returned
-- with its file and line.
--
-- @module telua.rules

local router = require "telua.router"

local type, ipairs, tostring, setmetatable, loadfile, xpcall, traceback =
      type, ipairs, tostring, setmetatable, loadfile, xpcall, debug.traceback

local _M = { _VERSION = "0.1.0" }

-- "path:line: message" -> { file, line, message }
local function located(msg, default_file)
  msg = tostring(msg)
  local first = msg:match("^[^\n]*")
  local file, line, text = first:match("^(.-%.lua):(%d+): (.*)$")
  if file then return { file = file, line = tonumber(line), message = text, detail = msg } end
  return { file = default_file, line = nil, message = first, detail = msg }
end

local function list_dir(dir)
  local files, err = require("telua.core").list_dir(dir, ".lua")
  if not files then error("rules.load: " .. err, 3) end
  return files
end

--- Loads a rules folder.
-- @tparam string dir the folder
-- @tparam[opt] table files file names in it to load, in order (default:
--   every `*.lua`, sorted)
-- @tparam[opt] table opts passed to `router.new` (`store`, `log`, `settings`)
-- @return the router, or `nil, err` where `err` is
--   `{ file = s, line = n|nil, message = s, detail = s }`
function _M.load(dir, files, opts)
  if type(dir) ~= "string" then error("dir must be a string", 2) end
  files = files or list_dir(dir)
  local r = router.new(opts)
  -- `require "lib.name"` loads DIR/lib/name.lua once per generation, so an
  -- edited helper is picked up by the next generation and never shared
  -- with the previous one; every other name goes to the global require.
  local libs = {}
  local function rules_require(name)
    local rel = type(name) == "string" and name:match("^lib%.([%w_%.]+)$")
    if not rel then return require(name) end
    if libs[name] ~= nil then return libs[name] end
    local chunk, err = loadfile(dir .. "/lib/" .. rel:gsub("%.", "/") .. ".lua", "t",
                                setmetatable({ require = rules_require }, { __index = _G }))
    if not chunk then error(err, 2) end
    local value = chunk(name)
    if value == nil then value = true end
    libs[name] = value
    return value
  end
  for _, name in ipairs(files) do
    local path = dir .. "/" .. name
    local env = setmetatable({ require = rules_require }, { __index = _G })
    local chunk, err = loadfile(path, "t", env)
    if not chunk then return nil, located(err, path) end
    local ok, rules = xpcall(chunk, function(e) return traceback(tostring(e), 2) end)
    if not ok then return nil, located(rules, path) end
    local added, aerr = r:add(path, rules)
    if not added then return nil, located(aerr, path) end
  end
  return r
end

--- Formats a load error as `file:line: message`.
function _M.format_error(err)
  if err.line then return err.file .. ":" .. err.line .. ": " .. err.message end
  return tostring(err.file) .. ": " .. err.message
end

return _M
