#!/usr/bin/env node
// Writes 2,000 message bodies, one per line (UTF-8), fixed seed: a mix
// of what notification senders send: plain GSM-7 (70 %), with GSM extension
// characters, with curly quotes or an emoji (UCS-2), Chinese and Arabic,
// 20 to 600 characters.   node bench/segments_inputs.js > FILE
"use strict";
let seed = 77;
const rnd = (n) => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed % n; };
const words = ["Your", "order", "#1234", "has", "shipped", "today", "track", "it", "at", "https://ex.co/t/AB12",
  "code", "is", "482913.", "Reply", "STOP", "to", "opt", "out.", "Hi", "Anna,", "appointment", "tomorrow", "10:30",
  "Price", "12,50€", "[info]", "{ref}", "naïve", "café", "Grüße"];
const ucs = ["“Thanks”", "👋", "😀", "—", "ą", "你好", "مرحبا", "👍🏽", "🇺🇸"];
const lines = [];
for (let i = 0; i < 2000; i++) {
  const target = 20 + rnd(580);
  let s = "";
  const kind = rnd(10);
  while (s.length < target) {
    if (kind >= 7 && rnd(6) === 0) s += ucs[rnd(ucs.length)] + " ";
    else s += words[rnd(words.length)] + " ";
  }
  lines.push(s.trim()); // no newlines inside: one body per line
}
process.stdout.write(lines.join("\n") + "\n");
