#!/bin/sh
# What seeing it run costs, measured with both hosts under load at once
# (two wrk in parallel: both see the same machine, which on a VM moves by
# more than the effect between two sequential runs): telua with metrics
# and access log on (as `telua serve` runs by default) vs off. Prints each
# round's req/s and CPU per request (/proc/PID/stat), then the totals.
# A=... B=... set the two hosts' options (A=B shows the harness's bias).
# usage: [ROUNDS=8] [DUR=6] sh bench/observe_ab.sh [BUILD]
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
TOKEN=bench-token-0123456789abcdef
TMP=$(mktemp -d)
trap 'kill $(cat "$TMP"/*.pid 2>/dev/null) 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
BODY='MessageSid=SM0123456789abcdef0123456789abcdef&AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B14155550199&To=%2B14155550100&Body=Hello+there%2C+is+my+order+1234+on+its+way%3F&NumMedia=0&NumSegments=1&SmsStatus=received'
PAIRS='[["MessageSid","SM0123456789abcdef0123456789abcdef"],["AccountSid","AC0123456789abcdef0123456789abcdef"],["From","+14155550199"],["To","+14155550100"],["Body","Hello there, is my order 1234 on its way?"],["NumMedia","0"],["NumSegments","1"],["SmsStatus","received"]]'
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PA=$(free_port); PB=$(free_port); AA=$(free_port)
start() { # name port options
  TWILIO_AUTH_TOKEN=$TOKEN "$BUILD/telua" serve --rules bench/rules --listen 127.0.0.1:$2 \
    --public-url http://127.0.0.1:$2 --store sqlite:$TMP/$1.db --workers 2 $3 >/dev/null 2>"$TMP/$1.log" &
  echo $! > "$TMP/$1.pid"
}
start a $PA "${A:---admin-listen 127.0.0.1:$AA}"
start b $PB "${B:---admin-listen off --access-log off}"
sleep 1
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' /proc/$(cat "$TMP/$1.pid")/stat; }
echo "machine: $(nproc) cores, $(uname -sr); a: ${A:---admin-listen 127.0.0.1:PORT} / b: ${B:---admin-listen off --access-log off}"
for round in $(seq 1 "${ROUNDS:-8}"); do
  for h in a b; do
    if [ $h = a ]; then port=$PA; else port=$PB; fi
    URL=http://127.0.0.1:$port/sms/incoming
    SIG=$(node spec/oracle/sign.js "$TOKEN" "$URL" "$PAIRS")
    ticks $h > "$TMP/t0.$h"
    BODY=$BODY SIG=$SIG wrk -t1 -c32 -d"${DUR:-6}"s -s bench/wrk_post.lua "$URL" > "$TMP/wrk.$h" &
    echo $! > "$TMP/wrk.$h.wpid"
  done
  wait "$(cat "$TMP/wrk.a.wpid")" "$(cat "$TMP/wrk.b.wpid")"
  for h in a b; do
    awk -v h=$h -v t=$(( $(ticks $h) - $(cat "$TMP/t0.$h") )) -v hz=$HZ \
      '/requests in/ {n = $1} /Requests\/sec/ {r = $2} END {printf "%s %.0f req/s %.1f us/req  ", h, r, t / hz / n * 1e6}' "$TMP/wrk.$h"
  done
  echo
done | tee "$TMP/rounds"
awk '{ra += $2; ca += $4; rb += $7; cb += $9} END {printf "a/b: req/s %.3fx, CPU per request %.1f vs %.1f us (%.3fx)\n", ra / rb, ca / NR, cb / NR, ca / cb}' "$TMP/rounds"
