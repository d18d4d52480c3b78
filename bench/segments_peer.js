#!/usr/bin/env node
// sms-segments-calculator on the same bodies: new SegmentedMessage(text)
// and its segmentsCount, best of five runs of PASSES passes; characters are
// Unicode code points of the input.   node bench/segments_peer.js FILE [passes]
"use strict";
const fs = require("fs");
const path = require("path");
const nm = path.resolve(__dirname, "../spec/oracle/node_modules");
const { SegmentedMessage } = require(path.join(nm, "sms-segments-calculator"));
const version = require(path.join(nm, "sms-segments-calculator/package.json")).version;
const texts = fs.readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean);
const passes = +(process.argv[3] || 5);
const chars = texts.reduce((a, t) => a + [...t].length, 0);
let sum = 0;
const run = () => { let s = 0; for (const t of texts) s += new SegmentedMessage(t).segmentsCount; return s; };
run();
let best = Infinity;
for (let r = 0; r < 5; r++) {
  const t0 = process.hrtime.bigint();
  for (let p = 0; p < passes; p++) sum = run();
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (dt < best) best = dt;
}
console.log(`${("sms-segments-calculator " + version).padEnd(34)}${Math.round(chars * passes / best).toString().padStart(12)} chars/s   segments ${sum}`);
