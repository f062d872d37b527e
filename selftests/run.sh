#!/usr/bin/env bash
# run.sh - runs every smtpguard test and ends with "N passed, N failed".
# Usage: bash selftests/run.sh BUILD_DIR [FILTER]
# Each test program or script prints "PASS name" / "FAIL name: why" lines;
# a program that exits non-zero without a FAIL line (a crash, a sanitizer
# report, a timeout) counts as one failure of its own.
set -u
build=${1:-build}
filter=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
passed=0
failed=0
failures=()

run_one() {	# NAME TIMEOUT CMD...
	local name=$1 limit=$2; shift 2
	local out rc p f
	[ -n "$filter" ] && [[ $name != *$filter* ]] && return
	echo "=== $name"
	out=$(mktemp)
	timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	p=$(grep -c '^PASS ' "$out")
	f=$(grep -c '^FAIL ' "$out")
	passed=$((passed + p))
	failed=$((failed + f))
	grep '^FAIL ' "$out" | while read -r line; do echo "  [$name] $line"; done >> "$summary"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		failed=$((failed + 1))
		[ "$rc" -eq 124 ] && why="timed out after $limit" || why="exited $rc"
		echo "FAIL $name: $why without a FAIL line"
		echo "  [$name] FAIL: $why" >> "$summary"
	fi
	rm -f "$out"
}

summary=$(mktemp)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# first, whatever the filter: a missing package is named as such, not as a
# later test's error
filter='' run_one "dependencies" 30s bash "$here/deps_check.sh"

for src in "$here"/unit/test_*.c; do
	t=$(basename "$src" .c)
	for bin in "$build/selftests/$t" "$build/asan/selftests/$t"; do
		[ -x "$bin" ] && run_one "unit ${bin#$build/}" 60s "$bin"
	done
done
# the relay, driven over socketpairs by scripted dialogues (milliseconds
# each, no namespaces), plain and under ASan/UBSan
for bin in "$build/selftests/test_relay" "$build/asan/selftests/test_relay"; do
	[ -x "$bin" ] && run_one "relay dialogues ${bin#$build/}" 120s "$bin" "$here/relay"
done
# the SMTP and config parsers under libFuzzer, briefly (make fuzz: longer)
run_one "fuzz (10 s a target)" 120s bash "$here/fuzz/run.sh" "$build" 10
for bucket in lockfree locked; do
	t="$build"/selftests/test_classifier
	[ -x "$t" ] && run_one "bpf test_classifier $bucket" 300s "$t" $bucket
done
# the classifier on the kernels hosting providers run (qemu, Debian's
# 5.10, 6.1 and 6.12; kernels fetched from Debian's mirror once, then cached)
run_one "kernels 5.10 6.1 6.12" 900s bash "$here/kernels/run.sh" "$build"
for t in "$here"/e2e/test_*.sh; do
	[ -f "$t" ] && run_one "e2e $(basename "$t")" 600s bash "$t" "$build"
done
# the interoperability matrix's fast subset (make interop runs it whole):
# swaks, Python, curl, PHP's mail() through msmtp and Postfix against the
# Postfix MX, exempt and scanned, byte-identical
run_one "interop --fast" 600s bash "$here/interop/run.sh" "$build" --fast
# the man pages against the programs, `make install`, and the Debian
# package installed on a fresh Debian 12 root that systemd-nspawn boots
# (selftests/package; test_deb.sh downloads from Debian's mirror, cached)
for t in test_man.sh test_install.sh; do
	run_one "package $t" 120s bash "$here/package/$t" "$build"
done
run_one "package test_deb.sh" 600s bash "$here/package/test_deb.sh" "$build"
# the CLI's and the daemon's error paths and a restart once more, with the
# ASan/UBSan builds of both
for t in test_cli.sh test_restart.sh test_proxy.sh test_smtp_relay.sh test_feedback.sh \
	test_bridged.sh test_vm_postfix.sh test_tls.sh test_tls_verify.sh test_milter.sh test_content.sh \
	test_ladder.sh test_privileges.sh test_spoof.sh test_notify.sh test_metrics.sh \
	test_uplink_auto.sh test_complaints.sh test_tenants.sh test_shared_redis.sh test_extensions.sh test_queues.sh; do
	[ -x "$build"/asan/smtpguardctl ] && [ -x "$build"/asan/smtpguardd ] &&
		run_one "e2e $t (ASan/UBSan builds)" 600s env SG_CTL="$build"/asan/smtpguardctl \
			SG_DAEMON="$build"/asan/smtpguardd bash "$here/e2e/$t" "$build"
done

if [ -s "$summary" ]; then
	echo "=== failures"
	cat "$summary"
fi
rm -f "$summary"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
