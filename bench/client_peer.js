// The official twilio npm client creating messages against `telua sandbox`,
// at its best settings: keep-alive sockets and CONC requests in flight.
// usage: node bench/client_peer.js BASE_URL SID TOKEN N CONC
'use strict';
const http = require('http');
const path = require('path');
const twilio = require(path.join(__dirname, '../spec/oracle/node_modules/twilio'));
const [base, sid, token, nArg, concArg] = process.argv.slice(2);
const N = Number(nArg), CONC = Number(concArg);
const rc = new twilio.RequestClient({ keepAlive: true, maxSockets: CONC, maxFreeSockets: CONC });
// the sandbox is plain http on loopback: give axios a keep-alive http agent too
rc.axios.defaults.httpAgent = new http.Agent({ keepAlive: true, maxSockets: CONC, maxFreeSockets: CONC });
const client = twilio(sid, token, { httpClient: rc });
client.api.baseUrl = base;

(async () => {
  let next = 0, ok = 0, failed = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      try {
        await client.messages.create({ to: '+14155550' + String(100 + (i % 900)), from: '+15005550006',
                                       body: 'Your code is ' + (100000 + i) });
        ok++;
      } catch (e) { failed++; }
    }
  };
  // warm up the sockets
  await Promise.all(Array.from({ length: CONC }, () => client.messages.create({ to: '+14155550100', from: '+15005550006', body: 'warm' })));
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONC }, worker));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`twilio-node ${require(path.join(__dirname, '../spec/oracle/node_modules/twilio/package.json')).version} (concurrency ${CONC}): ${ok} created, ${failed} failed in ${s.toFixed(2)} s = ${(ok / s).toFixed(0)} messages/s`);
})();
