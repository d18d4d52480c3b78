// Writes spec/fixtures/twiml_cases.json: TwiML built by the official
// `twilio` npm package for a list of builder calls. telua's twiml spec
// replays the same calls and compares the XML semantically.
//   node spec/oracle/gen_twiml.js > spec/fixtures/twiml_cases.json
// An op is [method, attrs or null, text or null, [child ops]], with the
// method and attribute names as twilio-node spells them.
"use strict";
const { VoiceResponse, MessagingResponse } = require("twilio").twiml;
const version = require("twilio/package.json").version;

const cases = [
  ["voice", "empty", []],
  ["messaging", "empty messaging", []],
  ["voice", "say with voice and loop", [["say", { voice: "Polly.Joanna", language: "en-US", loop: 2 }, "Hello & welcome <caller>", []]]],
  ["voice", "say empty", [["say", null, "", []]]],
  ["voice", "say number text", [["say", null, 12345, []]]],
  ["voice", "ssml children", [["say", { voice: "Polly.Amy" }, "Hi ", [
    ["break", { strength: "x-weak", time: "100ms" }, null, []],
    ["emphasis", { level: "strong" }, "really", []],
    ["lang", { "xml:lang": "fr-FR" }, "Bonjour!", []],
    ["p", null, "A paragraph", []],
    ["phoneme", { alphabet: "ipa", ph: "t\u0259\u02c8mɑto\u028a" }, "tomato", []],
    ["prosody", { pitch: "+10%", rate: "slow", volume: "loud" }, "slowly", []],
    ["s", null, "A sentence.", []],
    ["sayAs", { "interpret-as": "spell-out", role: "yymmdd" }, "Words to speak", []],
    ["sub", { alias: "World Wide Web Consortium" }, "W3C", []],
    ["w", { role: "amazon:VBD" }, "read", []]]]]],
  ["voice", "nested ssml", [["say", null, null, [["prosody", { rate: "fast" }, null, [["emphasis", null, "fast", []], ["break", { time: "1s" }, null, []]]]]]]],
  ["voice", "play and pause", [["play", { loop: 3, digits: "wwww3" }, "https://api.twilio.com/cowbell.mp3", []], ["pause", { length: 5 }, null, []]]],
  ["voice", "gather menu", [["gather", { input: ["dtmf", "speech"], numDigits: 1, action: "/voice/menu?step=choice&x=1", method: "POST", timeout: 5, finishOnKey: "#", hints: "sales, support", speechTimeout: "auto", bargeIn: true, actionOnEmptyResult: false }, null, [
    ["say", null, "Press 1 for sales, 2 for support.", []], ["play", null, "https://example.com/a.mp3", []], ["pause", { length: 1 }, null, []]]],
    ["redirect", { method: "POST" }, "/voice/incoming", []]]],
  ["voice", "official dial", [["dial", { hangupOnStar: true, timeout: 5, method: "GET", trim: "do-not-trim" }, "+18584611234", []]]],
  ["voice", "official record", [["record", { transcribe: true, maxLength: 100, method: "GET", transcribeCallback: "www.twilio.ca" }, null, []]]],
  ["voice", "dial nouns", [["dial", { callerId: "+15551112222", record: "record-from-answer-dual", action: "/dial/done", answerOnBridge: true, ringTone: "us" }, null, [
    ["number", { statusCallback: "https://example.com?action=getTwiml&param=dial", statusCallbackEvent: ["initiated", "ringing", "answered", "completed"], sendDigits: "wwww1928", machineDetection: "Enable" }, "+11234567890", []],
    ["client", { statusCallbackMethod: "POST" }, null, [["identity", null, "alice", []], ["parameter", { name: "FirstName", value: "Alice" }, null, []]]],
    ["sip", { username: "admin", password: "1234" }, "sip:kate@example.com?mycustomheader=foo&myotherheader=bar", []],
    ["sim", null, "DE8caa2afb9d5279926619c458dc7098a8", []],
    ["whatsApp", { url: "https://example.com/wa" }, "+15551234567", []],
    ["application", { copyParentTo: true, customerId: "cust-1" }, null, [["applicationSid", null, "AP123", []], ["parameter", { name: "k", value: "v" }, null, []]]]]]]],
  ["voice", "dial conference", [["dial", null, null, [["conference", { beep: "false", startConferenceOnEnter: true, endConferenceOnExit: false, waitUrl: "http://twimlets.com/holdmusic?Bucket=com.twilio.music.ambient", maxParticipants: 10, statusCallbackEvent: ["start", "end", "join", "leave"], record: "record-from-start", region: "ie1" }, "Room 1234", []]]]]],
  ["voice", "dial queue", [["dial", null, null, [["queue", { url: "https://example.com/about_to_connect.xml", reservationSid: "WR123", postWorkActivitySid: "WA123" }, "support", []]]]]],
  ["voice", "enqueue with task", [["enqueue", { workflowSid: "WW123", waitUrl: "/wait", maxQueueSize: 50 }, null, [["task", { priority: 5, timeout: 200 }, '{"account_number":"12345abcdef"}', []]]]]],
  ["voice", "enqueue name", [["enqueue", { action: "/queue/done", method: "GET" }, "support", []]]],
  ["voice", "hangup leave reject echo", [["hangup", null, null, [["parameter", { name: "reason", value: "done" }, null, []]]], ["leave", null, null, []], ["reject", { reason: "busy" }, null, []], ["echo", null, null, []]]],
  ["voice", "connect stream", [["connect", { action: "/connect/done" }, null, [["stream", { url: "wss://example.com/audio", name: "s1", track: "inbound_track", statusCallback: "https://example.com/s" }, null, [["parameter", { name: "a", value: "1" }, null, []]]]]]]],
  ["voice", "connect conversation relay", [["connect", null, null, [["conversationRelay", { url: "wss://example.com/relay", welcomeGreeting: "Hi! How can I help?", voice: "en-US-Journey-O", language: "en-US", ttsProvider: "Google", transcriptionProvider: "Deepgram", dtmfDetection: true, interruptible: "speech" }, null, [["language", { code: "es-ES", ttsProvider: "Amazon", voice: "Lucia-Neural" }, null, []], ["parameter", { name: "customer", value: "42" }, null, []]]]]]]],
  ["voice", "connect others", [["connect", null, null, [["room", { participantIdentity: "alice" }, "DailyStandup", []], ["virtualAgent", { connectorName: "project", statusCallback: "/va" }, null, [["config", { name: "language", value: "en-us" }, null, []], ["parameter", { name: "p", value: "q" }, null, []]]], ["conversation", { serviceInstanceSid: "IS123" }, null, []], ["aiSession", { aiConnector: "c", aiSessionConfiguration: "x" }, null, []], ["conversationRelaySession", { connector: "c" }, null, []], ["autopilot", null, "UA123", []]]]]],
  ["voice", "start and stop", [["start", { action: "/started" }, null, [["stream", { url: "wss://example.com/s", name: "mystream" }, null, []], ["siprec", { connectorName: "SipRec", track: "both_tracks" }, null, [["parameter", { name: "x", value: "y" }, null, []]]], ["transcription", { statusCallbackUrl: "https://example.com/t", languageCode: "en-US", partialResults: true }, null, [["config", { name: "a", value: "b" }, null, []]]], ["recording", { recordingStatusCallback: "/rec", trim: "trim-silence", track: "both" }, null, []]]],
    ["stop", null, null, [["stream", { name: "mystream" }, null, []], ["siprec", { name: "r" }, null, []], ["transcription", { name: "t" }, null, []]]]]],
  ["voice", "pay with prompts", [["pay", { chargeAmount: "10.00", currency: "usd", paymentConnector: "Stripe", input: "dtmf", validCardTypes: ["visa", "mastercard", "amex"], action: "/pay/done", statusCallback: "/pay/status", timeout: 5, maxAttempts: 3 }, null, [
    ["prompt", { for: "payment-card-number", attempt: [1, 2], cardType: "visa", errorType: "timeout invalid-card-number", requireMatchingInputs: true }, null, [["say", null, "Please enter your card number.", []], ["pause", { length: 1 }, null, []], ["play", null, "https://example.com/p.mp3", []]]],
    ["parameter", { name: "description", value: "order 42" }, null, []]]]]],
  ["voice", "top-level prompt and queue", [["prompt", { for: "expiration-date" }, null, [["say", null, "Enter expiry", []]]], ["queue", { url: "/q" }, "q1", []]]],
  ["voice", "refer", [["refer", { action: "/refer/done", method: "POST" }, null, [["sip", null, "sip:alice@example.com", []]]]]],
  ["voice", "sms legacy", [["sms", { to: "+11234567890", from: "+10987654321", action: "/sms/done", statusCallback: "/s" }, "twilio sms", []]]],
  ["voice", "official hangup leave sms", [["hangup", null, null, []], ["leave", null, null, []], ["sms", { to: "+11234567890", from: "+10987654321" }, "twilio sms", []]]],
  ["voice", "official redirect", [["redirect", { method: "POST" }, "example.com?id=34&action=hey", []]]],
  ["voice", "sip headers and uris", [["dial", null, null, [["sip", { statusCallbackEvent: ["initiated", "completed"] }, null, [["uri", { username: "u", password: "p", priority: 1, weight: 10 }, "sip:a@example.com", []], ["headers", null, null, [["header", { name: "X-Foo", value: "bar" }, null, []]]]]]]]]],
  ["voice", "escaping text", [["say", null, "Tom & Jerry <3 \"quotes\" 'apos' > tab\there\nnewline\r\nCRLF", []]]],
  ["voice", "escaping attributes", [["redirect", { method: "POST", x: "a&b<c>d\"e'f\tg\nh\ri" }, "/next?a=1&b=2", []]]],
  ["voice", "unicode", [["say", { language: "ja-JP" }, "\u3053\u3093\u306b\u3061\u306f \ud83d\udc4b caf\u00e9 \u20ac", []]]],
  ["voice", "booleans numbers and lists", [["gather", { numDigits: 4, timeout: 0, bargeIn: false, enhanced: true, input: ["speech"], profanityFilter: true, maxSpeechTime: 60 }, null, []]]],
  ["messaging", "official two messages", [["message", { to: "18885551234", from: "18885554321" }, "foobar", []], ["message", { to: "11234567890", from: "10987654321" }, null, []]]],
  ["messaging", "official body and media", [["message", null, null, [["body", null, "foobar", []], ["media", null, "https://twilio.com", []]]]]],
  ["messaging", "message with attrs and many media", [["message", { action: "/sms/status", method: "POST", statusCallback: "https://example.com/cb?a=1&b=2" }, null, [["body", null, "Your order #1234 has shipped \u2708", []], ["media", null, "https://example.com/a.png", []], ["media", null, "https://example.com/b.png", []]]]]],
  ["messaging", "redirect", [["message", null, "Hi", []], ["redirect", { method: "GET" }, "https://example.com/next", []]]],
];

function apply(el, ops) {
  for (const [method, attrs, text, children] of ops) {
    let child;
    if (text === null) child = attrs ? el[method](attrs) : el[method]();
    else child = el[method](attrs || {}, text);
    apply(child, children);
  }
}

const out = cases.map(([root, name, ops]) => {
  const r = root === "voice" ? new VoiceResponse() : new MessagingResponse();
  apply(r, ops);
  return { name, root, ops, xml: r.toString() };
});
const lines = out.map((c) => JSON.stringify(c)).join(",\n");
process.stdout.write('{"source": ' + JSON.stringify("twilio npm " + version) + ',\n"cases": [\n' + lines + "\n]}\n");
