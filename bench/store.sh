#!/bin/sh
# The store's backends side by side (issue 12): Debian's redis-server on
# loopback (AOF on, fsync every second: Redis's durable default) vs SQLite
# (WAL, the host's default), in one run.
#   1. webhooks: the signed inbound-SMS bench of bench/webhook.sh (its rule,
#      the opt-out lookup on every webhook), telua with --store sqlite: and
#      with --store redis://, 2 workers each, wrk -c32 with keep-alive;
#   2. the outbox: N messages through one host (2 workers, pacing off,
#      --send-concurrency 32) to `telua sandbox` (status callbacks after
#      100 ms): sends/s from the first to the last message the sandbox got,
#      and on Redis the round trips per message from enqueue to its final
#      status (the server's count of read events, INFO stats
#      total_reads_processed, over the whole run: the campaign's enqueue,
#      the sender's claims, filings and pacing, the status callbacks;
#      less the probes of this script);
#   3. GCRA decisions through Redis (bench/store_gcra.lua).
# usage: [DUR=10] [N=5000] [RUNS=3 (at most 5)] sh bench/store.sh [BUILD]
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DUR=${DUR:-10}
N=${N:-5000}
RUNS=${RUNS:-3}
CONNS=${CONNS:-32}
TOKEN=bench-token-0123456789abcdef
export TWILIO_ACCOUNT_SID=AC$(printf '%032d' 5) TWILIO_AUTH_TOKEN=$TOKEN
TMP=$(mktemp -d)
. bench/servers.sh
RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$TMP" --save '' --appendonly yes --appendfsync everysec \
  --daemonize yes --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log"
trap 'kill $SB $HOST 2>/dev/null; kill $(cat "$TMP/redis.pid") 2>/dev/null; sleep 0.3; rm -rf "$TMP"' EXIT INT TERM
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
REDIS=redis://127.0.0.1:$RPORT
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # utime + stime, clock ticks
reads() { redis-cli -p "$RPORT" info stats | sed -n 's/^total_reads_processed:\([0-9]*\).*/\1/p'; }

BODY='MessageSid=SM0123456789abcdef0123456789abcdef&AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B14155550199&To=%2B14155550100&Body=Hello+there%2C+is+my+order+1234+on+its+way%3F&NumMedia=0&NumSegments=1&SmsStatus=received'
PAIRS='[["MessageSid","SM0123456789abcdef0123456789abcdef"],["AccountSid","AC0123456789abcdef0123456789abcdef"],["From","+14155550199"],["To","+14155550100"],["Body","Hello there, is my order 1234 on its way?"],["NumMedia","0"],["NumSegments","1"],["SmsStatus","received"]]'

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(redis-server --version | cut -d' ' -f1-3)"
echo "1. webhooks (wrk -t1 -c$CONNS -d${DUR}s, the opt-out lookup on each)"
webhook() { # name store
  TWILIO_AUTH_TOKEN=$TOKEN "$BUILD/telua" serve --rules bench/rules --listen 127.0.0.1:0 \
    --public-url http://127.0.0.1:9 --store "$2" --workers 2 > "$TMP/w.out" 2>"$TMP/w.log" &
  HOST=$!
  wait_port "$TMP/w.out"
  port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$TMP/w.out")
  # signed for the public URL the host checks against
  SIG=$(node spec/oracle/sign.js "$TOKEN" "http://127.0.0.1:9/sms/incoming" "$PAIRS")
  URL=http://127.0.0.1:$port/sms/incoming
  code=$(curl -s -o "$TMP/out" -w '%{http_code}' -H "X-Twilio-Signature: $SIG" \
         -H 'Content-Type: application/x-www-form-urlencoded' --data "$BODY" "$URL")
  [ "$code" = 200 ] || { echo "$1: check request got $code"; cat "$TMP/out" "$TMP/w.log"; exit 1; }
  BODY=$BODY SIG=$SIG wrk -t1 -c$CONNS -d${DUR}s --latency -s bench/wrk_post.lua "$URL" > "$TMP/wrk.txt"
  rps=$(awk '/Requests\/sec/ {print $2}' "$TMP/wrk.txt")
  printf '   %-24s %10s req/s   p50 %8s   p99 %8s   %s\n' "$1" "$rps" "$(awk '$1=="50%" {print $2}' "$TMP/wrk.txt")" \
    "$(awk '$1=="99%" {print $2}' "$TMP/wrk.txt")" "$(awk '/Non-2xx|Socket errors/' "$TMP/wrk.txt")"
  kill $HOST; wait $HOST 2>/dev/null || true; HOST=
  eval "RPS_$3=$rps"
}
webhook "sqlite: (WAL)" "sqlite:$TMP/w.db" sqlite
webhook "redis:// (loopback)" "$REDIS/1" redis
awk -v a="$RPS_redis" -v b="$RPS_sqlite" 'BEGIN { printf "   redis / sqlite: %.2fx\n", a / b }'

echo "2. the outbox: $N messages through one host (2 workers, pacing off, 32 in flight), $RUNS runs of each, alternating"
outbox() { # name store tag area (sets RATE: sends/s)
  # a sandbox of its own for each run: its lists grow with what it got
  [ -n "$SB" ] && { kill $SB; wait $SB 2>/dev/null || true; }
  start_sandbox --mps 1000000 --delivery-ms 100
  awk -v c="$N" -v a="$4" 'BEGIN { print "phone,name,order"; for (i = 0; i < c; i++) printf "+1%s%07d,N%d,%d\n", a, 5500000 + i, i, i }' > "$TMP/n.csv"
  # the public URL is the host's own: the sandbox signs its status callbacks for the URL it posts to
  hport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  TELUA_TWILIO_BASE_URL=$SBURL "$BUILD/telua" serve --rules rules --listen 127.0.0.1:$hport \
    --public-url http://127.0.0.1:$hport --store "$2" --workers 2 --send-rates long_code=0,account=0 \
    --send-concurrency 32 > "$TMP/h.out" 2>"$TMP/h.log" &
  HOST=$!
  wait_port "$TMP/h.out"
  r0=$(reads)
  h0=$(cpu $HOST); s0=$(cpu $SB); q0=$(cpu "$(cat "$TMP/redis.pid")")
  "$BUILD/telua" campaign --csv "$TMP/n.csv" --template order_shipped --from +15005550006 --store "$2" \
    --templates rules/templates --name "bench-$3" --status-callback "http://127.0.0.1:$hport/status/messages" \
    --no-wait > "$TMP/c.out" 2>&1
  LUA_PATH="lua/?.lua;;" LUA_CPATH="$BUILD/lua5.4/?.so;;" lua5.4 bench/store_outbox.lua "$SBURL" "$N" "$2" "bench-$3" "+1$4" \
    > "$TMP/o.txt"
  r1=$(reads)
  h1=$(cpu $HOST); s1=$(cpu $SB); q1=$(cpu "$(cat "$TMP/redis.pid")")
  polls=$(sed -n 's/^polls \([0-9]*\)/\1/p' "$TMP/o.txt")
  sed -n 's/^row //p' "$TMP/o.txt" | while read -r line; do printf '   %-24s %s\n' "$1" "$line"; done
  RATE=$(sed -n 's/^row [0-9]* sent: \([0-9]*\) sends.*/\1/p' "$TMP/o.txt")
  awk -v h=$((h1 - h0)) -v s=$((s1 - s0)) -v q=$((q1 - q0)) -v n="$N" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    printf "   %-24s CPU per message: host %.0f us, sandbox %.0f us, redis-server %.0f us\n", "", h / hz / n * 1e6, s / hz / n * 1e6, q / hz / n * 1e6 }'
  if [ "${3#redis}" != "$3" ]; then
    # less this script's own probes: two INFO, the polls of bench/store_outbox.lua
    awk -v a="$r0" -v b="$r1" -v p="$polls" -v n="$N" 'BEGIN { printf "   Redis round trips per message (enqueue to final status): %.2f\n", (b - a - 2 - p) / n }'
  fi
  kill $HOST; wait $HOST 2>/dev/null || true; HOST=
}
# the machine's noise is larger than one run: pairs, alternating, and the median of the ratios
ratios=
for run in $(seq "$RUNS"); do
  # a prefix of its own for each run (valid NANP area codes)
  outbox "sqlite: (WAL)" "sqlite:$TMP/o$run.db" "sqlite$run" "$(echo 415 212 305 617 702 | cut -d' ' -f$run)"; a=$RATE
  outbox "redis:// (loopback)" "$REDIS/2" "redis$run" "$(echo 650 718 805 312 206 | cut -d' ' -f$run)"; b=$RATE
  ratios="$ratios $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')"
done
echo "   redis / sqlite per run:$ratios; median $(echo $ratios | tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')x"

echo "3. GCRA decisions (two limits each: the sender's and the account's)"
LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="$BUILD/lua5.4/?.so;;" lua5.4 bench/store_gcra.lua "$REDIS/3" 50000 | sed 's/^/   /'
