#!/bin/sh
# Pacing accuracy of campaigns: `telua campaign` at 1, 3, 80 and 1,000 MPS
# for 30 s each through the host's sender to `telua sandbox`; the achieved
# rate is measured on the sandbox's receive times (first to last message)
# and, when tcpdump is there and we are root, on the POSTs' wire times.
# Then the outbox enqueue rate with durability on.
# usage: sh bench/pacing.sh [BUILD]      (SECONDS_EACH=30, RATES="1 3 80 1000")
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
SECS=${SECONDS_EACH:-30}
RATES=${RATES:-1 3 80 1000}
export TWILIO_ACCOUNT_SID=AC$(printf '%032d' 5) TWILIO_AUTH_TOKEN=bench-pacing-token
TMP=$(mktemp -d)
. bench/servers.sh
start_sandbox --mps 1000000
start_host --send-rates long_code=0 --send-concurrency 32
echo "machine: $(nproc) cores, $(uname -sr); $SECS s per rate, sender on a long code with its own limit off"
AREAS="201 212 305 415 628 650 718 805 917 949"
n=0
for rate in $RATES; do
  n=$((n + 1))
  count=$(awk "BEGIN { print int($rate * $SECS) + 1 }")
  area=$(echo $AREAS | cut -d' ' -f$n)
  # numbers: +1 AREA 55 NNNNN (valid NANP numbers, one prefix per rate)
  awk -v c="$count" -v a="$area" 'BEGIN { print "phone,name,order"; for (i = 0; i < c; i++) printf "+1%s%07d,N%d,%d\n", a, 5500000 + i, i, i }' > "$TMP/r$rate.csv"
  # when tcpdump can run, the POSTs' times on the wire too (the sandbox's
  # receive times include its own pauses: one thread parses and answers)
  TD=
  if command -v tcpdump >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    tcpdump -i lo -tt -n -l "tcp dst port ${SBURL##*:} and tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x504f5354" \
      2>/dev/null | awk '{ print $1; fflush() }' > "$TMP/wire$rate" &
    TD=$!
    sleep 1
  fi
  "$BUILD/telua" campaign --csv "$TMP/r$rate.csv" --template order_shipped --from +15005550006 \
    --rate "$rate" --store "sqlite:$TMP/telua.db" --templates rules/templates > "$TMP/c$rate.out"
  curl -s "$SBURL/-/sandbox/messages" > "$TMP/msgs.json"
  if [ -n "$TD" ]; then
    sleep 0.5
    pkill -P $$ tcpdump || true
    wait $TD || true
  fi
  LUA_PATH="lua/?.lua;;" LUA_CPATH="$BUILD/lua5.4/?.so;;" lua5.4 bench/pacing_stats.lua "$TMP/msgs.json" "+1$area" "$rate" \
    ${TD:+"$TMP/wire$rate"}
done
LUA_PATH="lua/?.lua;;" LUA_CPATH="$BUILD/lua5.4/?.so;;" lua5.4 bench/outbox_enqueue.lua "$TMP/enqueue.db" 100000 500
