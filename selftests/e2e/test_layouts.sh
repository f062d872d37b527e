#!/usr/bin/env bash
# test_layouts.sh - each hypervisor's interface plumbing (lab/layouts.sh:
# libvirt bridged, NAT and routed; Proxmox VE with and without its
# firewall bridge; OpenStack linuxbridge and OVS hybrid; libvirt's macvtap)
# with smtpguardd's
# default `interfaces` patterns: it attaches to the VMs' own interfaces and
# to nothing else (not fwpr/fwln, qvb/qvo, the uplink: a frame counted
# twice would be charged twice), a VM's mail on port 25 is classified
# (delivered, counted) and a blocked VM is refused.
#   bash selftests/e2e/test_layouts.sh build [LAYOUT...]
source "$(dirname "$0")/lib.sh"
source "$E2E_REPO/lab/layouts.sh"
e2e_begin layouts "${1:-}" 420
layouts=("${@:2}")
[ ${#layouts[@]} -gt 0 ] || read -ra layouts <<<"$LAYOUT_LIST"

PRIO=21319	# SG_TC_PRIORITY (0x5347)
DEFAULT_IFACES=$("$LAB_BUILD/smtpguardd" --list-keys 2>/dev/null |
	sed -n 's/^interfaces = \(.*\)  (reload.*/\1/p')
[ -n "$DEFAULT_IFACES" ] || e2e_abort "smtpguardd --list-keys shows no default for interfaces"

# the interfaces of the host with our classifier at TC ingress, or at TC
# egress (DIR), sorted
classified_ifaces() {
	local dir=${1:-ingress} ifc
	for ifc in $(lab_exec host ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
		lab_exec host tc filter show dev "$ifc" "$dir" pref "$PRIO" 2>/dev/null |
			grep -q 'name smtpguard_tc' && echo "$ifc"
	done | sort | tr '\n' ' '
}

for layout in "${layouts[@]}"; do
	short=$(echo "$layout" | tr -d '_' | cut -c1-10)
	layout_up "${E2E_PREFIX}${short}-" "$layout" || { fail "$layout-up" "layout_up failed"; continue; }
	if ! lab_start_mx_postfix; then
		fail "$layout-mx" "Postfix did not start on the MX"; lab_down "$LAB_PREFIX"; continue
	fi
	# the defaults of the table, written out: the patterns under test
	if ! lab_start_smtpguardd main default_action=passthrough interfaces="${DEFAULT_IFACES:-tap* vnet*}"; then
		fail "$layout-start" "smtpguardd did not start"; lab_down "$LAB_PREFIX"; continue
	fi
	want=$(printf '%s\n' "${LAYOUT_VM_IF[vm1]}" "${LAYOUT_VM_IF[vm2]}" | sort | tr '\n' ' ')
	if [ "$layout" = macvtap ]; then
		# the VM's frames are transmitted on its macvtap: egress, not ingress
		check_eq "$(classified_ifaces egress)" "$want" "$layout-attached-at-egress-of-the-vms-macvtaps-only"
		check_eq "$(classified_ifaces ingress)" "" "$layout-attached-at-no-ingress"
	else
		check_eq "$(classified_ifaces)" "$want" "$layout-attached-to-the-vms-interfaces-only"
	fi
	lab_ctl main policy add "${LAYOUT_VM_IP[vm2]}/32" block >/dev/null ||
		fail "$layout-policy" "policy add failed"

	p0=$(stat_get main passthrough); s0=$(stat_get main smtp_syn)
	if send_mail vm1 "$LAB_MX4" 25 5 && wait_for 10 lab_mx_find_mail "$MAIL_TOKEN"; then
		pass "$layout-vm1-mail-delivered"
		f=$(lab_mx_find_mail "$MAIL_TOKEN")
		seen=$([ "$layout" = libvirt_nat ] && echo "$LAB_HOST_UP4" || echo "${LAYOUT_VM_IP[vm1]}")
		grep -qE "^Received: from .*\[$seen\]" "$f" && pass "$layout-mx-sees-$seen" ||
			fail "$layout-mx-sees-$seen" "$(grep -m1 '^Received:' "$f")"
	else
		fail "$layout-vm1-mail-delivered" "$(echo "$MAIL_OUT" | grep -E '^\*\*\*|<-  [45]' | head -n 2)"
	fi
	check_gt "$(stat_get main smtp_syn)" "${s0:-0}" "$layout-vm1-syn-counted"
	check_gt "$(stat_get main passthrough)" "${p0:-0}" "$layout-vm1-classified-passthrough"
	check_eq "$(show_get main "${LAYOUT_VM_IP[vm1]}" syns)" 1 "$layout-vm1-counted-once"

	b0=$(stat_get main blocked)
	check_refused "$layout-vm2-blocked-refused" vm2 "$LAB_MX4"
	check_gt "$(stat_get main blocked)" "${b0:-0}" "$layout-vm2-block-counted"
	check_eq "$(grep -cE '^smtpguardd: (error|fatal)' "$(lab_sgd_log main)")" 0 "$layout-no-errors"
	lab_stop_smtpguardd main
	lab_down "$LAB_PREFIX"
done

e2e_finish
