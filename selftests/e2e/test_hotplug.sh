#!/usr/bin/env bash
# test_hotplug.sh - interfaces that come and go while smtpguardd runs: a VM
# started after the daemon (tap-vm3) is attached within seconds and its
# policy enforced; a rate-limited one (tap-vm4) is limited; an interface
# that does not match the patterns is left alone; a removed VM is let go
# (the daemon keeps running and logs it), and its return is attached again.
#   bash selftests/e2e/test_hotplug.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin hotplug "${1:-}" 180

BURST_TOOL=$LAB_BUILD/selftests/connect_burst
VM2=$(lab_vm_ip4 vm2)
VM3=$(lab_vm_ip4 vm3)
VM4=$(lab_vm_ip4 vm4)

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
lab_start_smtpguardd main default_action=exempt || e2e_abort "smtpguardd did not start"
LOG=$(lab_sgd_log main)
PID=$(lab_sgd_pid main)

lab_ctl main policy add "$VM3/32" block || fail policy-add "exit $?"
lab_ctl main rate-class set hot --conn 5/s --burst 2 || fail rate-class-set "exit $?"
lab_ctl main policy add "$VM4/32" passthrough --class hot || fail policy-add-class "exit $?"

# --- a VM that appears after the daemon started
t0=$(ms_now)
lab_add_vm vm3 || e2e_abort "cannot add vm3"
if wait_for 5 lab_sgd_attached tap-vm3 && wait_for_log "$LOG" 'attached.*tap-vm3' 5; then
	pass "new-interface-attached"
	echo "# tap-vm3 attached $(( $(ms_now) - t0 )) ms after it was created"
else
	fail "new-interface-attached" "tap-vm3 not attached within 5 s (attached: '$(lab_sgd_attached tap-vm3)')"
fi
lab_wait_reachable vm3 || fail "vm3-reachable" "vm3 cannot reach the MX"
b0=$(stat_get main blocked)
check_refused "new-interface-policy-block-enforced" vm3 "$LAB_MX4"
check_gt "$(stat_get main blocked)" "${b0:-0}" "new-interface-blocked-counted"
check_delivered "old-interface-still-delivers" vm1 "$LAB_MX4"

# --- another new VM, rate-limited: 5/s burst 2, offered 50/s for 2 s -> ~12
lab_add_vm vm4 || e2e_abort "cannot add vm4"
wait_for 5 lab_sgd_attached tap-vm4 || fail "new-interface-2-attached" "tap-vm4 not attached within 5 s"
lab_wait_reachable vm4 || fail "vm4-reachable" "vm4 cannot reach the MX"
syn0=$(show_get main "$VM4" syns); drop0=$(show_get main "$VM4" syn_drops)
out=$(lab_exec vm4 timeout 15 "$BURST_TOOL" -r 50 -d 2 "$LAB_MX4" 25)
syns=$(( $(show_get main "$VM4" syns) - ${syn0:-0} ))
drops=$(( $(show_get main "$VM4" syn_drops) - ${drop0:-0} ))
echo "# vm4: $out; syns=$syns drops=$drops"
check_range "$syns" 98 102 "new-interface-syns-counted"
check_range $((syns - drops)) 10 14 "new-interface-rate-limited"

# --- an interface that does not match tap*
lab_exec host ip link add other0 type veth peer name other1
lab_exec host ip link set other0 up
lab_exec host ip link set other1 up
sleep 2
check_eq "$(lab_sgd_attached other0)" "" "non-matching-interface-left-alone"

# --- a VM removed while the daemon runs
lines=$(wc -l <"$LOG")
lab_del_vm vm2
if wait_for 5 sh -c "tail -n +$((lines + 1)) '$LOG' | grep -q 'tap-vm2'"; then
	pass "removed-interface-logged"
	echo "# log: $(tail -n +$((lines + 1)) "$LOG" | grep 'tap-vm2' | head -n 1)"
else
	fail "removed-interface-logged" "no line naming tap-vm2 in the log within 5 s of its removal"
fi
sleep 1
if kill -0 "$PID" 2>/dev/null; then pass "daemon-survives-removal"
else fail "daemon-survives-removal" "smtpguardd exited: $(tail -n 3 "$LOG")"; fi
check_delivered "others-unaffected-by-removal" vm1 "$LAB_MX4"
check_refused "others-still-enforced-after-removal" vm3 "$LAB_MX4"

# --- the removed VM returns (a new ifindex, the same name) and is attached again
lab_ctl main policy add "$VM2/32" block || fail policy-add-2 "exit $?"
lab_add_vm vm2 || e2e_abort "cannot re-add vm2"
if wait_for 5 lab_sgd_attached tap-vm2; then pass "readded-interface-attached"
else fail "readded-interface-attached" "tap-vm2 not attached within 5 s of its return"; fi
lab_wait_reachable vm2 || fail "vm2-reachable" "vm2 cannot reach the MX"
check_refused "readded-interface-enforced" vm2 "$LAB_MX4"

if kill -0 "$PID" 2>/dev/null; then pass "daemon-alive-at-end"
else fail "daemon-alive-at-end" "smtpguardd exited: $(tail -n 3 "$LOG")"; fi
check_eq "$(grep -cE '^smtpguardd: (error|fatal)' "$LOG")" 0 "no-errors-logged"

e2e_finish
