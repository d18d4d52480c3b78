-- telua.fallback's hops on a store, without a network: what each channel's
-- hop sends, that a hop goes once, and what `check` refuses. The voice
-- TwiML is compared with what the official twilio library builds
-- (spec/oracle/say_twiml.js).
local fallback = require "telua.fallback"
local router = require "telua.router"
local store_mod = require "telua.store"
local h = require "spec.helpers"

local function quiet() end

describe("telua.fallback", function()
  local store
  before_each(function() store = assert(store_mod.open("memory")) end)
  after_each(function() store:close() end)

  local function first(p)
    local id = assert(router.queue(store, p))
    return store.outbox:get(id)
  end

  it("an SMS hop after a WhatsApp message sends the text to the bare number, once", function()
    store:window_touch("whatsapp:+15005550006", "whatsapp:+14155550101")
    local e = first{ to = "whatsapp:+14155550101", from = "whatsapp:+15005550006", body = "Your table is ready",
                     fallback = { { channel = "sms", from = "+15005550006", on = { 63024 } } } }
    assert.is_false(fallback.on_failed(store, e, 63016, 0, quiet)) -- not one of its codes
    assert.is_true(fallback.on_failed(store, e, 63024, 0, quiet))
    assert.is_true(fallback.on_failed(store, e, 63024, 0, quiet)) -- a repeated callback: the same hop
    local hop = store.outbox:get(e.id + 1)
    assert.is_nil(store.outbox:get(e.id + 2))
    assert.are.same({ to = "+14155550101", from = "+15005550006", body = "Your table is ready" }, hop.params)
    assert.are.equal(e.id, hop.resend_of)
    assert.are.equal(1, hop.policy.hop)
    assert.is_nil(fallback.gate(store, hop)) -- the WhatsApp message has no final status: it goes
  end)

  it("a voice hop says the text twice in the send's language", function()
    for _, case in ipairs{ { "es-MX", "es-MX" }, { "es", "es-ES" }, { "pt", "pt-BR" }, { nil, "en-US" } } do
      local e = first{ to = "+14155550102", from = "+15005550006", body = "Tu código: 4 8 1 5",
                       locale = case[1], fallback = { { channel = "voice" } } }
      assert.is_true(fallback.on_failed(store, e, 30003, 0, quiet)) -- no `on`: any code
      local hop = store.outbox:get(e.id + 1)
      local want = h.sh("node " .. h.root .. "/spec/oracle/say_twiml.js " .. h.quote("Tu código: 4 8 1 5") .. " " ..
                        case[2])
      assert.are.equal(h.canonical_xml(want), h.canonical_xml(hop.params.twiml))
      assert.are.equal("+15005550006", hop.params.from)
      assert.are.equal("voice", hop.policy.channel)
    end
  end)

  it("refuses chains it cannot carry out", function()
    for _, bad in ipairs{ {}, { { channel = "pigeon" } }, { { channel = "whatsapp", from = "+15005550006" } },
                          { { channel = "voice", after = 0 } }, { { channel = "voice", on = { "30003" } } },
                          { { channel = "sms", colour = "red" } }, { { channel = "whatsapp", from = "whatsapp:+1500",
                            content_sid = "XX1" } }, { { channel = "voice", language = "es MX" } } } do
      local chain, err = fallback.check(bad)
      assert.is_nil(chain)
      assert.is_string(err)
    end
    assert.is_table(fallback.check{ { channel = "voice", after = 30, on = { 30003 }, language = "es-MX" } })
  end)
end)
