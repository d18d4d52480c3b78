#!/bin/sh
# The host's memory during a 100,000-message campaign: `telua campaign`
# queues 100,000 rows (--rate 3000, above what the sender does on this
# machine, so it runs flat out), the host's sender sends them to `telua
# sandbox`; the host's RSS is printed every 20,000 sends.
# usage: sh bench/campaign_memory.sh [BUILD]      (ROWS=100000)
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROWS=${ROWS:-100000}
export TWILIO_ACCOUNT_SID=AC$(printf '%032d' 6) TWILIO_AUTH_TOKEN=bench-campaign-token
TMP=$(mktemp -d)
. bench/servers.sh
start_sandbox --mps 1000000
start_host --send-rates long_code=0 --send-concurrency 32
rss() { awk '/VmRSS/ { print $2 }' /proc/$HOST/status; }
awk -v c="$ROWS" 'BEGIN { split("201 212 305 415 628 650 718 805 917 949", a, " "); print "phone,name,order"; for (i = 0; i < c; i++) printf "+1%s%07d,N%d,%d\n", a[int(i / 20000) + 1], 5500000 + i % 20000, i, i }' > "$TMP/rows.csv"
echo "machine: $(nproc) cores, $(uname -sr); host pid $HOST, 2 workers; start RSS $(rss) kB"
t0=$(date +%s.%N)
"$BUILD/telua" campaign --csv "$TMP/rows.csv" --template order_shipped --from +15005550006 --rate 3000 \
  --store "sqlite:$TMP/telua.db" --templates rules/templates --no-wait | sed -n '1p;$p'
t1=$(date +%s.%N)
echo "queued in $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s (rendering, E.164, opt-out and segment checks included)"
next=20000
while [ "$next" -le "$ROWS" ]; do
  sent=$(sqlite3 "$TMP/telua.db" "SELECT count(*) FROM outbox WHERE state = 'sent'")
  if [ "$sent" -ge "$next" ]; then
    echo "after $sent sends: RSS $(rss) kB"
    next=$((next + 20000))
  else
    sleep 0.5
  fi
done
