-- telua.webhook against the official twilio npm package (spec/oracle/gen_signature.js)
local webhook = require "telua.webhook"
local h = require "spec.helpers"

local vectors = h.fixture("signature_vectors.json")

local function pairs_of(t)
  local out = {}
  for i, p in ipairs(t) do out[i] = { p[1], p[2] } end
  return out
end

-- the same fields as a map: key -> string, or list when repeated
local function map_of(t)
  local m = {}
  for _, p in ipairs(t) do
    local k, v = p[1], p[2]
    if m[k] == nil then m[k] = v
    elseif type(m[k]) == "table" then table.insert(m[k], v)
    else m[k] = { m[k], v } end
  end
  return m
end

describe("telua.webhook", function()
  it("uses vectors from " .. vectors.source, function()
    assert.is_true(#vectors.form > 2000)
  end)

  it("computes every signature twilio-node computes", function()
    local n = 0
    for _, v in ipairs(vectors.form) do
      if v.signed_url then
        assert.are.equal(v.signature, webhook.signature(v.token, v.signed_url, pairs_of(v.params)),
                         v.signed_url .. " " .. v.signed_as)
        assert.are.equal(v.signature, webhook.signature(v.token, v.signed_url, map_of(v.params)))
        n = n + 1
      end
    end
    assert.is_true(n > 1500)
  end)

  it("gives twilio-node's verdict on every request (pairs and map forms)", function()
    for _, v in ipairs(vectors.form) do
      local ok = webhook.validate(v.token, v.url, pairs_of(v.params), v.signature)
      assert.are.equal(v.valid, ok == true, v.url .. " signed as " .. v.signed_as)
      ok = webhook.validate(v.token, v.url, map_of(v.params), v.signature)
      assert.are.equal(v.valid, ok == true, v.url .. " signed as " .. v.signed_as)
    end
  end)

  it("takes true in a map (ngx.req.get_post_args' key without '=') as the empty value, as twilio-node signs it", function()
    local n = 0
    for _, v in ipairs(vectors.form) do
      local has_empty = false
      for _, p in ipairs(v.params) do if p[2] == "" then has_empty = true end end
      if has_empty and v.valid then
        local m = map_of(v.params)
        for k, x in pairs(m) do
          if x == "" then m[k] = true
          elseif type(x) == "table" then for i = 1, #x do if x[i] == "" then x[i] = true end end end
        end
        assert.is_true(webhook.validate(v.token, v.url, m, v.signature), v.url)
        n = n + 1
      end
    end
    assert.is_true(n > 10, "vectors with an empty value: " .. n)
  end)

  it("validates JSON bodies through bodySHA256 as twilio-node does", function()
    for _, v in ipairs(vectors.json) do
      local ok = webhook.validate(v.token, v.url, nil, v.signature, v.body)
      assert.are.equal(v.valid, ok == true, v.url)
    end
  end)

  it("matches the official vectors quoted in Twilio's docs", function()
    local url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    local p = { CallSid = "CA1234567890ABCDE", Caller = "+14158675309", Digits = "1234",
                From = "+14158675309", To = "+18005551212" }
    assert.are.equal("RSOYDt4T1cUTdK1PDd93/VVr8B8=", webhook.signature("12345", url, p))
    assert.is_true(webhook.validate("12345", url, p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="))
    assert.is_true(webhook.validate("12345", url, p, "kvajT1Ptam85bY51eRf/AJRuM3w="))
    local body_url = url .. "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    assert.is_true(webhook.validate("12345", body_url, nil, "a9nBmqA0ju/hNViExpshrM61xv4=",
                                    '{"property": "value", "boolean": true}'))
  end)

  it("returns nil, reason, code for each failure", function()
    local url = "https://example.com/sms"
    assert.are.same({ nil, "missing X-Twilio-Signature", "missing" },
                    { webhook.validate("tok", url, {}, nil) })
    assert.are.same({ nil, "missing X-Twilio-Signature", "missing" },
                    { webhook.validate("tok", url, {}, "") })
    assert.are.same({ nil, "signature does not match", "mismatch" },
                    { webhook.validate("tok", url, {}, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=") })
    assert.are.same({ nil, "empty auth token", "no_auth_token" },
                    { webhook.validate("", url, {}, "x") })
    local sig = webhook.signature("tok", url, {})
    assert.are.same({ nil, "body given but the URL has no bodySHA256", "no_body_hash" },
                    { webhook.validate("tok", url, nil, sig, "{}") })
    local hurl = url .. "?bodySHA256=44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    local hsig = webhook.signature("tok", hurl, {})
    assert.is_true(webhook.validate("tok", hurl, nil, hsig, "{}"))
    assert.are.same({ nil, "body does not match bodySHA256", "body_hash_mismatch" },
                    { webhook.validate("tok", hurl, nil, hsig, "{ }") })
  end)

  it("raises on programmer errors, blaming the caller", function()
    assert.has_error(function() webhook.validate(nil, "u", {}, "s") end, "auth_token must be a string")
    assert.has_error(function() webhook.validate("t", "u", "x", "s") end, "params must be a table")
    assert.has_error(function() webhook.validate("t", "u", { { "k", {} } }, "s") end)
    assert.has_error(function() webhook.signature("", "u", {}) end)
  end)

  it("decodes forms as WHATWG URLSearchParams does", function()
    local cases = h.fixture("form_cases.json")
    for _, c in ipairs(cases.decode) do
      local got = assert(webhook.parse_form(c.input))
      assert.are.same(c.pairs, got, c.input)
    end
    for _, c in ipairs(cases.encode) do
      assert.are.equal(c.output, webhook.encode_form(c.pairs))
    end
  end)

  it("rejects a malformed percent escape with its position", function()
    assert.are.same({ nil, "malformed percent escape at byte 6", "bad_escape" },
                    { webhook.parse_form("Body=%zz") })
    assert.are.same({ nil, "malformed percent escape at byte 3", "bad_escape" },
                    { webhook.parse_form("a=%2") })
    assert.are.same({ nil, "malformed percent escape at byte 1", "bad_escape" },
                    { webhook.parse_form("%") })
  end)

  it("collapses pairs to first values", function()
    assert.are.same({ a = "1", b = "x" }, webhook.first_values({ { "a", "1" }, { "b", "x" }, { "a", "2" } }))
  end)
end)
