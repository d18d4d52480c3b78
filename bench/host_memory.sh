#!/bin/sh
# The host's memory while it sends 150,000 messages: `telua serve` with 2
# workers and its sender (pacing off, 32 requests in flight) against
# `telua sandbox`. Three rounds of 50,000 entries are queued in the outbox
# (as a campaign would); the host's RSS is printed after each round. The
# bar: no growth between the second and the third 50,000.
# usage: sh bench/host_memory.sh [BUILD]      (ROUND=50000 by default)
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROUND=${ROUND:-50000}
SID=AC$(printf '%032d' 9)
export TWILIO_ACCOUNT_SID=$SID TWILIO_AUTH_TOKEN=bench-memory-token
TMP=$(mktemp -d)
. bench/servers.sh
start_sandbox --mps 1000000
start_host --send-rates long_code=0,account=0 --send-concurrency 32
rss() { awk '/VmRSS/ { print $2 }' /proc/$HOST/status; }
echo "machine: $(nproc) cores, $(uname -sr); host pid $HOST, 2 workers, sender unpaced"
echo "start: RSS $(rss) kB"
total=0
for round in 1 2 3; do
  start=$total
  sqlite3 "$TMP/telua.db" "WITH RECURSIVE n(i) AS (SELECT $start + 1 UNION ALL SELECT i + 1 FROM n WHERE i < $start + $ROUND)
    INSERT INTO outbox (params, sender, to_addr, state, attempts, not_before, created_at, updated_at)
    SELECT json_object('to', '+1415555' || printf('%04d', i % 10000), 'from', '+15005550006',
                       'body', 'Your order ' || i || ' has shipped'),
           '+15005550006', '+1415555' || printf('%04d', i % 10000), 'queued', 0, 0, 0, 0 FROM n;"
  total=$((total + ROUND))
  t0=$(date +%s.%N)
  while :; do
    sent=$(sqlite3 "$TMP/telua.db" "SELECT count(*) FROM outbox WHERE state = 'sent'")
    [ "$sent" -ge "$total" ] && break
    left=$(sqlite3 "$TMP/telua.db" "SELECT count(*) FROM outbox WHERE state IN ('queued', 'sending')")
    [ "$left" -eq 0 ] && { echo "round $round: only $sent sent"; sqlite3 "$TMP/telua.db" "SELECT state, count(*) FROM outbox GROUP BY state"; exit 1; }
    sleep 0.5
  done
  t1=$(date +%s.%N)
  echo "after $total sends: RSS $(rss) kB ($(awk "BEGIN { printf \"%.0f\", $ROUND / ($t1 - $t0) }") sends/s this round)"
done
