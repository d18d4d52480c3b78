-- telua.twiml against the official twilio npm package (spec/oracle/gen_twiml.js)
local twiml = require "telua.twiml"
local h = require "spec.helpers"

local fixture = h.fixture("twiml_cases.json")

local SNAKE = { ["break"] = "break_", sayAs = "say_as", whatsApp = "whatsapp" }
local function snake(name)
  return SNAKE[name] or (name:gsub("(%u)", function(c) return "_" .. c:lower() end))
end

-- node attribute names -> snake_case where snake_case can express them
local function snake_attrs(attrs)
  local out = {}
  for k, v in pairs(attrs) do
    local key = k
    if k == "xml:lang" then key = "xml_lang"
    elseif k == "interpret-as" then key = "interpret_as"
    elseif k:find("%u") then key = snake(k) end
    out[key] = v
  end
  return out
end

local function replay(el, ops, use_snake)
  for _, op in ipairs(ops) do
    local method, attrs, text, children = op[1], op[2], op[3], op[4]
    if attrs == require("cjson").null then attrs = nil end
    if text == require("cjson").null then text = nil end
    if attrs and use_snake then attrs = snake_attrs(attrs) end
    local fn = el[snake(method)]
    assert(fn, "no method " .. snake(method) .. " on <" .. el.tag .. ">")
    replay(fn(el, text, attrs), children, use_snake)
  end
end

describe("telua.twiml", function()
  for _, c in ipairs(fixture.cases) do
    it("builds what " .. fixture.source .. " builds: " .. c.name, function()
      for _, use_snake in ipairs({ false, true }) do
        local r = c.root == "voice" and twiml.voice() or twiml.messaging()
        replay(r, c.ops, use_snake)
        assert.are.equal(h.canonical_xml(c.xml), h.canonical_xml(tostring(r)))
      end
    end)
  end

  it("matches twilio-node byte for byte when attribute order agrees", function()
    local r = twiml.voice()
    r:dial("+18584611234", { timeout = 5 })
    assert.are.equal('<?xml version="1.0" encoding="UTF-8"?><Response><Dial timeout="5">+18584611234</Dial></Response>',
                     tostring(r))
    local m = twiml.messaging()
    local msg = m:message()
    msg:body("foobar")
    msg:media("https://twilio.com")
    assert.are.equal('<?xml version="1.0" encoding="UTF-8"?><Response><Message><Body>foobar</Body><Media>https://twilio.com</Media></Message></Response>',
                     tostring(m))
  end)

  it("writes attributes in sorted order", function()
    local r = twiml.voice()
    r:gather({ timeout = 5, action = "/a", num_digits = 1, input = { "dtmf", "speech" } })
    assert.are.equal('<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/a" input="dtmf speech" numDigits="1" timeout="5"/></Response>',
                     tostring(r))
  end)

  it("accepts (attrs, text) as well as (text, attrs)", function()
    local a, b = twiml.voice(), twiml.voice()
    a:say({ voice = "alice" }, "hi")
    b:say("hi", { voice = "alice" })
    assert.are.equal(tostring(a), tostring(b))
  end)

  it("supports add_child and add_text for what telua has no method for", function()
    local r = twiml.voice()
    local s = r:say("Hello ")
    s:add_child("amazon:effect", "whispered", { name = "whispered" })
    s:add_text(" world")
    assert.are.equal('<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello <amazon:effect name="whispered">whispered</amazon:effect> world</Say></Response>',
                     tostring(r))
  end)

  it("raises on characters XML forbids, naming the byte", function()
    local r = twiml.voice()
    assert.has_error(function() r:say("bad \1 char") end,
                     "twiml: text of <Say> has a character XML does not allow at byte 5")
    assert.has_error(function() r:say("ok", { voice = "a\27b" }) end,
                     "twiml: attribute 'voice' has a character XML does not allow at byte 2")
    assert.has_error(function() r:say("\255\254") end)
    assert.has_error(function() r:say("\239\191\191") end) -- U+FFFF
    assert.has_error(function() r:add_text("\237\160\128") end) -- a surrogate
    assert.are.equal('<?xml version="1.0" encoding="UTF-8"?><Response/>', tostring(r))
  end)

  it("raises on values it cannot render", function()
    local r = twiml.voice()
    assert.has_error(function() r:say({}, {}) end)
    assert.has_error(function() r:play("x", { loop = function() end }) end)
    assert.has_error(function() r:add_child("bad tag") end)
  end)

  it("offers only the verbs an element can hold", function()
    local r = twiml.messaging()
    assert.is_nil(r.say)
    assert.is_function(twiml.voice():gather().say)
    assert.is_nil(twiml.voice():gather().dial)
  end)

  it("renders in C: a tree that is not one telua built is refused with an error, not a crash", function()
    local render = require("telua.core").xml_render
    assert.are.equal('<?xml version="1.0" encoding="UTF-8"?><Response a="1" b="&quot;"><Say>x &amp; y</Say></Response>',
      render{ tag = "Response", attrs = { b = '"', a = "1" }, { tag = "Say", "x & y" } })
    assert.are.equal('<?xml version="1.0" encoding="UTF-8"?><R/>', render{ tag = "R", attrs = {} })
    assert.has_error(function() render{ attrs = {} } end, "twiml: an element without a tag")
    assert.has_error(function() render{ tag = "R", attrs = { a = 1 } } end)
    assert.has_error(function() render{ tag = "R", true } end)
    assert.has_error(function() render{ tag = "R", attrs = 5 } end)
    -- no metamethod runs: a tag only __index would give is no tag
    assert.has_error(function() render(setmetatable({}, { __index = { tag = "R" } })) end,
                     "twiml: an element without a tag")
    local deep = { tag = "R" }
    local el = deep
    for _ = 1, 300 do
      local c = { tag = "C" }
      el[1] = c
      el = c
    end
    assert.has_error(function() render(deep) end, "twiml: elements nested deeper than 200")
    -- many attributes (past the 16 kept on the C stack), in byte order
    local attrs, want = {}, {}
    for i = 1, 40 do attrs[("k%02d"):format(i)] = tostring(i); want[#want + 1] = (' k%02d="%d"'):format(i, i) end
    assert.are.equal('<?xml version="1.0" encoding="UTF-8"?><R' .. table.concat(want) .. '/>',
      render{ tag = "R", attrs = attrs })
    -- a document past the 2 KiB the renderer keeps on the C stack
    local big = { tag = "Response" }
    for i = 1, 500 do big[i] = { tag = "Say", attrs = { n = tostring(i) }, "x & y" } end
    local says = {}
    for i = 1, 500 do says[i] = '<Say n="' .. i .. '">x &amp; y</Say>' end
    assert.are.equal('<?xml version="1.0" encoding="UTF-8"?><Response>' .. table.concat(says) .. '</Response>',
      render(big))
  end)
end)
