--- Lints a rules folder for what loading it cannot catch (`telua check`).
--
-- Each finding is `{ file, line, column, code, severity, message }` and
-- prints as `file:line: code: message`. The checks:
--
-- * `account-sid`, `api-key`, `auth-token` (errors): credentials written
--   in a rules, lib or template file, comments included: an Account SID
--   (`AC` + 32 hex), an API key SID (`SK` + 32 hex), or a bare 32-hex string
--   (an auth token or an API key's secret). These are the patterns of
--   Twilio's entries in GitHub's secret scanning, which Twilio's integration
--   guidance points to: credentials come from the environment, never code.
-- * `phone-number` (warning): a phone number written in rules code (handlers,
--   top-level locals) rather than `settings` or a template; the `to`/`from`
--   filters of a `messages` route are configuration and pass.
-- * `opt-out` (warning): a template of `category = "marketing"` with a
--   locale whose text carries no opt-out wording (one of the opt-out keywords
--   Twilio honours, `telua.optout.OPT_OUT`, or "opt out" / "unsubscribe"),
--   as the CTIA messaging principles and Twilio's guidance ask.
-- * `W111`, `W112`, `W113` (warnings): globals set, mutated or read that the
--   rules' sandbox does not define, found by luacheck's own engine (Debian's
--   lua-check or a LuaRocks install; when it cannot be found the check is
--   skipped and a note says so).
-- * `duplicate-route` (warning): a `messages` route (path, keyword, to,
--   from, match) or a voice or status path written twice: only one runs.
-- * `missing-step` (error): a flow whose `start` or a `call:url("step")`
--   names a step the flow does not have (the call would fail mid-call).
--
-- @module telua.lint

local optout = require "telua.optout"

local type, pairs, ipairs, tostring, tonumber, format, concat, sort =
  type, pairs, ipairs, tostring, tonumber, string.format, table.concat, table.sort

local _M = { _VERSION = "0.1.0" }

local HEX32 = ("%x"):rep(32)

-- where luacheck may be: LuaRocks trees and Debian's lua-check (pure Lua,
-- installed for 5.1 only, runs on 5.4)
local LUACHECK_PATHS = {
  "/usr/local/share/lua/5.4/?.lua", "/usr/local/share/lua/5.4/?/init.lua",
  "/usr/share/lua/5.4/?.lua", "/usr/share/lua/5.4/?/init.lua",
  "/usr/share/lua/5.1/?.lua", "/usr/share/lua/5.1/?/init.lua",
}

local luacheck, lc_parser, lc_decoder
--- luacheck's modules, found on package.path or in the usual install
-- folders (added to package.path once). nil, message when missing.
local function load_luacheck()
  if luacheck then return true end
  local function try()
    local ok, a = pcall(require, "luacheck")
    if not ok then return false end
    local okp, p = pcall(require, "luacheck.parser")
    local okd, d = pcall(require, "luacheck.decoder")
    if not (okp and okd) then return false end
    luacheck, lc_parser, lc_decoder = a, p, d
    return true
  end
  if try() then return true end
  package.path = package.path .. ";" .. concat(LUACHECK_PATHS, ";")
  if try() then return true end
  return nil, "luacheck not found (Debian: apt-get install lua-check; or luarocks install luacheck)"
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function list(dir)
  local ok, core = pcall(require, "telua.core")
  if not ok then return {} end
  local names = core.list_dir(dir, ".lua")
  if not names then return {} end
  sort(names)
  return names
end

-- the secret shown masked: its first 4 and last 2 characters
local function masked(s) return s:sub(1, 4) .. "…" .. s:sub(-2) end

-- credentials anywhere in the text (code and comments), line by line
local function scan_secrets(path, text, add)
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local pos = 1
    while true do
      local s, e = line:find("%f[%w]%w*" .. HEX32 .. "%f[^%w]", pos)
      if not s then break end
      local word = line:sub(s, e)
      local prefix = word:sub(1, #word - 32)
      if prefix == "AC" then
        add(path, n, s, "account-sid", "error", format("hard-coded Account SID %s: read it from the environment " ..
            "(TWILIO_ACCOUNT_SID), never from code", masked(word)))
      elseif prefix == "SK" then
        add(path, n, s, "api-key", "error", format("hard-coded API key SID %s: API keys and their secrets " ..
            "belong in the environment, never in code", masked(word)))
      elseif prefix == "" then
        add(path, n, s, "auth-token", "error", format("a 32-hex string (%s) looks like an auth token or API " ..
            "secret: give it through TWILIO_AUTH_TOKEN or --auth-token-file, never in code", masked(word)))
      end
      pos = e + 1
    end
  end
end

-- A phone number as rules write them: E.164 (+ and 8 to 15 digits, maybe
-- spaced), whatsapp:/tel: forms, or a NANP number with its punctuation.
local function phone_like(s)
  local bare = s:gsub("^whatsapp:", ""):gsub("^tel:", "")
  if bare:find("^%+%d[%d %-%.%(%)]*$") then
    local digits = bare:gsub("%D", "")
    return #digits >= 8 and #digits <= 15
  end
  return bare:find("^%(?%d%d%d%)?[ %-%.]%d%d%d[ %-%.]%d%d%d%d$") ~= nil
end

local function str(node) return node and node.tag == "String" and node[1] or nil end

-- the value of field `key` of a Table node (string keys only)
local function field(tbl, key)
  for _, item in ipairs(tbl) do
    if item.tag == "Pair" and str(item[1]) == key then return item[2], item end
  end
  return nil
end

-- Walks every node under n, calling fn(node, parent) (fn returns true to
-- skip the node's children).
local function walk(n, fn, parent)
  if type(n) ~= "table" then return end
  if n.tag and fn(n, parent) then return end
  for _, c in ipairs(n) do walk(c, fn, n) end
end

-- phone numbers outside settings and outside route filters
local function scan_numbers(path, ast, add)
  walk(ast, function(node, parent)
    if node.tag == "Pair" then
      local k = str(node[1])
      if k == "settings" then return true end
      if (k == "to" or k == "from") and parent and parent.tag == "Table" and field(parent, "handler") then
        return true -- a messages route's filter: configuration
      end
    end
    if node.tag == "String" and phone_like(node[1]) and not (parent and parent.tag == "Pair" and parent[1] == node) then
      add(path, node.line, nil, "phone-number", "warning", format("phone number %s written in rules code: put it " ..
          "in settings (req.settings) or a template, where it is changed without touching handlers", node[1]))
    end
    return false
  end)
end

-- the returned rules table of a file's AST (its last `return {...}`)
local function returned_table(ast)
  for i = #ast, 1, -1 do
    local st = ast[i]
    if st.tag == "Return" and st[1] and st[1].tag == "Table" then return st[1] end
  end
  return nil
end

-- duplicate voice/status paths in one table, messages routes across files
local function scan_routes(path, ast, seen, add)
  local rules = returned_table(ast)
  if not rules then return end
  for _, kind in ipairs{ "voice", "status" } do
    local t = field(rules, kind)
    if t and t.tag == "Table" then
      local keys = {}
      for _, item in ipairs(t) do
        local k = item.tag == "Pair" and str(item[1])
        if k then
          if keys[k] then
            add(path, item.line, nil, "duplicate-route", "warning", format("%s path '%s' is written twice in " ..
                "this table (first on line %d): only the last one is kept", kind, k, keys[k]))
          else
            keys[k] = item.line
          end
        end
      end
    end
  end
  local msgs = field(rules, "messages")
  if not (msgs and msgs.tag == "Table") then return end
  for _, e in ipairs(msgs) do
    if e.tag == "Table" then
      local function lit(k)
        local v = field(e, k)
        return v and str(v) or (v and "?" .. tostring(v.line) .. ":" .. k) or ""
      end
      local key = concat({ lit("path") ~= "" and lit("path") or "/sms/incoming", lit("keyword"):upper(), lit("to"),
                           lit("from"), lit("match") }, "\0")
      if seen[key] then
        add(path, e.line, nil, "duplicate-route", "warning", format("this messages route (path %s%s) is the same " ..
            "as the one at %s: the second never runs", lit("path") ~= "" and lit("path") or "/sms/incoming",
            lit("keyword") ~= "" and (", keyword " .. lit("keyword")) or "", seen[key]))
      else
        seen[key] = path .. ":" .. e.line
      end
    end
  end
end

-- flows: start and every call:url("step") name a step of the flow
local function scan_flows(path, ast, add)
  walk(ast, function(node)
    if node.tag ~= "Table" then return false end
    local steps, start = field(node, "steps"), field(node, "start")
    if not (steps and steps.tag == "Table" and start) then return false end
    local names, list_ = {}, {}
    for _, item in ipairs(steps) do
      local k = item.tag == "Pair" and str(item[1])
      if k then
        names[k] = true
        list_[#list_ + 1] = k
      end
    end
    sort(list_)
    local known = concat(list_, ", ")
    local s = str(start)
    if s and not names[s] then
      add(path, start.line, nil, "missing-step", "error", format("flow start '%s' is not one of its steps (%s)", s, known))
    end
    walk(steps, function(n)
      if n.tag == "Invoke" and str(n[2]) == "url" then
        local target = str(n[3])
        if target and not names[target] then
          add(path, n[3].line, nil, "missing-step", "error", format("call:url('%s') names a step this flow does " ..
              "not have (%s)", target, known))
        end
      end
      return false
    end)
    return false
  end)
end

-- opt-out wording: an opt-out keyword as a word, or the usual phrases
local OPTOUT_WORDS = {}
for _, k in ipairs(optout.OPT_OUT) do OPTOUT_WORDS[#OPTOUT_WORDS + 1] = "%f[%a]" .. k .. "%f[%A]" end
local OPTOUT_PHRASES = { "opt[ %-]?out", "unsubscribe" }

local function has_optout(text)
  for _, p in ipairs(OPTOUT_WORDS) do if text:find(p) then return true end end
  local lower = text:lower()
  for _, p in ipairs(OPTOUT_PHRASES) do if lower:find(p) then return true end end
  return false
end

local function scan_template(path, ast, add)
  local t = returned_table(ast)
  if not t then return end
  if str(field(t, "category")) ~= "marketing" then return end
  local locales = field(t, "locales")
  if not (locales and locales.tag == "Table") then return end
  for _, item in ipairs(locales) do
    local loc, text = item.tag == "Pair" and str(item[1]), item.tag == "Pair" and str(item[2])
    if loc and text and not has_optout(text) then
      add(path, item.line, nil, "opt-out", "warning", format("marketing template, locale %s: no opt-out wording " ..
          "(e.g. \"Reply STOP to opt out\"); recipients must be told how to stop", loc))
    end
  end
end

-- luacheck's globals codes, on one file
local function scan_globals(path, text, std, add)
  local report = luacheck.check_strings({ text }, { std = std })
  for _, e in ipairs(report[1] or {}) do
    local code = tostring(e.code)
    if code == "111" or code == "112" or code == "113" then
      add(path, e.line, e.column, "W" .. code, "warning", luacheck.get_message(e))
    end
  end
end

--- Lints a rules folder.
-- @tparam string dir the rules folder (its `*.lua` files, `lib/*.lua` and
--   `templates/*.lua`)
-- @tparam[opt] table opts `unsafe = true`: the rules run with the whole
--   standard library (`--unsafe-rules`), so globals are checked against
--   Lua 5.4's
-- @treturn table findings, sorted by file and line
-- @treturn table notes (strings: checks that could not run)
function _M.check(dir, opts)
  opts = opts or {}
  local findings, notes = {}, {}
  local function add(file, line, column, code, severity, message)
    findings[#findings + 1] = { file = file, line = line or 1, column = column, code = code, severity = severity,
                                message = message }
  end
  local have, why = load_luacheck()
  if not have then notes[#notes + 1] = why .. ": undefined globals and code checks skipped" end
  local std
  if have and opts.unsafe then
    std = "lua54"
  elseif have then
    local globals = {}
    for name, fields in pairs(require("telua.rules").sandbox_globals()) do
      if type(fields) == "table" then
        local f = {}
        for _, k in ipairs(fields) do f[k] = {} end
        globals[name] = { fields = f }
      else
        globals[name] = {}
      end
    end
    std = { read_globals = globals }
  end
  local seen_routes = {}
  local groups = {
    { dir, "rules" }, { dir .. "/lib", "lib" }, { dir .. "/templates", "templates" },
  }
  for _, g in ipairs(groups) do
    for _, name in ipairs(list(g[1])) do
      local path = g[1] .. "/" .. name
      local text = read(path)
      if text then
        scan_secrets(path, text, add)
        if have then
          local ok, ast = pcall(lc_parser.parse, lc_decoder.decode(text))
          if ok and type(ast) == "table" then
            if g[2] == "templates" then
              scan_template(path, ast, add)
            else
              scan_numbers(path, ast, add)
              scan_flows(path, ast, add)
              if g[2] == "rules" then scan_routes(path, ast, seen_routes, add) end
              scan_globals(path, text, std, add)
            end
          end
        end
      end
    end
  end
  sort(findings, function(a, b)
    if a.file ~= b.file then return a.file < b.file end
    if a.line ~= b.line then return a.line < b.line end
    return a.code < b.code
  end)
  return findings, notes
end

--- Formats findings as `file:line: code: message` lines, or as JSON (a
-- list of the findings' tables).
-- @tparam table findings from `check`
-- @tparam[opt] string fmt `"text"` (default) or `"json"`
-- @treturn string
function _M.format(findings, fmt)
  if fmt == "json" then
    local cjson = require "cjson"
    local out = {}
    for i, f in ipairs(findings) do
      out[i] = { file = f.file, line = f.line, column = f.column or cjson.null, code = f.code, severity = f.severity,
                 message = f.message }
    end
    return #out == 0 and "[]" or cjson.encode(out)
  end
  local lines = {}
  for i, f in ipairs(findings) do
    lines[i] = format("%s:%d: %s: %s", f.file, f.line, f.code, f.message)
  end
  return concat(lines, "\n")
end

--- What `telua check` prints after the rules loaded: the findings and a
-- summary, or a JSON object with them.
-- @tparam string dir
-- @tparam table opts `unsafe`, `strict` (warnings count as errors),
--   `format` (`"text"` or `"json"`), `files` (how many rules files loaded)
-- @treturn string the text to print
-- @treturn boolean whether the check passed
function _M.report(dir, opts)
  local findings, notes = _M.check(dir, opts)
  local errors, warnings = 0, 0
  for _, f in ipairs(findings) do
    if f.severity == "error" or opts.strict then
      f.severity = "error"
      errors = errors + 1
    else
      warnings = warnings + 1
    end
  end
  local ok = errors == 0
  if opts.format == "json" then
    local cjson = require "cjson"
    return format('{"ok":%s,"files":%d,"errors":%d,"warnings":%d,"findings":%s,"notes":%s}', tostring(ok),
                  tonumber(opts.files) or 0, errors, warnings, _M.format(findings, "json"),
                  #notes == 0 and "[]" or cjson.encode(notes)), ok
  end
  local out = {}
  if #findings > 0 then out[#out + 1] = _M.format(findings) end
  for _, n in ipairs(notes) do out[#out + 1] = "note: " .. n end
  if #findings == 0 then
    out[#out + 1] = format("telua: rules in %s are ok (%d files)", dir, tonumber(opts.files) or 0)
  else
    out[#out + 1] = format("telua: rules in %s load (%d files); %d errors, %d warnings%s", dir,
                           tonumber(opts.files) or 0, errors, warnings, opts.strict and " (--strict)" or "")
  end
  return concat(out, "\n"), ok
end

return _M
