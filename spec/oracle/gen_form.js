// Writes spec/fixtures/form_cases.json: application/x-www-form-urlencoded
// decode and encode results from Node's WHATWG URLSearchParams.
//   node spec/oracle/gen_form.js > spec/fixtures/form_cases.json
"use strict";
const decode = [
  "", "a=1", "a=1&b=2", "a=1&a=2&a=3", "a", "a=", "=v", "&&a=1&&", "a=b=c",
  "Body=Hello+World", "Body=Hello%20World", "To=%2B14155550100&From=%2b14155550199",
  "Body=caf%C3%A9+%E2%82%AC+%F0%9F%91%8B", "k%20ey=v%26al", "x=%25", "plus=%2B+", "q=a%3Db%26c",
  "MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC1%2FMessages%2FMM1%2FMedia%2FME1&NumMedia=1",
  "Digits=1234%23&FinishedOnKey=%23", "raw=caf\u00e9", "semi=a;b", "Body=line1%0D%0Aline2",
];
const encode = [
  [["To", "+14155550100"], ["Body", "Hello World & friends"]],
  [["a", "*-._~!'()"], ["b", "caf\u00e9 \u20ac \ud83d\udc4b"]],
  [["MediaUrl", "https://example.com/a.png?x=1&y=2"], ["MediaUrl", "https://example.com/b.png"]],
  [["empty", ""], ["", "v"]],
  [["nl", "a\r\nb"], ["pct", "100%"]],
];
const out = {
  source: "node " + process.version + " URLSearchParams",
  decode: decode.map((s) => ({ input: s, pairs: [...new URLSearchParams(s)] })),
  encode: encode.map((p) => ({ pairs: p, output: new URLSearchParams(p).toString() })),
};
process.stdout.write(JSON.stringify(out, null, 1) + "\n");
