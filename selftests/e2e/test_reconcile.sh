#!/usr/bin/env bash
# test_reconcile.sh - another tool takes smtpguard's program off an
# interface and the daemon puts it back: `tc filter del` of our priority,
# `tc qdisc del ... clsact`, another program put at our handle and
# priority (found only by the periodic check: no netlink event says so),
# and at XDP `ip link set dev X xdp off`. Each is logged and counted
# (`reattached`), the policy holds again, and a foreign tc filter at
# another priority (a counting mirror at priority 1) stays where it was
# and keeps counting, before ours, in its order; one after ours (priority
# 30000) sees what ours passed. A foreign XDP program
# under attach = tc is left alone and both run.
#   bash selftests/e2e/test_reconcile.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin reconcile "${1:-}" 180

VM2=$(lab_vm_ip4 vm2)
INTERVAL_S=2
PRIO=21319	# SG_TC_PRIORITY (0x5347), as `tc` prints it

# ours_on IFACE: our filter (smtpguard_tc at our priority) is on IFACE's ingress
ours_on() {
	lab_exec host tc filter show dev "$1" ingress pref "$PRIO" 2>/dev/null |
		grep -q 'name smtpguard_tc'
}
# foreign_count IFACE [PREF]: packets the foreign filter at PREF (default
# 1, the mirror) on IFACE counted
foreign_count() {
	lab_exec host tc -s filter show dev "$1" ingress pref "${2:-1}" 2>/dev/null |
		awk '/Sent/ { print $4; exit }'
}
reattached() { stat_get main reattached; }

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
lab_start_smtpguardd main default_action=exempt reconcile_interval=${INTERVAL_S}s ||
	e2e_abort "smtpguardd did not start"
LOG=$(lab_sgd_log main)
lab_ctl main policy add "$VM2/32" block >/dev/null || fail policy-add "exit $?"
check_eq "$(reattached)" 0 "reattached-zero-at-start"

# a foreign filter before ours: mirrors port-25 packets to mir0 and goes on
# ("continue") to the next filter, ours
lab_exec host ip link add mir0 type veth peer name mir1 &&
	lab_exec host ip link set mir0 up && lab_exec host ip link set mir1 up ||
	e2e_abort "cannot create the mirror device"
lab_exec host tc filter add dev tap-vm1 ingress pref 1 protocol ip u32 \
	match ip dport 25 0xffff action mirred egress mirror dev mir0 continue ||
	e2e_abort "cannot add the foreign filter"
f0=$(foreign_count tap-vm1); s0=$(stat_get main smtp_syn)
check_delivered "foreign-filter-and-ours-both-run" vm1 "$LAB_MX4"
check_gt "$(foreign_count tap-vm1)" "${f0:-0}" "foreign-filter-counts"
check_gt "$(stat_get main smtp_syn)" "${s0:-0}" "ours-counts-after-foreign"

# a foreign filter after ours (priority 30000) sees what ours passed: ours
# goes on ("continue") rather than ending the chain
lab_exec host tc filter add dev tap-vm1 ingress pref 30000 protocol ip u32 \
	match ip dport 25 0xffff action mirred egress mirror dev mir0 ||
	e2e_abort "cannot add the foreign filter after ours"
f0=$(foreign_count tap-vm1 30000)
check_delivered "foreign-filter-after-ours-delivers" vm1 "$LAB_MX4"
check_gt "$(foreign_count tap-vm1 30000)" "${f0:-0}" "foreign-filter-after-ours-sees-passed-traffic"
lab_exec host tc filter del dev tap-vm1 ingress pref 30000

# --- tc filter del of our priority: the netlink event brings it back at once
t0=$(ms_now)
lab_exec host tc filter del dev tap-vm1 ingress pref "$PRIO"
if wait_for $((INTERVAL_S + 2)) ours_on tap-vm1; then
	pass "filter-del-restored"
	echo "# tap-vm1: our filter back $(( $(ms_now) - t0 )) ms after tc filter del"
else
	fail "filter-del-restored" "not back within $((INTERVAL_S + 2)) s: $(lab_exec host tc filter show dev tap-vm1 ingress)"
fi
check_eq "$(reattached)" 1 "filter-del-counted"
check_match "$(cat "$LOG")" "tap-vm1 .*lost smtpguard's tc program" "filter-del-logged"
lab_exec host tc filter show dev tap-vm1 ingress pref 1 | grep -q u32 &&
	pass "foreign-filter-untouched" || fail "foreign-filter-untouched" "the priority-1 u32 filter is gone"
f0=$(foreign_count tap-vm1); s0=$(stat_get main smtp_syn)
check_delivered "delivers-after-restore" vm1 "$LAB_MX4"
check_gt "$(foreign_count tap-vm1)" "${f0:-0}" "foreign-filter-still-counts"
check_gt "$(stat_get main smtp_syn)" "${s0:-0}" "ours-counts-after-restore"

# --- the whole clsact qdisc of a blocked VM's tap deleted
check_refused "blocked-before" vm2 "$LAB_MX4"
t0=$(ms_now)
lab_exec host tc qdisc del dev tap-vm2 clsact
if wait_for $((INTERVAL_S + 2)) ours_on tap-vm2; then
	pass "qdisc-del-restored"
	echo "# tap-vm2: our filter back $(( $(ms_now) - t0 )) ms after tc qdisc del clsact"
else
	fail "qdisc-del-restored" "not back within $((INTERVAL_S + 2)) s"
fi
check_eq "$(reattached)" 2 "qdisc-del-counted"
b0=$(stat_get main blocked)
check_refused "blocked-again-after-restore" vm2 "$LAB_MX4"
check_gt "$(stat_get main blocked)" "${b0:-0}" "block-counted-after-restore"

# --- another program replaces ours at our handle and priority: no delete
# event, the periodic check finds the program id changed
lab_exec host tc filter replace dev tap-vm2 ingress pref "$PRIO" handle 0x5347 bpf da \
	obj "$LAB_BUILD/bpf/empty_tc.bpf.o" sec tc || fail "foreign-replace" "tc filter replace failed"
ours_on tap-vm2 && fail "foreign-replace-took" "ours still there" || pass "foreign-replace-took"
t0=$(ms_now)
if wait_for $((INTERVAL_S + 2)) ours_on tap-vm2; then
	ms=$(( $(ms_now) - t0 ))
	pass "replaced-program-restored"
	echo "# tap-vm2: ours back $ms ms after another program took its place"
	check_le "$ms" $(( (INTERVAL_S + 1) * 1000 )) "replaced-program-restored-within-interval"
else
	fail "replaced-program-restored" "not back within $((INTERVAL_S + 2)) s"
fi
check_eq "$(reattached)" 3 "replace-counted"
check_refused "blocked-after-replace-restored" vm2 "$LAB_MX4"

# --- a foreign XDP program on tap-vm1 (attach = tc): left alone, both run
pin="/sys/fs/bpf/${E2E_PREFIX}foreign-xdp"
rm -f "$pin"
if bpftool prog load "$LAB_BUILD/bpf/empty_xdp.bpf.o" "$pin" type xdp &&
   lab_exec host bpftool net attach xdpdrv pinned "$pin" dev tap-vm1; then
	rm -f "$pin"
	s0=$(stat_get main smtp_syn)
	check_delivered "foreign-xdp-and-ours-both-run" vm1 "$LAB_MX4"
	check_gt "$(stat_get main smtp_syn)" "${s0:-0}" "ours-counts-under-foreign-xdp"
	lab_exec host ip -d link show dev tap-vm1 | grep -q 'prog/xdp' &&
		pass "foreign-xdp-untouched" || fail "foreign-xdp-untouched" "the foreign XDP program is gone"
	lab_exec host ip link set dev tap-vm1 xdp off
else
	rm -f "$pin"
	fail "foreign-xdp-load" "could not load or attach empty_xdp on tap-vm1"
fi
check_eq "$(reattached)" 3 "nothing-reattached-for-foreign-changes"

# --- attach = xdp: `ip link set dev X xdp off` (a link change) restores it
lab_stop_smtpguardd main
lab_detach_smtpguardd main
lab_start_smtpguardd main default_action=exempt reconcile_interval=${INTERVAL_S}s attach=xdp ||
	e2e_abort "smtpguardd (attach = xdp) did not start"
r0=$(reattached)
wait_for 5 sh -c "nsenter --net=/run/netns/${E2E_PREFIX}host ip -d link show dev tap-vm2 | grep -q prog/xdp" ||
	fail "xdp-attached" "no XDP program on tap-vm2"
lab_exec host ip link set dev tap-vm2 xdp off
if wait_for $((INTERVAL_S + 2)) sh -c "nsenter --net=/run/netns/${E2E_PREFIX}host ip -d link show dev tap-vm2 | grep -q 'prog/xdp.*name smtpguard_xdp'"; then
	pass "xdp-off-restored"
else
	fail "xdp-off-restored" "no smtpguard XDP program on tap-vm2 $((INTERVAL_S + 2)) s after xdp off"
fi
check_eq "$(reattached)" $(( ${r0:-0} + 1 )) "xdp-off-counted"
check_refused "blocked-at-xdp-after-restore" vm2 "$LAB_MX4"

check_eq "$(grep -cE '^smtpguardd: (error|fatal)' "$LOG")" 0 "no-errors-logged"
e2e_finish
