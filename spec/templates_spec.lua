-- telua.templates and the campaign CSV reader. Segment counts and encodings
-- follow GSM 03.38 as the reference's table gives it (twilio.md §f): "á" is
-- not in it ("à" is), curly quotes are not, and Smart Encoding maps them.
local templates = require "telua.templates"
local campaign = require "telua.campaign"

describe("telua.templates", function()
  local set = assert(templates.from_tables{
    shipped = {
      default_locale = "en",
      locales = { en = "Hi {{name}}, order {{order}} shipped.", es = "Hola {{name}}, tu pedido {{order}} está en camino.",
                  ["pt-BR"] = "Oi {{name}}, pedido {{order}} enviado." },
      whatsapp = { content_sid = "HX" .. ("a"):rep(32), variables = { "name", "order" } },
    },
    plain = { locales = { en = "Thanks {{name}}" } },
  })

  it("falls back from region to language to the default locale", function()
    assert.equal("es", set:render("shipped", { name = "Ana", order = "1" }, { locale = "es-MX" }).locale)
    assert.equal("pt-BR", set:render("shipped", { name = "Ana", order = "1" }, { locale = "pt-br" }).locale)
    assert.equal("en", set:render("shipped", { name = "Ana", order = "1" }, { locale = "de-AT" }).locale)
    assert.equal("en", set:render("shipped", { name = "Ana", order = "1" }).locale)
  end)

  it("counts segments and warns when a character forces UCS-2", function()
    local r = set:render("shipped", { name = "Ana", order = "1234" }, { locale = "es" })
    assert.equal("UCS-2", r.encoding)
    assert.equal(1, r.segments)
    assert.same({ "á" }, r.warnings[1].non_gsm)
    assert.matches("Smart Encoding cannot help", r.warnings[1].message)
    local q = set:render("plain", { name = "“Ana”" })
    assert.equal("UCS-2", q.encoding)
    assert.equal("GSM-7", q.warnings[1].smart_encoding.encoding)
    assert.equal('Thanks "Ana"', q.warnings[1].smart_encoding.text)
    local g = set:render("shipped", { name = "Ana", order = "1" })
    assert.equal("GSM-7", g.encoding)
    assert.same({}, g.warnings)
  end)

  it("gives the WhatsApp content template outside the 24-hour window", function()
    local r = set:render("shipped", { name = "Ana", order = "7" }, { channel = "whatsapp", window_open = false })
    assert.equal("HX" .. ("a"):rep(32), r.content_sid)
    assert.same({ ["1"] = "Ana", ["2"] = "7" }, r.content_variables)
    local inside = set:render("shipped", { name = "Ana", order = "7" }, { channel = "whatsapp", window_open = true })
    assert.equal("Hi Ana, order 7 shipped.", inside.body)
    local none, err, code = set:render("plain", { name = "Bo" }, { channel = "whatsapp", window_open = false })
    assert.is_nil(none)
    assert.equal("no_content_template", code)
    assert.matches("63016", err)
  end)

  it("refuses a missing variable and an unknown template", function()
    local r, err, code = set:render("shipped", { name = "Ana" })
    assert.is_nil(r)
    assert.equal("missing", code)
    assert.matches("order", err)
    assert.equal("unknown", select(3, set:render("nope", {})))
  end)

  it("loads a folder's *.lua files, and says when the folder is missing", function()
    local h = require "spec.helpers"
    local dir = h.tmpdir()
    for name, text in pairs{ ["a.lua"] = 'return { locales = { en = "A {{x}}" } }',
                             ["b.lua"] = 'return { locales = { en = "B" } }', ["notes.txt"] = "x",
                             [".c.lua"] = "swap file" } do
      local f = assert(io.open(dir .. "/" .. name, "wb"))
      f:write(text)
      f:close()
    end
    assert(os.execute("mkdir " .. dir .. "/sub.lua"))
    local loaded = assert(templates.load(dir))
    assert.same({ "a", "b" }, loaded:names())
    assert.equal("A 1", loaded:render("a", { x = 1 }).body)
    local none, err = templates.load(dir .. "/missing")
    assert.is_nil(none)
    assert.matches("missing", err)
  end)

  it("checks template tables", function()
    assert.is_nil((templates.from_tables{ bad = { locales = {} } }))
    assert.is_nil((templates.from_tables{ bad = { default_locale = "fr", locales = { en = "x" } } }))
    assert.is_nil((templates.from_tables{ bad = { locales = { en = "x" }, whatsapp = { content_sid = "nope" } } }))
  end)
end)

describe("campaign CSV (RFC 4180)", function()
  it("reads quotes, doubled quotes, embedded newlines, CRLF and a BOM", function()
    local rows, lines = campaign.parse_csv('\239\187\191phone,name\r\n+1,"Doe, ""J"""\r\n+2,"two\nlines"\n\n+3,x')
    assert.same({ { "phone", "name" }, { "+1", 'Doe, "J"' }, { "+2", "two\nlines" }, { "+3", "x" } }, rows)
    assert.same({ 1, 2, 3, 6 }, lines)
  end)

  it("reports an unclosed quote with its line", function()
    local rows, err = campaign.parse_csv('a,b\n1,"open\n')
    assert.is_nil(rows)
    assert.matches("line 2", err)
  end)
end)
