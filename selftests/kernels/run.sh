#!/usr/bin/env bash
# run.sh - proves the classifier loads (passes the verifier) and classifies
# on the kernels hosting providers run: Debian 11's 5.10, Debian 12's 6.1 and
# Debian 13's 6.12. Boots each Debian kernel package under qemu (software
# emulation) with a busybox initramfs whose only job is kernel_check.c, and
# reads the verdict from the serial log (qemu exits 0 whatever the guest did).
#
# Usage: bash selftests/kernels/run.sh BUILD_DIR [FILTER]
#   BUILD_DIR  has skel/classifier_{xdp,tc}.skel.h (`make all`)
#   FILTER     only kernels whose label (5.10, 6.1, 6.12) contains it
# Environment:
#   SG_KERNELS_CACHE    where kernels are kept (/var/cache/smtpguard-kernels)
#   SG_KERNELS_REFRESH  1: ask the mirror for the suite's current kernel even
#                       when one is cached
#   SG_KERNELS_TIMEOUT  seconds one boot may take (120)
# Needs root, network to deb.debian.org on the first run (only the mirror is
# asked; later runs use the cache), and scripts/deps.sh.
# Prints the guest's "PASS <release> <what>" / "FAIL <release> <what>: why"
# lines, each kernel's elapsed time, and "N passed, N failed"; a kernel whose
# log lacks KERNEL-CHECK-DONE is one failure, shown with its last log lines.
# Serial logs are kept in BUILD_DIR/kernels/. Exits 1 on any failure.
set -u
build=${1:-build}
filter=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${SG_KERNELS_CACHE:-/var/cache/smtpguard-kernels}
limit=${SG_KERNELS_TIMEOUT:-120}
mirror=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# label suite: the kernel of each supported distribution release
kernels=("5.10 bullseye" "6.1 bookworm" "6.12 trixie")

passed=0
failed=0
tmp=$(mktemp -d /tmp/sg-kernels.XXXXXX)
qemu_pid=
cleanup() {
	[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "kernels: $*" >&2
	exit 1
}

for tool in qemu-system-x86_64 busybox cpio dpkg-deb apt-get gcc; do
	command -v "$tool" >/dev/null || die "$tool missing: run bash scripts/deps.sh"
done
[ "$(id -u)" -eq 0 ] || die "needs root (apt-get download into $cache)"
for s in classifier_xdp classifier_tc; do
	[ -f "$build/skel/$s.skel.h" ] || die "$build/skel/$s.skel.h missing: run make all"
done
build_abs=$(cd "$build" && pwd)

# ---------------------------------------------------------------------
# Kernels: the suite's linux-image-amd64 dependency, fetched with apt-get
# through a private sources list and state (the system's apt config is not
# touched); signatures and hashes are checked by apt. Only vmlinuz is kept
# (about 30 MB for the three).
# ---------------------------------------------------------------------

# fetch_kernel SUITE: prints the path of the suite's cached vmlinuz
fetch_kernel() {
	local suite=$1 dir=$cache/$1 root pkg deb t0
	local -a apt
	mkdir -p "$dir"
	if [ "${SG_KERNELS_REFRESH:-0}" != 1 ] && [ -s "$dir/current" ] &&
	   [ -f "$dir/$(cat "$dir/current")" ]; then
		echo "$dir/$(cat "$dir/current")"
		return 0
	fi
	t0=$SECONDS
	root=$tmp/apt-$suite
	mkdir -p "$root/etc/sources.list.d" "$root/etc/preferences.d" \
		 "$root/state/lists/partial" "$root/cache/archives/partial"
	echo "deb [signed-by=$keyring] $mirror $suite main" > "$root/etc/sources.list"
	touch "$root/state/status"
	apt=(-q -o Dir::Etc::SourceList="$root/etc/sources.list"
	     -o Dir::Etc::SourceParts="$root/etc/sources.list.d"
	     -o Dir::Etc::Preferences="$root/etc/preferences"
	     -o Dir::Etc::PreferencesParts="$root/etc/preferences.d"
	     -o Dir::State="$root/state" -o Dir::State::status="$root/state/status"
	     -o Dir::Cache="$root/cache" -o Debug::NoLocking=1
	     -o APT::Sandbox::User=root
	     -o APT::Architecture=amd64 -o APT::Architectures::=amd64)
	apt-get "${apt[@]}" update >"$tmp/apt.log" 2>&1 ||
		{ cat "$tmp/apt.log" >&2; return 1; }
	pkg=$(apt-cache "${apt[@]}" depends linux-image-amd64 2>/dev/null |
	      awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	[ -n "$pkg" ] || { echo "kernels: no linux-image-amd64 in $suite" >&2; return 1; }
	rm -rf "$tmp/deb" && mkdir -p "$tmp/deb"
	(cd "$tmp/deb" && apt-get "${apt[@]}" download "$pkg") >"$tmp/apt.log" 2>&1 ||
		{ cat "$tmp/apt.log" >&2; return 1; }
	deb=$(find "$tmp/deb" -maxdepth 1 -name '*.deb' | head -n1)
	[ -n "$deb" ] || { echo "kernels: download of $pkg gave no .deb" >&2; return 1; }
	mkdir -p "$tmp/deb/x"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/deb/x" --wildcards './boot/vmlinuz-*' ||
		{ echo "kernels: no vmlinuz in $deb" >&2; return 1; }
	local vmlinuz
	vmlinuz=$(find "$tmp/deb/x/boot" -name 'vmlinuz-*' | head -n1)
	mv "$vmlinuz" "$dir/$(basename "$vmlinuz").new" &&
		mv "$dir/$(basename "$vmlinuz").new" "$dir/$(basename "$vmlinuz")" &&
		basename "$vmlinuz" > "$dir/current" || return 1
	# older kernels of the suite are no longer wanted
	for old in "$dir"/vmlinuz-*; do
		[ "$(basename "$old")" = "$(basename "$vmlinuz")" ] || rm -f "$old"
	done
	rm -rf "$tmp/deb" "$root"
	echo "kernels: $suite: fetched $pkg ($(basename "$vmlinuz")) in $((SECONDS - t0)) s" >&2
	echo "$dir/$(basename "$vmlinuz")"
}

# ---------------------------------------------------------------------
# The initramfs: busybox (a static one from busybox-static) and the static
# kernel_check, with an /init that runs it and powers off.
# ---------------------------------------------------------------------
build_initramfs() {
	local root=$tmp/initramfs
	mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev"
	(cd "$top" && gcc -static -O2 -g -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE \
		-Iinclude -Ilib -I"$build_abs/skel" \
		selftests/kernels/kernel_check.c lib/probe.c -o "$root/bin/kernel_check" \
		-l:libbpf.a -l:libelf.a -l:libz.a) || return 1
	cp "$(command -v busybox)" "$root/bin/busybox"
	file_is_static "$root/bin/busybox" ||
		{ echo "kernels: $(command -v busybox) is not static: install busybox-static" >&2; return 1; }
	cat > "$root/init" <<-'EOF'
	#!/bin/busybox sh
	echo
	/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
	/bin/kernel_check
	echo "kernel_check exited $?"
	/bin/busybox sync
	/bin/busybox poweroff -f
	EOF
	chmod 755 "$root/init"
	(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) > "$tmp/initramfs.cpio"
}

file_is_static() {
	# a static ELF has no PT_INTERP program header
	! LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'INTERP'
}

# boot LABEL VMLINUZ: runs the guest, prints its verdict lines
boot() {
	local label=$1 vmlinuz=$2 log=$build/kernels/$1.log t0 ms p f rc why
	t0=$(date +%s%N)
	rm -f "$log"
	timeout --kill-after=5 "$limit" qemu-system-x86_64 \
		-accel tcg -nographic -no-reboot -m 512 -smp 1 -net none \
		-monitor none -serial "file:$log" \
		-kernel "$vmlinuz" -initrd "$tmp/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init" \
		</dev/null >"$tmp/qemu.out" 2>&1 &
	qemu_pid=$!
	wait "$qemu_pid"
	rc=$?
	qemu_pid=
	ms=$((($(date +%s%N) - t0) / 1000000))
	touch "$log"
	# drop carriage returns and the firmware's terminal escapes
	sed -i -e 's/\r$//' -e 's/\x1b\[[0-9;?]*[A-Za-z]/\n/g' -e 's/\x1b[A-Za-z]/\n/g' "$log"
	grep -E '^(PASS|FAIL) ' "$log"
	p=$(grep -c '^PASS ' "$log")
	f=$(grep -c '^FAIL ' "$log")
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		# libbpf's warnings with the verifier's log, and kernel messages
		echo "--- $label: the guest's other output (first 80 lines; full log: $log)"
		grep -vE '^(PASS |FAIL |KERNEL-CHECK-DONE|SeaBIOS |Booting from ROM|$)' "$log" |
			head -n 80 | sed 's/^/  | /'
	fi
	if ! grep -q '^KERNEL-CHECK-DONE' "$log"; then
		failed=$((failed + 1))
		[ "$rc" -eq 124 ] && why="timed out after ${limit}s" || why="qemu exited $rc"
		echo "FAIL $label: no KERNEL-CHECK-DONE in the serial log ($why); its last lines:"
		grep -v '^$' "$log" | tail -n 25 | sed 's/^/  | /'
		[ -s "$tmp/qemu.out" ] && sed 's/^/  qemu: /' "$tmp/qemu.out" | tail -n 5
	fi
	printf '=== %s: %s passed, %s failed, %d.%d s\n' "$label" "$p" "$f" \
		$((ms / 1000)) $((ms % 1000 / 100))
}

start=$SECONDS
mkdir -p "$build/kernels"
mkdir -p "$cache" || die "cannot create $cache"
exec 9>"$cache/.lock"
flock 9	# one run at a time per cache
build_initramfs || die "could not build the initramfs"
for k in "${kernels[@]}"; do
	read -r label suite <<<"$k"
	[ -n "$filter" ] && [[ $label != *$filter* ]] && continue
	echo "=== kernel $label (Debian $suite)"
	if ! vmlinuz=$(fetch_kernel "$suite"); then
		echo "FAIL $label: could not fetch the $suite kernel"
		failed=$((failed + 1))
		continue
	fi
	boot "$label" "$vmlinuz"
done
echo "kernels: $passed passed, $failed failed, $((SECONDS - start)) s in all"
[ "$failed" -eq 0 ]
