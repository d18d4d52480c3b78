#!/bin/sh
# Side by side on loopback: a signed inbound-SMS webhook answered by a
# routing rule with a TwiML reply. telua (2 workers) vs nginx + Debian's
# Lua module (2 workers) doing the same form decode, signature check and
# reply in Lua, and the same rule served by telua.ngx inside nginx (2
# workers, opt-out check on SQLite, E.164 parse). wrk with keep-alive. Then signature validations per second
# vs raw HMAC-SHA1 (bench/sigbench.c). With BREAKDOWN=1, telua with less of
# the path: MHD alone (GET /-/health), a bad signature (body, form decode,
# signature, 403: no Lua), and a rule answering a constant. telua runs as
# `telua serve` does by default: metrics kept (admin listener on) and an
# access line per webhook (to a file); a second telua with both off shows
# what seeing it run costs (OBSERVE=0 skips it).
# usage: [DUR=10] [BREAKDOWN=1] [OBSERVE=0] sh bench/webhook.sh [BUILD]
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DUR=${DUR:-10}
CONNS=${CONNS:-32}
TOKEN=bench-token-0123456789abcdef
TMP=$(mktemp -d)
CPID=
XPID=
OPID=
trap 'kill $TPID $NPID $XPID $CPID $OPID 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BODY='MessageSid=SM0123456789abcdef0123456789abcdef&AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B14155550199&To=%2B14155550100&Body=Hello+there%2C+is+my+order+1234+on+its+way%3F&NumMedia=0&NumSegments=1&SmsStatus=received'
PAIRS='[["MessageSid","SM0123456789abcdef0123456789abcdef"],["AccountSid","AC0123456789abcdef0123456789abcdef"],["From","+14155550199"],["To","+14155550100"],["Body","Hello there, is my order 1234 on its way?"],["NumMedia","0"],["NumSegments","1"],["SmsStatus","received"]]'

TPORT=$(free_port); NPORT=$(free_port); XPORT=$(free_port); APORT=$(free_port); OPORT=$(free_port)
TWILIO_AUTH_TOKEN=$TOKEN "$BUILD/telua" serve --rules bench/rules --listen 127.0.0.1:$TPORT \
  --public-url http://127.0.0.1:$TPORT --store sqlite:$TMP/bench.db --workers 2 \
  --admin-listen 127.0.0.1:$APORT >/dev/null 2>"$TMP/telua.log" &
TPID=$!
if [ "${OBSERVE:-1}" != 0 ]; then
  TWILIO_AUTH_TOKEN=$TOKEN "$BUILD/telua" serve --rules bench/rules --listen 127.0.0.1:$OPORT \
    --public-url http://127.0.0.1:$OPORT --store sqlite:$TMP/off.db --workers 2 \
    --admin-listen off --access-log off >/dev/null 2>"$TMP/telua-off.log" &
  OPID=$!
fi
mkdir -p "$TMP/nginx"
sed -e "s|@DIR@|$TMP/nginx|g" -e "s|@PORT@|$NPORT|g" -e "s|@TOKEN@|$TOKEN|g" bench/nginx.conf.in > "$TMP/nginx.conf"
nginx -c "$TMP/nginx.conf" -p "$TMP/nginx" 2>"$TMP/nginx.log" &
NPID=$!
mkdir -p "$TMP/ngx-telua"; chmod 711 "$TMP"; chmod 777 "$TMP/ngx-telua" # (the workers write the store as nobody)
sed -e "s|@DIR@|$TMP/ngx-telua|g" -e "s|@PORT@|$XPORT|g" -e "s|@TOKEN@|$TOKEN|g" -e "s|@ROOT@|$ROOT|g" \
    -e "s|@BUILD@|$(cd "$BUILD" && pwd)|g" bench/nginx_telua.conf.in > "$TMP/nginx_telua.conf"
nginx -c "$TMP/nginx_telua.conf" -p "$TMP/ngx-telua" 2>"$TMP/nginx_telua.log" &
XPID=$!
sleep 1

HZ=$(getconf CLK_TCK)
ticks() { # utime + stime of processes (a space-separated list of PIDs), in clock ticks
  t=0; for p in $1; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $t
}
run() { # name port [pid: also its CPU time per request, from /proc/PID/stat]
  URL=http://127.0.0.1:$2/sms/incoming
  SIG=$(node spec/oracle/sign.js "$TOKEN" "$URL" "$PAIRS")
  code=$(curl -s -o "$TMP/out" -w '%{http_code}' -H "X-Twilio-Signature: $SIG" \
         -H 'Content-Type: application/x-www-form-urlencoded' --data "$BODY" "$URL")
  [ "$code" = 200 ] || { echo "$1: check request got $code"; cat "$TMP/out"; exit 1; }
  bad=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Twilio-Signature: x$SIG" \
         -H 'Content-Type: application/x-www-form-urlencoded' --data "$BODY" "$URL")
  [ "$bad" = 403 ] || { echo "$1: a bad signature got $bad"; exit 1; }
  echo "--- $1: $(cat "$TMP/out")"
  t0=${3:+$(ticks "$3")}
  BODY=$BODY SIG=$SIG wrk -t1 -c$CONNS -d${DUR}s --latency -s bench/wrk_post.lua "$URL" > "$TMP/wrk-$1.txt"
  cpu=
  [ -n "${3:-}" ] && cpu=$(awk -v t=$(( $(ticks "$3") - t0 )) -v hz=$HZ '/requests in/ {printf "CPU %.1f us/req", t / hz / $1 * 1e6}' "$TMP/wrk-$1.txt")
  rps=$(awk '/Requests\/sec/ {print $2}' "$TMP/wrk-$1.txt")
  p50=$(awk '$1=="50%" {print $2}' "$TMP/wrk-$1.txt")
  p99=$(awk '$1=="99%" {print $2}' "$TMP/wrk-$1.txt")
  errs=$(awk '/Non-2xx|Socket errors/' "$TMP/wrk-$1.txt")
  printf '%-28s %12s req/s   p50 %8s   p99 %8s   %s %s\n' "$1" "$rps" "$p50" "$p99" "$cpu" "$errs"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); wrk -t1 -c$CONNS -d${DUR}s"
run "telua (2 workers)" $TPORT $TPID
if [ -n "$OPID" ]; then
  # what seeing it run costs: telua as above vs with metrics and access log
  # off, in alternating order (on off off on ...), so that a drift of the
  # machine's speed weighs on both
  on=0; off=0; con=0; coff=0
  for i in $(seq 1 "${OBSERVE_ROUNDS:-2}"); do
    if [ $((i % 2)) = 1 ]; then order="on off"; else order="off on"; fi
    for which in $order; do
      if [ $which = on ]; then run "  metrics+access log on" $TPORT $TPID; on=$(awk -v a="$on" -v b="$rps" 'BEGIN {print a + b}')
        con=$(echo "$cpu" | awk -v a="$con" '{print a + $2}')
      else run "  metrics+access log off" $OPORT $OPID; off=$(awk -v a="$off" -v b="$rps" 'BEGIN {print a + b}')
        coff=$(echo "$cpu" | awk -v a="$coff" '{print a + $2}'); fi
    done
  done
  echo "  on/off: req/s $(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.3f", a / b}')x, CPU per request $(awk -v a="$con" -v b="$coff" 'BEGIN {printf "%.3f", a / b}')x; telua's /metrics after the runs: $(curl -s http://127.0.0.1:$APORT/metrics | awk '/^telua_webhooks_total/ {n += $2} END {print n}') webhooks counted, $(grep -c '"access"\| access ' "$TMP/telua.log" || true) access lines"
fi
run "nginx+lua (2 workers)" $NPORT "$(pgrep -d' ' -P "$(cat "$TMP/nginx/nginx.pid")")"
run "telua.ngx in nginx (2 workers)" $XPORT "$(pgrep -d' ' -P "$(cat "$TMP/ngx-telua/nginx.pid")")"
if [ -n "${BREAKDOWN:-}" ]; then
  row() { # name wrk-args... (the CPU per request is telua's, $TPID)
    name=$1; shift
    t0=$(ticks "$TPID")
    wrk -t1 -c$CONNS -d${DUR}s "$@" > "$TMP/wrk-row.txt"
    printf '%-28s %12s req/s   %s\n' "$name" "$(awk '/Requests\/sec/ {print $2}' "$TMP/wrk-row.txt")" \
      "$(awk -v t=$(( $(ticks "$TPID") - t0 )) -v hz=$HZ '/requests in/ {printf "CPU %.1f us/req", t / hz / $1 * 1e6}' "$TMP/wrk-row.txt")"
  }
  echo "breakdown (telua, 2 workers):"
  row "  MHD alone (GET /-/health)" http://127.0.0.1:$TPORT/-/health
  BODY=$BODY SIG=bad row "  403: no Lua" -s bench/wrk_post.lua http://127.0.0.1:$TPORT/sms/incoming
  CPORT=$(free_port)
  TWILIO_AUTH_TOKEN=$TOKEN "$BUILD/telua" serve --rules bench/rules_const --listen 127.0.0.1:$CPORT \
    --public-url http://127.0.0.1:$CPORT --store sqlite:$TMP/const.db --workers 2 >/dev/null 2>"$TMP/const.log" &
  CPID=$!
  sleep 1
  run "  rule answering a constant" $CPORT $CPID
fi
echo
make -s "$BUILD/sigbench" >/dev/null 2>&1 || true
"$BUILD/sigbench" 1000000
