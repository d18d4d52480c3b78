#!/bin/sh
# Runs the whole suite: C unit tests, busted specs under lua5.4 and luajit,
# and the host end-to-end specs. Ends with "N passed, N failed".
# usage: sh spec/run.sh BUILD_DIR
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
passed=0; failed=0
RUNENV=
out=$(mktemp)

count() { # TAP from busted -o TAP, or our C runner's TAP
  p=$(grep -c '^ok ' "$out"); f=$(grep -c '^not ok ' "$out")
  passed=$((passed + p)); failed=$((failed + f))
}

run_busted() { # $1 interpreter, $2 build subdir, rest: spec paths
  lua=$1; sub=$2; shift 2
  echo "== busted under $lua"
  LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;$ROOT/?.lua;$ROOT/?/init.lua;;" \
  LUA_CPATH="$ROOT/$BUILD/$sub/?.so;;" \
  TELUA_BUILD="$ROOT/$BUILD" \
    env $RUNENV $lua /usr/bin/busted -o TAP "$@" > "$out" 2>&1
  rc=$?
  grep -v '^ok ' "$out" | sed -n '1,200p'
  count
  if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$out"; then failed=$((failed + 1)); echo "busted exited $rc"; fi
}

if [ -x "$BUILD/test_core" ]; then
  echo "== C unit tests"
  "$BUILD/test_core" > "$out" 2>&1; rc=$?
  grep -v '^ok ' "$out"; count
  [ $rc -ne 0 ] && ! grep -q '^not ok ' "$out" && failed=$((failed + 1))
fi

for fz in fuzz_e164 fuzz_segments test_gcra test_gcra_shared test_strmatch test_vm embed_c99 embed_cxx17; do # C targets under ASan/UBSan (spec/c)
  [ -x "$BUILD/$fz" ] || continue
  echo "== $fz under ASan/UBSan"
  "$BUILD/$fz" > "$out" 2>&1; rc=$?
  grep -v '^ok ' "$out" | sed -n '1,60p'; count
  [ $rc -ne 0 ] && ! grep -q '^not ok ' "$out" && failed=$((failed + 1))
done

FUZZ_RUNS=${FUZZ_RUNS:-100000}
for fz in "$BUILD"/fuzz/fuzz_*; do # libFuzzer targets: a fixed-seed run of each, no finding allowed
  [ -x "$fz" ] || continue
  case "$fz" in *.corpus) continue;; esac
  name=$(basename "$fz")
  echo "== $name (libFuzzer, $FUZZ_RUNS runs)"
  tmp=$(mktemp -d)
  if [ "$name" = fuzz_tzif ]; then # seeds: the system's own zone files (first byte 0: an image as it is)
    i=0
    for z in America/New_York Australia/Lord_Howe Europe/London Pacific/Chatham America/Santiago; do
      [ -f "/usr/share/zoneinfo/$z" ] || continue
      i=$((i + 1)); { printf '\000'; cat "/usr/share/zoneinfo/$z"; } > "$tmp/seed$i"
    done
  fi
  if "$fz" -runs="$FUZZ_RUNS" -seed=1 -max_len=4096 -artifact_prefix="$tmp/" "$tmp" > "$out" 2>&1; then
    passed=$((passed + 1)); echo "ok - $name: $FUZZ_RUNS inputs, no finding"
  else
    failed=$((failed + 1)); echo "not ok - $name"; grep -E "ERROR|SUMMARY|runtime error" "$out" | head -5
  fi
  rm -rf "$tmp"
done

echo "== luacheck (.luacheckrc)"
if luacheck --no-color -q lua rules spec examples bench tools > "$out" 2>&1; then
  passed=$((passed + 1)); echo "ok - luacheck: no warnings"
else
  failed=$((failed + 1)); echo "not ok - luacheck"; sed -n '1,40p' "$out"
fi

UNIT=$(ls spec/*_spec.lua)
# a sanitizer build (make SAN=1): the interpreters are not instrumented, so
# the ASan and UBSan runtimes must be loaded before telua.core is
SANENV=
if ldd "$BUILD/lua5.4/telua/core.so" 2>/dev/null | grep -q libasan; then
  SANENV="LD_PRELOAD=$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so) ASAN_OPTIONS=detect_leaks=0"
fi
RUNENV=$SANENV
run_busted lua5.4 lua5.4 $UNIT
run_busted luajit luajit $UNIT
RUNENV= # the host specs run the instrumented binary itself (and node, which must not get the preload)
# under ASan a request's Lua takes several times the CPU: the host specs'
# budgets are scaled so that they still test the limits, not the sanitizer
[ -n "$SANENV" ] && RUNENV="TELUA_SPEC_CPU_FACTOR=4"
if [ -d spec/host ]; then
  run_busted lua5.4 lua5.4 spec/host
fi
if [ -d spec/openresty ]; then # a real nginx with lua-nginx-module, which runs telua on LuaJIT
  run_busted lua5.4 lua5.4 spec/openresty
fi
rm -f "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
