#!/bin/sh
# GCRA decisions per second on one core: C with 100 and 10,000 keys, and
# through Lua 5.4 and LuaJIT. usage: sh bench/gcra.sh [BUILD]
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
make -s "$BUILD/gcrabench" >/dev/null
echo "machine: $(nproc) cores, $(uname -sr)"
"$BUILD/gcrabench" 20000000 100
"$BUILD/gcrabench" 20000000 10000
LUA_PATH="lua/?.lua;;" LUA_CPATH="$BUILD/lua5.4/?.so;;" lua5.4 bench/gcra_lua.lua 3000000
LUA_PATH="lua/?.lua;;" LUA_CPATH="$BUILD/luajit/?.so;;" luajit bench/gcra_lua.lua 3000000
