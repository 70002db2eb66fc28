# Nimbus build. `make` builds build/nimbus; `make test` runs every test;
# `make test SAN=1` runs the same suite under ASan + UBSan.
PKGS      := libmicrohttpd jansson libxml-2.0 openssl sqlite3 libcurl
DEB_PKGS  := build-essential pkg-config libmicrohttpd-dev libjansson-dev libxml2-dev \
             libssl-dev libsqlite3-dev libcurl4-openssl-dev libcmocka-dev libpq-dev \
             python3-pytest python3-azure azure-cli wrk iproute2 util-linux \
             clang libclang-rt-14-dev
SHELL     := /bin/bash
CC        ?= cc
WARN      := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 -D_GNU_SOURCE $(WARN) -Isrc -Iinclude
LDLIBS    += -lpthread -ldl

ifeq ($(SAN),1)
BUILD     ?= build/san
CFLAGS    += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS   += -fsanitize=address,undefined
else
BUILD     ?= build
endif

# pkg-config is only consulted once the packages exist (make deps installs them).
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# Table service files held out of the build until their dependencies land.
WIP       :=
SRCS      := $(filter-out $(WIP),$(wildcard src/*.c src/*/*.c))
OBJS      := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRCS))
LIB_OBJS  := $(filter-out $(BUILD)/obj/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/*/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

APP       ?= examples/twofactor
PREFIX    ?= /usr/local
# Native function apps built with the tree: the example and the test apps.
APP_DIRS  := examples/twofactor tests/conformance/apps/native
PYTEST    := /usr/bin/python3 -m pytest

# libFuzzer drivers (fuzz/*.c) over our own parsers; `make fuzz` runs each
# for FUZZ_SECONDS against its committed seed corpus.
FUZZ_CC      := clang
FUZZ_CFLAGS  := -g -O1 -std=c11 -D_GNU_SOURCE -Isrc -Iinclude -fsanitize=address,undefined
FUZZ_SECONDS ?= 10
FUZZ_OBJS    := $(patsubst src/%.c,build/fuzz/obj/%.o,$(filter-out src/main.c,$(SRCS)))
FUZZ_BINS    := $(patsubst fuzz/%.c,build/fuzz/%,$(wildcard fuzz/*.c))

.PHONY: all deps run test check unit conformance clean bench fuzz apps install
.SECONDARY:

all: $(BUILD)/nimbus build/pkgconfig/nimbus.pc

# pkg-config for building native functions against this (uninstalled) tree:
# PKG_CONFIG_PATH=$(CURDIR)/build/pkgconfig pkg-config --cflags nimbus
build/pkgconfig/nimbus.pc: nimbus.pc.in
	@mkdir -p $(dir $@)
	sed -e 's|@prefix@|$(CURDIR)|; s|@includedir@|$(CURDIR)/include|' $< > $@

apps: | deps
	@for d in $(APP_DIRS); do $(MAKE) --no-print-directory -C $$d || exit 1; done

install: $(BUILD)/nimbus
	install -D -m 755 $(BUILD)/nimbus $(DESTDIR)$(PREFIX)/bin/nimbus
	install -D -m 644 include/nimbus/function.h $(DESTDIR)$(PREFIX)/include/nimbus/function.h
	@mkdir -p $(DESTDIR)$(PREFIX)/lib/pkgconfig
	sed -e 's|@prefix@|$(PREFIX)|; s|@includedir@|$(PREFIX)/include|' nimbus.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/nimbus.pc

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(BUILD)/obj/%.o: src/%.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/nimbus: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BUILD)/libnimbus.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libnimbus.a | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libnimbus.a $(LDFLAGS) \
	  $(PKG_LIBS) $$(pkg-config --libs cmocka) $(LDLIBS)

run: $(BUILD)/nimbus apps
	$(BUILD)/nimbus start $(APP) --data $(APP)/.nimbus

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do $$t || fail=1; done; exit $$fail

conformance: $(BUILD)/nimbus apps
	NIMBUS_BIN=$(abspath $(BUILD)/nimbus) $(PYTEST) -q tests/conformance

check: $(BUILD)/nimbus
	scripts/check-code.sh $(BUILD)

test: check unit conformance fuzz

bench: $(BUILD)/nimbus
	bench/queue/run.sh

build/fuzz/obj/%.o: src/%.c | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -c $< -o $@

build/fuzz/%: fuzz/%.c $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -o $@ $< $(FUZZ_OBJS) \
	  $(PKG_LIBS) $(LDLIBS)

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
	  name=$$(basename $$f); mkdir -p build/fuzz/corpus/$$name; \
	  echo "fuzz $$name ($(FUZZ_SECONDS)s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=25 -rss_limit_mb=1536 -print_final_stats=0 \
	    build/fuzz/corpus/$$name fuzz/corpus/$$name 2>&1 | grep -E "^(Done [0-9]+ runs|==[0-9]+==|SUMMARY|INFO: Running with)" ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

clean:
	rm -rf build

-include $(OBJS:.o=.d)
