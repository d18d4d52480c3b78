#!/usr/bin/env node
// The peers on the same inputs: google-libphonenumber (parse, isValidNumber,
// format E164) and libphonenumber-js /max (parsePhoneNumber, isValid,
// .number), one warm-up pass then the best of five runs of PASSES passes.
//   node bench/e164_peers.js FILE [passes]
"use strict";
const fs = require("fs");
const path = require("path");
const oracle = path.resolve(__dirname, "../spec/oracle/node_modules");
const g = require(path.join(oracle, "google-libphonenumber"));
const gv = require(path.join(oracle, "google-libphonenumber/package.json")).version;
const js = require(path.join(oracle, "libphonenumber-js/max"));
const jv = require(path.join(oracle, "libphonenumber-js/package.json")).version;
const lines = fs.readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean).map((l) => l.split("\t"));
const passes = +(process.argv[3] || 20);
const u = g.PhoneNumberUtil.getInstance();
const E164 = g.PhoneNumberFormat.E164;

function google() {
  let valid = 0;
  for (const [s, r] of lines) {
    try {
      const n = u.parse(s, r);
      if (u.isValidNumber(n)) { u.format(n, E164); valid++; }
    } catch (e) { /* not a number */ }
  }
  return valid;
}
function lpjs() {
  let valid = 0;
  for (const [s, r] of lines) {
    try {
      const n = js.parsePhoneNumber(s, r);
      if (n && n.isValid()) { void n.number; valid++; }
    } catch (e) { /* not a number */ }
  }
  return valid;
}
function bench(name, f) {
  f();
  let best = Infinity, valid = 0;
  for (let run = 0; run < 5; run++) {
    const t0 = process.hrtime.bigint();
    for (let p = 0; p < passes; p++) valid = f();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt < best) best = dt;
  }
  console.log(`${name.padEnd(29)}${Math.round(lines.length * passes / best).toString().padStart(10)} numbers/s   valid ${valid} of ${lines.length}`);
}
bench(`google-libphonenumber ${gv}`, google);
bench(`libphonenumber-js/max ${jv}`, lpjs);
