#!/usr/bin/env bash
# test_restart.sh - the kernel fast path and the state outlive the daemon:
# after SIGTERM (detach_on_exit = no) the classifier stays attached, a blocked
# VM stays blocked, counters keep counting and smtpguardctl keeps working;
# a restart attaches no second copy and keeps policy, rate classes and
# per-source state. Then --detach, detach_on_exit = yes, --detach --purge.
#   bash selftests/e2e/test_restart.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin restart "${1:-}" 180

BURST_TOOL=$LAB_BUILD/selftests/connect_burst
VM1=$(lab_vm_ip4 vm1)
VM2=$(lab_vm_ip4 vm2)

# bpf filters on IFACE's TC ingress in the host namespace
tc_filters() { lab_exec host tc filter show dev "$1" ingress 2>/dev/null | grep -cE ' handle .* id [0-9]+'; }

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
lab_start_smtpguardd main default_action=scan || e2e_abort "smtpguardd did not start"
ROOT=$(lab_sgd_root main)

lab_ctl main rate-class set slow --conn 30/min --burst 3 || fail rate-class-set "exit $?"
lab_ctl main policy add "$VM1/32" passthrough --class slow || fail policy-add "exit $?"
lab_ctl main policy add "$VM2/32" block || fail policy-add-block "exit $?"
check_refused "blocked-before-restart" vm2 "$LAB_MX4"
out=$(lab_exec vm1 timeout 10 "$BURST_TOOL" -r 20 -d 1 "$LAB_MX4" 25)
echo "# before restart: $out"
syns1=$(show_get main "$VM1" syns)
drops1=$(show_get main "$VM1" syn_drops)
check_eq "$syns1" 20 "syns-counted-before-restart"
check_range "$drops1" 15 18 "rate-limited-before-restart"

# --- SIGTERM: the daemon goes, the classifier stays
lab_stop_smtpguardd main || fail "stops-on-sigterm" "needed SIGKILL"
check_eq "$LAB_SGD_STATUS" 0 "exit-status-0-on-sigterm"
check_eq "$(tc_filters tap-vm1)" 1 "filter-stays-attached-tap-vm1"
check_eq "$(tc_filters tap-vm2)" 1 "filter-stays-attached-tap-vm2"
check_ok "maps-stay-pinned" test -d "$ROOT"
check_refused "blocked-while-daemon-down" vm2 "$LAB_MX4"
out=$(lab_exec vm1 timeout 10 "$BURST_TOOL" -r 20 -d 1 "$LAB_MX4" 25)
echo "# daemon down: $out"
syns2=$(show_get main "$VM1" syns)
check_eq "$syns2" 40 "counting-while-daemon-down"
check_eq "$(show_get main "$VM1" rate_class)" slow "rate-class-applies-while-down"
# a change made while the daemon is down takes effect at once
lab_ctl main policy add 192.0.2.0/24 exempt || fail policy-add-while-down "exit $?"
lab_ctl main policy del "$VM2/32" || fail policy-del-while-down "exit $?"
check_delivered "policy-change-while-daemon-down" vm2 "$LAB_MX4"
lab_ctl main policy add "$VM2/32" block || fail policy-add-block-2 "exit $?"

# --- restart: one filter per interface, and everything still there
lab_start_smtpguardd main || e2e_abort "smtpguardd did not restart"
check_eq "$(tc_filters tap-vm1)" 1 "one-filter-after-restart-tap-vm1"
check_eq "$(tc_filters tap-vm2)" 1 "one-filter-after-restart-tap-vm2"
pl=$(ctl_json main policy list 2>&1)
check_eq "$(echo "$pl" | jq -r --arg p "$VM1/32" '.[] | select(.prefix == $p) | "\(.action) \(.class)"' 2>/dev/null)" \
	"passthrough slow" "policy-kept-across-restart"
check_eq "$(echo "$pl" | jq -r --arg p "$VM2/32" '.[] | select(.prefix == $p) | .action' 2>/dev/null)" \
	block "block-kept-across-restart"
check_eq "$(echo "$pl" | jq -r '.[] | select(.prefix == "192.0.2.0/24") | .action' 2>/dev/null)" \
	exempt "change-made-while-down-kept"
rl=$(ctl_json main rate-class list 2>&1)
check_match "$(echo "$rl" | jq -c '.[] | select(.name == "slow")' 2>/dev/null)" '"burst":3' "rate-class-kept-across-restart"
check_ge "$(show_get main "$VM1" syns)" 40 "source-state-kept-across-restart"
check_ge "$(show_get main "$VM1" syn_drops)" "$((drops1 + 15))" "source-drops-kept-across-restart"
check_refused "blocked-after-restart" vm2 "$LAB_MX4"
check_delivered "passthrough-after-restart" vm1 "$LAB_MX4"

# --- a second restart with no change reuses everything, again one filter
lab_stop_smtpguardd main
lab_start_smtpguardd main || e2e_abort "smtpguardd did not restart (2)"
check_eq "$(tc_filters tap-vm1)" 1 "one-filter-after-second-restart"

# --- --detach (daemon stopped): filters gone, pins stay
lab_stop_smtpguardd main
check_ok "detach-succeeds" lab_detach_smtpguardd main
check_eq "$(tc_filters tap-vm1)" 0 "detach-removes-filter-tap-vm1"
check_eq "$(tc_filters tap-vm2)" 0 "detach-removes-filter-tap-vm2"
check_ok "detach-keeps-pins" lab_ctl main policy list
check_delivered "detached-vm-unfiltered" vm2 "$LAB_MX4"

# --- detach_on_exit = yes: SIGTERM takes the classifier off
lab_start_smtpguardd main default_action=scan detach_on_exit=yes || e2e_abort "smtpguardd did not start (detach_on_exit)"
check_eq "$(tc_filters tap-vm2)" 1 "reattached-after-detach"
check_refused "blocked-again-after-reattach" vm2 "$LAB_MX4"
lab_stop_smtpguardd main
check_eq "$(tc_filters tap-vm1)" 0 "detach-on-exit-yes-detaches"

# --- --detach --purge: the pins and the root directory go
check_ok "detach-purge-succeeds" lab_detach_smtpguardd main --purge
if [ -e "$ROOT" ]; then fail "purge-removes-root" "$ROOT still exists: $(ls "$ROOT" | tr '\n' ' ')"
else pass "purge-removes-root"; fi
lab_ctl main stats >/dev/null 2>&1
check_eq "$?" 2 "ctl-exit-2-after-purge"

e2e_finish
