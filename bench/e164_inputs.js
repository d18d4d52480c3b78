#!/usr/bin/env node
// Writes 10,000 mixed phone-number inputs, "input<TAB>default_region" per
// line, with a fixed seed: 85 % realistic numbers for US GB DE FR IN BR JP CN
// AU NG written as E.164, international, national, from another country's
// IDD, with the calling code but no plus, bare national number, tel: URI,
// full-width digits or with an extension; 15 % invalid (random +digits, too
// short, too long, words and vanity, the unassigned +999, junk with a
// leading 0, truncated). The same inputs feed every implementation.
//   node bench/e164_inputs.js > FILE
"use strict";
const path = require("path");
const oracle = path.resolve(__dirname, "../spec/oracle/node_modules");
const g = require(path.join(oracle, "google-libphonenumber"));
const u = g.PhoneNumberUtil.getInstance();
const F = g.PhoneNumberFormat, T = g.PhoneNumberType;
let seed = 20261122;
const rnd = (n) => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed % n; };
const pick = (a) => a[rnd(a.length)];
const REGIONS = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "CN", "AU", "NG"];
const out = [];
while (out.length < 10000) {
  if (rnd(100) < 85) {
    const region = pick(REGIONS);
    const ex = u.getExampleNumberForType(region, pick([T.FIXED_LINE, T.MOBILE, T.MOBILE, T.TOLL_FREE]));
    if (!ex) continue;
    const nsn = u.getNationalSignificantNumber(ex);
    const tail = String(rnd(10000)).padStart(4, "0");
    let n;
    try { n = u.parse("+" + ex.getCountryCode() + nsn.slice(0, -4) + tail, "ZZ"); } catch (e) { continue; }
    const from = pick(REGIONS);
    switch (rnd(9)) {
      case 0: out.push([u.format(n, F.E164), region]); break;
      case 1: out.push([u.format(n, F.INTERNATIONAL), from]); break;
      case 2: out.push([u.format(n, F.NATIONAL), region]); break;
      case 3: out.push([u.formatOutOfCountryCallingNumber(n, from), from]); break;
      case 4: out.push([String(n.getCountryCode()) + u.getNationalSignificantNumber(n), region]); break;
      case 5: out.push([u.getNationalSignificantNumber(n), region]); break;
      case 6: out.push([u.format(n, F.RFC3966), region]); break;
      case 7: out.push([u.format(n, F.E164).replace(/[0-9]/g, (d) => String.fromCharCode(0xff10 + +d)), region]); break;
      default: out.push([u.format(n, F.NATIONAL) + " ext. " + rnd(1000), region]);
    }
  } else {
    const region = pick(REGIONS);
    let s;
    switch (rnd(7)) {
      case 0: s = "+" + String(rnd(1e9)) + String(rnd(1e6)); break;
      case 1: s = String(rnd(1000)); break;
      case 2: s = "+" + String(rnd(1e9)) + String(rnd(1e9)) + String(rnd(1e5)); break;
      case 3: s = pick(["call me", "1-800-FLOWERS", "ABC-DEFG", "n/a", "unknown", "+1 800 GOT JUNK"]); break;
      case 4: s = "+999 " + String(rnd(1e8)); break;
      case 5: s = "0" + String(rnd(1e6)) + "-" + pick(["x", "", "--"]); break;
      default: s = "+" + String(rnd(1e6));
    }
    out.push([s, region]);
  }
}
process.stdout.write(out.map(([i, r]) => i + "\t" + r).join("\n") + "\n");
