-- Cases for test_strmatch.c: `real` is Lua 5.4's string library, `ours`
-- src/host/strmatch.c. Each case runs through both; results (all of them)
-- and error messages must be equal. Returns mismatches, cases, first one.
local real, ours = real, ours -- luacheck: globals real ours
local n, bad, first = 0, 0, nil

local function pack(ok, ...) return { ok = ok, n = select("#", ...), ... } end
local function show(r)
  local t = {}
  for i = 1, r.n do t[i] = type(r[i]) == "string" and ("%q"):format(r[i]) or tostring(r[i]) end
  return (r.ok and "ok " or "error ") .. table.concat(t, ", ")
end
local function same(a, b)
  if a.ok ~= b.ok or a.n ~= b.n then return false end
  for i = 1, a.n do
    local x, y = a[i], b[i]
    if not a.ok and type(x) == "string" then -- error messages: without the position prefix, and
      -- without the function's name (found by where it is installed: `ours` is not in `string` here)
      x = x:gsub("^[^:]*:%d+: ", ""):gsub("to '[^']*'", "to '?'")
      y = y:gsub("^[^:]*:%d+: ", ""):gsub("to '[^']*'", "to '?'")
    end
    if x ~= y then return false end
  end
  return true
end

local function gm(lib)
  return function(s, p, init)
    local out = {}
    for a, b, c in lib.gmatch(s, p, init) do out[#out + 1] = tostring(a) .. "|" .. tostring(b) .. "|" .. tostring(c) end
    return table.concat(out, ";")
  end
end
local funcs = {
  find = { real.find, ours.find }, match = { real.match, ours.match },
  gmatch = { gm(real), gm(ours) }, gsub = { real.gsub, ours.gsub },
}

local function check(name, ...)
  n = n + 1
  local a = pack(pcall(funcs[name][1], ...))
  local b = pack(pcall(funcs[name][2], ...))
  if not same(a, b) then
    bad = bad + 1
    if not first then
      local args = { ... }
      for i = 1, select("#", ...) do args[i] = type(args[i]) == "string" and ("%q"):format(args[i]) or tostring(args[i]) end
      first = ("%s(%s): lstrlib %s, ours %s"):format(name, table.concat(args, ", "), show(a), show(b))
    end
  end
end

-- table-driven: every feature and every error of the manual's §6.4.1
local subjects = { "", "hello world", "  key = value  ", "a,b,,c", "THE (quick) fox", "[[x]]", "f(a(b)c)d",
  "x=1&y=2&z=", "abc123def456", "\0a\0b", "aaa", "%d%%", "THE\nEND", "über", "+14155550100", "a.b.c" }
local patterns = { "", "l+", "l*", "l-", "l?", "^h", "d$", "^$", "o w", "%a+", "%A+", "%d+", "%D", "%s*(.-)%s*$",
  "(%w+)=(%w*)", "()x", "(a)(b)?", "%b()", "%b[]", "%f[%w]%w+", "%f[%W]", "[aeiou]", "[^aeiou]+", "[%a-]",
  "[a-c]+", "[]]", "[^]]", "(%d)%1", "(a*(.)%w(%s*))", ".-b", "a.-c", "%", "[a", "(", ")", "%1", "(()", "%b",
  "%bx", "%f", "%fx", "[%]", "(.)%2", "%z", "%g+", "%p", "%c", "%x+", "%u%l", "[%d%s]+", "a-", "%.", "[.]",
  "\0", "%z+", "^(%+?)(%d+)$", "(h)(e)(l)(l)(o)", "$", "^", "x*$", ".", "..", "(.-)%.(.*)", "%%", "a+?" }
for _, s in ipairs(subjects) do
  for _, p in ipairs(patterns) do
    check("find", s, p)
    check("find", s, p, 3)
    check("find", s, p, -2)
    check("find", s, p, 1, true)
    check("match", s, p)
    check("match", s, p, 2)
    check("gmatch", s, p)
    check("gsub", s, p, "<%0>")
    check("gsub", s, p, "%1-%1", 2)
  end
end
for _, init in ipairs{ 0, 1, -1, -100, 100, 16, 17, math.mininteger, math.maxinteger } do
  check("find", "hello world", "o", init)
  check("find", "hello world", "", init)
  check("match", "hello world", "()", init)
  check("gmatch", "hello world", "o", init)
end
local repls = { "%%", "%0%0", "%1", "%2", "%9", "%x", "%", "[%1]", 42, 4.5,
  { hello = "HI", world = false, l = "L" }, function(a) return a:upper() end, function() return nil end,
  function() return {} end, function() return 7 end, true }
for _, r in ipairs(repls) do
  for _, p in ipairs{ "%w+", "(l)(l)", "l", "()", "" } do check("gsub", "hello world", p, r) end
end
check("gsub", "abc", "%w", "%0", 0)
check("gsub", "abc", "%w", "%0", -1)
check("gsub", "abc", "^", ">")
check("gsub", "abc", "$", "<")
check("gsub", "abc", "b*", "-")
check("find", string.rep("a", 300), string.rep("a?", 300) .. string.rep("a", 300)) -- too complex
check("find", "x", string.rep("(", 40) .. "x" .. string.rep(")", 40))                -- too many captures
check("find", 123, 2)
check("find", "a", {})
check("gsub", "a", "a")

-- random: patterns from the grammar's pieces over small alphabets, so that
-- matches and backtracking happen often
math.randomseed(20261202)
local atoms = { "a", "b", ".", "%a", "%d", "%s", "%W", "[ab]", "[^a]", "[a-c%d]", "%b()", "%f[%w]", "(", ")", "()",
  "%1", "$", "^", "-", "]", "[", "%", "%%", "1", " " }
local quants = { "", "", "", "*", "+", "-", "?" }
local alphabet = { "a", "b", "c", "1", " ", "(", ")", "-", "%" }
for _ = 1, 20000 do
  local p = {}
  for i = 1, math.random(1, 7) do p[i] = atoms[math.random(#atoms)] .. quants[math.random(#quants)] end
  local s = {}
  for i = 1, math.random(0, 12) do s[i] = alphabet[math.random(#alphabet)] end
  local subject, pattern = table.concat(s), table.concat(p)
  local init = math.random(-3, 8)
  check("find", subject, pattern, init)
  check("match", subject, pattern)
  check("gmatch", subject, pattern)
  check("gsub", subject, pattern, "<%0>")
end
return bad, n, first
