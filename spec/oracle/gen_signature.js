// Writes spec/fixtures/signature_vectors.json: expected X-Twilio-Signature
// values and validation verdicts computed by the official `twilio` npm
// package (the version pinned in package.json). telua's specs compare
// against this file; nothing in it comes from telua.
//   node spec/oracle/gen_signature.js > spec/fixtures/signature_vectors.json
"use strict";
const twilio = require("twilio");
const w = require("twilio/lib/webhooks/webhooks");
const version = require("twilio/package.json").version;

// 64 and 100 bytes: HMAC uses a 64-byte key block as is and hashes longer keys first
const tokens = ["12345", "a1b2c3d4e5f60718293a4b5c6d7e8f90", "tökén with spaces & símbolos", "k".repeat(64), "long-".repeat(20)];
const urls = [
  "https://mycompany.com/myapp.php?foo=1&bar=2",
  "https://mycompany.com:443/myapp.php?foo=1&bar=2",
  "http://mycompany.com/myapp.php?foo=1&bar=2",
  "http://mycompany.com:80/myapp.php?foo=1&bar=2",
  "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
  "https://mycompany.com:8443/sms/incoming",
  "https://MyCompany.COM/voice/incoming",
  "https://example.com",
  "https://example.com/",
  "https://example.com/path/",
  "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
  "https://user:pass@mycompany.com:8443/myapp.php",
  "https://user@example.com/x",
  "https://[2001:db8::1]/voice",
  "https://[2001:db8::1]:8443/voice?x=1",
  "http://127.0.0.1:8080/sms/incoming",
  "https://example.com/voice/menu?step=choice&attempt=2",
  "https://example.com/r?Body=It's+amazing",
  "https://example.com/r?Body=It%27s+amazing",
  "https://example.com/r?name=a%20b&x=a+b",
  "https://example.com/sip?From=sip:alice@example.com&To=sip:bob@example.com",
  "https://example.com/caf\u00e9?q=\u00fcber",
  "https://example.com/r?",
  "https://example.com/a/./b/../c?z=1&a=2",
  "https://example.com/r?a=1&&b=&c",
  "https://example.com/r?%zz=1",
  "https://example.com/r?2=x&b=1&10=y",
  "https://example.com/p?q=\"quoted\"<tag>",
];
const paramSets = {
  none: [],
  classic: [["CallSid", "CA1234567890ABCDE"], ["Caller", "+14158675309"], ["Digits", "1234"], ["From", "+14158675309"], ["To", "+18005551212"]],
  sms8: [["MessageSid", "SM0123456789abcdef0123456789abcdef"], ["AccountSid", "AC0123456789abcdef0123456789abcdef"], ["From", "+14155550100"], ["To", "+14155550199"], ["Body", "Hello there & welcome!"], ["NumMedia", "0"], ["NumSegments", "1"], ["SmsStatus", "received"]],
  repeated: [["Digits", "5678"], ["Digits", "1234"], ["Digits", "1234"], ["Sid", "CA123"]],
  empty_values: [["Body", ""], ["From", "+14155550100"], ["To", ""]],
  unicode: [["Body", "Gr\u00fc\u00dfe \u2014 \u4f60\u597d \ud83d\udc4b"], ["From", "whatsapp:+4915112345678"], ["ProfileName", "Zo\u00eb"]],
  case_order: [["body", "lower"], ["Body", "Upper"], ["_x", "under"], ["To", "+1"], ["MediaUrl10", "u10"], ["MediaUrl2", "u2"], ["MediaUrl0", "u0"]],
  astral_keys: [["\ue000k", "private use"], ["\ud83d\ude00k", "emoji key"], ["zk", "z"], ["\u00e9k", "e acute"]],
  astral_values: [["V", "\ue000"], ["V", "\ud83d\ude00"], ["V", "z"]],
  punctuation: [["Body", "a=b&c=d+e%20f"], ["Q", "100% 'sure'"], ["Url", "https://x.example/?a=1&b=2#frag"]],
  speech: [["SpeechResult", "I'd like to speak to sales, please."], ["Confidence", "0.9134"], ["CallSid", "CAabc"]],
};

// node keeps repeated keys as arrays in a params object
function toObject(pairs) {
  const o = {};
  for (const [k, v] of pairs) {
    if (k in o) o[k] = [].concat(o[k], v); else o[k] = v;
  }
  return o;
}

const vectors = [];
for (const url of urls) {
  let normalized = null;
  try { normalized = new URL(url).toString(); } catch (e) { normalized = null; }
  const signedAs = { asis: url, with_port: addPort(url), without_port: removePort(url) };
  if (normalized) signedAs.normalized = normalized;
  for (const [pname, pairs] of Object.entries(paramSets)) {
    for (let ti = 0; ti < tokens.length; ti++) {
      // keep the file small: every URL with the first token, the other
      // tokens only with the classic and sms8 sets
      if (ti > 0 && pname !== "classic" && pname !== "sms8") continue;
      const token = tokens[ti];
      const params = toObject(pairs);
      for (const [how, signingUrl] of Object.entries(signedAs)) {
        const signature = w.getExpectedTwilioSignature(token, signingUrl, params);
        vectors.push({
          token, url: url, params: pairs, signed_url: signingUrl, signed_as: how, signature,
          valid: twilio.validateRequest(token, signature, url, params),
        });
      }
      // a signature for another URL, and one with a tampered parameter
      const other = w.getExpectedTwilioSignature(token, url + "x", params);
      vectors.push({ token, url, params: pairs, signature: other, signed_as: "other_url",
                     valid: twilio.validateRequest(token, other, url, params) });
      if (pairs.length) {
        const tampered = pairs.map(([k, v], i) => [k, i === 0 ? v + "!" : v]);
        const sig = w.getExpectedTwilioSignature(token, url, toObject(tampered));
        vectors.push({ token, url, params: pairs, signature: sig, signed_as: "tampered_param",
                       valid: twilio.validateRequest(token, sig, url, params) });
      }
    }
  }
}

// JSON bodies: bodySHA256 in the query, URL signed with no parameters
const bodies = ['{"property": "value", "boolean": true}', "{}", '{"text":"h\u00e9llo \ud83d\udc4b"}'];
const jsonVectors = [];
for (const body of bodies) {
  for (const base of ["https://mycompany.com/myapp.php?foo=1&bar=2", "https://example.com:8443/events"]) {
    const hash = w.getExpectedBodyHash(body);
    const url = base + (base.includes("?") ? "&" : "?") + "bodySHA256=" + hash;
    for (const signingUrl of [url, addPort(url)]) {
      const signature = w.getExpectedTwilioSignature("12345", signingUrl, {});
      jsonVectors.push({ token: "12345", url, body, body_sha256: hash, signature,
                         valid: twilio.validateRequestWithBody("12345", signature, url, body) });
      jsonVectors.push({ token: "12345", url, body: body + " ", body_sha256: hash, signature,
                         valid: twilio.validateRequestWithBody("12345", signature, url, body + " ") });
    }
  }
}

function addPort(u) { return w.__test_addPort ? w.__test_addPort(u) : portOp(u, true); }
function removePort(u) { return portOp(u, false); }
// The same string surgery webhooks.js does (its helpers are not exported):
// used only to choose which URL spelling to *sign*; the verdicts come from
// twilio.validateRequest itself.
function portOp(url, add) {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.exec(url);
  if (!m) return url;
  const [prefix, scheme, authority] = m;
  const ue = authority.lastIndexOf("@");
  const hp = authority.slice(ue + 1);
  const ps = hp.indexOf(":", hp.lastIndexOf("]") + 1);
  const host = ps === -1 ? hp : hp.slice(0, ps), port = ps === -1 ? "" : hp.slice(ps);
  const rest = url.slice(prefix.length), ui = authority.slice(0, ue + 1);
  if (!add) return scheme + ui + host + rest;
  if (port) return url;
  return scheme + ui + host + (scheme.toLowerCase() === "https://" ? ":443" : ":80") + rest;
}

const lines = (a) => "[\n" + a.map((x) => JSON.stringify(x)).join(",\n") + "\n]";
process.stdout.write("{\"source\": " + JSON.stringify("twilio npm " + version) + ",\n\"form\": " + lines(vectors) + ",\n\"json\": " + lines(jsonVectors) + "\n}\n");
