#!/bin/sh
# Segment counting side by side, same 2,000 bodies: telua (C, Lua 5.4,
# LuaJIT) vs the npm sms-segments-calculator. Characters per second.
# usage: sh bench/segments.sh [BUILD]      (PASSES=20 by default)
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
PASSES=${PASSES:-20}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
make -s "$BUILD/segbench" >/dev/null
node bench/segments_inputs.js > "$TMP/bodies.txt"
echo "machine: $(nproc) cores, $(uname -sr); $(wc -l < "$TMP/bodies.txt") bodies x $PASSES passes (the peer: 3 passes)"
{
  node bench/segments_peer.js "$TMP/bodies.txt" 3
  "$BUILD/segbench" "$TMP/bodies.txt" "$PASSES"
  LUA_PATH="lua/?.lua;;" LUA_CPATH="$BUILD/lua5.4/?.so;;" lua5.4 bench/segments_lua.lua "$TMP/bodies.txt" "$PASSES"
  LUA_PATH="lua/?.lua;;" LUA_CPATH="$BUILD/luajit/?.so;;" luajit bench/segments_lua.lua "$TMP/bodies.txt" "$PASSES"
} | tee "$TMP/out.txt"
awk '/chars\/s/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "chars/s") r = $i
                 if ($0 ~ /^sms-segments/) peer = r; else { n++; name[n] = $0; rate[n] = r } }
     END { for (i = 1; i <= n; i++) { split(name[i], w, "  "); printf "%-34s %7.0fx the calculator (bar: 100x)\n", w[1], rate[i] / peer } }' "$TMP/out.txt"
