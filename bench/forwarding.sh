#!/usr/bin/env bash
# forwarding.sh - what the classifier costs forwarded bulk traffic that is
# not SMTP: iperf3 VM -> routed host -> MX (one stream, 5 s, 3 rounds,
# median) with no filter, with smtpguardd attach = tc, and with attach = xdp
# (native), on the host's VM-facing interfaces.
#   bash bench/forwarding.sh BUILD_DIR
# Prints "BENCH fwd <mode> gbps=<x> ratio=<y>" (ratio to no filter) and a table.
# Env: FWD_SECONDS (5), FWD_ROUNDS (3).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lab/lab.sh
source "$HERE/../lab/lab.sh"

BUILD=${1:-build}
PREFIX=sgbench-
SECS=${FWD_SECONDS:-5}
ROUNDS=${FWD_ROUNDS:-3}
PORT=5201

trap 'lab_down "$PREFIX"' EXIT
trap 'echo "forwarding: interrupted" >&2; exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "forwarding: must run as root" >&2; exit 1; }
lab_init "$BUILD" || exit 1
[ -x "$LAB_BUILD/smtpguardd" ] || { echo "forwarding: $LAB_BUILD/smtpguardd missing (make all)" >&2; exit 1; }

lab_up "$PREFIX" || { echo "forwarding: lab_up failed" >&2; exit 1; }
lab_start_mx_iperf "$PORT" || exit 1

# one_round: Gbit/s received at the MX, or "" on failure
one_round() {
	lab_exec vm1 timeout $((SECS + 20)) iperf3 -c "$LAB_MX4" -p "$PORT" -t "$SECS" -J 2>/dev/null |
		jq -r '.end.sum_received.bits_per_second / 1e9' 2>/dev/null
}

# measure MODE: median of ROUNDS rounds into RESULT[MODE], all in ROUNDS_OF[MODE]
declare -A RESULT=() ROUNDS_OF=()
measure() {
	local mode=$1 i g vals=()
	for i in $(seq 1 "$ROUNDS"); do
		g=$(one_round)
		if [ -z "$g" ] || [ "$g" = null ]; then
			echo "forwarding: iperf3 round $i ($mode) failed" >&2
			continue
		fi
		vals+=("$g")
	done
	if [ ${#vals[@]} -eq 0 ]; then
		RESULT[$mode]=
		return 1
	fi
	ROUNDS_OF[$mode]=$(printf '%.2f ' "${vals[@]}")
	RESULT[$mode]=$(printf '%s\n' "${vals[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR + 1) / 2)]}')
}

# with_daemon MODE KEYS...: starts smtpguardd with KEYS, measures, detaches
with_daemon() {
	local mode=$1; shift
	if ! lab_start_smtpguardd "$mode" interfaces=tap-vm1 default_action=scan "$@"; then
		echo "forwarding: smtpguardd ($mode) did not start" >&2
		RESULT[$mode]=
		return 1
	fi
	lab_exec host bpftool net show dev tap-vm1 2>/dev/null | grep -E 'tap-vm1' | sed "s/^/# $mode: /"
	measure "$mode"
	lab_stop_smtpguardd "$mode"
	lab_detach_smtpguardd "$mode" --purge
}

echo "# forwarded iperf3 vm1 -> host -> mx, 1 stream, ${SECS} s x ${ROUNDS} rounds, median"
measure none
with_daemon tc attach=tc
with_daemon xdp attach=xdp xdp_mode=native

base=${RESULT[none]:-}
for mode in none tc xdp; do
	g=${RESULT[$mode]:-}
	if [ -z "$g" ]; then
		echo "BENCH fwd $mode gbps=NA ratio=NA"
		continue
	fi
	if [ -n "$base" ]; then
		r=$(awk -v a="$g" -v b="$base" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	else
		r=NA
	fi
	echo "BENCH fwd $mode gbps=$g ratio=$r"
done

echo
printf '%-22s %10s %8s   %s\n' "mode" "Gbit/s" "ratio" "rounds"
for mode in none tc xdp; do
	g=${RESULT[$mode]:-}
	case $mode in
	none) label="no filter" ;;
	tc) label="smtpguard tc ingress" ;;
	xdp) label="smtpguard xdp native" ;;
	esac
	if [ -z "$g" ]; then
		printf '%-22s %10s %8s   %s\n' "$label" "failed" "-" ""
		continue
	fi
	r=$(awk -v a="$g" -v b="${base:-0}" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "-" }')
	printf '%-22s %10s %8s   %s\n' "$label" "$g" "$r" "${ROUNDS_OF[$mode]}"
done
[ -n "${RESULT[none]:-}" ] && [ -n "${RESULT[tc]:-}" ] && [ -n "${RESULT[xdp]:-}" ]
