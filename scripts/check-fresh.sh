#!/usr/bin/env bash
# check-fresh.sh - proves that a fresh Debian 12 passes `make deps && make
# check`: debootstraps a minbase bookworm root, installs there only what a
# new user has before `make deps` (make, git, ca-certificates), clones the
# repository into ROOT/root/smtpguard and runs `make deps && make check` in a
# chroot (CI=true). Not part of `make check`: it takes a download of about
# 1 GB and the full suite's time.
#
# Usage: bash scripts/check-fresh.sh [OPTIONS] [ROOT_DIR]
#   ROOT_DIR        the fresh root (default /var/tmp/smtpguard-fresh); an
#                   existing one (made by this script) is deleted and made anew
#   --reuse         reuse ROOT_DIR if this script completed its setup before
#                   (debootstrap and the new user's packages), else make it anew
#   --worktree      copy the checkout's working tree, uncommitted changes and
#                   untracked files included, over the clone (development)
#   --overlay PATH  copy PATH (relative to the checkout; repeatable) from the
#                   working tree over the clone
#   --no-clone      keep ROOT_DIR/root/smtpguard as it is (with --reuse)
#   --run CMD       run CMD in the clone instead (e.g. one test again:
#                   --reuse --no-clone --run 'bash selftests/run.sh build test_proxy')
# The source is the checkout this script is in: by default its HEAD,
# `git clone --no-local`. The whole run is logged to ROOT_DIR.log. Prints the
# suite's "N passed, N failed" line; exits with the command's status.
#
# The chroot runs in a private mount namespace: its /proc, /sys, a bpffs of
# its own (pins are not shared with the host's /sys/fs/bpf), /dev and a tmpfs
# /run (where `ip netns add` keeps its namespaces) are mounted there, so they
# go when it ends, whatever happens; processes left in the root are killed,
# and the script checks that no mount under ROOT_DIR is left.
set -euo pipefail

mirror=http://deb.debian.org/debian
suite=bookworm
root=/var/tmp/smtpguard-fresh
reuse=0
worktree=0
clone=1
overlays=()
cmd='make deps && make check'
usage() { sed -n '9,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--reuse) reuse=1 ;;
	--worktree) worktree=1 ;;
	--overlay) [ $# -ge 2 ] || usage; overlays+=("$2"); shift ;;
	--no-clone) clone=0 ;;
	--run) [ $# -ge 2 ] || usage; cmd=$2; shift ;;
	-h|--help) usage ;;
	-*) echo "check-fresh: unknown option $1" >&2; usage ;;
	*) root=$1 ;;
	esac
	shift
done
[ "$(id -u)" -eq 0 ] || { echo "check-fresh: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$(dirname "$root")"
root=$(cd "$(dirname "$root")" && pwd)/$(basename "$root")
case $root in
/|/bin|/boot|/dev|/etc|/home|/lib*|/proc|/root|/run|/sbin|/sys|/tmp|/usr|/var|/var/tmp)
	echo "check-fresh: refusing ROOT_DIR $root" >&2; exit 2 ;;
esac
[ "$clone" -eq 1 ] || [ "$reuse" -eq 1 ] || { echo "check-fresh: --no-clone needs --reuse" >&2; exit 2; }
log=$root.log
# one run a root at a time (the second would delete or reuse the first's)
exec 8>"$root.lock"
flock -n 8 || { echo "check-fresh: another run uses $root (lock $root.lock)" >&2; exit 2; }
started=$SECONDS

exec > >(tee -i "$log") 2>&1
tee_pid=$!

say() { echo "check-fresh: $*"; }

mounts_under_root() { findmnt -rn -o TARGET | grep -E "^$root(/|$)" || true; }

# processes whose root directory is the fresh root (left by the command)
kill_root_procs() {
	local sig p pids
	for sig in TERM KILL; do
		pids=()
		for p in /proc/[0-9]*; do
			[ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && pids+=("${p#/proc/}")
		done
		[ ${#pids[@]} -gt 0 ] || return 0
		say "killing processes left in the root ($sig): ${pids[*]}"
		kill -"$sig" "${pids[@]}" 2>/dev/null || true
		sleep 2
	done
}

inroot_pid=
finish() {
	local rc=$? left
	trap - EXIT INT TERM
	kill_root_procs
	# in_root's namespace unmounts and ends once its chroot has
	[ -z "$inroot_pid" ] || wait "$inroot_pid" 2>/dev/null || true
	left=$(mounts_under_root)
	if [ -n "$left" ]; then
		say "mounts left under $root:"; echo "$left"
		[ "$rc" -ne 0 ] || rc=1
	fi
	say "$((SECONDS - started)) s in all; log: $log"
	exec 5>&- 6>&- >&- 2>&-
	wait "$tee_pid" 2>/dev/null || true
	exit "$rc"
}
trap finish EXIT
trap 'say "interrupted (SIGINT)"; exit 130' INT
trap 'say "interrupted (SIGTERM)"; exit 143' TERM

# in_root SHELL_COMMAND: runs it in the root (chroot) with a clean
# environment, in a private mount namespace holding the root's mounts; in the
# background, so that a signal to this script is handled (finish) at once.
in_root() {
	local rc=0
	unshare --mount --propagation private -- bash -c '
		set -eu
		root=$1 cmd=$2
		umount_all() {
			umount -R -l "$root" 2>/dev/null || true
		}
		trap umount_all EXIT
		# the root a mount point, as / is on a machine: `ip -n`, `ip
		# netns exec` make / a slave mount, which fails on a plain directory
		mount --bind "$root" "$root"
		mount -t proc proc "$root/proc"
		mount -t sysfs sysfs "$root/sys"
		mount -t bpf bpf "$root/sys/fs/bpf"
		# the host cgroups, which systemd-nspawn needs (test_deb.sh of
		# selftests/package boots a container)
		if mountpoint -q /sys/fs/cgroup; then
			mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
		fi
		mount --rbind /dev "$root/dev"
		mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$root/run"
		mkdir -p "$root/run/lock" "$root/run/netns"
		chmod 1777 "$root/run/lock"
		rc=0
		# (--default-signal: SIGINT as in a login shell, not ignored as
		# in a background job)
		chroot "$root" /usr/bin/env -i --default-signal HOME=/root TERM="${TERM:-dumb}" CI=true \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			bash -c "$cmd" || rc=$?
		exit $rc' in_root "$root" "$1" &
	inroot_pid=$!
	wait "$inroot_pid" || rc=$?
	inroot_pid=
	return "$rc"
}

# --------------------------------------------------------------- the root
complete=$root/.smtpguard-fresh-complete
if [ "$reuse" -eq 1 ] && [ -f "$complete" ]; then
	say "reusing $root"
else
	if [ -e "$root" ]; then
		if [ -n "$(ls -A "$root")" ] && [ ! -f "$root/.smtpguard-fresh" ]; then
			say "$root exists and was not made by this script; refusing to delete it"
			exit 2
		fi
		kill_root_procs
		if [ -n "$(mounts_under_root)" ]; then
			say "mounts under $root, refusing to delete it:"; mounts_under_root
			exit 2
		fi
		say "deleting the old $root"
		rm -rf --one-file-system "$root"
	fi
	if ! command -v debootstrap >/dev/null; then
		say "installing debootstrap on the host"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
	fi
	mkdir -p "$root"
	touch "$root/.smtpguard-fresh"
	say "debootstrap --variant=minbase $suite $root $mirror"
	t0=$SECONDS
	# in a private mount namespace: the /proc and /sys it mounts go with it
	unshare --mount --propagation private -- \
		debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
		{ tail -n 30 "$root.debootstrap.log"; say "debootstrap failed (log: $root.debootstrap.log)"; exit 1; }
	say "debootstrap done in $((SECONDS - t0)) s"
	# the host's apt sources and its apt.conf.d files that turn off the
	# Valid-Until check (a snapshot mirror's Release files are expired)
	rm -f "$root/etc/apt/sources.list"
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && cp "$f" "$root$f"
	done
	for f in /etc/apt/apt.conf.d/*; do
		grep -qi 'Check-Valid-Until' "$f" 2>/dev/null && cp "$f" "$root$f"
	done
	cp -L /etc/resolv.conf "$root/etc/resolv.conf"
	# packages' postinsts must not start services (in the host's network
	# namespace: a Postfix there would hold the host's port 25)
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 755 "$root/usr/sbin/policy-rc.d"
	say "installing what a new user has before make deps: make git ca-certificates"
	in_root 'export DEBIAN_FRONTEND=noninteractive && apt-get update -qq &&
		apt-get install -y -qq --no-install-recommends make git ca-certificates >/dev/null'
	touch "$complete"
fi
# what the Debian installer writes and debootstrap does not: the machine's
# name in /etc/hosts (swaks looks it up; the lab's namespaces have no DNS)
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
uname -n >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n' \
	"$(uname -n)" >"$root/etc/hosts"

# --------------------------------------------------------------- the clone
dest=$root/root/smtpguard
if [ "$clone" -eq 1 ]; then
	rm -rf --one-file-system "$dest"
	say "git clone --no-local $src ($(git -C "$src" rev-parse --short HEAD))"
	git clone -q --no-local "$src" "$dest"
	if [ "$worktree" -eq 1 ]; then
		say "copying the working tree over the clone"
		git -C "$dest" ls-files -z | (cd "$dest" && xargs -0 rm -f)
		(cd "$src" && git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
			tar --null -T - -cf -) | tar -C "$dest" -xf -
	fi
	for f in "${overlays[@]}"; do
		say "overlay: $f"
		(cd "$src" && cp -a --parents "$f" "$dest/")
	done
fi

# --------------------------------------------------------------- the run
say "chroot $root: cd /root/smtpguard && $cmd"
t0=$SECONDS
out=$(mktemp)
exec 7> >(tee -i "$out")
out_tee=$!
exec 5>&1 6>&2 >&7 2>&7 7>&-	# (fds finish can close: a trap may end this)
rc=0
in_root "cd /root/smtpguard && $cmd" || rc=$?
exec >&5 2>&6 5>&- 6>&-
wait "$out_tee" 2>/dev/null || true
result=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1 || true)
rm -f "$out"
say "${result:-no \"N passed, N failed\" line}; exit status $rc after $((SECONDS - t0)) s"
exit "$rc"
