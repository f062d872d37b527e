#!/usr/bin/env bash
# test_policy.sh - each policy action end to end, with swaks in the VMs and a
# real Postfix on the MX: exempt, block, passthrough, scan, the default action
# for unmatched sources, longest-prefix match, IPv6, and refuse = drop vs rst.
#   bash selftests/e2e/test_policy.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin policy "${1:-}" 180

MX4=$LAB_MX4
MX6=$LAB_MX6
VM1=$(lab_vm_ip4 vm1)
VM2=$(lab_vm_ip4 vm2)
VM2_6=$(lab_vm_ip6 vm2)

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
# Unmatched sources are blocked, so that the default action is observable.
lab_start_smtpguardd main default_action=block refuse=drop ||
	e2e_abort "smtpguardd did not start"

check_eq "$(lab_sgd_attached tap-vm1)" tc "attached-tc-tap-vm1"
check_eq "$(lab_sgd_attached tap-vm2)" tc "attached-tc-tap-vm2"

# --- default action, no policy at all: vm2 is blocked by default_action = block
b0=$(stat_get main blocked)
check_refused "default-action-block-unmatched-v4" vm2 "$MX4"
# refuse = drop: the SYN is silently dropped, swaks waits for its 3 s timeout
check_ge "$MAIL_MS" 2500 "refuse-drop-times-out"
check_gt "$(stat_get main blocked)" "${b0:-0}" "stats-blocked-counts-default-block"
# maps.h: syn_drops counts SYNs "refused (rate, penalty, block)"
check_gt "$(show_get main "$VM2" syn_drops)" 0 "show-syn-drops-of-blocked-source"
check_eq "$(stat_get main rst_sent)" 0 "refuse-drop-sends-no-rst"

# --- exempt
lab_ctl main policy add "$VM1/32" exempt || fail policy-add-exempt "exit $?"
e0=$(stat_get main exempt)
check_delivered "exempt-delivers-v4-mx-sees-vm-ip" vm1 "$MX4"
check_gt "$(stat_get main exempt)" "${e0:-0}" "stats-exempt-counts"

# --- explicit block
lab_ctl main policy add "$VM2/32" block || fail policy-add-block "exit $?"
b0=$(stat_get main blocked)
check_refused "block-refused-v4" vm2 "$MX4"
check_refused "block-refused-v4-port-587" vm2 "$MX4" 587
check_gt "$(stat_get main blocked)" "${b0:-0}" "stats-blocked-counts"
check_eq "$(lab_mx_count_mail)" 1 "blocked-mail-never-reached-mx"

# --- passthrough
lab_ctl main policy del "$VM2/32" || fail policy-del "exit $?"
lab_ctl main policy add "$VM2/32" passthrough || fail policy-add-passthrough "exit $?"
p0=$(stat_get main passthrough)
check_delivered "passthrough-delivers-v4" vm2 "$MX4"
check_gt "$(stat_get main passthrough)" "${p0:-0}" "stats-passthrough-counts"

# --- scan (within rate)
lab_ctl main policy del "$VM2/32" || fail policy-del "exit $?"
lab_ctl main policy add "$VM2/32" scan || fail policy-add-scan "exit $?"
s0=$(stat_get main scan)
check_delivered "scan-delivers-v4" vm2 "$MX4"
check_gt "$(stat_get main scan)" "${s0:-0}" "stats-scan-counts"

# --- policy list shows what was set
pl=$(ctl_json main policy list 2>&1)
check_eq "$(echo "$pl" | jq -r --arg p "$VM1/32" '.[] | select(.prefix == $p) | .action' 2>/dev/null)" \
	exempt "policy-list-json-exempt"
check_eq "$(echo "$pl" | jq -r --arg p "$VM2/32" '.[] | select(.prefix == $p) | .action' 2>/dev/null)" \
	scan "policy-list-json-scan"

# --- longest prefix wins: /24 block under the /32 exempt of vm1
lab_ctl main policy del "$VM2/32" || fail policy-del "exit $?"
lab_ctl main policy add 192.0.2.0/24 block || fail policy-add-net-block "exit $?"
check_delivered "lpm-host-exempt-beats-net-block" vm1 "$MX4"
check_refused "lpm-net-block-applies" vm2 "$MX4"

# --- IPv6: the default applies, then a /64 exempt, then a /128 block in it
check_refused "default-action-block-unmatched-v6" vm1 "$MX6"
lab_ctl main policy add 2001:db8:1::/64 exempt || fail policy-add-v6 "exit $?"
check_delivered "exempt-delivers-v6-mx-sees-vm-ip" vm1 "$MX6"
lab_ctl main policy add "$VM2_6/128" block || fail policy-add-v6-block "exit $?"
b0=$(stat_get main blocked)
check_refused "block-refused-v6" vm2 "$MX6"
check_gt "$(stat_get main blocked)" "${b0:-0}" "stats-blocked-counts-v6"
check_delivered "exempt-v6-neighbour-unaffected" vm1 "$MX6" 587

# --- refuse = rst: restart with it; a blocked SYN is answered with an RST at once
lab_stop_smtpguardd main || fail "daemon-stops-on-sigterm" "needed SIGKILL"
lab_start_smtpguardd main default_action=block refuse=rst ||
	e2e_abort "smtpguardd did not restart with refuse = rst"
r0=$(stat_get main rst_sent)
if send_mail vm2 "$MX4" 25 5; then
	fail "refuse-rst-refused" "blocked vm2 delivered"
else
	check_contains "$MAIL_OUT" "refused" "refuse-rst-connection-refused"
	check_le "$MAIL_MS" 1500 "refuse-rst-immediate"
fi
check_eq "$(lab_tcp_probe vm2 "$MX6" 25 3)" refused "refuse-rst-v6"
check_gt "$(stat_get main rst_sent)" "${r0:-0}" "stats-rst-sent-counts"
check_delivered "refuse-rst-exempt-still-delivers" vm1 "$MX4"

e2e_finish
