#!/usr/bin/env bash
# run.sh - runs each libFuzzer target for a bounded time on a copy of its
# seeds; a crash, a sanitizer report or a broken promise is a FAIL with the
# input kept under BUILD/fuzz/. Usage: bash selftests/fuzz/run.sh BUILD SECONDS
set -u
build=${1:-build}
seconds=${2:-10}
here=$(cd "$(dirname "$0")" && pwd)
rc=0
# every target: selftests/fuzz/fuzz_NAME.c, its seeds in seeds/NAME/
for src in "$here"/fuzz_*.c; do
	target=$(basename "$src" .c)
	target=${target#fuzz_}
	bin=$build/fuzz/fuzz_$target
	if [ ! -x "$bin" ]; then
		echo "FAIL fuzz-$target: $bin was not built (make fuzz builds it)"
		rc=1
		continue
	fi
	corpus=$(mktemp -d)
	cp "$here/seeds/$target/"* "$corpus/"
	mkdir -p "$build/fuzz/artifacts-$target"
	if "$bin" -max_total_time="$seconds" -max_len=4096 -timeout=5 -rss_limit_mb=1024 \
		-artifact_prefix="$build/fuzz/artifacts-$target/" "$corpus" \
		> "$build/fuzz/$target.log" 2>&1; then
		runs=$(grep -oE 'Done [0-9]+ runs' "$build/fuzz/$target.log" | grep -oE '[0-9]+')
		echo "PASS fuzz-$target: ${runs:-?} inputs in ${seconds}s, no crash"
	else
		echo "FAIL fuzz-$target: see $build/fuzz/$target.log and $build/fuzz/artifacts-$target/"
		tail -n 20 "$build/fuzz/$target.log"
		rc=1
	fi
	rm -rf "$corpus"
done
exit $rc
