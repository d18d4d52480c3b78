# telua - the one entry point: deps, build, test, run, bench.
# `make run` and `make test` install what a fresh Debian 12 machine lacks.

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=c99 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter
PKGS    := openssl sqlite3 libcurl hiredis
LUA54_CFLAGS  := -I/usr/include/lua5.4
LUAJIT_CFLAGS := -I/usr/include/luajit-2.1
HOST_LIBS := -llua5.4 -lmicrohttpd $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lssl -lcrypto -lsqlite3 -lcurl -lhiredis) -lpthread -lm -ldl

CORE_SRC := src/core/form.c src/core/signature.c src/core/url.c src/core/xml.c src/core/re.c src/core/e164.c src/core/e164_meta.c \
            src/core/segments.c src/core/segments_tables.c src/core/gcra.c src/core/tz.c src/core/tz_meta.c
LUA_SRC  := src/lua/telua_core.c src/lua/sqlite.c src/lua/http.c src/lua/redis.c
HOST_SRC := $(wildcard src/host/*.c)
CORE_LIBS := -lssl -lcrypto -lsqlite3 -lcurl -lhiredis
HDRS     := $(wildcard src/core/*.h src/lua/*.h src/host/*.h src/include/*.h)

BUILD := build
SAN   ?=
ifeq ($(SAN),1)
  CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  BUILD  := build/san
endif

.PHONY: all deps oracles test run bench check clean lint fuzz install examples

VERSION := 0.1.0
SOMAJOR := 0
all: $(BUILD)/telua $(BUILD)/libtelua.a $(BUILD)/libtelua.so $(BUILD)/telua-uninstalled.pc \
     $(BUILD)/lua5.4/telua/core.so $(BUILD)/luajit/telua/core.so

# libtelua: the host as a library (only telua_* exported: -fvisibility=hidden
# and TELUA_API in telua.h); the telua executable is main.c on libtelua.a.
LIB_SRC := $(filter-out src/host/main.c,$(HOST_SRC)) $(CORE_SRC) $(LUA_SRC)
OBJDIR  := $(BUILD)/obj
LIB_OBJ := $(patsubst src/%.c,$(OBJDIR)/%.o,$(LIB_SRC))
OBJ_CFLAGS := $(WARN) $(CFLAGS) -fPIC -fvisibility=hidden $(LUA54_CFLAGS) -Isrc/include \
              -DTELUA_LUADIR='"$(CURDIR)/lua"' -DTELUA_DASHBOARD='"$(CURDIR)/src/host/dashboard.html"'

$(OBJDIR)/host/admin.o: src/host/dashboard.html

$(OBJDIR)/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(OBJ_CFLAGS) -c -o $@ $<

$(BUILD)/libtelua.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $(LIB_OBJ)

$(BUILD)/libtelua.so.$(VERSION): $(LIB_OBJ)
	$(CC) $(CFLAGS) -shared -Wl,-soname,libtelua.so.$(SOMAJOR) -Wl,--no-undefined -o $@ $(LIB_OBJ) $(HOST_LIBS)

$(BUILD)/libtelua.so: $(BUILD)/libtelua.so.$(VERSION)
	ln -sf libtelua.so.$(VERSION) $(BUILD)/libtelua.so.$(SOMAJOR)
	ln -sf libtelua.so.$(SOMAJOR) $@

# The telua program allocates with jemalloc (Debian's libjemalloc2): under
# two workers it took 2.5-4 us of CPU off a webhook against glibc's malloc
# (bench/RESULTS.md, "The allocator"). MALLOC=libc keeps glibc's. The
# library (libtelua) leaves the allocator to the program that embeds it.
MALLOC ?= jemalloc
MALLOC_LIBS := $(if $(filter jemalloc,$(MALLOC)),-ljemalloc)
$(BUILD)/telua: $(OBJDIR)/host/main.o $(BUILD)/libtelua.a
	$(CC) $(CFLAGS) -o $@ $(OBJDIR)/host/main.o $(BUILD)/libtelua.a $(MALLOC_LIBS) $(HOST_LIBS)

# pkg-config: telua.pc (installed) and telua-uninstalled.pc (this build;
# pkg-config prefers it when PKG_CONFIG_PATH holds $(BUILD))
$(BUILD)/telua-uninstalled.pc: tools/telua.pc.in Makefile
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(CURDIR)|' -e 's|@LIBDIR@|$(abspath $(BUILD))|' -e 's|@INCLUDEDIR@|$(CURDIR)/src/include|' \
	    -e 's|@VERSION@|$(VERSION)|' tools/telua.pc.in > $@

$(BUILD)/lua5.4/telua/core.so: $(CORE_SRC) $(LUA_SRC) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -fPIC -shared $(LUA54_CFLAGS) -o $@ $(CORE_SRC) $(LUA_SRC) $(CORE_LIBS)

$(BUILD)/luajit/telua/core.so: $(CORE_SRC) $(LUA_SRC) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -fPIC -shared $(LUAJIT_CFLAGS) -o $@ $(CORE_SRC) $(LUA_SRC) $(CORE_LIBS)

# Debian packages a fresh Debian 12 machine lacks, and the npm oracle.
DEB_PKGS := build-essential pkg-config lua5.4 liblua5.4-dev luajit2 libluajit2-5.1-dev \
            libmicrohttpd-dev libssl-dev libsqlite3-dev sqlite3 libcurl4-openssl-dev lua-busted lua-cjson \
            lua-socket lua-check luarocks curl openssl wrk nginx-light \
            libnginx-mod-http-lua lua-resty-core redis-server libhiredis-dev clang libclang-rt-14-dev iproute2 g++ \
            lua5.3 liblua5.3-dev lua5.1 liblua5.1-0-dev util-linux binutils \
            python3-prometheus-client chromium libjemalloc-dev tzdata
# `make deps`: what building and serving need (Debian packages only, so
# `make run` works without the npm registry); `make oracles`: the npm test
# oracles (the official twilio library, libphonenumber), for `make test`.
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

oracles:
	@# node and npm: the machine's own when present (Debian's npm conflicts with NodeSource's)
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm; }
	@# npm writes node_modules/.package-lock.json: older than the lock file means new oracles
	@[ spec/oracle/node_modules/.package-lock.json -nt spec/oracle/package-lock.json ] || \
	  (cd spec/oracle && npm ci --no-audit --no-fund --loglevel=error)

# Programs built against libtelua the way an embedder builds them
# (pkg-config on this build's telua-uninstalled.pc; rpath to this build)
TELUA_PKG = $$(PKG_CONFIG_PATH=$(abspath $(BUILD)) pkg-config --cflags --libs telua) -Wl,-rpath,$(abspath $(BUILD))
examples: $(BUILD)/examples/game_server
$(BUILD)/examples/game_server: examples/game/game_server.c $(BUILD)/libtelua.so $(BUILD)/telua-uninstalled.pc
	@mkdir -p $(@D)
	$(CC) -Wall -Wextra -Werror $(CFLAGS) -o $@ examples/game/game_server.c $(TELUA_PKG) -lpthread

# the embedding API as C99 and as C++17 (spec/c/embed_api.c)
$(BUILD)/embed_c99: spec/c/embed_api.c src/include/telua.h $(BUILD)/libtelua.so $(BUILD)/telua-uninstalled.pc
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L -pedantic -Wall -Wextra -Werror $(CFLAGS) -DLANG='"C99: "' \
	  -o $@ spec/c/embed_api.c $(TELUA_PKG) -lpthread
$(BUILD)/embed_cxx17: spec/c/embed_api.c src/include/telua.h $(BUILD)/libtelua.so $(BUILD)/telua-uninstalled.pc
	$(CXX) -std=c++17 -pedantic -Wall -Wextra -Werror $(CFLAGS) -DLANG='"C++17: "' -x c++ \
	  -o $@ spec/c/embed_api.c $(TELUA_PKG) -lpthread

BUSTED := /usr/bin/busted
test: deps oracles all examples $(BUILD)/embed_c99 $(BUILD)/embed_cxx17 $(BUILD)/fuzz_e164 $(BUILD)/fuzz_segments $(BUILD)/test_gcra $(BUILD)/test_gcra_shared $(BUILD)/test_strmatch $(BUILD)/test_vm \
      $(LIBFUZZERS)
	@sh spec/run.sh $(BUILD)

# The E.164 parser under ASan and UBSan: a mutation fuzzer run by `make test`
E164_SRC := src/core/e164.c src/core/re.c src/core/e164_meta.c
SANFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
$(BUILD)/fuzz_e164: spec/c/fuzz_e164.c $(E164_SRC) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(SANFLAGS) -o $@ spec/c/fuzz_e164.c $(E164_SRC) -lpthread

SEG_SRC := src/core/segments.c src/core/segments_tables.c
$(BUILD)/fuzz_segments: spec/c/fuzz_segments.c $(SEG_SRC) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(SANFLAGS) -o $@ spec/c/fuzz_segments.c $(SEG_SRC)

$(BUILD)/test_gcra: spec/c/test_gcra.c src/core/gcra.c src/core/gcra.h
	@mkdir -p $(@D)
	$(CC) $(WARN) $(SANFLAGS) -o $@ spec/c/test_gcra.c src/core/gcra.c -lpthread

$(BUILD)/test_gcra_shared: spec/c/test_gcra_shared.c src/core/gcra.c src/core/gcra.h
	@mkdir -p $(@D)
	$(CC) $(WARN) $(SANFLAGS) -o $@ spec/c/test_gcra_shared.c src/core/gcra.c -lpthread

# the host's bounded pattern matcher against liblua5.4's own (the oracle)
$(BUILD)/test_strmatch: spec/c/test_strmatch.c src/host/strmatch.c src/host/vm.c src/host/watchdog.c src/host/clock.c src/host/log.c src/host/metrics.c \
                        $(CORE_SRC) $(LUA_SRC) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(SANFLAGS) $(LUA54_CFLAGS) -Isrc/include -o $@ spec/c/test_strmatch.c src/host/strmatch.c \
	  src/host/vm.c src/host/watchdog.c src/host/clock.c src/host/log.c src/host/metrics.c $(CORE_SRC) $(LUA_SRC) -llua5.4 $(CORE_LIBS) -lpthread -lm

$(BUILD)/test_vm: spec/c/test_vm.c src/host/vm.c src/host/watchdog.c src/host/strmatch.c src/host/clock.c src/host/log.c src/host/metrics.c \
                  $(CORE_SRC) $(LUA_SRC) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(SANFLAGS) $(LUA54_CFLAGS) -Isrc/include -o $@ spec/c/test_vm.c src/host/strmatch.c \
	  src/host/vm.c src/host/watchdog.c src/host/clock.c src/host/log.c src/host/metrics.c $(CORE_SRC) $(LUA_SRC) -llua5.4 $(CORE_LIBS) -lpthread -lm

# Coverage-guided fuzz targets (libFuzzer, Debian's clang, ASan + UBSan):
# the parsers a webhook meets before any rule, and the tzdata reader. `make test` runs each for
# FUZZ_RUNS inputs from a fixed seed (spec/run.sh); `make fuzz` runs every
# target, these and the E.164 and segment ones, for FUZZ_SECONDS each.
LIBFUZZ := clang -std=c99 -D_GNU_SOURCE -DTELUA_LIBFUZZER -O1 -g -fsanitize=fuzzer,address,undefined \
           -fno-sanitize-recover=all
FUZZ_CORE := src/core/form.c src/core/signature.c src/core/url.c src/core/xml.c src/core/tz.c src/core/tz_meta.c
LIBFUZZERS := $(BUILD)/fuzz/fuzz_form $(BUILD)/fuzz/fuzz_signature $(BUILD)/fuzz/fuzz_url $(BUILD)/fuzz/fuzz_xml \
              $(BUILD)/fuzz/fuzz_tzif
$(BUILD)/fuzz/fuzz_%: spec/c/fuzz_%.c $(FUZZ_CORE) $(HDRS)
	@mkdir -p $(@D)
	$(LIBFUZZ) -o $@ $< $(FUZZ_CORE) -lcrypto
$(BUILD)/fuzz/libfuzzer_e164: spec/c/fuzz_e164.c $(E164_SRC) $(HDRS)
	@mkdir -p $(@D)
	$(LIBFUZZ) -o $@ spec/c/fuzz_e164.c $(E164_SRC) -lpthread
$(BUILD)/fuzz/libfuzzer_segments: spec/c/fuzz_segments.c $(SEG_SRC) $(HDRS)
	@mkdir -p $(@D)
	$(LIBFUZZ) -o $@ spec/c/fuzz_segments.c $(SEG_SRC)

FUZZ_SECONDS ?= 60
fuzz: $(LIBFUZZERS) $(BUILD)/fuzz/libfuzzer_e164 $(BUILD)/fuzz/libfuzzer_segments
	@for t in $^; do \
	  mkdir -p $$t.corpus; echo "== $$t"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 $$t.corpus || exit 1; \
	done

# make install PREFIX=/usr/local DESTDIR=...: the executable, libtelua
# (.a, .so with its soname links), telua.h, telua.pc, the Lua modules and
# telua.core for Lua 5.4 (where Debian's lua5.4 looks under PREFIX), and a
# systemd unit. The installed telua finds its modules by its own prefix.
PREFIX  ?= /usr/local
DESTDIR ?=
LIBDIR  := $(PREFIX)/lib
LUADIR  := $(PREFIX)/share/lua/5.4
CLUADIR := $(PREFIX)/lib/lua/5.4
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(LUADIR)/telua/host $(DESTDIR)$(LUADIR)/telua/store $(DESTDIR)$(LUADIR)/telua/http \
	  $(DESTDIR)$(CLUADIR)/telua $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 755 $(BUILD)/telua $(DESTDIR)$(PREFIX)/bin/telua
	install -m 644 $(BUILD)/libtelua.a $(DESTDIR)$(LIBDIR)/libtelua.a
	install -m 755 $(BUILD)/libtelua.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libtelua.so.$(VERSION)
	ln -sf libtelua.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libtelua.so.$(SOMAJOR)
	ln -sf libtelua.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libtelua.so
	install -m 644 src/include/telua.h $(DESTDIR)$(PREFIX)/include/telua.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$${prefix}/lib|' -e 's|@INCLUDEDIR@|$${prefix}/include|' \
	    -e 's|@VERSION@|$(VERSION)|' tools/telua.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/telua.pc
	install -m 644 lua/telua/*.lua $(DESTDIR)$(LUADIR)/telua/
	install -m 644 lua/telua/store/*.lua $(DESTDIR)$(LUADIR)/telua/store/
	install -m 644 lua/telua/http/*.lua $(DESTDIR)$(LUADIR)/telua/http/
	install -m 644 lua/telua/host/*.lua $(DESTDIR)$(LUADIR)/telua/host/
	install -m 755 $(BUILD)/lua5.4/telua/core.so $(DESTDIR)$(CLUADIR)/telua/core.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' tools/telua.service.in > $(DESTDIR)$(PREFIX)/lib/systemd/system/telua.service

run: deps all
	@sh tools/run.sh $(BUILD)

bench: deps oracles all $(BUILD)/observe_cost $(BUILD)/sigbench $(BUILD)/e164bench $(BUILD)/segbench $(BUILD)/gcrabench
	@sh bench/webhook.sh $(BUILD)
	@sh bench/e164.sh $(BUILD)
	@sh bench/segments.sh $(BUILD)
	@sh bench/gcra.sh $(BUILD)
	@sh bench/client.sh $(BUILD)
	@sh bench/host_memory.sh $(BUILD)
	@sh bench/pacing.sh $(BUILD)
	@sh bench/campaign_memory.sh $(BUILD)

check: all
	$(BUILD)/telua check rules

lint:
	luacheck --no-color -q lua rules spec examples bench tools

clean:
	rm -rf build

$(BUILD)/observe_cost: bench/observe_cost.c src/host/log.c src/host/metrics.c src/host/clock.c $(HDRS)
	$(CC) $(WARN) -O2 -Isrc/include -o $@ bench/observe_cost.c src/host/log.c src/host/metrics.c src/host/clock.c -lpthread

$(BUILD)/sigbench: bench/sigbench.c $(CORE_SRC) $(HDRS)
	$(CC) $(WARN) -O2 -o $@ bench/sigbench.c src/core/signature.c src/core/url.c src/core/form.c -lcrypto

$(BUILD)/e164bench: bench/e164bench.c src/core/e164.c src/core/re.c src/core/e164_meta.c $(HDRS)
	$(CC) $(WARN) -O2 -o $@ bench/e164bench.c src/core/e164.c src/core/re.c src/core/e164_meta.c -lpthread

$(BUILD)/segbench: bench/segbench.c src/core/segments.c src/core/segments_tables.c $(HDRS)
	$(CC) $(WARN) -O2 -o $@ bench/segbench.c src/core/segments.c src/core/segments_tables.c

$(BUILD)/gcrabench: bench/gcrabench.c src/core/gcra.c src/core/gcra.h
	$(CC) $(WARN) -O2 -o $@ bench/gcrabench.c src/core/gcra.c -lpthread
