#!/bin/sh
# Messages created per second against `telua sandbox` (pacing off: the
# sandbox answers 201 at once), side by side in one run: telua.client
# (Lua 5.4 and LuaJIT on libcurl, and inside nginx on cosockets) vs the
# official twilio npm client at its best settings (keep-alive, CONC
# requests in flight).
# Each client runs ROUNDS times, interleaved, each on an emptied sandbox;
# the ratio is of the medians. The sandbox is pinned to CPU 0 and each
# client to CPU 1 (taskset), so both clients get one whole core and the
# scheduler does not move them onto the server's: unpinned, the same run
# varied from 8k to 16k/s on this 2-core VM.
# usage: sh bench/client.sh [BUILD]      (N=20000 CONC=32 ROUNDS=3 by default)
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
N=${N:-20000}
CONC=${CONC:-32}
ROUNDS=${ROUNDS:-3}
SID=AC$(printf '%032d' 7)
TOKEN=bench-token
TMP=$(mktemp -d)
NG=
trap 'kill $SB $NG 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
TWILIO_ACCOUNT_SID=$SID TWILIO_AUTH_TOKEN=$TOKEN taskset -c 0 "$BUILD/telua" sandbox --listen 127.0.0.1:0 > "$TMP/sb.out" 2>"$TMP/sb.log" &
SB=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do grep -q port "$TMP/sb.out" 2>/dev/null && break; sleep 0.1; done
BASE=http://127.0.0.1:$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$TMP/sb.out")
echo "machine: $(nproc) cores, $(uname -sr); $N messages, sandbox at $BASE"
# nginx (one worker) for the cosocket row, pinned like the other clients
NGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$TMP/ngx"
sed -e "s|@DIR@|$TMP/ngx|g" -e "s|@PORT@|$NGPORT|g" -e "s|@ROOT@|$(pwd)|g" -e "s|@BUILD@|$(cd "$BUILD" && pwd)|g" \
    bench/client_ngx.conf.in > "$TMP/ngx.conf"
taskset -c 1 nginx -c "$TMP/ngx.conf" -p "$TMP/ngx" 2>"$TMP/ngx.log" &
NG=$!
sleep 1
reset() { curl -s -X POST "$BASE/-/sandbox/reset" > /dev/null; } # each client starts on an empty sandbox
for _ in $(seq "$ROUNDS"); do
  reset; taskset -c 1 node bench/client_peer.js "$BASE" "$SID" "$TOKEN" "$N" "$CONC"
  reset; LUA_PATH="lua/?.lua;;" LUA_CPATH="$BUILD/lua5.4/?.so;;" taskset -c 1 lua5.4 bench/client_lua.lua "$BASE" "$SID" "$TOKEN" "$N" "$CONC"
  reset; LUA_PATH="lua/?.lua;;" LUA_CPATH="$BUILD/luajit/?.so;;" taskset -c 1 luajit bench/client_lua.lua "$BASE" "$SID" "$TOKEN" "$N" "$CONC"
  reset; curl -s --max-time 600 "http://127.0.0.1:$NGPORT/run?n=$N&conc=$CONC&sid=$SID&token=$TOKEN&base=$BASE"
done | tee "$TMP/out.txt"
# medians per client, then the ratios
awk '/messages\/s/ { r = $(NF - 1); k = ($0 ~ /^twilio-node/) ? "twilio-node" : ($0 ~ /in nginx/ ? "telua.client nginx" : ($0 ~ /LuaJIT/ ? "telua.client LuaJIT" : "telua.client Lua 5.4"))
                     print k "\t" r }' "$TMP/out.txt" | sort -t "$(printf '\t')" -k1,1 -k2,2n |
awk -F '\t' '{ v[$1, ++n[$1]] = $2 }
     END { for (k in n) med[k] = v[k, int((n[k] + 1) / 2)]
           printf "median: twilio-node %.0f/s\n", med["twilio-node"]
           for (k in n) if (k != "twilio-node") printf "median: %-22s %6.0f/s = %4.1fx twilio-node (bar: %s)\n", k, med[k], med[k] / med["twilio-node"], k ~ /nginx/ ? "3x" : "5x" }' 
