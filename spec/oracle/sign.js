// Prints the X-Twilio-Signature the official twilio library computes.
//   node spec/oracle/sign.js TOKEN URL '[["Key","value"],...]'
// Repeated keys become arrays, as Express's body parser hands them over.
"use strict";
const { getExpectedTwilioSignature } = require("twilio/lib/webhooks/webhooks");
const [token, url, json] = process.argv.slice(2);
const params = {};
const list = JSON.parse(json || "[]");
for (const [k, v] of Array.isArray(list) ? list : []) {
  if (k in params) params[k] = [].concat(params[k], v); else params[k] = v;
}
process.stdout.write(getExpectedTwilioSignature(token, url, params));
