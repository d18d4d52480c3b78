#!/usr/bin/env node
// A proxy for the sender specs: forwards every request to TARGET (the
// sandbox), holding back those it is told to, as a slow or hung network
// would. Prints "port N" once listening.
//   node spec/helpers/holdproxy.js TARGET_PORT HOLD_TO HOLD_MS LIST_MS
// HOLD_TO: a POST whose form has a To starting with it is forwarded only
// after HOLD_MS; LIST_MS: a GET of a message list is answered LIST_MS late.
// GET /-/proxy answers {"held": n, "released": n, "lists": n} (requests seen).
"use strict";
const http = require("http");
const [targetPort, holdTo, holdMs, listMs] = process.argv.slice(2);
const stats = { held: 0, released: 0, lists: 0 };

function forward(req, body, res) {
  const up = http.request({ host: "127.0.0.1", port: Number(targetPort), method: req.method, path: req.url,
                            headers: req.headers }, (ur) => {
    res.writeHead(ur.statusCode, ur.headers);
    ur.pipe(res);
  });
  up.on("error", () => { res.writeHead(502); res.end(); });
  up.end(body);
}

http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    if (req.url === "/-/proxy") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(stats));
      return;
    }
    const to = new URLSearchParams(body.toString()).get("To") || "";
    if (req.method === "POST" && holdTo && to.startsWith(holdTo)) {
      stats.held++;
      setTimeout(() => { stats.released++; forward(req, body, res); }, Number(holdMs));
    } else if (req.method === "GET" && /\/Messages\.json/.test(req.url)) {
      stats.lists++;
      setTimeout(() => forward(req, body, res), Number(listMs));
    } else {
      forward(req, body, res);
    }
  });
}).listen(0, "127.0.0.1", function () {
  process.stdout.write("port " + this.address().port + "\n");
});
