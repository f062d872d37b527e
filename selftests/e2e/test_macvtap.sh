#!/usr/bin/env bash
# test_macvtap.sh - VMs on macvtap (libvirt's <interface type='direct'>),
# whose frames the host transmits on the macvtap and never receives: the
# classifier must work at the macvtap's TC egress (lab/layouts.sh macvtap,
# tap_wire in QEMU's place, a real TCP stack and swaks in each VM).
#  - attached at egress of macvtap0/1, at no ingress, logged as such;
#  - rate limit: the burst is delivered, the next connection is refused
#    with an RST that reaches the VM (back through the macvtap's ingress)
#    at once, and counted; the other VM's limit is untouched;
#  - source check (auto learns on a macvtap): vm1's SYNs with vm2's address
#    are dropped and counted "spoofed", vm2's bucket does not move;
#  - reconcile: the filter deleted from egress is put back;
#  - with the proxy on: the VM's flows cannot be steered at egress; fail
#    open delivers directly (counted fail_open, a warning names the
#    macvtap), fail closed refuses with an RST (fail_closed).
#   bash selftests/e2e/test_macvtap.sh build
source "$(dirname "$0")/lib.sh"
source "$E2E_REPO/lab/layouts.sh"
e2e_begin macvtap "${1:-}" 300

PRIO=21319	# SG_TC_PRIORITY
RAW=$LAB_BUILD/selftests/raw_syn
[ -x "$RAW" ] || e2e_abort "$RAW missing (make all)"
layout_up "$E2E_PREFIX" macvtap || e2e_abort "the macvtap layout could not be built"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
VM1=${LAYOUT_VM_IP[vm1]}
VM2=${LAYOUT_VM_IP[vm2]}
GW_MAC=$(lab_exec mx ip -o link show dev eth1 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')

# filter_on IFNAME ingress|egress: our classifier is there
filter_on() {
	lab_exec host tc filter show dev "$1" "$2" pref "$PRIO" 2>/dev/null | grep -q 'name smtpguard_tc'
}
syns() {
	local n
	n=$(lab_exec host timeout 20 "$LAB_BUILD/smtpguardctl" --root "$(lab_sgd_root main)" \
		--json show "$1" 2>/dev/null | jq -r '.syns // empty')
	echo "${n:-0}"
}
# probe_ms VM: how the VM's connection to the MX's port 25 ends, and in how
# many milliseconds ("refused 3")
probe_ms() {
	local t0 r
	t0=$(ms_now)
	r=$(lab_tcp_probe "$1" "$LAB_MX4" 25 4)
	echo "$r $(($(ms_now) - t0))"
}

lab_start_smtpguardd main interfaces="macvtap*" default_action=passthrough default_conn_rate=1/min \
	default_conn_burst=3 refuse=rst source_check=auto gc_interval=1s ||
	e2e_abort "smtpguardd did not start"
for ifc in macvtap0 macvtap1; do
	filter_on "$ifc" egress && pass "$ifc-classifier-at-egress" ||
		fail "$ifc-classifier-at-egress" "$(lab_exec host tc filter show dev "$ifc" egress)"
	filter_on "$ifc" ingress && fail "$ifc-not-at-ingress" "a filter at ingress too" ||
		pass "$ifc-not-at-ingress"
done
filter_on eno1 ingress || filter_on eno1 egress &&
	fail "lower-device-untouched" "eno1 carries our filter: frames would count twice" ||
	pass "lower-device-untouched"
check_contains "$(cat "$(lab_sgd_log main)")" "attached tc egress to macvtap0" "attach-logged"

# vm2 first: its address is learned on macvtap1
check_delivered "vm2-delivers" vm2 "$LAB_MX4"
check_eq "$(syns "$VM2")" 1 "vm2-one-syn"

# spoofing: vm1 with vm2's address
sp0=$(stat_get main spoofed)
out=$(lab_exec vm1 "$RAW" eth0 "$GW_MAC" "$VM2" "$LAB_MX4" 25 20 2>&1)
check_eq "$out" "sent=20" "vm1-spoof-frames-sent"
wait_for 5 test "$(stat_get main spoofed)" -ge "$((${sp0:-0} + 20))"
check_ge "$(stat_get main spoofed)" "$((${sp0:-0} + 20))" "vm1-spoofed-syns-counted"
check_eq "$(syns "$VM2")" 1 "vm2-bucket-unmoved-by-spoofing"

# vm1's burst of 3, then refused at once with an RST
for i in 1 2 3; do
	check_delivered "vm1-burst-$i-delivered" vm1 "$LAB_MX4"
done
rd0=$(stat_get main rate_dropped); rst0=$(stat_get main rst_sent)
read -r how ms <<<"$(probe_ms vm1)"
check_eq "$how" refused "vm1-over-limit-gets-rst"
check_le "$ms" 1500 "vm1-rst-arrives-at-once-ms"
check_gt "$(stat_get main rate_dropped)" "${rd0:-0}" "vm1-rate-drop-counted"
check_gt "$(stat_get main rst_sent)" "${rst0:-0}" "vm1-rst-counted"
check_delivered "vm2-limit-untouched" vm2 "$LAB_MX4"

# another tool deletes our filter: it is put back at egress
r0=$(stat_get main reattached)
lab_exec host tc filter del dev macvtap0 egress pref "$PRIO"
wait_for 8 filter_on macvtap0 egress
filter_on macvtap0 egress && pass "reconcile-puts-egress-filter-back" ||
	fail "reconcile-puts-egress-filter-back" "macvtap0 egress has no filter after 8 s"
check_gt "$(stat_get main reattached)" "${r0:-0}" "reconcile-counted"
lab_stop_smtpguardd main

# the proxy on: macvtap flows cannot be steered at egress (an instance of
# its own: main's per-source state holds vm1 over its limit)
lab_detach_smtpguardd main --purge
lab_start_smtpguardd px interfaces="macvtap*" default_action=scan proxy=yes proxy_workers=1 \
	uplink=eno1 fail_mode=open source_check=auto || e2e_abort "smtpguardd did not start with the proxy"
check_contains "$(cat "$(lab_sgd_log px)")" "macvtap0 is a macvtap" "proxy-warns-macvtap-not-scanned"
fo0=$(stat_get px fail_open); st0=$(stat_get px steered)
check_delivered "fail-open-delivers-directly" vm1 "$LAB_MX4"
check_gt "$(stat_get px fail_open)" "${fo0:-0}" "fail-open-counted"
check_eq "$(stat_get px steered)" "${st0:-0}" "nothing-steered-at-egress"
lab_stop_smtpguardd px
lab_start_smtpguardd px interfaces="macvtap*" default_action=scan proxy=yes proxy_workers=1 \
	uplink=eno1 fail_mode=closed source_check=auto || e2e_abort "smtpguardd did not start (fail closed)"
fc0=$(stat_get px fail_closed)
read -r how ms <<<"$(probe_ms vm2)"
check_eq "$how" refused "fail-closed-refuses-with-rst"
check_gt "$(stat_get px fail_closed)" "${fc0:-0}" "fail-closed-counted"
check_eq "$(cat "$(lab_sgd_log main)" "$(lab_sgd_log px)" | grep -cE '^smtpguardd: (error|fatal)')" 0 \
	"no-errors"
lab_stop_smtpguardd px

e2e_finish
