#!/usr/bin/env bash
# test_attach_scale.sh - 500 VM-facing interfaces (veth pairs, their VM ends
# in one namespace) exist when smtpguardd starts: all are attached, and a
# VM that appears afterwards is attached and its first SYN to port 25
# counted within a generous bound (the target is 1 s; bench/attach_scale.sh
# measures it).
#   bash selftests/e2e/test_attach_scale.sh build
source "$(dirname "$0")/lib.sh"
source "$E2E_REPO/lab/layouts.sh"
e2e_begin attachscale "${1:-}" 240
N=500
BOUND_S=3

ours_on() {
	lab_exec host tc filter show dev "$1" ingress pref 21319 2>/dev/null | grep -q smtpguard_tc
}

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
layout_many_taps "$N" tap-s || e2e_abort "cannot create $N veth pairs"
t0=$(ms_now)
LAB_READY_TIMEOUT=60 lab_start_smtpguardd main default_action=passthrough ||
	e2e_abort "smtpguardd did not start with $N interfaces"
echo "# ready with $N + 2 interfaces after $(( $(ms_now) - t0 )) ms"
n=$(sed -n 's/^smtpguardd: ready: \([0-9]*\) interface.*/\1/p' "$(lab_sgd_log main)")
check_eq "$n" $((N + 2)) "all-interfaces-attached-at-start"
missing=0
for i in 0 $((N / 2)) $((N - 1)); do ours_on "tap-s$i" || missing=$((missing + 1)); done
check_eq "$missing" 0 "first-middle-last-have-our-filter"

s0=$(stat_get main smtp_syn)
t0=$(ms_now)
lab_add_vm vm3 || e2e_abort "cannot add vm3"
if wait_for "$BOUND_S" ours_on tap-vm3; then
	pass "new-interface-attached-within-${BOUND_S}s"
	echo "# tap-vm3 attached $(( $(ms_now) - t0 )) ms after it was created, among $((N + 2))"
else
	fail "new-interface-attached-within-${BOUND_S}s" "tap-vm3 has no filter of ours"
fi
lab_tcp_probe vm3 "$LAB_MX4" 25 1 >/dev/null
check_gt "$(stat_get main smtp_syn)" "${s0:-0}" "new-interface-syn-counted"
check_eq "$(grep -cE '^smtpguardd: (error|fatal)' "$(lab_sgd_log main)")" 0 "no-errors-logged"
e2e_finish
