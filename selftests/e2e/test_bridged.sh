#!/usr/bin/env bash
# test_bridged.sh - the proxy on a bridged host (the VMs' taps and the uplink
# are ports of a Linux bridge, the host routes nothing), with br_netfilter
# off and on: a scan VM's session is steered to the proxy and relayed from
# the VM's own address (IPv4 and IPv6), a spam message is refused before the
# MX commits it, and an exempt VM is bridged untouched; an IPv6 sender is
# counted under (port, /64) by the classifier and the proxy alike. (A frame
# steered on a bridge port is addressed to the bridge, or the bridge
# forwards it on; with br_netfilter on, the bridge's own program assigns
# its socket again.)
#   bash selftests/e2e/test_bridged.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin bridged "${1:-}" 240

MX4=$LAB_MX4
MX6=$LAB_MX6
VM2=$(lab_vm_ip4 vm2)

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_make_bridged || e2e_abort "the bridged host could not be set up"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
printf 'offer body /forbidden-offer-[0-9]+/i\n' > "$LAB_DIR/content.rules"
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 uplink=uplink0 \
	content_rules="$LAB_DIR/content.rules" || e2e_abort "smtpguardd did not start"
check_contains "$(cat "$(lab_sgd_log main)")" "tap-vm1 is a bridge port" "bridge-port-recognised"
check_contains "$(cat "$(lab_sgd_log main)")" "uplink0 is a bridge port" "bridged-uplink-recognised"
check_contains "$(cat "$(lab_sgd_log main)")" "attached bridge to br0" "bridge-program-attached"
lab_ctl main policy add "$VM2/32" exempt >/dev/null || fail policy-exempt "exit $?"

for brnf in 0 1; do
	if ! lab_exec host sysctl -qw net.bridge.bridge-nf-call-iptables=$brnf \
		net.bridge.bridge-nf-call-ip6tables=$brnf 2>/dev/null; then
		fail "br_netfilter-$brnf" "net.bridge.bridge-nf-call-iptables cannot be set here"
		continue
	fi
	st0=$(stat_get main steered)
	check_delivered "brnf$brnf-scan-v4-through-proxy-mx-sees-vm" vm1 "$MX4"
	check_gt "$(stat_get main steered)" "${st0:-0}" "brnf$brnf-scan-v4-steered"
	check_contains "$MAIL_OUT" "queued as" "brnf$brnf-vm-gets-mx-queue-id"
	st0=$(stat_get main steered)
	check_delivered "brnf$brnf-scan-v6-through-proxy-mx-sees-vm" vm1 "$MX6"
	check_gt "$(stat_get main steered)" "${st0:-0}" "brnf$brnf-scan-v6-steered"
	n0=$(lab_mx_count_mail)
	send_mail vm1 "$MX4" 25 5 --body "forbidden-offer-$brnf inside"
	check_contains "$MAIL_OUT" "550 5.7.1" "brnf$brnf-spam-refused"
	sleep 1
	check_eq "$(lab_mx_count_mail)" "$n0" "brnf$brnf-spam-not-at-mx"
	st0=$(stat_get main steered)
	check_delivered "brnf$brnf-exempt-bridged-directly" vm2 "$MX4"
	check_eq "$(stat_get main steered)" "${st0:-0}" "brnf$brnf-exempt-not-steered"
done

# an IPv6 sender on a bridge port is (port, /64): the classifier's state and
# the proxy's feedback are kept under the same key (smtpguardctl in the
# host's namespace, where tap-vm1 names the port)
v6_field() {
	lab_exec host timeout 20 "${SG_CTL:-$LAB_BUILD/smtpguardctl}" --root "$(lab_sgd_root main)" \
		--json show "$(lab_vm_ip6 vm1)%tap-vm1" 2>/dev/null | jq -r ".$1 // empty"
}
check_ge "$(v6_field syns)" 2 "v6-sender-keyed-by-port-in-the-kernel"
check_ge "$(v6_field sessions)" 2 "v6-sender-keyed-by-port-in-the-proxy"

e2e_finish
