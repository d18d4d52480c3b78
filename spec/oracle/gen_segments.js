// Writes spec/fixtures/segments_cases.json: SMS segment counts computed by
// the npm package sms-segments-calculator (Twilio's message-segment-
// calculator, the version pinned in package.json). telua's segment specs
// compare against this file; nothing in it comes from telua.
//   node spec/oracle/gen_segments.js > spec/fixtures/segments_cases.json
"use strict";
const { SegmentedMessage } = require("sms-segments-calculator");
const version = require("sms-segments-calculator/package.json").version;

let seed = 0x5e6;
const rnd = (n) => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed % n; };
const r = (s, n) => s.repeat(n);

const texts = [
  "", "a", "Hello, world!", r("a", 159), r("a", 160), r("a", 161), r("a", 306), r("a", 307), r("a", 459), r("a", 460),
  r("a", 159) + "€", r("a", 160) + "€", r("a", 152) + "€", r("a", 153) + "€", r("{}", 40), r("{}", 40) + "a",
  r("[", 76) + r("a", 8), r("~", 80), "^{}\\[~]|€\f", "Price: 10€ [approx] {no ~ tax}",
  r("ą", 70), r("ą", 71), r("ą", 134), r("ą", 135), r("a", 68) + "👋", r("a", 69) + "👋", r("a", 70) + "👋",
  r("😀", 35), r("😀", 36), r("😀", 67), "👨‍👩‍👧‍👦", r("👨‍👩‍👧‍👦", 6), r("👨‍👩‍👧‍👦", 7), "👍🏽", "👍🏽👍🏿", "🇺🇸🇬🇧🇫🇷",
  "🇺🇸🇬", "e\u0301", "Cafe\u0301 au lait", "é", "ç", "Ç", "\t", "a\tb", "`backtick`", "\u00a0", "naïve", "Ελληνικά",
  "ΔΦΓΛΩΠΨΣΘΞ", "你好，世界", r("你", 70), r("你", 71), "مرحبا بالعالم", "नमस्ते दुनिया", "क्षत्रिय", "한국어 텍스트",
  "\u1100\u1161\u11a8", "Line one\nLine two", "Line one\r\nLine two", "\r\n", r("\r\n", 80), r("\r\n", 81), "a\rb",
  "“Smart quotes” and ‘apostrophes’ — dashes – and … ellipsis", "½ price • today", "ＦＵＬＬＷＩＤＴＨ １２３",
  "zero\u200bwidth", "soft\u00adhyphen", "Your code is 123456. Reply STOP to opt out.",
  "Your order #1234 has shipped! Track it at https://example.com/t/ABCDEF?x=1&y=2",
  r("Ünïcödé ", 20), "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCÄÖÑÜ§¿abcäöñüà",
  r("0", 161), "\u200d", "a\u200db", "\u0915\u094d\u0937", "👩‍💻 coding", "🏳️‍🌈", "❤️", "☺", "\ud83d\ude00a",
];
// random mixes: GSM, extension, non-GSM BMP, astral, combining, CRLF
const alphabet = ["a", "b", "Z", " ", "1", "€", "{", "|", "é", "ç", "ą", "你", "😀", "\u0301", "\r\n", "\n", "👍", "🏽", "\u200d", "Σ", "—", "“"];
for (let i = 0; i < 140; i++) {
  const len = 1 + rnd(220);
  let s = "";
  for (let k = 0; k < len; k++) s += alphabet[rnd(alphabet.length)];
  texts.push(s);
}
for (let i = 0; i < 40; i++) { // long pure-GSM around the boundaries
  const n = [153, 154, 160, 161, 305, 306, 307, 612, 1530][rnd(9)] + rnd(3) - 1;
  let s = "";
  for (let k = 0; k < n; k++) s += "ab€ {c"[rnd(6)];
  texts.push(s);
}

const cases = [];
for (const text of texts) {
  for (const smart of [false, true]) {
    if (smart && !/[^\x00-\x7f]|[\t`]/.test(text)) continue; // smart encoding changes nothing
    const m = new SegmentedMessage(text, "auto", smart);
    cases.push({
      text, smart_encoding: smart, encoding: m.encodingName, segments: m.segmentsCount,
      characters: m.numberOfCharacters, graphemes: m.graphemes.length,
      non_gsm: m.getNonGsmCharacters(),
      smart_text: smart ? m.graphemes.join("") : undefined,
    });
  }
}
process.stdout.write(JSON.stringify({ source: "sms-segments-calculator " + version, cases }, null, 0)
  .replace(/\{"text"/g, '\n{"text"') + "\n");
console.error(cases.length + " cases");
