#!/usr/bin/env bash
# proxy_memory.sh - what one held SMTP session costs when it goes through
# smtpguard's proxy: smtpguardd's resident memory (VmRSS) and the kernel's
# TCP memory (/proc/net/sockstat "TCP: ... mem", in pages), before and while
# bench/smtp_hold in vm1 holds IDLE sessions (after EHLO), then ACTIVE ones
# (mid-DATA, 4 KiB of message sent), through the proxy to smtp-sink on the
# MX. Each phase runs against a freshly started daemon, so that the second
# does not reuse the memory the first one freed. It checks that the sessions
# really went through the proxy (smtpguardctl stats: steered) and reports
# the daemon's errors and warnings (each session takes two descriptors:
# running out of them shows there first). Prints
#   BENCH proxy_memory idle_sessions=N held=H rss_kib_per_session=R slab_kib_per_session=K
#   BENCH proxy_memory active_sessions=N held=H rss_kib_per_session=R slab_kib_per_session=K
# (slab: the whole machine's kernel slab growth, all four sockets of a
# session: the VM's, the proxy's two, the MX's)
# with the details on "# " lines. Compiles nothing: smtp_hold must be built
# (cc ... bench/smtp_hold.c -o build/bench/smtp_hold, or make).
#   bash bench/proxy_memory.sh [BUILD_DIR]         (root; BUILD_DIR defaults to build)
# Settings (environment): SGBMEM_IDLE (10000), SGBMEM_ACTIVE (1000),
# SGBMEM_SGD_NOFILE (the daemon's descriptor limit, soft:hard as prlimit
# takes it; default: the one it inherits).
#
# The sockstat "mem" counter is the whole machine's (every namespace: the
# VM's and the MX's ends of the sessions too, and whatever else runs) and
# is only as exact as the per-CPU reserve the kernel batches it by
# (net.core.mem_pcpu_rsv, 256 pages a CPU), so the host namespace's own
# socket memory (ss -tm: r + w + f of every socket) is printed beside it,
# and the slab memory, where an idle socket's cost really is.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lab/lab.sh"

BUILD=${1:-build}
PREFIX=sgbmem-
IDLE_SESSIONS=${SGBMEM_IDLE:-10000}
ACTIVE_SESSIONS=${SGBMEM_ACTIVE:-1000}
SGD_NOFILE=${SGBMEM_SGD_NOFILE:-}
ACTIVE_BYTES=4096
HOLD_MAX_S=600		# smtp_hold's own deadline, should this script die
SETUP_WAIT_S=10		# smtp_hold -w: per connect or reply while setting up
MAX_FAILURES=200	# smtp_hold -m: a broken proxy fails fast, not 10,000 times
READY_TIMEOUT_S=300	# for all the sessions to be set up
SETTLE_S=2		# after set-up, before measuring
LOG_LIMIT_BYTES=$((64 << 20))	# a daemon flooding its log ends the phase
SINK_TIMEOUT_S=900	# smtp-sink -t: longer than any hold here

trap 'lab_down "$PREFIX"' EXIT
trap 'echo "proxy_memory: interrupted" >&2; exit 130' INT TERM
die() { echo "proxy_memory: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
lab_init "$BUILD" || exit 1
HOLD="$LAB_BUILD/bench/smtp_hold"
[ -x "$HOLD" ] || die "no $HOLD; build it: cc -O2 -g -Wall -Wextra -Werror -std=gnu11" \
	"-D_GNU_SOURCE bench/smtp_hold.c -o $BUILD/bench/smtp_hold"
command -v jq >/dev/null || die "jq is needed"
PAGE_KIB=$(($(getconf PAGESIZE) / 1024))

# start_mx_sink PORT SESSIONS: smtp-sink on the MX, as lab_start_mx_sink
# starts it, but able to hold SESSIONS at once: its default (-m 256) serves
# 256 connections and leaves the rest queued unanswered, and its read
# timeout (-t 100) would end sessions held longer than 100 s.
start_mx_sink() {
	local port=$1 sessions=$2 max=$(($2 + 256)) hard
	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$hard" -lt $((max + 64)) ]; then
		ulimit -Hn $((max + 64)) 2>/dev/null ||
			die "smtp-sink needs $((max + 64)) descriptors for $sessions sessions," \
				"the hard limit is $hard and cannot be raised"
	fi
	lab_exec mx bash -c 'ulimit -Sn "$(ulimit -Hn)" && exec "$@"' sink \
		smtp-sink -u nobody -m "$max" -t "$SINK_TIMEOUT_S" "$LAB_MX4:$port" 4096 \
		>"$LAB_DIR/smtp-sink-$port.log" 2>&1 &
	for _ in $(seq 1 50); do
		lab_exec mx ss -Hltn "( sport = :$port )" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	die "smtp-sink on $LAB_MX4:$port did not start"
}

# restart_daemon: a fresh smtpguardd (the first call writes its config), a
# rate class whose connection rate is never the limit, vm1 scanned.
restart_daemon() {
	local pid
	if [ -n "$(lab_sgd_pid main)" ]; then
		lab_stop_smtpguardd main || die "smtpguardd did not stop on SIGTERM"
		lab_start_smtpguardd main || die "smtpguardd did not restart"
	else
		# thousands of sessions from one VM: no per-sender session limit
		lab_start_smtpguardd main default_action=scan proxy=yes uplink=uplink0 \
			default_max_sessions=0 || die "smtpguardd did not start"
	fi
	pid=$(lab_sgd_proxy_pid main)
	if [ -n "$SGD_NOFILE" ]; then
		# as the proxy's own user (lab_write_sgd_conf's proxy_user):
		# prlimit(2) on another user's process needs CAP_SYS_RESOURCE
		setpriv --reuid=nobody --regid=nogroup --clear-groups \
			prlimit --pid "$pid" --nofile="$SGD_NOFILE" ||
			die "cannot set smtpguardd's descriptor limit to $SGD_NOFILE"
	fi
	if ! lab_ctl main rate-class set bench --conn 1000000/s --burst 1000000 >/dev/null ||
	   ! lab_ctl main policy add "$(lab_vm_ip4 vm1)/32" scan --class bench >/dev/null; then
		die "cannot set vm1's policy"
	fi
}

# the proxy process's: the sessions are its
daemon_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$(lab_sgd_proxy_pid main)/status"; }
daemon_fds() { find "/proc/$(lab_sgd_proxy_pid main)/fd" -mindepth 1 2>/dev/null | wc -l; }
daemon_nofile() { awk '/^Max open files/ { print $4 ":" $5 }' "/proc/$(lab_sgd_proxy_pid main)/limits"; }
steered() { lab_ctl main --json stats | jq .steered; }
# the kernel's TCP memory, pages: the whole machine's (the counter is global)
tcp_mem_pages() { lab_exec host awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat; }
tcp_inuse() { lab_exec host awk '$1 == "TCP:" { print $3 }' /proc/net/sockstat; }
# wait_quiet: the last phase's sockets are gone from the host (their
# memory too) before a baseline is taken
wait_quiet() {
	for _ in $(seq 1 100); do
		[ "$(tcp_inuse)" -lt 50 ] && break
		sleep 0.1
	done
	sleep 1
}
# the host namespace's own sockets: received + queued to send + reserved, KiB
host_skmem_kib() {
	lab_exec host ss -Htmna 2>/dev/null | grep -o 'skmem:([^)]*)' |
		awk -F'[(),]' '{ for (i = 2; i < NF; i++) if ($i ~ /^[rwf][0-9]/) s += substr($i, 2) }
			END { printf "%d", s / 1024 }'
}
# the kernel's slab memory, KiB, and its TCP socket objects (count, KiB):
# the whole machine's; where an idle socket's memory is, not in "mem" above
slab_kib() { awk '/^Slab:/ { print $2 }' /proc/meminfo; }
tcp_sock_objs() { awk '$1 == "TCP" || $1 == "TCPv6" { n += $2; b += $2 * $4 } END { printf "%d %d", n, b / 1024 }' /proc/slabinfo; }
mx_established() { lab_exec mx ss -Htn state established "( sport = :25 )" | wc -l; }
per_session() { awk -v d="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", d / n; else print "NA" }'; }

# wait_held HOLD_PID OUT: until smtp_hold printed its held= line
wait_held() {
	local pid=$1 out=$2 log
	log=$(lab_sgd_log main)
	for _ in $(seq 1 $((READY_TIMEOUT_S * 10))); do
		grep -q '^held=' "$out" && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		if [ "$(stat -c %s "$log")" -gt "$LOG_LIMIT_BYTES" ]; then
			echo "# smtpguardd's log grew past $LOG_LIMIT_BYTES bytes during set-up:" \
				"stopping the phase" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "# the sessions were not set up within $READY_TIMEOUT_S s" >&2
	return 1
}

# report_daemon_log: the daemon's warnings and errors, each kind counted
# once (addresses and numbers masked), and the descriptor ones named.
report_daemon_log() {
	local log n emfile
	log=$(lab_sgd_log main)
	n=$(grep -cE 'error: |warning: ' "$log")
	emfile=$(grep -c 'Too many open files' "$log")
	echo "# smtpguardd log: $n warning/error lines, $emfile of them 'Too many open files'"
	[ "$n" -gt 0 ] || return 0
	grep -E 'error: |warning: ' "$log" |
		sed -E 's/\[[0-9a-f:]+\]:[0-9]+|[0-9]+(\.[0-9]+){3}:[0-9]+/ADDR/g; s/worker [0-9]+/worker N/' |
		sort | uniq -c | sort -rn | head -n 8 | sed 's/^/#   /'
	echo "#   first: $(grep -m1 -E 'error: |warning: ' "$log")"
}

# measure KIND COUNT [smtp_hold options...]: one phase; prints its lines
measure() {
	local kind=$1 count=$2; shift 2
	local out="$LAB_DIR/hold-$kind.out" err="$LAB_DIR/hold-$kind.err"
	local rss0 rss1 mem0 mem1 sk0 sk1 st0 st1 fds0 fds1 inuse1 mxest hold_pid
	local slab0 slab1 objs0 objs1 objkib0 objkib1
	local held=0 failed=0 dropped=NA quit_ok=NA steered_d sgd_pid nofile

	restart_daemon
	sgd_pid=$(lab_sgd_proxy_pid main)
	nofile=$(daemon_nofile)
	wait_quiet
	rss0=$(daemon_rss_kib); mem0=$(tcp_mem_pages); sk0=$(host_skmem_kib)
	slab0=$(slab_kib); read -r objs0 objkib0 < <(tcp_sock_objs)
	st0=$(steered); fds0=$(daemon_fds)
	# nsenter itself, not lab_exec: $! must be smtp_hold (to signal it),
	# not a subshell around it
	nsenter --net="/run/netns/$(lab_ns vm1)" -- "$HOLD" -n "$count" -t "$HOLD_MAX_S" \
		-w "$SETUP_WAIT_S" -m "$MAX_FAILURES" "$@" "$LAB_MX4:25" >"$out" 2>"$err" </dev/null &
	hold_pid=$!
	if wait_held "$hold_pid" "$out"; then
		sleep "$SETTLE_S"
		rss1=$(daemon_rss_kib); mem1=$(tcp_mem_pages); sk1=$(host_skmem_kib)
		slab1=$(slab_kib); read -r objs1 objkib1 < <(tcp_sock_objs)
		st1=$(steered); fds1=$(daemon_fds); inuse1=$(tcp_inuse); mxest=$(mx_established)
	fi
	kill -TERM "$hold_pid" 2>/dev/null
	wait "$hold_pid" 2>/dev/null
	read -r held failed < <(sed -n 's/^held=\([0-9]*\) failed=\([0-9]*\)$/\1 \2/p' "$out")
	read -r dropped quit_ok < <(sed -n 's/^dropped=\([0-9]*\) quit_ok=\([0-9]*\)$/\1 \2/p' "$out")
	held=${held:-0}; failed=${failed:-0}

	echo "# $kind: smtp_hold -n $count $*: held=$held failed=$failed" \
		"dropped_while_held=${dropped:-NA} quit_ok=${quit_ok:-NA}"
	grep -v 'stdin is not' "$err" | sed 's/^/#   /'
	if [ -z "${rss1:-}" ]; then
		echo "# $kind: no measurement (the sessions were not all set up)"
		report_daemon_log
		echo "BENCH proxy_memory ${kind}_sessions=$count held=$held rss_kib_per_session=NA" \
			"slab_kib_per_session=NA"
		return 1
	fi
	steered_d=$((st1 - st0))
	echo "# $kind: smtpguardd pid $sgd_pid RLIMIT_NOFILE $nofile; descriptors $fds0 -> $fds1;" \
		"VmRSS $rss0 -> $rss1 KiB"
	echo "# $kind: sockstat TCP mem $mem0 -> $mem1 pages (whole machine); host sockets" \
		"skmem $sk0 -> $sk1 KiB ($(per_session $((sk1 - sk0)) "$held") KiB/session);" \
		"host TCP inuse $inuse1; MX established $mxest"
	echo "# $kind: kernel slab (whole machine) $slab0 -> $slab1 KiB" \
		"($(per_session $((slab1 - slab0)) "$held") KiB/session); TCP socket objects" \
		"+$((objs1 - objs0)) (+$((objkib1 - objkib0)) KiB); a session is 4 sockets here:" \
		"the VM's, the proxy's two, the MX's"
	echo "# $kind: steered +$steered_d for $((held + failed)) sessions opened"
	if [ "$steered_d" -lt "$held" ]; then
		echo "# $kind: WARNING: only $steered_d of $held held sessions went through the proxy"
	fi
	if ! kill -0 "$sgd_pid" 2>/dev/null; then
		echo "# $kind: WARNING: smtpguardd (pid $sgd_pid) is gone"
	fi
	report_daemon_log
	echo "BENCH proxy_memory ${kind}_sessions=$count held=$held" \
		"rss_kib_per_session=$(per_session $((rss1 - rss0)) "$held")" \
		"slab_kib_per_session=$(per_session $((slab1 - slab0)) "$held")"
}

lab_up "$PREFIX" || die "lab_up failed"
start_mx_sink 25 "$IDLE_SESSIONS"
rc=0
measure idle "$IDLE_SESSIONS" || rc=1
measure active "$ACTIVE_SESSIONS" -a -s "$ACTIVE_BYTES" || rc=1
exit $rc
