#!/bin/sh
# `make run`: serves the example rules on 127.0.0.1:8080.
# Without TWILIO_AUTH_TOKEN a development token is used and printed, so
# you can sign requests yourself (see README, "Five-minute tour").
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
mkdir -p var
if [ -z "${TWILIO_AUTH_TOKEN:-}" ]; then
  TWILIO_AUTH_TOKEN=dev-token-not-secret
  export TWILIO_AUTH_TOKEN
  echo "telua: TWILIO_AUTH_TOKEN is unset; using the development token: $TWILIO_AUTH_TOKEN"
fi
LISTEN=${TELUA_LISTEN:-127.0.0.1:8080}
PUBLIC=${TELUA_PUBLIC_URL:-http://$LISTEN}
echo "telua: serving rules/ on $LISTEN (public URL $PUBLIC); Ctrl-C stops"
exec "$BUILD/telua" serve --rules rules --listen "$LISTEN" --public-url "$PUBLIC" \
  --store "sqlite:var/telua.db" --workers 2
