# Sourced by the outbound benches: starts `telua sandbox` and `telua serve`
# (2 workers, its sender pointed at the sandbox, the store in $TMP) on free
# loopback ports, and stops both on exit. Needs BUILD, TMP and the
# TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN the two share.
#   start_sandbox [sandbox options]   -> SB (pid), SBURL
#   start_host [serve options]        -> HOST (pid)
SB= HOST=
trap 'kill $SB $HOST 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
wait_port() { for _ in $(seq 50); do grep -q port "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "$1: no port" >&2; exit 1; }
start_sandbox() {
  "$BUILD/telua" sandbox --listen 127.0.0.1:0 "$@" > "$TMP/sb.out" 2>"$TMP/sb.log" &
  SB=$!
  wait_port "$TMP/sb.out"
  SBURL=http://127.0.0.1:$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$TMP/sb.out")
}
start_host() {
  TELUA_TWILIO_BASE_URL=$SBURL "$BUILD/telua" serve --rules rules --listen 127.0.0.1:0 \
    --public-url http://127.0.0.1:9 --store "sqlite:$TMP/telua.db" --workers 2 "$@" > "$TMP/host.out" 2>"$TMP/host.log" &
  HOST=$!
  wait_port "$TMP/host.out"
}
