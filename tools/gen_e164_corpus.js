#!/usr/bin/env node
// Writes spec/fixtures/e164_corpus.json: phone-number inputs with the answers
// of google-libphonenumber (the version pinned in spec/oracle/package.json),
// the oracle telua.e164 is checked against. Nothing in the file comes from
// telua. Deterministic (fixed seed):
//   node tools/gen_e164_corpus.js > spec/fixtures/e164_corpus.json
"use strict";
const path = require("path");
const oracle = path.resolve(__dirname, "../spec/oracle/node_modules");
const g = require(path.join(oracle, "google-libphonenumber"));
const version = require(path.join(oracle, "google-libphonenumber/package.json")).version;
const u = g.PhoneNumberUtil.getInstance();
const PNF = g.PhoneNumberFormat;
const PNT = g.PhoneNumberType;
const typeName = {};
for (const k of Object.keys(PNT)) typeName[PNT[k]] = k;

let seed = 0x7e1ea;
function rnd(n) { // xorshift32
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed % n;
}
const pick = (a) => a[rnd(a.length)];

const REGIONS = ["US", "CA", "GB", "DE", "FR", "IT", "ES", "NL", "BE", "CH", "AT", "SE", "NO", "DK",
  "PL", "IE", "PT", "BR", "MX", "AR", "IN", "JP", "CN", "KR", "AU", "NZ", "NG", "ZA", "EG", "KE",
  "RU", "KZ", "TR", "SA", "AE", "IL", "SG", "HK", "PH", "ID", "VN", "TH", "CO", "CL", "PE", "VI",
  "PR", "JM", "GG", "JE", "IM", "FI", "AX", "RE", "YT", "GP", "MF"];
const TYPES = ["FIXED_LINE", "MOBILE", "TOLL_FREE", "PREMIUM_RATE", "SHARED_COST", "VOIP",
  "PERSONAL_NUMBER", "PAGER", "UAN", "VOICEMAIL"];
const FULLWIDTH = (s) => s.replace(/[0-9]/g, (d) => String.fromCharCode(0xff10 + +d)).replace(/\+/g, "\uff0b");
const ARABIC = (s) => s.replace(/[0-9]/g, (d) => String.fromCharCode(0x0660 + +d));
const PERSIAN = (s) => s.replace(/[0-9]/g, (d) => String.fromCharCode(0x06f0 + +d));
const EXTS = [" ext. 1234", " x 12", " ext 7", ";ext=4567", " extension 22", " #55", ",,9", ";3", " - 503#",
  " anexo 10", " int 5", " x123456789012", ", 33", " ext: 998877", " EXT 9", " Ｘ １２"];

function mutateTail(nsn) {
  const a = nsn.split("");
  const k = 1 + rnd(Math.min(4, a.length));
  for (let i = 0; i < k; i++) a[a.length - 1 - i] = String(rnd(10));
  return a.join("");
}

function answer(input, region) {
  const row = { input, region };
  try {
    const n = u.parse(input, region);
    if (n.getNationalNumber() > Number.MAX_SAFE_INTEGER) return null; // the JS oracle loses digits
    row.e164 = u.format(n, PNF.E164);
    row.valid = u.isValidNumber(n);
    row.possible = u.isPossibleNumber(n);
    row.type = typeName[u.getNumberType(n)];
    row.number_region = u.getRegionCodeForNumber(n) || null;
    row.extension = n.hasExtension() ? n.getExtension() : null;
  } catch (e) {
    row.error = Object.keys(g.Error).find((k) => g.Error[k] === e.message) || e.message;
  }
  return row;
}

const rows = [];
const seen = new Set();
function add(input, region, tag) {
  const key = input + "\u0000" + region;
  if (seen.has(key) || input.length > 300) return;
  const r = answer(input, region);
  if (!r) return;
  seen.add(key);
  r.tag = tag;
  rows.push(r);
}

// 1. Example numbers of every type for each region, written every way, and
//    with their tails changed (which often makes them invalid).
for (const region of REGIONS) {
  for (const t of TYPES) {
    const ex = u.getExampleNumberForType(region, PNT[t]);
    if (!ex) continue;
    const variants = [ex];
    for (let i = 0; i < 2; i++) {
      const nsn = u.getNationalSignificantNumber(ex);
      try { variants.push(u.parse("+" + ex.getCountryCode() + mutateTail(nsn), "ZZ")); } catch (e) { /* skip */ }
    }
    for (const n of variants) {
      const e164 = u.format(n, PNF.E164);
      const intl = u.format(n, PNF.INTERNATIONAL);
      const national = u.format(n, PNF.NATIONAL);
      const nsn = u.getNationalSignificantNumber(n);
      add(e164, "ZZ", "e164");
      add(intl, pick(REGIONS), "international");
      add(national, region, "national");
      add(national.replace(/[^0-9]/g, ""), region, "national digits");
      add(nsn, region, "bare nsn");
      const from = pick(["US", "DE", "GB", "JP", "AU", "BR", "RU", "FR"]);
      add(u.formatOutOfCountryCallingNumber(n, from), from, "idd from " + from);
      add(String(n.getCountryCode()) + nsn, region, "calling code without plus");
      add(u.format(n, PNF.RFC3966), region, "tel uri");
      if (rnd(3) === 0) add(FULLWIDTH(intl), "ZZ", "fullwidth");
      if (rnd(6) === 0) add(ARABIC(e164), "ZZ", "arabic-indic");
      if (rnd(8) === 0) add(PERSIAN(national), region, "eastern arabic-indic");
      if (rnd(3) === 0) add(national + pick(EXTS), region, "extension");
      if (rnd(4) === 0) add(e164.slice(0, e164.length - 1 - rnd(4)), "ZZ", "truncated");
      if (rnd(4) === 0) add(e164 + String(rnd(1000)), "ZZ", "too long");
      if (rnd(5) === 0) add("(" + national + ")", region, "punctuation");
      if (rnd(6) === 0) add("Tel: " + intl + " (mobile)", region, "leading text");
      if (rnd(6) === 0) add(intl.replace(/ /g, "."), region, "dots");
      if (rnd(6) === 0) add(intl.replace(/ /g, "-"), region, "dashes");
    }
  }
}

// 2. Trunk prefixes, IDDs and calling codes in the wrong places.
const tricky = [
  ["(415) 555-1234", "US"], ["415.555.1234", "US"], ["1 415 555 1234", "US"], ["1-415-555-1234", "US"],
  ["+1 (415) 555-1234", "GB"], ["001 415 555 1234", "DE"], ["011 44 20 7946 0958", "US"],
  ["0044 20 7946 0958", "US"], ["011 44 20 7946 0958", "GB"], ["00 44 20 7946 0958", "FR"],
  ["+44 (0) 20 7946 0958", "ZZ"], ["020 7946 0958", "GB"], ["44 20 7946 0958", "GB"],
  ["0049 30 123456", "FR"], ["030 123456", "DE"], ["+49 (0)30 123456", "ZZ"], ["8 800 555 35 35", "RU"],
  ["810 1 650 253 0000", "RU"], ["0 21 11 91234 5678", "BR"], ["0 15 11 91234 5678", "BR"],
  ["693-4800", "VI"], ["555-1234", "US"], ["253-0000", "US"], ["02 1234 5678", "AU"],
  ["0011 1 650 253 0000", "AU"], ["06 12345678", "NL"], ["+39 06 6982 0000", "ZZ"], ["06 6982 0000", "IT"],
  ["+39 312 345 6789", "ZZ"], ["0312 345 6789", "IT"], ["+7 701 123 4567", "ZZ"], ["+7 495 123 45 67", "ZZ"],
  ["090-1234-5678", "JP"], ["010 1 650 253 0000", "JP"], ["+81 90 1234 5678", "ZZ"],
  ["011 54 9 11 1234 5678", "US"], ["011 15 1234 5678", "AR"], ["15 1234 5678", "AR"],
  ["044 55 1234 5678", "MX"], ["+52 1 55 1234 5678", "ZZ"], ["+234 803 123 4567", "ZZ"],
  ["0803 123 4567", "NG"], ["+91 98765 43210", "ZZ"], ["098765 43210", "IN"], ["+86 138 0013 8000", "ZZ"],
  ["+1 268 464 1234", "ZZ"], ["+1 876 123 4567", "ZZ"], ["+1 204 555 0123", "ZZ"], ["+1 613 555 0123", "ZZ"],
  ["+44 1481 256789", "ZZ"], ["+44 1534 456789", "ZZ"], ["+44 1624 756789", "ZZ"], ["+358 18 12345", "ZZ"],
  ["+262 269 61 23 45", "ZZ"], ["+262 262 16 12 34", "ZZ"], ["+590 590 27 12 34", "ZZ"],
  ["+47 79 12 34 56", "ZZ"], ["+61 8 9162 1234", "ZZ"], ["+61 8 9164 1234", "ZZ"], ["+212 528 123456", "ZZ"],
  ["+800 1234 5678", "ZZ"], ["+808 1234 5678", "ZZ"], ["+870 301 234 567", "ZZ"], ["+882 34 1234 5678", "ZZ"],
  ["+883 510 012345", "ZZ"], ["+888 123 456 789", "ZZ"], ["+979 123 456 789", "ZZ"],
];
for (const [i, r] of tricky) add(i, r, "tricky");

// 3. Twilio's test numbers (twilio.com/docs/iam/test-credentials) and lookalikes.
for (let d = 0; d <= 9; d++) add("+1500555000" + d, "ZZ", "twilio magic");
for (const s of ["+15005550001", "+15005550002", "+15005550003", "+15005550004", "+15005550009",
  "(500) 555-0006", "500-555-0006", "+1 500 555 0006", "+14108675309", "+18005550199", "+15555550100",
  "+447700900123", "+447700900000", "07700 900123", "+61491570156", "+33639980000"]) {
  add(s, s.startsWith("+") ? "ZZ" : (s.startsWith("07") ? "GB" : "US"), "twilio/test");
}

// 4. Letters, garbage, edge cases, bad regions.
const misc = [
  "1-800-FLOWERS", "1-800-GOT-JUNK", "+1 65O 253 OOOO", "1800 MICROSOFT", "+44 800 FLOWERS", "ABC", "abc123",
  "", " ", "+", "++", "+0", "+00", "+1", "+12", "+123", "12", "1", "0", "00", "000", "0000", "+999 1234 5678",
  "+990 123 456", "+0 123 456 7890", "+1 650 253 0000 0000 0000 0000", "12345678901234567890",
  "hello world", "call me maybe", "+1-650-253-0000 ext.", "+1 650 253 0000 ext 12345678901234567890123",
  "tel:+1-650-253-0000", "tel:253-0000;phone-context=+1-650", "tel:253-0000;phone-context=",
  "tel:253-0000;phone-context=example.com", "tel:253-0000;phone-context=-a.com", "tel:253-0000;phone-context=+",
  "tel:+1-650-253-0000;isub=12345", "253-0000;phone-context=+1-650;foo=bar", "(530) 583-6985 x302/x2303",
  "+1 650 253 0000,,123", "6502530000 - 503#", "650 253 0000 #", "+49 30 1234 5678 / 9", "☎ +44 20 7946 0958",
  "\u200b+1 650 253 0000", "+1\u00a0650\u00a0253\u00a00000", "+1\u2010650\u2010253\u20100000",
  "+１ ６５０ ２５３ ００００", "＋４４ ２０ ７９４６ ０９５８", "+1 (650) 253-0000 (home)", "1 (650) 253-0000.",
  "+1 650 253 0000;ext=99", "+1 650 253 0000 extensión 12", "+7 495 123 45 67 доб 123", "8 (495) 123-45-67",
  "+41 44 668 1800", "044 668 18 00", "+43 1 234567890", "+31 6 12345678", "+32 470 12 34 56",
  "+48 512 345 678", "+46 70 123 45 67", "+45 32 12 34 56", "+353 85 123 4567", "+351 912 345 678",
];
for (const s of misc) for (const r of ["US", "GB", "DE", "ZZ"]) add(s, r, "misc");
for (const s of ["(415) 555-1234", "+14155551234", "020 7946 0958"])
  for (const r of ["us", "gb", "Us", "XX", "001", "", "USA"]) add(s, r, "region spelling");

// 5. Random digit strings and junk.
for (let i = 0; i < 400; i++) {
  const len = 1 + rnd(20);
  let s = "";
  for (let k = 0; k < len; k++) s += String(rnd(10));
  const form = rnd(4);
  if (form === 0) s = "+" + s;
  else if (form === 1) s = "00" + s;
  add(s, pick(REGIONS.concat(["ZZ"])), "random digits");
}
const junk = "()-. /+x#*abcXYZ;,~";
for (let i = 0; i < 150; i++) {
  let s = "";
  const len = 3 + rnd(16);
  for (let k = 0; k < len; k++) s += rnd(3) ? String(rnd(10)) : junk[rnd(junk.length)];
  add(s, pick(["US", "GB", "DE", "ZZ", "BR", "IN"]), "junk");
}

process.stdout.write(JSON.stringify({ source: "google-libphonenumber " + version, rows }, null, 0)
  .replace(/\{"input"/g, '\n{"input"') + "\n");
console.error(`${rows.length} rows from google-libphonenumber ${version}`);
