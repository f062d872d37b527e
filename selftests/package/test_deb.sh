#!/usr/bin/env bash
# test_deb.sh - the Debian package, from `make deb` to a running service on
# a fresh Debian 12:
#   1. `make deb` (scripts/make-deb.sh) builds it; lintian reports nothing
#      but the documented override (the BPF objects);
#   2. a minimal bookworm root (debootstrap minbase, with systemd so that it
#      can boot) installs it with `apt-get install ./smtpguard_*.deb`, its
#      dependencies from Debian's mirror: the smtpguard system user and
#      group, the files, the unit enabled and verified;
#   3. systemd-nspawn boots that root (its own network namespace with a
#      tap-deb0 veth interface, its own bpffs); systemd starts the unit
#      itself: it is active only once smtpguardd said READY=1, with its
#      STATUS=; its watchdog pings arrive; `systemctl reload` checks the file
#      first (a broken one is refused, the daemon untouched) and reloads a
#      good one; a killed daemon is restarted (Restart=on-failure); with
#      proxy = yes its workers listen and its policy rule is in; `systemctl
#      stop` stops it cleanly; `apt-get remove` takes the classifier off.
# The root, its mounts and the container go at the end, whatever happens.
# Downloads (debootstrap's, apt's) are cached in /var/cache/smtpguard-deb.
#   bash selftests/package/test_deb.sh BUILD_DIR
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../e2e/lib.sh
source "$repo/selftests/e2e/lib.sh"
build=${1:-}
[ -n "$build" ] || { echo "usage: bash $0 BUILD_DIR" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { fail deb-setup "must run as root (debootstrap, nspawn)"; exit 1; }
build=$(cd "$build" && pwd)
mirror=http://deb.debian.org/debian
cache=/var/cache/smtpguard-deb
started=$SECONDS
work=$(mktemp -d /var/tmp/smtpguard-deb-test.XXXXXX)
root=$work/root
nspawn_pid=
pid1=

say() { echo "# deb: $*"; }

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
		# nspawn halts the container's systemd on SIGTERM
		kill -TERM "$nspawn_pid" 2>/dev/null
		wait_for_exit "$nspawn_pid" 30 || kill -KILL "$nspawn_pid" 2>/dev/null
		wait "$nspawn_pid" 2>/dev/null
	fi
	# anything still running in the root (an apt-get gone astray)
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -KILL "${p#/proc/}" 2>/dev/null
	done
	if findmnt -rn -o TARGET | grep -qE "^$work(/|$)"; then
		fail deb-cleanup "mounts left under $work: $(findmnt -rn -o TARGET | grep -E "^$work(/|$)")"
		rc=1
	else
		rm -rf --one-file-system "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'fail deb-interrupted "SIGINT"; exit 1' INT
trap 'fail deb-interrupted "SIGTERM"; exit 1' TERM

# in_chroot CMD: CMD in the root, in a private mount namespace with its
# /proc, /sys, /dev (they go when it ends)
in_chroot() {
	unshare --mount --propagation private -- bash -c '
		root=$1 cache=$2; shift 2
		mount -t proc proc "$root/proc" && mount -t sysfs sysfs "$root/sys" &&
		mount --rbind /dev "$root/dev" &&
		mount --bind "$cache/apt" "$root/var/cache/apt/archives" || exit 1
		chroot "$root" /usr/bin/env -i HOME=/root DEBIAN_FRONTEND=noninteractive \
			PATH=/usr/sbin:/usr/bin:/sbin:/bin bash -c "$1"' in_chroot "$root" "$cache" "$1"
}

# in_box CMD: CMD in the booted container (its namespaces, its systemd)
in_box() {
	nsenter -t "$pid1" -m -u -i -n -p -C -r -w -- /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		SYSTEMD_PAGER= SYSTEMD_COLORS=0 bash -c "$1"
}
prop() { in_box "systemctl show -P $1 smtpguard.service"; }

# ------------------------------------------------------------ 1. make deb
say "make deb"
out=$build/deb
if bash "$repo/scripts/make-deb.sh" "$out" >"$work/make-deb.log" 2>&1; then
	pass "deb-builds-and-lintian-clean"
else
	fail "deb-builds-and-lintian-clean" "$(tail -n 8 "$work/make-deb.log")"
	exit 1
fi
deb=$(ls "$out"/smtpguard_*_amd64.deb 2>/dev/null | head -n 1)
# the overrides used are the documented one, on the BPF objects only
others=$(grep '^O: ' "$out/lintian-overrides.log" |
	grep -vE '^O: smtpguard: binary-from-other-architecture \[usr/lib/[^/]+/smtpguard/[a-z_]+\.bpf\.o\]$')
check_eq "$others" "" "lintian-overrides-only-the-bpf-objects"
check_eq "$(grep -c '^O: ' "$out/lintian-overrides.log")" 3 "lintian-override-covers-the-3-bpf-objects"
check_eq "$(grep -cE '^[EW]: ' "$out/lintian.log")" 0 "lintian-no-error-or-warning"

# ------------------------------------------------------------ 2. fresh root
mkdir -p "$cache" "$root"
say "debootstrap --variant=minbase --include=systemd,systemd-sysv bookworm (cache $cache)"
t0=$SECONDS
if ! unshare --mount --propagation private -- debootstrap --variant=minbase \
	--include=systemd,systemd-sysv --cache-dir="$cache" bookworm "$root" "$mirror" \
	>"$work/debootstrap.log" 2>&1; then
	fail deb-fresh-root "debootstrap failed: $(tail -n 3 "$work/debootstrap.log")"
	exit 1
fi
say "debootstrap: $((SECONDS - t0)) s"
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
echo smtpguard-deb-test >"$root/etc/hostname"
# apt keeps what it downloads for the next run (in_chroot mounts it)
mkdir -p "$cache/apt/partial"
cp "$deb" "$root/tmp/"
t0=$SECONDS
if in_chroot "apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	/tmp/$(basename "$deb")" \
	>"$work/apt.log" 2>&1; then
	pass "apt-install-deb-on-fresh-bookworm"
else
	fail "apt-install-deb-on-fresh-bookworm" "$(tail -n 5 "$work/apt.log")"
	exit 1
fi
say "apt-get install: $((SECONDS - t0)) s"
check_match "$(in_chroot 'getent passwd smtpguard')" '^smtpguard:x:[0-9]{3}:[0-9]+:[^:]*:/nonexistent:/usr/sbin/nologin$' \
	"postinst-made-system-user-smtpguard"
check_match "$(in_chroot 'id -gn smtpguard')" '^smtpguard$' "user-smtpguard-primary-group-smtpguard"
check_eq "$(in_chroot 'systemctl is-enabled smtpguard.service' 2>&1)" enabled "unit-enabled-by-the-package"
for f in /usr/sbin/smtpguardd /usr/sbin/smtpguardctl /etc/smtpguard/smtpguard.conf \
	/lib/systemd/system/smtpguard.service /usr/share/man/man8/smtpguardd.8.gz \
	/usr/share/man/man8/smtpguardctl.8.gz /usr/share/man/man5/smtpguard.conf.5.gz \
	/usr/lib/x86_64-linux-gnu/smtpguard/classifier_tc.bpf.o; do
	check_ok "installed-$f" test -s "$root$f"
done
check_eq "$(in_chroot 'dpkg-query -W -f="\${Conffiles}" smtpguard' | awk '{print $1}' | tr -d '\n')" \
	/etc/smtpguard/smtpguard.conf "conffile-is-the-config"
check_ok "packaged-config-checks" in_chroot 'smtpguardd -c /etc/smtpguard/smtpguard.conf --check-config'
out_verify=$(in_chroot 'systemd-analyze verify --man=no smtpguard.service' 2>&1)
check_eq "$out_verify" "" "systemd-analyze-verify-in-the-root"

# ------------------------------------------------------------ 3. boot
# a VM-facing interface for the daemon to attach to, made as the container
# comes up (its network namespace is its own)
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
cat >"$root/etc/systemd/system/tap-deb0.service" <<'EOF'
[Unit]
Description=a VM interface for test_deb.sh (a veth: no dummy module here)
Before=smtpguard.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/sbin/ip link add tap-deb0 type veth peer name vm-deb0
ExecStart=/sbin/ip link set tap-deb0 up
# and an uplink with the default route, as a real host has: the packaged
# config leaves proxy = yes and uplink unset, which the daemon finds there
ExecStart=/sbin/ip link add up-deb0 type veth peer name up-deb1
ExecStart=/sbin/ip link set up-deb0 up
ExecStart=/sbin/ip addr add 192.0.2.1/24 dev up-deb0
ExecStart=/sbin/ip route add default via 192.0.2.254 dev up-deb0 onlink
[Install]
WantedBy=multi-user.target
EOF
ln -s ../tap-deb0.service "$root/etc/systemd/system/multi-user.target.wants/tap-deb0.service"
mkdir -p "$work/bpffs"
say "systemd-nspawn --boot"
# its own bpffs: a private mount namespace holds it, and goes with nspawn
# (unshare execs, so the pid is nspawn's); no machined on this host:
# --register=no --keep-unit; bpf() and CAP_BPF are not a container's by
# default
unshare --mount --propagation private -- bash -c '
	mount -t bpf bpf "$1/bpffs" || exit 1
	exec systemd-nspawn -q -D "$1/root" --boot --register=no --keep-unit \
		--machine="sgdeb$2" --private-network --capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN,CAP_SYS_RESOURCE \
		--system-call-filter=bpf --bind="$1/bpffs:/sys/fs/bpf" </dev/null' \
	nspawn "$work" "$$" >"$work/boot.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 1 100); do
	pid1=$(ps -o pid= --ppid "$nspawn_pid" 2>/dev/null | head -n 1 | tr -d ' ')
	[ -n "$pid1" ] && [ "$(cat "/proc/$pid1/comm" 2>/dev/null)" = systemd ] && break
	pid1=
	sleep 0.2
done
if [ -z "$pid1" ]; then
	fail deb-boot "no systemd in the container: $(tail -n 5 "$work/boot.log")"
	exit 1
fi
wait_for 60 in_box 'systemctl is-system-running | grep -qE "^(running|degraded)$"'
state=$(in_box 'systemctl is-system-running' 2>&1)
check_match "$state" '^(running|degraded)$' "container-booted"
if ! [[ $state =~ ^(running|degraded)$ ]]; then
	tail -n 20 "$work/boot.log" | sed 's/^/# boot: /'
	exit 1
fi
[ "$state" = degraded ] && in_box 'systemctl --failed --no-legend' | sed 's/^/# failed: /'

# Type=notify: "active" only once the daemon said READY=1
wait_for 30 in_box 'systemctl is-active -q smtpguard.service'
check_eq "$(in_box 'systemctl is-active smtpguard.service')" active "service-active-after-READY=1"
check_match "$(prop StatusText)" '^running: [0-9]+ interface\(s\) attached at tc, proxy up' "service-STATUS-from-the-daemon"
journal() { in_box 'journalctl -u smtpguard.service -o cat --no-pager'; }
check_match "$(journal)" "ready: [0-9]+ interface\(s\) attached at tc" "journal-has-the-ready-line"
check_match "$(in_box 'tc filter show dev tap-deb0 ingress')" 'bpf' "classifier-attached-to-tap-deb0"
check_ok "smtpguardctl-reads-the-pins" in_box 'smtpguardctl stats >/dev/null'
check_eq "$(prop NotifyAccess)" main "unit-NotifyAccess-main"
check_eq "$(prop LimitMEMLOCK)" infinity "unit-LimitMEMLOCK-infinity"
mainpid=$(prop MainPID)
# the kernel's bounding set of the running daemon is the unit's, name for name
capbnd=$(in_box "awk '/^CapBnd:/ {print \$2}' /proc/$mainpid/status")
decode_caps() { capsh --decode="$1" 2>/dev/null | sed 's/.*=//' | tr ',' '\n' | sort; }
got=$(decode_caps "$capbnd" | xargs)
unit_caps=$(prop CapabilityBoundingSet | tr ' ' '\n' | sort)
# (what the container itself lacks no unit can have)
box_caps=$(decode_caps "$(awk '/^CapBnd:/ {print $2}' "/proc/$pid1/status")")
want=$(comm -12 <(echo "$unit_caps") <(echo "$box_caps") | xargs)
lacks=$(comm -23 <(echo "$unit_caps") <(echo "$box_caps") | xargs)
[ -z "$lacks" ] || say "the container's own bounding set lacks: $lacks"
check_eq "$got" "$want" "daemon-runs-with-the-unit-bounding-set"
check_match "$(echo "$unit_caps" | xargs)" '^cap_bpf cap_chown cap_kill cap_net_admin cap_net_raw cap_perfmon cap_setgid cap_setpcap cap_setuid cap_sys_admin cap_sys_resource$' \
	"unit-bounding-set-is-what-the-daemon-needs"
check_match "$(in_box "grep -E '^NoNewPrivs' /proc/$mainpid/status")" '1$' "daemon-runs-with-NoNewPrivileges"
check_eq "$(in_box 'stat -c %U:%G:%a /var/log/smtpguard')" root:root:755 "logs-directory-made"

# the watchdog: WatchdogSec=30s, pinged every 15 s from the main loop
w1=$(prop WatchdogTimestampMonotonic)
wait_for 20 bash -c "[ \"\$(nsenter -t $pid1 -m -p -r -- systemctl show -P WatchdogTimestampMonotonic smtpguard.service)\" != '$w1' ]"
w2=$(prop WatchdogTimestampMonotonic)
if e2e_is_int "$w1" && e2e_is_int "$w2" && [ "$w2" -gt "$w1" ]; then
	pass "watchdog-pings-arrive"
else
	fail "watchdog-pings-arrive" "WatchdogTimestampMonotonic $w1 then $w2 over 20 s"
fi

# reload: a broken file is refused by ExecReload's check, the daemon untouched
in_box 'cp /etc/smtpguard/smtpguard.conf /root/conf.good && echo "no_such_key = 1" >> /etc/smtpguard/smtpguard.conf'
check_fails "reload-refuses-a-broken-config" in_box 'systemctl reload smtpguard.service'
check_eq "$(prop MainPID)" "$mainpid" "broken-config-daemon-untouched"
check_eq "$(in_box 'systemctl is-active smtpguard.service')" active "broken-config-still-active"
in_box 'cp /root/conf.good /etc/smtpguard/smtpguard.conf'
check_ok "reload-a-good-config" in_box 'systemctl reload smtpguard.service'
wait_for 10 bash -c "nsenter -t $pid1 -m -p -r -- journalctl -u smtpguard.service -o cat --no-pager | grep -q 'reloaded the settings'"
check_contains "$(journal)" "reloaded the settings" "reload-reaches-the-daemon"
wait_for 10 in_box '[ "$(systemctl show -P ActiveState smtpguard.service)" = active ]'
check_eq "$(prop ActiveState)" active "active-after-reload (READY=1 after RELOADING=1)"
check_match "$(prop StatusText)" '^running; reloaded' "status-after-reload"

# Restart=on-failure: the daemon killed, systemd starts it again (only a
# real pid: `kill 0` would end this test's own process group)
e2e_is_int "$mainpid" && [ "$mainpid" -gt 1 ] && in_box "kill -KILL $mainpid"
wait_for 20 bash -c "p=\$(nsenter -t $pid1 -m -p -r -- systemctl show -P MainPID smtpguard.service); [ \"\$p\" != 0 ] && [ \"\$p\" != $mainpid ] && nsenter -t $pid1 -m -p -r -- systemctl is-active -q smtpguard.service"
check_eq "$(prop NRestarts)" 1 "restarted-after-SIGKILL"
check_eq "$(in_box 'systemctl is-active smtpguard.service')" active "active-after-restart"

# the proxy starts inside the whole sandbox too: transparent listeners,
# `ip rule` run by the daemon (NoNewPrivileges, the address families, the
# system call filter, the bounding set)
in_box 'printf "proxy = yes\nuplink = vm-deb0\n" >> /etc/smtpguard/smtpguard.conf'
check_ok "restart-with-the-proxy" in_box 'timeout 100 systemctl restart smtpguard.service'
check_eq "$(in_box 'systemctl is-active smtpguard.service')" active "proxy-service-active"
check_match "$(prop StatusText)" 'proxy up$' "proxy-status-says-proxy-up"
check_contains "$(journal)" "worker(s) listening" "proxy-workers-listen"
check_contains "$(in_box 'ip rule show')" "fwmark 0x5347 lookup 5347" "proxy-policy-rule-installed"
in_box 'cp /root/conf.good /etc/smtpguard/smtpguard.conf'

# stop: clean, the classifier kept (detach_on_exit = no)
check_ok "systemctl-stop" in_box 'timeout 100 systemctl stop smtpguard.service'
check_eq "$(prop Result)" success "stop-result-success"
check_eq "$(prop ExecMainStatus)" 0 "stop-exit-status-0"
check_contains "$(journal)" "stopped; the classifier stays attached" "journal-has-the-stop-line"
check_match "$(in_box 'tc filter show dev tap-deb0 ingress')" 'bpf' "classifier-stays-after-stop"

# removal: prerm detaches
in_box 'systemctl start smtpguard.service'
check_ok "apt-remove" in_box 'DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq smtpguard'
check_eq "$(in_box 'tc filter show dev tap-deb0 ingress' | grep -c bpf)" 0 "remove-detaches-the-classifier"
check_eq "$(in_box 'systemctl is-active smtpguard.service')" inactive "remove-stops-the-service"

say "$((SECONDS - started)) s in all"
echo "# deb: $E2E_PASSES passed, $E2E_FAILS failed"
[ "$E2E_FAILS" -eq 0 ]
