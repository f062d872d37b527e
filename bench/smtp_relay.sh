#!/usr/bin/env bash
# smtp_relay.sh - messages per second VM -> host -> MX with Postfix's
# smtp-source in the VM (20 parallel sessions, one message each) and
# smtp-sink on the MX: direct (the VM exempt: the kernel fast path only) and
# through smtpguard's proxy (the VM scanned), 1 KiB and 100 KiB messages,
# median of ROUNDS runs, as ratios to direct. Prints BENCH lines.
#   bash bench/smtp_relay.sh build
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lab/lab.sh"

BUILD=${1:-build}
PREFIX=sgbsmtp-
ROUNDS=${SMTP_ROUNDS:-3}
SESSIONS=20

trap 'lab_down "$PREFIX"' EXIT
trap 'echo "smtp_relay: interrupted" >&2; exit 130' INT TERM
[ "$(id -u)" = 0 ] || { echo "smtp_relay: must run as root" >&2; exit 1; }
lab_init "$BUILD" || exit 1
lab_up "$PREFIX" || { echo "smtp_relay: lab_up failed" >&2; exit 1; }
lab_start_mx_sink 25 || exit 1
lab_start_smtpguardd main default_action=scan proxy=yes uplink=uplink0 || exit 1
VM1=$(lab_vm_ip4 vm1)
lab_ctl main rate-class set bench --conn 1000000/s --burst 1000000 >/dev/null
MX=$LAB_MX4

# one_run COUNT BYTES: msgs/s of smtp-source, or nothing on failure
one_run() {
	local count=$1 bytes=$2 t0 t1
	t0=$(date +%s%N)
	lab_exec vm1 timeout 300 smtp-source -s "$SESSIONS" -m "$count" -l "$bytes" \
		-f bench@example.org -t sink@example.net "$MX:25" >/dev/null 2>&1 || return 1
	t1=$(date +%s%N)
	awk -v n="$count" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }'
}

median() { sort -g | awk '{a[NR]=$1} END { if (NR) print a[int((NR + 1) / 2)] }'; }

declare -A RESULT=()
measure() {	# MODE SIZE_LABEL COUNT BYTES
	local mode=$1 label=$2 count=$3 bytes=$4 vals=() v
	for _ in $(seq 1 "$ROUNDS"); do
		v=$(one_run "$count" "$bytes") && vals+=("$v")
	done
	RESULT[$mode-$label]=$(printf '%s\n' "${vals[@]}" | median)
}

for size in 1k:1024:4000 100k:102400:1000; do
	IFS=: read -r label bytes count <<<"$size"
	lab_ctl main policy add "$VM1/32" exempt --class bench >/dev/null
	measure direct "$label" "$count" "$bytes"
	lab_ctl main policy add "$VM1/32" scan --class bench >/dev/null
	s0=$(lab_ctl main --json stats | jq .steered)
	measure smtpguard "$label" "$count" "$bytes"
	s1=$(lab_ctl main --json stats | jq .steered)
	echo "# $label: $((s1 - s0)) connections went through the proxy"
done

echo "# smtp-source -s $SESSIONS in the VM -> smtp-sink on the MX, median of $ROUNDS runs"
for label in 1k 100k; do
	d=${RESULT[direct-$label]:-}
	for mode in direct smtpguard; do
		v=${RESULT[$mode-$label]:-}
		r=$(awk -v a="${v:-0}" -v b="${d:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "NA" }')
		echo "BENCH smtp $label $mode msgs_per_s=${v:-NA} ratio=$r"
	done
done
