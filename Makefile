# smtpguard - top-level build. `make` builds everything; `make check` runs every
# test; `make demo` runs the lab demo; `make bench` the benchmarks;
# `make interop` the interoperability matrix. deps first.

ARCH_TRIPLET := $(shell gcc -dumpmachine 2>/dev/null)
BUILD        ?= build
CC           ?= gcc
CLANG        ?= clang
BPFTOOL      ?= bpftool

# Every file compiles alone (one object each) and sees only its own room
# and the rooms below it, so includes run one way (README, "Layout"):
#   include/ <- lib/ <- scan/ <- proxy/ <- daemon/;  tools/ sees lib/ and
#   complaints/ (abuse reports: it sees lib/, scan/signals/ and the MIME parser);
#   inside scan/: signals/ <- the engine contract (scan/) <- content/, milter/
# CPPFLAGS, CFLAGS, LDFLAGS: what a packager adds (the Debian package:
# dpkg-buildflags' hardening); empty by default
CFLAGS_BASE   := -O2 -g -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE $(CPPFLAGS) $(CFLAGS)
INC_lib       := -Iinclude -Ilib
INC_scan/signals := $(INC_lib) -Iscan/signals
INC_scan      := $(INC_scan/signals) -Iscan
INC_scan/content := $(INC_scan) -Iscan/content
INC_scan/milter  := $(INC_scan) -Iscan/milter
INC_scan_all  := $(INC_scan) -Iscan/content -Iscan/milter
INC_proxy     := $(INC_scan_all) -Iproxy -I$(BUILD)/skel
INC_daemon    := $(INC_proxy) -Idaemon
INC_complaints := $(INC_scan/signals) -Iscan/content -Icomplaints
CFLAGS_COMMON := $(CFLAGS_BASE) $(INC_lib) -I$(BUILD)/skel
LDLIBS_BPF    := -lbpf -lelf -lz
LDLIBS_XDP    := -lxdp $(LDLIBS_BPF)
# the daemon tells systemd it is ready, reloading, stopping (daemon/notify.c);
# it syncs with the shared store, Redis (daemon/shared_*.c)
LDLIBS_DAEMON := -lsystemd -lhiredis
# what the scanning stage's engines link (scan/)
LDLIBS_SCAN   := -lhs -lpcre2-8 -lm
SAN_FLAGS     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
BPF_CFLAGS    := -O2 -g -Wall -Werror -target bpf -mcpu=v3 -Iinclude -I/usr/include/$(ARCH_TRIPLET)

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(BUILD)/skel/%.skel.h,$(BPF_SRCS))
BPF_HDRS   := $(wildcard bpf/*.h) $(wildcard include/smtpguard/*.h)

# the daemon's rooms, in include order; room R's objects: $(R_OBJS), and
# under ASan/UBSan $(R_ASAN)
ROOMS := lib scan proxy daemon
$(foreach r,$(ROOMS),$(eval $(r)_SRCS := $(wildcard $(r)/*.c $(r)/*/*.c)))
$(foreach r,$(ROOMS),$(eval $(r)_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$($(r)_SRCS))))
$(foreach r,$(ROOMS),$(eval $(r)_ASAN := $(patsubst %.c,$(BUILD)/asan/obj/%.o,$($(r)_SRCS))))
LIB_SRCS := $(lib_SRCS)
LIB_HDRS := $(wildcard lib/*.h) $(wildcard include/smtpguard/*.h)
LIB_OBJS := $(lib_OBJS)
LIB_ASAN := $(lib_ASAN)
DAEMON_OBJS := $(daemon_OBJS) $(proxy_OBJS) $(scan_OBJS) $(lib_OBJS)
DAEMON_ASAN := $(daemon_ASAN) $(proxy_ASAN) $(scan_ASAN) $(lib_ASAN)
CTL_SRCS    := $(wildcard tools/*.c)
# abuse reports (complaints/) and what they stand on: the content engine's
# MIME parser and the body fingerprint; linked into smtpguardctl
COMPLAINTS_SRCS := $(wildcard complaints/*.c) $(wildcard scan/content/mime*.c) \
                   scan/signals/fingerprint.c scan/signals/keyhash.c
COMPLAINTS_HDRS := $(wildcard complaints/*.h) scan/content/mime.h scan/signals/fingerprint.h
COMPLAINTS_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(COMPLAINTS_SRCS))
COMPLAINTS_ASAN := $(patsubst %.c,$(BUILD)/asan/obj/%.o,$(COMPLAINTS_SRCS))
UNIT_SRCS   := $(wildcard selftests/unit/test_*.c)
UNIT_BINS   := $(patsubst selftests/unit/%.c,$(BUILD)/selftests/%,$(UNIT_SRCS))
UNIT_ASAN   := $(patsubst selftests/unit/%.c,$(BUILD)/asan/selftests/%,$(UNIT_SRCS))
BPFT_SRCS   := $(wildcard selftests/bpf/test_*.c)
BPFT_BINS   := $(patsubst selftests/bpf/%.c,$(BUILD)/selftests/%,$(BPFT_SRCS))
TOOL_SRCS   := $(wildcard selftests/tools/*.c)
TOOL_BINS   := $(patsubst selftests/tools/%.c,$(BUILD)/selftests/%,$(TOOL_SRCS))
BENCH_SRCS  := $(wildcard bench/*.c)
BENCH_BINS  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

# the relay driven over socketpairs by scripted dialogues (selftests/relay)
RELAY_TESTS := $(BUILD)/selftests/test_relay $(BUILD)/asan/selftests/test_relay

PROGS := $(BUILD)/smtpguardd $(BUILD)/smtpguardctl $(BUILD)/asan/smtpguardd \
         $(BUILD)/asan/smtpguardctl

FUZZ_SRCS    := $(wildcard selftests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(patsubst selftests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_FLAGS   := -g -O1 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -Ilib \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_SECONDS ?= 60

# the man pages (scdoc); smtpguard.conf(5)'s keys come from the config table
# and etc/smtpguard.conf's comments (docs/man/gen_conf_man.c)
MAN_PAGES := $(BUILD)/man/smtpguardd.8 $(BUILD)/man/smtpguardctl.8 $(BUILD)/man/smtpguard.conf.5

.PHONY: all programs man install uninstall deb deps check check-fresh check-kernels demo bench \
	fuzz clean interop
all: $(BPF_OBJS) $(SKELS) $(PROGS) $(UNIT_BINS) $(UNIT_ASAN) $(RELAY_TESTS) $(BPFT_BINS) \
     $(TOOL_BINS) $(BENCH_BINS) $(FUZZ_BINS) $(MAN_PAGES)

# what `make install` (and the Debian package) installs, and nothing else;
# the daemon's BPF objects (the lab's empty_* programs stay out)
INSTALL_BPF_OBJS := $(filter-out $(BUILD)/bpf/empty_%,$(BPF_OBJS))
programs: $(BUILD)/smtpguardd $(BUILD)/smtpguardctl $(INSTALL_BPF_OBJS) $(MAN_PAGES)
man: $(MAN_PAGES)

deps:
	@bash scripts/deps.sh

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/skel/%.skel.h: $(BUILD)/bpf/%.bpf.o
	@mkdir -p $(@D)
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@

# one object per file, with its room's include path (a room inside a room,
# scan/content/, has its own; proxy and daemon objects may include BPF
# skeletons, so they wait for them)
room_inc = $(or $(INC_$(patsubst %/,%,$(dir $(1)))),$(INC_$(firstword $(subst /, ,$(1)))))
$(BUILD)/obj/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -MMD -MP $(call room_inc,$*) -c $< -o $@

$(BUILD)/asan/obj/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -MMD -MP $(SAN_FLAGS) $(call room_inc,$*) -c $< -o $@

-include $(shell find $(BUILD)/obj $(BUILD)/asan/obj -name '*.d' 2>/dev/null)

$(BUILD)/smtpguardd: $(DAEMON_OBJS)
	$(CC) $(CFLAGS_BASE) $(LDFLAGS) $^ -o $@ $(LDLIBS_SCAN) $(LDLIBS_XDP) $(LDLIBS_DAEMON) -lssl -lcrypto -lpthread

$(BUILD)/asan/smtpguardd: $(DAEMON_ASAN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) $^ -o $@ $(LDLIBS_SCAN) $(LDLIBS_XDP) $(LDLIBS_DAEMON) -lssl -lcrypto -lpthread

$(BUILD)/smtpguardctl: $(CTL_SRCS) $(LIB_OBJS) $(COMPLAINTS_OBJS)
	$(CC) $(CFLAGS_COMMON) -Icomplaints $(LDFLAGS) $(CTL_SRCS) $(LIB_OBJS) $(COMPLAINTS_OBJS) -o $@ $(LDLIBS_BPF) -lcrypto

$(BUILD)/asan/smtpguardctl: $(CTL_SRCS) $(LIB_ASAN) $(COMPLAINTS_ASAN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) -Icomplaints $(SAN_FLAGS) $(CTL_SRCS) $(LIB_ASAN) $(COMPLAINTS_ASAN) -o $@ $(LDLIBS_BPF) -lcrypto

$(BUILD)/selftests/test_%: selftests/unit/test_%.c selftests/test.h $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) -Iselftests $< $(LIB_OBJS) -o $@ $(LDLIBS_BPF)

# the scanning stage's tests (test_scanner, test_scan_*) link its room
SCAN_UNIT := $(filter selftests/unit/test_scanner.c selftests/unit/test_scan_%.c,$(UNIT_SRCS))
$(patsubst selftests/unit/%.c,$(BUILD)/selftests/%,$(SCAN_UNIT)): $(BUILD)/selftests/%: selftests/unit/%.c selftests/test.h $(scan_OBJS) $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(INC_scan_all) -Iselftests $< $(scan_OBJS) $(LIB_OBJS) -o $@ $(LDLIBS_SCAN) $(LDLIBS_BPF)

$(patsubst selftests/unit/%.c,$(BUILD)/asan/selftests/%,$(SCAN_UNIT)): $(BUILD)/asan/selftests/%: selftests/unit/%.c selftests/test.h $(scan_ASAN) $(LIB_ASAN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) $(INC_scan_all) -Iselftests $< $(scan_ASAN) $(LIB_ASAN) -o $@ $(LDLIBS_SCAN) $(LDLIBS_BPF)

# the abuse reports' tests (test_complaints_*) link complaints/ and the
# scanning stage (the content engine's fingerprint is checked against theirs)
COMPLAINTS_UNIT := $(filter selftests/unit/test_complaints_%.c,$(UNIT_SRCS))
COMPLAINTS_ROOM_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard complaints/*.c))
COMPLAINTS_ROOM_ASAN := $(patsubst %.c,$(BUILD)/asan/obj/%.o,$(wildcard complaints/*.c))
$(patsubst selftests/unit/%.c,$(BUILD)/selftests/%,$(COMPLAINTS_UNIT)): $(BUILD)/selftests/%: selftests/unit/%.c selftests/test.h $(COMPLAINTS_ROOM_OBJS) $(scan_OBJS) $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(INC_scan_all) -Icomplaints -Iselftests $< $(COMPLAINTS_ROOM_OBJS) $(scan_OBJS) $(LIB_OBJS) -o $@ $(LDLIBS_SCAN) $(LDLIBS_BPF)

$(patsubst selftests/unit/%.c,$(BUILD)/asan/selftests/%,$(COMPLAINTS_UNIT)): $(BUILD)/asan/selftests/%: selftests/unit/%.c selftests/test.h $(COMPLAINTS_ROOM_ASAN) $(scan_ASAN) $(LIB_ASAN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) $(INC_scan_all) -Icomplaints -Iselftests $< $(COMPLAINTS_ROOM_ASAN) $(scan_ASAN) $(LIB_ASAN) -o $@ $(LDLIBS_SCAN) $(LDLIBS_BPF)

# the proxy room's unit tests (test_proxy_*) link it and what it stands on
PROXY_UNIT := $(filter selftests/unit/test_proxy_%.c,$(UNIT_SRCS))
$(patsubst selftests/unit/%.c,$(BUILD)/selftests/%,$(PROXY_UNIT)): $(BUILD)/selftests/%: selftests/unit/%.c selftests/test.h $(proxy_OBJS) $(scan_OBJS) $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(INC_proxy) -Iselftests $< $(proxy_OBJS) $(scan_OBJS) $(LIB_OBJS) -o $@ $(LDLIBS_SCAN) $(LDLIBS_BPF) -lssl -lcrypto -lpthread

$(patsubst selftests/unit/%.c,$(BUILD)/asan/selftests/%,$(PROXY_UNIT)): $(BUILD)/asan/selftests/%: selftests/unit/%.c selftests/test.h $(proxy_ASAN) $(scan_ASAN) $(LIB_ASAN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) $(INC_proxy) -Iselftests $< $(proxy_ASAN) $(scan_ASAN) $(LIB_ASAN) -o $@ $(LDLIBS_SCAN) $(LDLIBS_BPF) -lssl -lcrypto -lpthread

# the relay's test (its .c files together) links the proxy room, not its
# daemon: sessions run in the test's own event loop
RELAY_TEST_SRCS := $(wildcard selftests/relay/*.c)
RELAY_TEST_HDRS := $(wildcard selftests/relay/*.h) selftests/test.h
$(BUILD)/selftests/test_relay: $(RELAY_TEST_SRCS) $(RELAY_TEST_HDRS) $(proxy_OBJS) $(scan_OBJS) $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(INC_proxy) -Iselftests $(RELAY_TEST_SRCS) $(proxy_OBJS) $(scan_OBJS) $(LIB_OBJS) -o $@ $(LDLIBS_SCAN) $(LDLIBS_BPF) -lssl -lcrypto -lpthread

$(BUILD)/asan/selftests/test_relay: $(RELAY_TEST_SRCS) $(RELAY_TEST_HDRS) $(proxy_ASAN) $(scan_ASAN) $(LIB_ASAN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) $(INC_proxy) -Iselftests $(RELAY_TEST_SRCS) $(proxy_ASAN) $(scan_ASAN) $(LIB_ASAN) -o $@ $(LDLIBS_SCAN) $(LDLIBS_BPF) -lssl -lcrypto -lpthread

$(BUILD)/asan/selftests/test_%: selftests/unit/test_%.c selftests/test.h $(LIB_ASAN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -Iselftests $< $(LIB_ASAN) -o $@ $(LDLIBS_BPF)

$(BUILD)/selftests/test_%: selftests/bpf/test_%.c selftests/test.h $(LIB_OBJS) $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) -Iselftests $< $(LIB_OBJS) -o $@ $(LDLIBS_BPF) -lpthread

$(BUILD)/selftests/%: selftests/tools/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $< -o $@

$(BUILD)/bench/%: bench/%.c $(wildcard bench/*.h) $(LIB_OBJS) $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $< $(LIB_OBJS) -o $@ $(LDLIBS_BPF)

# the scanning stage's benchmarks (bench/scan_*.c) link its room
$(BUILD)/bench/scan_%: bench/scan_%.c $(wildcard bench/*.h) $(scan_OBJS) $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(INC_scan_all) $< $(scan_OBJS) $(LIB_OBJS) -o $@ $(LDLIBS_SCAN) $(LDLIBS_BPF)

# the scan's fairness runs the relay's sessions in a worker of its own, as
# the relay's test does (selftests/relay/rig.h): it links the proxy room
$(BUILD)/bench/scan_fairness: bench/scan_fairness.c selftests/relay/rig.h $(proxy_OBJS) $(scan_OBJS) $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(INC_proxy) -Iselftests/relay $< $(proxy_OBJS) $(scan_OBJS) $(LIB_OBJS) -o $@ $(LDLIBS_SCAN) $(LDLIBS_BPF) -lssl -lcrypto -lpthread

# the STARTTLS benchmark's client and sinks speak TLS
$(BUILD)/bench/smtp_tls: bench/smtp_tls.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $< -o $@ -lssl -lcrypto -lpthread

# libFuzzer targets: clang builds them with the lib sources they exercise;
# fuzz_scan_* with the scanning stage's too
SCAN_HDRS := $(wildcard scan/*.h scan/*/*.h)
$(BUILD)/fuzz/%: selftests/fuzz/%.c $(LIB_SRCS) $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_FLAGS) $< $(LIB_SRCS) -o $@ $(LDLIBS_BPF)

$(BUILD)/fuzz/fuzz_scan_%: selftests/fuzz/fuzz_scan_%.c $(scan_SRCS) $(SCAN_HDRS) $(LIB_SRCS) $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_FLAGS) $(INC_scan_all) $< $(scan_SRCS) $(LIB_SRCS) -o $@ $(LDLIBS_SCAN) $(LDLIBS_BPF)

$(BUILD)/fuzz/fuzz_complaints_%: selftests/fuzz/fuzz_complaints_%.c $(COMPLAINTS_SRCS) $(COMPLAINTS_HDRS) $(LIB_SRCS) $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_FLAGS) $(INC_complaints) $< $(COMPLAINTS_SRCS) $(LIB_SRCS) -o $@ $(LDLIBS_BPF)

fuzz: deps
	$(MAKE) all
	bash selftests/fuzz/run.sh $(BUILD) $(FUZZ_SECONDS)

check: deps
	$(MAKE) all
	bash selftests/run.sh $(BUILD)

# a fresh Debian 12 root (debootstrap) runs `make deps && make check` from a
# clean clone of HEAD: what a new machine needs, proven (not part of check)
check-fresh:
	bash scripts/check-fresh.sh $(FRESH_ARGS)

check-kernels: deps
	$(MAKE) all
	bash selftests/kernels/run.sh $(BUILD)

demo: deps
	$(MAKE) all
	bash lab/demo.sh $(BUILD)

bench: deps
	$(MAKE) all
	bash bench/run.sh $(BUILD)

# the interoperability matrix: every sender against every MX in every mode,
# byte-identical (selftests/interop/run.sh); the README's table is renewed
interop: deps
	$(MAKE) all
	bash selftests/interop/run.sh $(BUILD) --update-readme

clean:
	rm -rf $(BUILD)

# ------------------------------------------------ man pages, install, package
$(BUILD)/man/gen_conf_man: docs/man/gen_conf_man.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $< $(LIB_OBJS) -o $@ $(LDLIBS_BPF)

# through a temporary file: a key the table and the .conf disagree on
# leaves no page behind
$(BUILD)/man/smtpguard.conf.5.scd: docs/man/smtpguard.conf.5.scd.in etc/smtpguard.conf $(BUILD)/man/gen_conf_man
	$(BUILD)/man/gen_conf_man docs/man/smtpguard.conf.5.scd.in etc/smtpguard.conf > $@.tmp
	mv $@.tmp $@

$(BUILD)/man/%.5: $(BUILD)/man/%.5.scd
	scdoc < $< > $@.tmp && mv $@.tmp $@

$(BUILD)/man/%.8: docs/man/%.8.scd
	@mkdir -p $(@D)
	scdoc < $< > $@.tmp && mv $@.tmp $@

# make install [PREFIX=/usr/local] [DESTDIR=]: the programs in SBINDIR, the
# BPF objects (for bpftool and inspection: the daemon runs the copies built
# into it) in /usr/lib/<triplet>/smtpguard, the configuration in
# /etc/smtpguard (an existing one is kept: the new one goes beside it as
# smtpguard.conf.new), the unit, the man pages, the docs.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MULTIARCH  ?= $(ARCH_TRIPLET)
BPFOBJDIR  ?= $(PREFIX)/lib/$(MULTIARCH)/smtpguard
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/smtpguard
SYSCONFDIR ?= /etc
# systemd's own place under /usr, else the one it searches under PREFIX
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),$(or $(shell pkg-config \
	      --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system),$(PREFIX)/lib/systemd/system)
CONF_DEST  := $(DESTDIR)$(SYSCONFDIR)/smtpguard/smtpguard.conf

# the installed configuration: etc/smtpguard.conf, then the service's paths
$(BUILD)/dist/smtpguard.conf: etc/smtpguard.conf dist/installed.conf
	@mkdir -p $(@D)
	cat $^ > $@
$(BUILD)/dist/smtpguard.service: dist/smtpguard.service.in
	@mkdir -p $(@D)
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< > $@
# (the paths are written in: made again at every install)
.PHONY: $(BUILD)/dist/smtpguard.service

install: programs $(BUILD)/dist/smtpguard.conf $(BUILD)/dist/smtpguard.service
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BPFOBJDIR) $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/smtpguard
	install -m 0755 $(BUILD)/smtpguardd $(BUILD)/smtpguardctl $(DESTDIR)$(SBINDIR)/
	install -m 0644 $(INSTALL_BPF_OBJS) $(DESTDIR)$(BPFOBJDIR)/
	install -m 0644 $(filter %.5,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(filter %.8,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 $(BUILD)/dist/smtpguard.service $(DESTDIR)$(UNITDIR)/smtpguard.service
	install -m 0644 README.md docs/content-rules.md $(DESTDIR)$(DOCDIR)/
	@if [ -e $(CONF_DEST) ] && ! cmp -s $(BUILD)/dist/smtpguard.conf $(CONF_DEST); then \
		install -m 0644 $(BUILD)/dist/smtpguard.conf $(CONF_DEST).new; \
		echo "install: kept $(CONF_DEST); the new one is $(CONF_DEST).new"; \
	else \
		install -m 0644 $(BUILD)/dist/smtpguard.conf $(CONF_DEST); \
	fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/smtpguardd $(DESTDIR)$(SBINDIR)/smtpguardctl \
		$(patsubst $(BUILD)/bpf/%,$(DESTDIR)$(BPFOBJDIR)/%,$(INSTALL_BPF_OBJS)) \
		$(DESTDIR)$(MANDIR)/man5/smtpguard.conf.5 $(DESTDIR)$(MANDIR)/man8/smtpguardd.8 \
		$(DESTDIR)$(MANDIR)/man8/smtpguardctl.8 $(DESTDIR)$(UNITDIR)/smtpguard.service \
		$(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/content-rules.md
	-rmdir $(DESTDIR)$(BPFOBJDIR) $(DESTDIR)$(DOCDIR)
	@echo "uninstall: $(DESTDIR)$(SYSCONFDIR)/smtpguard is left as it is"

# the Debian package (debian/), built by dpkg-buildpackage from a copy of the
# working tree in $(BUILD)/deb, then checked by lintian: $(BUILD)/deb/*.deb
deb:
	bash scripts/make-deb.sh $(BUILD)/deb
