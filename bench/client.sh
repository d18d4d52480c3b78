#!/bin/sh
# Messages created per second against `telua sandbox` (pacing off: the
# sandbox answers 201 at once), side by side in one run: telua.client
# (Lua 5.4 and LuaJIT) vs the official twilio npm client at its best
# settings (keep-alive, CONC requests in flight).
# usage: sh bench/client.sh [BUILD]      (N=20000 CONC=32 by default)
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
N=${N:-20000}
CONC=${CONC:-32}
SID=AC$(printf '%032d' 7)
TOKEN=bench-token
TMP=$(mktemp -d)
trap 'kill $SB 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
TWILIO_ACCOUNT_SID=$SID TWILIO_AUTH_TOKEN=$TOKEN "$BUILD/telua" sandbox --listen 127.0.0.1:0 > "$TMP/sb.out" 2>"$TMP/sb.log" &
SB=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do grep -q port "$TMP/sb.out" 2>/dev/null && break; sleep 0.1; done
BASE=http://127.0.0.1:$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$TMP/sb.out")
echo "machine: $(nproc) cores, $(uname -sr); $N messages, sandbox at $BASE"
reset() { curl -s -X POST "$BASE/-/sandbox/reset" > /dev/null; } # each client starts on an empty sandbox
{
  reset; node bench/client_peer.js "$BASE" "$SID" "$TOKEN" "$N" "$CONC"
  reset; LUA_PATH="lua/?.lua;;" LUA_CPATH="$BUILD/lua5.4/?.so;;" lua5.4 bench/client_lua.lua "$BASE" "$SID" "$TOKEN" "$N" "$CONC"
  reset; LUA_PATH="lua/?.lua;;" LUA_CPATH="$BUILD/luajit/?.so;;" luajit bench/client_lua.lua "$BASE" "$SID" "$TOKEN" "$N" "$CONC"
} | tee "$TMP/out.txt"
awk '/messages\/s/ { r = $(NF - 1); if ($0 ~ /^twilio-node/) peer = r; else { n++; name[n] = $1 " " $3; rate[n] = r } }
     END { for (i = 1; i <= n; i++) printf "%-28s %5.1fx twilio-node (bar: 5x)\n", name[i], rate[i] / peer }' "$TMP/out.txt"
