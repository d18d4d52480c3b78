#!/bin/sh
# `make run`: serves the example rules on 127.0.0.1:8080.
# Without Twilio credentials (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN) it
# starts `telua sandbox` on 127.0.0.1:8090 with development credentials and
# points the host's sender at it, so the rules' outbound messages and their
# status callbacks work on a fresh machine (see README, "Five-minute tour").
# The admin listener (metrics, status, the dashboard) is on 127.0.0.1:9180.
# TELUA_LISTEN, TELUA_ADMIN_LISTEN, TELUA_PUBLIC_URL, TELUA_SANDBOX_LISTEN,
# TELUA_RULES and TELUA_STORE override the addresses, rules folder and store.
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
mkdir -p var
LISTEN=${TELUA_LISTEN:-127.0.0.1:8080}
ADMIN=${TELUA_ADMIN_LISTEN:-127.0.0.1:9180}
RULES=${TELUA_RULES:-rules}
STORE=${TELUA_STORE:-sqlite:var/telua.db}
PUBLIC=${TELUA_PUBLIC_URL:-http://$LISTEN}
SANDBOX_PID=
if [ -z "${TWILIO_ACCOUNT_SID:-}" ] || [ -z "${TWILIO_AUTH_TOKEN:-}" ]; then
  TWILIO_ACCOUNT_SID=ACdeadbeefdeadbeefdeadbeefdeadbeef
  TWILIO_AUTH_TOKEN=dev-token-not-secret
  export TWILIO_ACCOUNT_SID TWILIO_AUTH_TOKEN
  SANDBOX=${TELUA_SANDBOX_LISTEN:-127.0.0.1:8090}
  "$BUILD/telua" sandbox --listen "$SANDBOX" &
  SANDBOX_PID=$!
  trap 'kill $SANDBOX_PID 2>/dev/null' EXIT INT TERM
  TELUA_TWILIO_BASE_URL=http://$SANDBOX
  export TELUA_TWILIO_BASE_URL
  echo "telua: no Twilio credentials; the sandbox answers on $SANDBOX (account $TWILIO_ACCOUNT_SID," \
       "development token: $TWILIO_AUTH_TOKEN)"
  echo "telua: try  TWILIO_AUTH_TOKEN=$TWILIO_AUTH_TOKEN $BUILD/telua sandbox inbound --to $PUBLIC/sms/incoming --from +14155550111 --body 'ORDER 1234'"
fi
echo "telua: serving $RULES on $LISTEN (public URL $PUBLIC), dashboard on http://$ADMIN/; Ctrl-C stops"
"$BUILD/telua" serve --rules "$RULES" --listen "$LISTEN" --public-url "$PUBLIC" \
  --store "$STORE" --workers 2 --admin-listen "$ADMIN"
