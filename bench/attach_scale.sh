#!/usr/bin/env bash
# attach_scale.sh - attaching at scale: N VM-facing interfaces (veth pairs
# on the host, default 500) exist when smtpguardd starts; how long until it
# is ready with all of them attached; then, ROUNDS times, one more VM
# appears (its tap created, the VM's address set, a SYN to port 25 sent
# every 20 ms), and the time from creating its tap to our filter on it and
# to its first SYN counted. Not a test: it reports.
#   bash bench/attach_scale.sh BUILD_DIR    (ATTACH_N=500 ATTACH_ROUNDS=10 ATTACH_MODE=tc|xdp)
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lab/lab.sh
source "$here/../lab/lab.sh"
# shellcheck source=../lab/layouts.sh
source "$here/../lab/layouts.sh"
lab_init "${1:-build}" || exit 1
N=${ATTACH_N:-500}
ROUNDS=${ATTACH_ROUNDS:-10}
MODE=${ATTACH_MODE:-tc}
PREFIX=sgb-attach-
trap 'lab_down $PREFIX' EXIT INT TERM

ms_now() { echo $(($(date +%s%N) / 1000000)); }
ours_on() {
	if [ "$MODE" = xdp ]; then
		lab_exec host ip -d link show dev "$1" 2>/dev/null | grep -q 'name smtpguard_xdp'
	else
		lab_exec host tc filter show dev "$1" ingress pref 21319 2>/dev/null | grep -q smtpguard_tc
	fi
}
syns() { lab_ctl main --json stats 2>/dev/null | jq -r '.smtp_syn // 0'; }
# p50 and max of the numbers on stdin
p50_max() { sort -n | awk '{ v[NR] = $1 } END { printf "p50 %d max %d", v[int((NR + 1) / 2)], v[NR] }'; }

lab_up "$PREFIX" >/dev/null || { echo "lab_up failed"; exit 1; }
t0=$(ms_now)
layout_many_taps "$N" tap-s || exit 1
echo "# $N veth pairs created in $(( $(ms_now) - t0 )) ms"
t0=$(ms_now)
LAB_READY_TIMEOUT=120 lab_start_smtpguardd main default_action=passthrough attach="$MODE" || exit 1
ready_ms=$(( $(ms_now) - t0 ))
attached=$(sed -n 's/^smtpguardd: ready: \([0-9]*\) interface.*/\1/p' "$(lab_sgd_log main)")
echo "# started with $attached interfaces attached: ready after $ready_ms ms"
echo "BENCH attach_startup mode=$MODE interfaces=$attached ready_ms=$ready_ms"

: >"$LAB_DIR/attach.ms"; : >"$LAB_DIR/syn.ms"
for r in $(seq 1 "$ROUNDS"); do
	vm=vm$((20 + r)); v=$(lab_ns "$vm"); ip4=$(lab_vm_ip4 "$vm")
	lab_add_ns "$v" || exit 1
	s0=$(syns)
	t0=$(ms_now)
	ip link add "tap-$vm" netns "$(lab_ns host)" type veth peer name eth0 netns "$v"
	# the VM brings its side up and dials port 25 every 20 ms, as a booting
	# VM's MTA would, until a SYN is counted
	{ ip -n "$v" link set eth0 up; ip -n "$v" addr add "$ip4/32" dev eth0
	  ip -n "$v" route add "$LAB_GW4/32" dev eth0 scope link
	  ip -n "$v" route add default via "$LAB_GW4" dev eth0
	  lab_exec host ip link set "tap-$vm" up; lab_exec host ip addr add "$LAB_GW4/32" dev "tap-$vm"
	  lab_exec host ip route add "$ip4/32" dev "tap-$vm" scope link; } 2>/dev/null
	attach_ms=; syn_ms=
	for _ in $(seq 1 1000); do
		ours_on "tap-$vm" && { attach_ms=$(( $(ms_now) - t0 )); break; }
	done
	for _ in $(seq 1 200); do
		lab_exec "$vm" timeout 0.02 bash -c "exec 3<>/dev/tcp/$LAB_MX4/25" 2>/dev/null
		if [ "$(syns)" -gt "${s0:-0}" ]; then
			syn_ms=$(( $(ms_now) - t0 ))
			break
		fi
	done
	echo "# round $r: tap-$vm attached after ${attach_ms:-?} ms, first SYN counted after ${syn_ms:-?} ms"
	echo "${attach_ms:-99999}" >>"$LAB_DIR/attach.ms"; echo "${syn_ms:-99999}" >>"$LAB_DIR/syn.ms"
done
echo "BENCH attach_new_interface mode=$MODE n=$ROUNDS among=$attached attached_ms $(p50_max <"$LAB_DIR/attach.ms") first_syn_counted_ms $(p50_max <"$LAB_DIR/syn.ms")"
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$(lab_sgd_pid main)/status")
echo "BENCH attach_daemon_rss_kib=$rss"
