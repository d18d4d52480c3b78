#!/bin/sh
# E.164 side by side, same 10,000 inputs, same run: parse + validate + E.164
# in telua (C, and through Lua 5.4 and LuaJIT) and in google-libphonenumber
# and libphonenumber-js/max under node. Each prints the best of five runs of
# PASSES passes; the ratio is telua over the faster peer.
# usage: sh bench/e164.sh [BUILD]     (PASSES=20 by default)
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
PASSES=${PASSES:-20}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
make -s "$BUILD/e164bench" >/dev/null
node bench/e164_inputs.js > "$TMP/inputs.tsv"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(wc -l < "$TMP/inputs.tsv") inputs x $PASSES passes"
run_lua() { # interpreter, build subdir
  LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="$BUILD/$2/?.so;;" "$1" bench/e164_lua.lua "$TMP/inputs.tsv" "$PASSES"
}
{
  node bench/e164_peers.js "$TMP/inputs.tsv" "$PASSES"
  "$BUILD/e164bench" "$TMP/inputs.tsv" "$PASSES"
  run_lua lua5.4 lua5.4
  run_lua luajit luajit
} | tee "$TMP/out.txt"
awk '
  /numbers\/s/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "numbers/s") rate[NR] = $i; name[NR] = $0 }
  /^google|^libphonenumber/ { if ($0 ~ /numbers/) { for (i = 1; i <= NF; i++) if ($(i + 1) == "numbers/s") { if ($i > peer) peer = $i } } }
  END {
    for (r in rate) if (name[r] !~ /^google|^libphonenumber/) {
      split(name[r], w, "  "); printf "%-44s %5.1fx the faster peer (bar: 30x)\n", w[1], rate[r] / peer
    }
  }' "$TMP/out.txt"
