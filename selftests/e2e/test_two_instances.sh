#!/usr/bin/env bash
# test_two_instances.sh - two smtpguardd instances on one host, each with its
# own bpffs root and interface pattern (a: tap-vm1, b: tap-vm2), enforce
# their own, opposite policies; each one's counters see only its own VM;
# --detach of one leaves the other attached and enforcing.
#   bash selftests/e2e/test_two_instances.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin two "${1:-}" 180

VM1=$(lab_vm_ip4 vm1)
VM2=$(lab_vm_ip4 vm2)
tc_filters() { lab_exec host tc filter show dev "$1" ingress 2>/dev/null | grep -cE ' handle .* id [0-9]+'; }

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
lab_start_smtpguardd a interfaces=tap-vm1 default_action=scan || e2e_abort "instance a did not start"
lab_start_smtpguardd b interfaces=tap-vm2 default_action=scan || e2e_abort "instance b did not start"
ROOT_A=$(lab_sgd_root a)
ROOT_B=$(lab_sgd_root b)
check_ne "$ROOT_A" "$ROOT_B" "distinct-roots"

check_eq "$(tc_filters tap-vm1)" 1 "a-attached-to-tap-vm1-only"
check_eq "$(tc_filters tap-vm2)" 1 "b-attached-to-tap-vm2-only"

# the same prefix, opposite actions
lab_ctl a policy add 192.0.2.0/24 block || fail a-policy-add "exit $?"
lab_ctl b policy add 192.0.2.0/24 exempt || fail b-policy-add "exit $?"
check_eq "$(ctl_json a policy list | jq -r '.[0].action' 2>/dev/null)" block "a-policy-own"
check_eq "$(ctl_json b policy list | jq -r '.[0].action' 2>/dev/null)" exempt "b-policy-own"

check_refused "a-blocks-vm1" vm1 "$LAB_MX4"
check_delivered "b-exempts-vm2" vm2 "$LAB_MX4"
check_gt "$(stat_get a blocked)" 0 "a-counts-blocked"
check_eq "$(stat_get a exempt)" 0 "a-counts-no-exempt"
check_eq "$(stat_get b blocked)" 0 "b-counts-no-blocked"
check_gt "$(stat_get b exempt)" 0 "b-counts-exempt"

# per-source state stays per instance (rate-limited sources appear in show)
lab_ctl a policy add "$VM1/32" passthrough || fail a-policy-add-2 "exit $?"
lab_ctl b policy add "$VM2/32" scan || fail b-policy-add-2 "exit $?"
check_delivered "a-passthrough-vm1" vm1 "$LAB_MX4"
check_delivered "b-scan-vm2" vm2 "$LAB_MX4"
check_eq "$(show_get a "$VM1" known)" true "a-knows-vm1"
check_eq "$(show_get a "$VM2" known)" false "a-does-not-know-vm2"
check_eq "$(show_get b "$VM2" known)" true "b-knows-vm2"
check_eq "$(show_get b "$VM1" known)" false "b-does-not-know-vm1"
lab_ctl a policy del "$VM1/32" || fail a-policy-del "exit $?"
lab_ctl b policy del "$VM2/32" || fail b-policy-del "exit $?"

# --- --detach a: a's filter goes, b's stays and keeps enforcing
lab_stop_smtpguardd a || fail "a-stops" "needed SIGKILL"
check_ok "a-detach" lab_detach_smtpguardd a
check_eq "$(tc_filters tap-vm1)" 0 "a-detached-from-tap-vm1"
check_eq "$(tc_filters tap-vm2)" 1 "b-still-attached-after-a-detach"
check_delivered "vm1-unfiltered-after-a-detach" vm1 "$LAB_MX4"
if kill -0 "$(lab_sgd_pid b)" 2>/dev/null; then pass "b-still-running"
else fail "b-still-running" "instance b exited: $(tail -n 2 "$(lab_sgd_log b)")"; fi
lab_ctl b policy add 192.0.2.0/24 block || fail b-policy-change "exit $?"
check_refused "b-still-enforces-after-a-detach" vm2 "$LAB_MX4"
check_ok "a-pins-kept-without-purge" test -d "$ROOT_A"

# --- purge a: b's root untouched
check_ok "a-detach-purge" lab_detach_smtpguardd a --purge
if [ -e "$ROOT_A" ]; then fail "a-purged" "$ROOT_A still exists"; else pass "a-purged"; fi
check_ok "b-root-untouched" lab_ctl b stats
check_refused "b-enforces-after-a-purge" vm2 "$LAB_MX4"

# --- and b's detach --purge removes b
lab_stop_smtpguardd b || fail "b-stops" "needed SIGKILL"
check_ok "b-detach-purge" lab_detach_smtpguardd b --purge
check_eq "$(tc_filters tap-vm2)" 0 "b-detached"
if [ -e "$ROOT_B" ]; then fail "b-purged" "$ROOT_B still exists"; else pass "b-purged"; fi

e2e_finish
