#!/usr/bin/env bash
# test_rate.sh - accuracy of the per-source SYN rate limit (token bucket).
# connect_burst offers new connections from a VM at 10x the configured rate;
# passed = syns - syn_drops (smtpguardctl show) must be within 5% of
# rate * seconds + burst, and the SYNs the classifier saw must equal the
# attempts made (connect_burst aborts each socket after 200 ms, before any
# SYN retransmission). IPv4 with a named class, IPv6 with another, and the
# "default" class from the daemon's config for an unmatched source.
#   bash selftests/e2e/test_rate.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin rate "${1:-}" 180

BURST_TOOL=$LAB_BUILD/selftests/connect_burst
[ -x "$BURST_TOOL" ] || e2e_abort "$BURST_TOOL missing (make all)"
VM1=$(lab_vm_ip4 vm1)
VM2=$(lab_vm_ip4 vm2)
VM2_6=$(lab_vm_ip6 vm2)

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
# smtp-sink: a listener with a deep backlog that answers every SYN it gets
lab_start_mx_sink 25 || e2e_abort "smtp-sink did not start"
lab_start_mx_sink 25 "[$LAB_MX6]" || e2e_abort "smtp-sink (v6) did not start"
lab_start_smtpguardd main default_action=scan default_conn_rate=10/s \
	default_conn_burst=4 refuse=drop || e2e_abort "smtpguardd did not start"

# rate_case NAME VM DST RATE/s BURST OFFERED/s SECONDS ADDR-AS-SEEN CLASS
rate_case() {
	local name=$1 vm=$2 dst=$3 rate=$4 burst=$5 offered=$6 secs=$7 src=$8 class=$9
	local out attempted connected syns drops passed want lo hi tol d0 dd
	d0=$(stat_get main rate_dropped)
	out=$(lab_exec "$vm" timeout $((secs + 10)) "$BURST_TOOL" -r "$offered" -d "$secs" "$dst" 25)
	attempted=$(echo "$out" | sed -n 's/.*attempted=\([0-9]*\).*/\1/p')
	connected=$(echo "$out" | sed -n 's/.*connected=\([0-9]*\).*/\1/p')
	syns=$(show_get main "$src" syns)
	drops=$(show_get main "$src" syn_drops)
	echo "# $name: connect_burst: $out; show: syns=$syns syn_drops=$drops"
	if ! e2e_is_int "$attempted" || ! e2e_is_int "$syns" || ! e2e_is_int "$drops"; then
		fail "$name-measured" "no numbers: connect_burst '$out', show syns '$syns' syn_drops '$drops'"
		return
	fi
	check_eq "$attempted" $((offered * secs)) "$name-offered-all"
	# every attempt is exactly one SYN
	tol=$((attempted / 100)); [ "$tol" -lt 2 ] && tol=2
	check_range "$syns" $((attempted - tol)) $((attempted + tol)) "$name-syns-seen-equal-attempts"
	passed=$((syns - drops))
	want=$((rate * secs + burst))
	tol=$((want * 5 / 100)); [ "$tol" -lt 2 ] && tol=2
	lo=$((want - tol)); hi=$((want + tol))
	check_range "$passed" "$lo" "$hi" "$name-passed-within-5pct-of-$want"
	# the SYNs that passed are the connections the VM got
	check_range "$connected" $((passed - 2)) $((passed + 2)) "$name-connected-equal-passed"
	dd=$(( $(stat_get main rate_dropped) - ${d0:-0} ))
	check_range "$dd" $((drops - 2)) $((drops + 2)) "$name-stats-rate-dropped"
	check_eq "$(show_get main "$src" rate_class)" "$class" "$name-show-rate-class"
}

# IPv4, a named class on a passthrough source: 20/s burst 5, offered 200/s for 10 s
lab_ctl main rate-class set fast20 --conn 20/s --burst 5 || fail rate-class-set "exit $?"
lab_ctl main policy add "$VM1/32" passthrough --class fast20 || fail policy-add-class "exit $?"
rate_case v4-passthrough vm1 "$LAB_MX4" 20 5 200 10 "$VM1" fast20

# IPv6, a class on a scan source: 10/s burst 3, offered 100/s for 5 s
lab_ctl main rate-class set slow10 --conn 10/s --burst 3 || fail rate-class-set-2 "exit $?"
lab_ctl main policy add "$VM2_6/128" scan --class slow10 || fail policy-add-class-v6 "exit $?"
rate_case v6-scan vm2 "$LAB_MX6" 10 3 100 5 "$VM2_6" slow10

# The default class from the config (10/s burst 4) for unmatched vm2 (IPv4)
rate_case v4-default-class vm2 "$LAB_MX4" 10 4 100 5 "$VM2" default

# top: vm1 has the most SYNs and the most drops
check_eq "$(ctl_json main top --by syns -n 1 | jq -r '.[0].source' 2>/dev/null)" "$VM1" "top-by-syns-first"
check_eq "$(ctl_json main top --by drops -n 3 | jq -r 'length' 2>/dev/null)" 3 "top-n-limits"
check_eq "$(ctl_json main top --by drops | jq -r '.[0].rate_class' 2>/dev/null)" fast20 "top-by-drops-rate-class"

# rate-class list shows both classes with their numbers
rl=$(ctl_json main rate-class list 2>&1)
check_match "$(echo "$rl" | jq -c '.[] | select(.name == "fast20")' 2>/dev/null)" '"burst":5' "rate-class-list-json"

e2e_finish
