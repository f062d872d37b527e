#!/usr/bin/env bash
# test_xdp.sh - the classifier attached with attach = xdp: native on veth,
# block and exempt (IPv4, IPv6), the rate limit, refuse = rst answered from
# XDP, non-SMTP untouched, xdp_mode = generic, and --detach.
# (libxdp may log that its multi-program dispatcher is unavailable on this
# kernel and fall back to a single program: that is fine.)
#   bash selftests/e2e/test_xdp.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin xdp "${1:-}" 180

BURST_TOOL=$LAB_BUILD/selftests/connect_burst
VM1=$(lab_vm_ip4 vm1)
VM2=$(lab_vm_ip4 vm2)
VM2_6=$(lab_vm_ip6 vm2)

# xdp_kind IFACE: xdp (native), xdpgeneric, or "" (none), from the flags
# `ip link` prints after the MTU
xdp_kind() {
	lab_exec host ip link show dev "$1" 2>/dev/null | head -n 1 |
		grep -oE ' (xdp|xdpgeneric|xdpdrv|xdpoffload) ' | tr -d ' '
}
tc_filters() { lab_exec host tc filter show dev "$1" ingress 2>/dev/null | grep -cE ' handle .* id [0-9]+'; }

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
lab_start_smtpguardd main attach=xdp xdp_mode=native default_action=scan ||
	e2e_abort "smtpguardd did not start with attach = xdp"

check_eq "$(xdp_kind tap-vm1)" xdp "xdp-native-attached-tap-vm1"
check_eq "$(xdp_kind tap-vm2)" xdp "xdp-native-attached-tap-vm2"
check_eq "$(tc_filters tap-vm1)" 0 "xdp-mode-no-tc-filter"

lab_ctl main policy add "$VM1/32" exempt || fail policy-add "exit $?"
lab_ctl main policy add "$VM2/32" block || fail policy-add-block "exit $?"
lab_ctl main policy add "$VM2_6/128" block || fail policy-add-block-v6 "exit $?"
b0=$(stat_get main blocked)
check_refused "xdp-block-v4" vm2 "$LAB_MX4"
check_refused "xdp-block-v6" vm2 "$LAB_MX6"
check_gt "$(stat_get main blocked)" "${b0:-0}" "xdp-stats-blocked"
check_delivered "xdp-exempt-delivers" vm1 "$LAB_MX4"
check_delivered "xdp-exempt-delivers-v6" vm1 "$LAB_MX6"
check_ne "$(lab_tcp_probe vm2 "$LAB_MX4" 8080 2)" timeout "xdp-non-smtp-passes"

# the rate limit through XDP: 10/s burst 2, offered 50/s for 3 s -> ~32
lab_ctl main rate-class set x10 --conn 10/s --burst 2 || fail rate-class-set "exit $?"
lab_ctl main policy del "$VM1/32" || fail policy-del "exit $?"
lab_ctl main policy add "$VM1/32" passthrough --class x10 || fail policy-add-class "exit $?"
out=$(lab_exec vm1 timeout 15 "$BURST_TOOL" -r 50 -d 3 "$LAB_MX4" 25)
syns=$(show_get main "$VM1" syns); drops=$(show_get main "$VM1" syn_drops)
echo "# xdp rate: $out; syns=$syns syn_drops=$drops"
check_range "$syns" 148 152 "xdp-rate-syns-seen"
check_range "$((syns - drops))" 30 34 "xdp-rate-limited"

# refuse = rst: the RST goes back out of the VM's interface (XDP_TX). A veth
# delivers XDP_TX frames to its peer only when the peer runs NAPI, i.e. has
# an XDP program itself (a tap hands them to the VM's reader unconditionally):
# lab_vm_xdp_rx gives the VMs' ends an empty XDP program, as a real VM's NIC
# would receive them.
lab_vm_xdp_rx vm2 || fail "xdp-rx-on-vm-veth" "cannot load an XDP program on vm2's eth0"
lab_stop_smtpguardd main || fail "xdp-stops" "needed SIGKILL"
lab_start_smtpguardd main attach=xdp xdp_mode=native default_action=scan refuse=rst ||
	e2e_abort "smtpguardd did not restart with refuse = rst"
check_eq "$(xdp_kind tap-vm1)" xdp "xdp-still-native-after-restart"
r0=$(stat_get main rst_sent)
check_eq "$(lab_tcp_probe vm2 "$LAB_MX4" 25 3)" refused "xdp-refuse-rst-v4"
check_eq "$(lab_tcp_probe vm2 "$LAB_MX6" 25 3)" refused "xdp-refuse-rst-v6"
check_gt "$(stat_get main rst_sent)" "${r0:-0}" "xdp-stats-rst-sent"

# --detach removes the XDP programs
lab_stop_smtpguardd main
check_ok "xdp-detach" lab_detach_smtpguardd main
check_eq "$(xdp_kind tap-vm1)" "" "xdp-detached-tap-vm1"
check_eq "$(xdp_kind tap-vm2)" "" "xdp-detached-tap-vm2"
check_delivered "xdp-detached-unfiltered" vm2 "$LAB_MX4"

# xdp_mode = generic
lab_start_smtpguardd main attach=xdp xdp_mode=generic default_action=scan ||
	e2e_abort "smtpguardd did not start with xdp_mode = generic"
check_eq "$(xdp_kind tap-vm2)" xdpgeneric "xdp-generic-attached"
check_refused "xdp-generic-block" vm2 "$LAB_MX4"
check_delivered "xdp-generic-passthrough-delivers" vm1 "$LAB_MX4"
lab_stop_smtpguardd main
check_ok "xdp-generic-detach-purge" lab_detach_smtpguardd main --purge
check_eq "$(xdp_kind tap-vm2)" "" "xdp-generic-detached"

e2e_finish
