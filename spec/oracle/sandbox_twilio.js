// The official twilio npm client (6.x) against `telua sandbox`, with only
// the base URL changed (client.api.baseUrl / client.verify.baseUrl).
// usage: node sandbox_twilio.js BASE_URL ACCOUNT_SID AUTH_TOKEN
// Prints one JSON object: each step's outcome, for spec/host/sandbox_spec.lua.
const http = require('http');
const twilio = require('twilio');

const [base, sid, token] = process.argv.slice(2);
const client = twilio(sid, token);
client.api.baseUrl = base;
client.verify.baseUrl = base;

const out = {};
const step = async (name, fn) => {
  try { out[name] = await fn(); } catch (e) {
    out[name] = { error: String(e && e.message), code: e && e.code, status: e && e.status };
  }
};

const getJSON = (path) => new Promise((resolve, reject) => {
  http.get(base + path, (res) => {
    let b = '';
    res.on('data', (c) => { b += c; });
    res.on('end', () => { try { resolve(JSON.parse(b)); } catch (e) { reject(e); } });
  }).on('error', reject);
});

(async () => {
  // a loopback receiver for status callbacks, checked with validateRequest
  const received = [];
  const server = http.createServer((req, res) => {
    let b = '';
    req.on('data', (c) => { b += c; });
    req.on('end', () => {
      const params = Object.fromEntries(new URLSearchParams(b));
      const url = 'http://127.0.0.1:' + server.address().port + req.url;
      received.push({ status: params.MessageStatus || params.CallStatus, sid: params.MessageSid || params.CallSid,
                      valid: twilio.validateRequest(token, req.headers['x-twilio-signature'], url, params),
                      tampered: twilio.validateRequest(token, req.headers['x-twilio-signature'], url,
                                                       { ...params, To: '+19999999999' }) });
      res.writeHead(200, { 'Content-Type': 'text/xml' });
      res.end('<Response/>');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const cbUrl = 'http://127.0.0.1:' + server.address().port + '/status?x=1';

  let created;
  await step('create', async () => {
    created = await client.messages.create({ to: '+14155552671', from: '+15005550006',
      body: 'Hello from the official client 👋', statusCallback: cbUrl });
    return { sid: created.sid, status: created.status, numSegments: created.numSegments, to: created.to,
             body: created.body, accountSid: created.accountSid, dateCreated: String(created.dateCreated),
             direction: created.direction };
  });
  await step('fetch', async () => {
    const m = await client.messages(created.sid).fetch();
    return { sid: m.sid, body: m.body, to: m.to };
  });
  await step('list', async () => {
    for (let i = 0; i < 4; i++) {
      await client.messages.create({ to: '+14155550100', from: '+15005550006', body: 'list ' + i });
    }
    const all = await client.messages.list({ to: '+14155550100', pageSize: 2 });
    return { count: all.length, bodies: all.map((m) => m.body) };
  });
  await step('error_21211', async () => {
    await client.messages.create({ to: '+15005550001', from: '+15005550006', body: 'x' });
    return { error: 'no error' };
  });
  await step('error_21610', async () => {
    await client.messages.create({ to: '+15005550004', from: '+15005550006', body: 'x' });
    return { error: 'no error' };
  });
  let call;
  await step('call_create', async () => {
    call = await client.calls.create({ to: '+14155552671', from: '+15005550006',
      twiml: '<Response><Say>Hi</Say></Response>', statusCallback: cbUrl,
      statusCallbackEvent: ['initiated', 'answered', 'completed'] });
    return { sid: call.sid, status: call.status, fromFormatted: call.fromFormatted };
  });
  await step('call_fetch', async () => {
    const c = await client.calls(call.sid).fetch();
    return { sid: c.sid, to: c.to };
  });
  const service = 'VA' + 'b'.repeat(32);
  let ver;
  await step('verify_start', async () => {
    ver = await client.verify.v2.services(service).verifications.create({ to: '+14155552671', channel: 'sms' });
    return { sid: ver.sid, status: ver.status, to: ver.to, channel: ver.channel,
             attempts: ver.sendCodeAttempts.length };
  });
  await step('verify_wrong', async () => {
    const c = await client.verify.v2.services(service).verificationChecks.create({ to: '+14155552671', code: '000000x' });
    return { status: c.status, valid: c.valid };
  });
  await step('verify_check', async () => {
    const list = await getJSON('/-/sandbox/verifications?To=%2B14155552671');
    const code = list.verifications.find((v) => v.sid === ver.sid).code;
    const c = await client.verify.v2.services(service).verificationChecks.create({ to: '+14155552671', code });
    return { status: c.status, valid: c.valid, sid: c.sid };
  });
  await step('verify_after', async () => {
    await client.verify.v2.services(service).verificationChecks.create({ to: '+14155552671', code: '123456' });
    return { error: 'no error' };
  });

  // wait for the message's and the call's callbacks
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline &&
         !(received.some((r) => r.status === 'delivered') && received.some((r) => r.status === 'completed'))) {
    await new Promise((r) => setTimeout(r, 50));
  }
  out.callbacks = received;
  server.close();
  process.stdout.write(JSON.stringify(out) + '\n');
})();
