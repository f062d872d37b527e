#!/usr/bin/env bash
# test_spoof.sh - the classifier's source check (source_check = auto), on a
# routed and on a bridged host. vm1 sends SYNs to the MX's port 25 with
# vm2's address (raw frames, selftests/tools/raw_syn): they are dropped and
# counted "spoofed", vm2's bucket does not move, and vm2 still sends its
# mail within its limit. vm1 then floods SYNs from thousands of random
# addresses: vm2 and vm3 keep their limits. On the bridged host (where the
# source check learns, or takes source_bindings) an address bound to
# another port is refused to vm1 too, and two VMs in one IPv6 /64 on the
# bridge do not share a bucket. Each check has a control that fails it:
# with source_check = off, the same spoofed SYNs do move vm2's bucket (and
# SPOOF_SOURCE_CHECK=off runs the whole test without the check: it fails).
#   bash selftests/e2e/test_spoof.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin spoof "${1:-}" 300

RAW=$LAB_BUILD/selftests/raw_syn
[ -x "$RAW" ] || e2e_abort "$RAW missing (make all)"
MX4=$LAB_MX4
MX6=$LAB_MX6
VM1=$(lab_vm_ip4 vm1)
VM2=$(lab_vm_ip4 vm2)
VM3=$(lab_vm_ip4 vm3)
VM1_6=$(lab_vm_ip6 vm1)
VM2_6=$(lab_vm_ip6 vm2)
# each VM's limit: 5 connections back to back, one a minute after that
# (the GC every second: its recounts run while the VMs send)
LIMITS=(default_action=passthrough default_conn_rate=1/min default_conn_burst=5 refuse=rst
	source_check="${SPOOF_SOURCE_CHECK:-auto}" gc_interval=1s)

# syns INSTANCE ADDR: the SYNs the classifier counted for ADDR's sender (0:
# none). smtpguardctl runs in the host's namespace, where ADDR%PORT names
# a bridge port.
syns() {
	local n
	n=$(lab_exec host timeout 20 "${SG_CTL:-$LAB_BUILD/smtpguardctl}" \
		--root "$(lab_sgd_root "$1")" --json show "$2" 2>/dev/null | jq -r '.syns // empty')
	echo "${n:-0}"
}

# spoof VM SRC[/LEN] DST COUNT: COUNT SYNs to DST:25 from VM's eth0 with
# source SRC (or random sources in SRC/LEN), to the MAC of its gateway.
spoof() {
	local vm=$1 src=$2 dst=$3 n=$4 out
	out=$(lab_exec "$vm" "$RAW" eth0 "$GW_MAC" "$src" "$dst" 25 "$n" 2>&1)
	case $out in
	"sent=$n") return 0 ;;
	esac
	fail "raw-syn-$vm" "raw_syn sent '$out', want sent=$n"
	return 1
}

# mac_of NODE IFNAME: the interface's MAC address in NODE's namespace
mac_of() {
	lab_exec "$1" ip -o link show dev "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'
}

reloads() { grep -c 'reloaded the settings' "$(lab_sgd_log main)"; }
reloads_above() { [ "$(reloads)" -gt "$1" ]; }

# reload_with KEY=VALUE...: the instance's config rewritten with these keys
# (on top of LIMITS), then SIGHUP, waiting for the reload's last line.
reload_with() {
	local n
	n=$(reloads)
	lab_write_sgd_conf main "${LIMITS[@]}" "$@"
	kill -HUP "$(lab_sgd_pid main)"
	wait_for 10 reloads_above "$n" || fail "reload" "no 'reloaded the settings' after SIGHUP"
}

# spoof_cases LAYOUT: the checks common to both layouts
spoof_cases() {
	local layout=$1 sp0 s2 s3 before
	sp0=$(stat_get main spoofed)
	s2=$(syns main "$VM2")
	spoof vm1 "$VM2" "$MX4" 50
	sleep 0.5
	check_eq "$(( $(stat_get main spoofed) - ${sp0:-0} ))" 50 "$layout-spoofed-syns-counted"
	check_ge "$(lab_exec host timeout 20 "${SG_CTL:-$LAB_BUILD/smtpguardctl}" \
		--root "$(lab_sgd_root main)" --json stats | jq -r '."spoofed@tap-vm1" // 0')" 50 \
		"$layout-spoofed-counted-on-vm1s-interface"
	check_eq "$(syns main "$VM2")" "$s2" "$layout-neighbour-bucket-unchanged"
	check_delivered "$layout-neighbour-still-sends" vm2 "$MX4"

	# a random-source flood: dropped (routed: no route back; bridged:
	# beyond what vm1 may learn), and the neighbours' limits intact
	sp0=$(stat_get main spoofed)
	s2=$(syns main "$VM2")
	s3=$(syns main "$VM3")
	spoof vm1 10.200.0.0/16 "$MX4" 3000
	sleep 1
	check_ge "$(( $(stat_get main spoofed) - ${sp0:-0} ))" 2990 "$layout-flood-spoofed"
	check_eq "$(syns main "$VM2")" "$s2" "$layout-flood-vm2-bucket-unchanged"
	check_eq "$(syns main "$VM3")" "$s3" "$layout-flood-vm3-bucket-unchanged"
	before=$(lab_mx_count_mail)
	check_delivered "$layout-flood-vm2-still-sends" vm2 "$MX4"
	check_delivered "$layout-flood-vm3-still-sends" vm3 "$MX4"
	check_eq "$(lab_mx_count_mail)" "$((before + 2))" "$layout-flood-both-delivered"
}

# --- routed host: the route back to the source must leave by its tap
lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_add_vm vm3 || e2e_abort "vm3 could not be added"
lab_wait_reachable vm3 || e2e_abort "vm3 cannot reach the MX"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
lab_start_smtpguardd main "${LIMITS[@]}" || e2e_abort "smtpguardd did not start"
GW_MAC=$(mac_of host tap-vm1)

check_delivered routed-vm1-own-address vm1 "$MX4"
spoof_cases routed
# vm1's own address, through the same raw path, is not spoofed
sp0=$(stat_get main spoofed)
spoof vm1 "$VM1" "$MX4" 1
sleep 0.5
check_eq "$(stat_get main spoofed)" "${sp0:-0}" "routed-own-address-raw-not-spoofed"

# the control: with the check off, the same spoofed SYNs spend vm2's bucket
reload_with source_check=off
s2=$(syns main "$VM2")
spoof vm1 "$VM2" "$MX4" 20
sleep 0.5
check_eq "$(( $(syns main "$VM2") - s2 ))" 20 "control-check-off-spoofed-syns-hit-vm2"
check_refused control-check-off-vm2-over-its-limit vm2 "$MX4"
lab_stop_smtpguardd main
lab_detach_smtpguardd main --purge
lab_down "$E2E_PREFIX"

# --- bridged host: taps are bridge ports, routes point at the bridge; vm2's
# addresses from source_bindings, vm1 and vm3 learn theirs
lab_up "$E2E_PREFIX" || e2e_abort "lab_up (bridged) failed"
lab_add_vm vm3 || e2e_abort "vm3 could not be added (bridged)"
# vm3's tap joins the bridge as lab_make_bridged's own ports do: without
# the routed host's addresses (192.0.2.1 is the MX's on the bridge)
{ lab_exec host ip addr flush dev tap-vm3 &&
  lab_exec host ip -6 addr flush dev tap-vm3; } || e2e_abort "tap-vm3 could not be cleared"
lab_make_bridged || e2e_abort "the bridged host could not be set up"
{ lab_exec host ip link set tap-vm3 master br0 &&
  lab_exec vm3 ip neigh flush all &&
  lab_exec vm3 ip -6 neigh flush all &&
  lab_wait_reachable vm3; } || e2e_abort "vm3 could not join the bridge"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX (bridged)"
printf '# vm2 is known to the operator\ntap-vm2 %s/32 %s/128\n' "$VM2" "$VM2_6" \
	>"$LAB_DIR/bindings"
LIMITS+=(source_bindings="$LAB_DIR/bindings")
lab_start_smtpguardd main "${LIMITS[@]}" || e2e_abort "smtpguardd did not start (bridged)"
GW_MAC=$(mac_of mx eth0)

check_delivered bridged-vm1-learns-its-address vm1 "$MX4"
check_delivered bridged-vm3-learns-its-address vm3 "$MX4"
check_ge "$(stat_get main learned)" 2 "bridged-addresses-learned"
# an address learned by (or bound to) another port is refused to vm1
l0=$(stat_get main learned)
sp0=$(stat_get main spoofed)
spoof vm1 "$VM3" "$MX4" 5
sleep 0.5
check_eq "$(( $(stat_get main spoofed) - ${sp0:-0} ))" 5 "bridged-vm3-learned-address-refused-to-vm1"
check_eq "$(stat_get main learned)" "$l0" "bridged-vm1-learned-nothing-of-vm3"

# IPv6: vm1 and vm2 share 2001:db8:1::/64 on br0; vm1 spends its bucket,
# vm2's mail still goes (a sender on a bridge port is (port, /64))
for i in 1 2 3 4 5; do
	send_mail vm1 "$MX6" 25 3 >/dev/null
done
check_refused bridged-v6-vm1-over-its-limit vm1 "$MX6"
check_delivered bridged-v6-vm2-same-64-own-bucket vm2 "$MX6"
check_ge "$(syns main "$VM1_6%tap-vm1")" 6 "bridged-v6-vm1-bucket-by-port"
check_eq "$(syns main "$VM2_6%tap-vm2")" 1 "bridged-v6-vm2-bucket-by-port"

spoof_cases bridged

# the control, bridged: with the check off, vm1's SYNs spend vm2's bucket
reload_with source_check=off
s2=$(syns main "$VM2")
spoof vm1 "$VM2" "$MX4" 20
sleep 0.5
check_eq "$(( $(syns main "$VM2") - s2 ))" 20 "bridged-control-check-off-spoofed-syns-hit-vm2"

e2e_finish
