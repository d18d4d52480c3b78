// Prints the TwiML the official twilio library builds for a call that
// says TEXT twice in LANGUAGE (a fallback channel's voice hop):
//   node spec/oracle/say_twiml.js TEXT LANGUAGE
"use strict";
const VoiceResponse = require("twilio/lib/twiml/VoiceResponse");
const [text, language] = process.argv.slice(2);
const r = new VoiceResponse();
r.say({ language, loop: 2 }, text);
process.stdout.write(r.toString());
