--- Loads a rules folder into a router: one generation, all or nothing.
--
-- Every `*.lua` file directly in the folder is a rules file, compiled in
-- text mode with its own environment (reads fall through to the globals,
-- writes stay in the file's table) and run once; it must return a rules
-- table (`telua.router`). Helper modules go in `DIR/lib/` and are
-- `require`d as `lib.name` (loaded once per generation). The first error
-- stops the load and is returned with its file and line.
--
-- With `opts.sandbox` (what the telua host does unless started with
-- `--unsafe-rules`) the globals the rules see are an allowlist, as in
-- Redis's scripting sandbox:
--
-- * base: `assert error ipairs next pairs pcall xpcall select tonumber
--   tostring type rawequal rawget rawlen rawset getmetatable setmetatable
--   _VERSION`, `print` (to the host's log), `collectgarbage` (`"count"`,
--   `"step"`, `"collect"`, `"isrunning"` only);
-- * `load`, `loadfile`, `dofile`: text chunks only (binary chunks are not
--   checked by Lua and can crash it), run in a sandbox environment;
--   `loadfile`/`dofile` read files inside the rules folder only;
-- * `string` (without `dump`), `table`, `math`, `utf8`, `coroutine` (whose
--   coroutines run under the request's CPU budget however they were made);
-- * `os.time`, `os.clock`, `os.date`, `os.difftime`, and `os.getenv`, which
--   answers nil for `TWILIO_*` and `TELUA_*` (credentials reach
--   `telua.client` through the host, not through the rules);
-- * `io.open` (reading only) and `io.lines`, for files inside the rules
--   folder;
-- * `require`: `lib.*`, `cjson`, `cjson.safe`, `telua` and the public
--   modules (`telua.twiml`, `flow`, `e164`, `segments`, `template`,
--   `templates`, `verify`, `client`, `http`, `webhook`, `optout`, `gcra`,
--   `quiet`).
--
-- Not there: `debug`, `package`, `os.exit`, `os.execute`, `os.remove`,
-- `os.rename`, `os.tmpname`, `os.setlocale`, `io.popen`, writing files,
-- `telua.core` and the host's own modules. Every table above is read-only
-- to the rules, and so are the modules `require` returns, so no rule can
-- change what another rule (or telua itself) runs.
--
-- @module telua.rules

local router = require "telua.router"

local type, ipairs, pairs, next, tostring, setmetatable, getmetatable, loadfile, load, xpcall, error, select,
      traceback, concat =
      type, ipairs, pairs, next, tostring, setmetatable, getmetatable, loadfile, load, xpcall, error, select,
      debug.traceback, table.concat
local registry = debug.getregistry

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

-- ---- the sandbox ---------------------------------------------------------

-- A read-only view of t: reads and pairs go to t, writes raise.
local function readonly(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, k)
      error(("%s is read-only to rules (cannot set %s.%s)"):format(name, name, tostring(k)), 2)
    end,
    __pairs = function() return next, t, nil end,
    __len = function() return #t end,
    __metatable = false,
  })
end

local function copy(t, only, except)
  local out = {}
  if only then
    for _, k in ipairs(only) do out[k] = t[k] end
  else
    for k, v in pairs(t) do if not (except and except[k]) then out[k] = v end end
  end
  return out
end

local PUBLIC = {
  cjson = true, ["cjson.safe"] = true,
  ["telua.twiml"] = true, ["telua.flow"] = true, ["telua.e164"] = true, ["telua.segments"] = true,
  ["telua.template"] = true, ["telua.templates"] = true, ["telua.verify"] = true, ["telua.client"] = true,
  ["telua.http"] = true, ["telua.webhook"] = true, ["telua.optout"] = true, ["telua.gcra"] = true,
  ["telua.quiet"] = true,
}
_M.SANDBOX_MODULES = PUBLIC

local GC_OPTIONS = { count = true, step = true, collect = true, isrunning = true }

-- A path a rule may read: relative to the rules folder (or absolute inside
-- it), without "..": the rules' own data files, and never /proc, /dev or
-- the auth token's file.
local function rules_path(dir, path, fn)
  if type(path) ~= "string" then error(fn .. ": the file name must be a string", 3) end
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." then error(fn .. ": '..' is not allowed in a rules file path", 3) end
    if part ~= "." then parts[#parts + 1] = part end
  end
  local rel = concat(parts, "/")
  if path:sub(1, 1) == "/" then
    local base = dir:gsub("/+$", "")
    if path:sub(1, #base + 1) ~= base .. "/" then
      error(fn .. ": rules read files inside the rules folder only (" .. path .. ")", 3)
    end
    return "/" .. rel
  end
  return dir .. "/" .. rel
end

-- The globals of one generation's rules: built once per load, shared
-- (read-only) by every rules file and lib/ module of it.
local function sandbox_base(dir, log, rules_require)
  local base = copy(_G, { "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "select", "tonumber",
                          "tostring", "type", "rawequal", "rawget", "rawlen", "rawset", "getmetatable",
                          "setmetatable", "_VERSION" })
  local string_lib = copy(string, nil, { dump = true })
  local os_lib = copy(os, { "time", "clock", "date", "difftime" })
  local getenv = os.getenv
  function os_lib.getenv(name)
    if type(name) == "string" and (name:find("^TWILIO_") or name:find("^TELUA_")) then return nil end
    return getenv(name)
  end

  local env_of -- a fresh environment for load/loadfile/dofile chunks
  local function text_load(chunk, name, mode, env)
    if mode ~= nil and (type(mode) ~= "string" or not mode:find("t", 1, true)) then
      error("load: rules load text chunks only (mode \"t\")", 2)
    end
    return load(chunk, name, "t", env or env_of())
  end
  local function sandbox_loadfile(path, mode, env)
    if mode ~= nil and (type(mode) ~= "string" or not mode:find("t", 1, true)) then
      error("loadfile: rules load text chunks only (mode \"t\")", 2)
    end
    return loadfile(rules_path(dir, path, "loadfile"), "t", env or env_of())
  end
  local function sandbox_dofile(path)
    local chunk, err = loadfile(rules_path(dir, path, "dofile"), "t", env_of())
    if not chunk then error(err, 2) end
    return chunk()
  end

  local io_open, io_lines = io.open, io.lines
  local io_lib = { type = io.type }
  function io_lib.open(path, mode)
    mode = mode or "r"
    if mode ~= "r" and mode ~= "rb" then
      error("io.open: rules open files for reading only (mode \"r\" or \"rb\")", 2)
    end
    local f, err, code = io_open(rules_path(dir, path, "io.open"), mode)
    if not f then return nil, err, code end
    if not f:seek("cur") then -- a pipe or a terminal: reading could wait for ever
      f:close()
      return nil, path .. ": not a regular file", 29
    end
    return f
  end
  function io_lib.lines(path, ...)
    if path == nil then error("io.lines: rules read named files only, not standard input", 2) end
    return io_lines(rules_path(dir, path, "io.lines"), ...)
  end

  -- coroutines: a coroutine made at load time has no budget of its own;
  -- the host's resume (telua.resume) runs it under the request's, however
  -- it was made
  local co_create, co_status = coroutine.create, coroutine.status
  local co_resume = registry()["telua.resume"] or coroutine.resume
  local co_lib = copy(coroutine, nil, { wrap = true, resume = true })
  co_lib.resume = co_resume
  local function wrap_results(co, ok, ...)
    if ok then return ... end
    local e = ...
    if co_status(co) == "dead" and coroutine.close then coroutine.close(co) end
    error(e, 0) -- the message already names where it was raised
  end
  function co_lib.wrap(f)
    local co = co_create(f)
    return function(...)
      return wrap_results(co, co_resume(co, ...))
    end
  end

  local gc = collectgarbage
  function base.collectgarbage(opt, ...)
    opt = opt or "collect"
    if not GC_OPTIONS[opt] then
      error("collectgarbage: rules may use \"count\", \"step\", \"collect\" and \"isrunning\" only", 2)
    end
    return gc(opt, ...)
  end
  function base.print(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    log("info", concat(parts, "\t"))
  end
  base.load, base.loadfile, base.dofile = text_load, sandbox_loadfile, sandbox_dofile
  base.string = readonly(string_lib, "string")
  base.table = readonly(copy(table), "table")
  base.math = readonly(copy(math), "math")
  base.utf8 = utf8 and readonly(copy(utf8), "utf8") or nil -- (Lua 5.3+; not in LuaJIT)
  base.os = readonly(os_lib, "os")
  base.io = readonly(io_lib, "io")
  base.coroutine = readonly(co_lib, "coroutine")
  base.require = rules_require
  local view = readonly(base, "the globals")
  base._G = view
  env_of = function() return setmetatable({}, { __index = view }) end
  -- getmetatable("") would hand out string's metatable, and through its
  -- __index the string table every module of this state shares
  local smt = getmetatable("")
  if smt and smt.__metatable == nil then smt.__metatable = false end
  return view, env_of, base
end

--- Loads a rules folder.
-- @tparam string dir the folder
-- @tparam[opt] table files file names in it to load, in order (default:
--   every `*.lua`, sorted)
-- @tparam[opt] table opts passed to `router.new` (`store`, `log`,
--   `settings`, `on_event`), `sandbox` (true: the rules see the allowlisted
--   globals described above, not `_G`) and `modules` (names the sandbox
--   lets rules require besides its own list: an embedding program's C
--   modules, already in `package.preload`)
-- @return the router, or `nil, err` where `err` is
--   `{ file = s, line = n|nil, message = s, detail = s }`
-- @raise when dir is not a string or the folder cannot be read
function _M.load(dir, files, opts)
  if type(dir) ~= "string" then error("dir must be a string", 2) end
  opts = opts or {}
  files = files or list_dir(dir)
  local r = router.new(opts)
  local log = r.log
  -- `require "lib.name"` loads DIR/lib/name.lua once per generation, so an
  -- edited helper is picked up by the next generation and never shared
  -- with the previous one; every other name goes to the global require
  -- (in the sandbox: only the public modules, as read-only views).
  local libs, views = {}, {}
  local globals, env_of, telua_view
  local embedded = {}
  for _, name in ipairs(opts.modules or {}) do embedded[name] = true end
  local function public_require(name)
    if not opts.sandbox then return require(name) end
    if name == "telua" then return telua_view end
    if embedded[name] then return require(name) end -- the host program's own C modules
    if not PUBLIC[name] then
      error(("module '%s' is not available to rules (the sandbox offers lib.*, cjson and telua's public " ..
             "modules; --unsafe-rules lifts it)"):format(tostring(name)), 3)
    end
    local v = views[name]
    if v == nil then
      local mod = require(name)
      v = type(mod) == "table" and readonly(mod, name) or mod
      views[name] = v
    end
    return v
  end
  local function rules_require(name)
    local rel = type(name) == "string" and name:match("^lib%.([%w_%.]+)$")
    if not rel then return public_require(name) end
    if libs[name] ~= nil then return libs[name] end
    local env = globals and env_of() or setmetatable({}, { __index = _G })
    env.require = rules_require
    local chunk, err = loadfile(dir .. "/lib/" .. rel:gsub("%.", "/") .. ".lua", "t", env)
    if not chunk then error(err, 2) end
    local value = chunk(name)
    if value == nil then value = true end
    libs[name] = value
    return value
  end
  if opts.sandbox then
    globals, env_of = sandbox_base(dir, log, rules_require)
    telua_view = setmetatable({}, {
      __index = function(_, k)
        local name = "telua." .. tostring(k)
        return PUBLIC[name] and public_require(name) or nil
      end,
      __newindex = function() error("telua is read-only to rules", 2) end,
      __metatable = false,
    })
  end
  for _, name in ipairs(files) do
    local path = dir .. "/" .. name
    local env = globals and env_of() or setmetatable({}, { __index = _G })
    env.require = rules_require
    local chunk, err = loadfile(path, "t", env)
    if not chunk then return nil, located(err, path) end
    local ok, rules = xpcall(chunk, function(e) return traceback(tostring(e), 2) end)
    if not ok then return nil, located(rules, path) end
    local added, aerr = r:add(path, rules)
    if not added then return nil, located(aerr, path) end
  end
  return r
end

--- The globals the rules' sandbox gives, with the fields of its library
-- tables (for a linter's list of known globals).
-- @treturn table name -> true, or name -> { field names } for a table
function _M.sandbox_globals()
  local _, _, base = sandbox_base(".", function() end, function() end)
  local out = {}
  for k, v in pairs(base) do
    if type(v) == "table" and k ~= "_G" then
      local fields = {}
      for f in pairs(v) do fields[#fields + 1] = f end
      out[k] = fields
    else
      out[k] = true
    end
  end
  return out
end

--- Formats a load error as `file:line: message`.
-- @tparam table err as `load` returns it
-- @treturn string
function _M.format_error(err)
  if err.line then return err.file .. ":" .. err.line .. ": " .. err.message end
  return tostring(err.file) .. ": " .. err.message
end

return _M
