#!/usr/bin/env bash
# test_tenants.sh - tenants by name, end to end (README, "Tenants"): two VMs
# of one tenant (one by its interface, one by its address) share the
# tenant's message limit, the message over it gets 451 naming the tenant
# limit while other tenants' VMs deliver, and an exempt tenant's VM is not
# held by its rate class's message limit; a Proxmox-named tap (tap103i0, a
# tenant tag in the lab's qemu-server/103.conf) and a libvirt vnet (vnet4,
# the lab's live domain XML with our <metadata>) get their tenants through
# the adapters; message and session events carry the tenant, smtpguardctl
# show and tenants tell it; SIGHUP picks up a changed file, and a bad file
# is refused by FILE:LINE (at a reload, which keeps the running one, and at
# a start).
#   bash selftests/e2e/test_tenants.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin tenants "${1:-}" 300

MX4=$LAB_MX4
VM1=$(lab_vm_ip4 vm1)
VM2=$(lab_vm_ip4 vm2)
VM3=$(lab_vm_ip4 vm3)
VM4=$(lab_vm_ip4 vm4)

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_add_vm vm3 tap103i0 || e2e_abort "vm3 (tap103i0) not added"
lab_add_vm vm4 vnet4 || e2e_abort "vm4 (vnet4) not added"
lab_wait_reachable vm3 || e2e_abort "vm3 cannot reach the MX"
lab_wait_reachable vm4 || e2e_abort "vm4 cannot reach the MX"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"

# the hypervisors' files, as Proxmox and libvirt write them
PVE=$LAB_DIR/pve
QEMU=$LAB_DIR/libvirt-qemu
mkdir -p "$PVE/qemu-server" "$PVE/lxc" "$QEMU"
cat >"$PVE/qemu-server/103.conf" <<'EOF'
boot: order=scsi0;net0
cores: 2
memory: 2048
name: globex-web
net0: virtio=BC:24:11:00:01:03,bridge=vmbr0,firewall=0
scsi0: local-lvm:vm-103-disk-0,size=32G
tags: prod;tenant-globex

[before-upgrade]
tags: tenant-someone-else
EOF
cat >"$QEMU/initech-db.xml" <<'EOF'
<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh edit initech-db
or other application using the libvirt API.
-->

<domstatus state='running' reason='booted' pid='4711'>
  <taint flag='high-privileges'/>
  <domain type='kvm' id='4'>
    <name>initech-db</name>
    <uuid>6f1c9a52-3c1e-4b7e-9a1d-0a7c2b7d4e11</uuid>
    <metadata>
      <sg:tenant xmlns:sg="urn:smtpguard:tenant:1">initech</sg:tenant>
    </metadata>
    <memory unit='KiB'>2097152</memory>
    <devices>
      <disk type='file' device='disk'>
        <source file='/var/lib/libvirt/images/initech-db.qcow2'/>
        <target dev='vda' bus='virtio'/>
      </disk>
      <interface type='network'>
        <mac address='52:54:00:00:01:04'/>
        <source network='default'/>
        <target dev='vnet4'/>
        <model type='virtio'/>
        <alias name='net0'/>
      </interface>
    </devices>
  </domain>
</domstatus>
EOF
TENANTS=$LAB_DIR/tenants
cat >"$TENANTS" <<EOF
# acme: vm1 by its interface, vm2 by its address
iface tap-vm1 acme
prefix $VM2/32 acme
tenant acme msgs 2/h
EOF
# root's alone, as on a real host: the daemon reads them, not the proxy's user
chmod 700 "$PVE" "$QEMU"
chmod 644 "$TENANTS"
printf 'offer body /forbidden-offer-[0-9]+/i\n' >"$LAB_DIR/content.rules"
EVENTS=$LAB_DIR/events.json
CONF=$(lab_sgd_conf main)
SGD_ARGS=(default_action=scan proxy=yes proxy_workers=2 uplink=uplink0 interfaces="tap* vnet*"
	content_rules="$LAB_DIR/content.rules" escalation_rejects=1 events_file="$EVENTS" tenants="$TENANTS" tenants_proxmox="$PVE" tenants_libvirt="$QEMU")
lab_start_smtpguardd main "${SGD_ARGS[@]}" || e2e_abort "smtpguardd did not start"
check_match "$(cat "$(lab_sgd_log main)")" \
	"tenants: 1 tenant\(s\), 1 with limits; 1 interface, 1 prefix, 0 VMID line\(s\); Proxmox adapter on $PVE, libvirt adapter on $QEMU" \
	"start-logs-the-tenants"
# the daemon resolves each interface's tenant as root, for the proxy
wait_for 10 grep -q "tenant of vnet4: initech" "$(lab_sgd_log main)"
check_match "$(cat "$(lab_sgd_log main)")" "tenant of tap103i0: globex" "daemon-resolves-proxmox-tap"
check_match "$(cat "$(lab_sgd_log main)")" "tenant of vnet4: initech" "daemon-resolves-libvirt-vnet"
check_match "$(cat "$(lab_sgd_log main)")" "tenant of tap-vm1: acme" "daemon-resolves-iface-line"
check_fails "proxy-user-cannot-read-the-hypervisor-files" \
	setpriv --reuid=nobody --regid=nogroup --clear-groups cat "$PVE/qemu-server/103.conf"

# event_tenant SOURCE_IP EVENT: the tenant of the last such event from it
event_tenant() {
	jq -r --arg src "$1" --arg ev "$2" \
		'select(.event == $ev and (.source | startswith($src + ":"))) | .tenant // "null"' \
		"$EVENTS" 2>/dev/null | tail -n 1
}
# wait_event SOURCE_IP EVENT COUNT: that many such events written
event_count() {
	jq -r --arg src "$1" --arg ev "$2" \
		'select(.event == $ev and (.source | startswith($src + ":"))) | .event' \
		"$EVENTS" 2>/dev/null | wc -l
}
events_at_least() { [ "$(event_count "$1" "$2")" -ge "$3" ]; }
wait_events() { wait_for 10 events_at_least "$@"; }
# log_count_over PATTERN N: the daemon's log has more than N lines with it
log_count_over() { [ "$(grep -c "$1" "$(lab_sgd_log main)")" -gt "$2" ]; }

# --- acme's two VMs share its limit of 2 messages
check_delivered "acme-vm1-first-message" vm1 "$MX4"
check_delivered "acme-vm2-second-message" vm2 "$MX4"
n0=$(lab_mx_count_mail)
send_mail vm1 "$MX4" 25 5
check_match "$MAIL_OUT" "<\*\* 451 4\.7\.1 smtpguard: message refused \(over the message rate of tenant acme \(2, then [^)]*, for all its VMs\)\); ref SG[0-9A-F]+" \
	"acme-third-message-451-names-the-tenant-limit"
send_mail vm2 "$MX4" 25 5
check_match "$MAIL_OUT" "<\*\* 451 4\.7\.1 .*over the message rate of tenant acme" \
	"acme-other-vm-451-too"
sleep 1
check_eq "$(lab_mx_count_mail)" "$n0" "acme-deferred-messages-not-at-mx"
# other tenants' VMs are not held by acme's limit
check_delivered "globex-vm3-unaffected" vm3 "$MX4"
check_delivered "initech-vm4-unaffected" vm4 "$MX4"
# over IPv6 too: the interface of the session's SYN (IPV6_PKTINFO)
check_delivered "initech-vm4-ipv6-delivers" vm4 "$LAB_MX6"
check_delivered "globex-vm3-second-message" vm3 "$MX4"

# --- the events carry the tenant
wait_events "$VM4" session 1
wait_events "[$(lab_vm_ip6 vm4)]" session 1
check_eq "$(event_tenant "$VM1" message)" acme "event-message-vm1-by-interface"
check_eq "$(event_tenant "$VM2" message)" acme "event-message-vm2-by-prefix"
check_eq "$(event_tenant "$VM3" message)" globex "event-message-proxmox-tap-tag"
check_eq "$(event_tenant "$VM4" message)" initech "event-message-libvirt-metadata"
check_eq "$(event_tenant "$VM1" session)" acme "event-session-carries-tenant"
check_eq "$(event_tenant "$VM4" session)" initech "event-session-libvirt-tenant"
check_eq "$(event_tenant "[$(lab_vm_ip6 vm4)]" message)" initech "event-message-ipv6-by-interface"
check_eq "$(jq -r --arg src "$VM1:" 'select(.event == "message" and .verdict == "tempfail" and (.source | startswith($src))) | .tenant' "$EVENTS" | tail -n 1)" \
	acme "event-tempfail-carries-tenant"

# a refusal moves vm3 up the response ladder: its event names the tenant
send_mail vm3 "$MX4" 25 5 --body "get your forbidden-offer-1 today"
check_contains "$MAIL_OUT" "550 5.7.1" "globex-spam-refused"
wait_for 10 grep -q '"event":"ladder","time":"[^"]*","source":"'"$VM3"'"' "$EVENTS"
check_eq "$(jq -r --arg src "$VM3" 'select(.event == "ladder" and .source == $src) | .tenant' "$EVENTS" | tail -n 1)" \
	globex "event-ladder-carries-tenant"

# --- smtpguardctl: show and tenants
check_eq "$(lab_ctl main --json show "$VM1" -c "$CONF" | jq -r .tenant)" acme "ctl-show-json-tenant-by-interface"
check_eq "$(lab_ctl main --json show "$VM3" -c "$CONF" | jq -r .tenant)" globex "ctl-show-json-tenant-proxmox"
check_match "$(lab_ctl main show "$VM4" -c "$CONF")" "tenant: +initech" "ctl-show-text-tenant-libvirt"
TJ=$(lab_ctl main --json tenants -c "$CONF")
check_eq "$(echo "$TJ" | jq -r 'select(.tenant == "acme") | "\(.senders) \(.msgs) \(.tempfails) \(.limits)"')" \
	"2 2 2 msgs 2/h rcpts none" "ctl-tenants-sums-acme"
check_eq "$(echo "$TJ" | jq -r 'select(.tenant == "globex") | "\(.senders) \(.msgs) \(.rejects)"')" "1 2 1" \
	"ctl-tenants-sums-globex"
check_match "$(lab_ctl main tenants -c "$CONF")" "initech +2 +2 +2 +2 +0 +0 +-" "ctl-tenants-table"

# --- SIGHUP: vm2 moves to umbrella, an exempt tenant (no message limits
# in the proxy, not even its rate class's); VM 103 is retagged
lab_ctl main rate-class set tight --conn 100/s --burst 100 --msgs 1/h >/dev/null ||
	fail rate-class-tight "exit $?"
lab_ctl main policy add "$VM2/32" scan --class tight >/dev/null || fail policy-tight "exit $?"
sed -i "s|^prefix $VM2/32 acme|prefix $VM2/32 umbrella|" "$TENANTS"
echo "tenant umbrella exempt" >>"$TENANTS"
sed -i "s|^tags: prod;tenant-globex|tags: prod;tenant-hooli|" "$PVE/qemu-server/103.conf"
log=$(lab_sgd_log main)
r0=$(grep -c 'reloaded the settings' "$log")
kill -HUP "$(lab_sgd_pid main)"
wait_for 30 log_count_over 'reloaded the settings' "$r0" ||
	fail "reload-applied" "no 'reloaded the settings' after SIGHUP"
check_match "$(cat "$log")" "tenant of tap103i0: hooli \(was globex\)" "reload-proxmox-tag-change-logged"
check_eq "$(lab_ctl main --json show "$VM3" -c "$CONF" | jq -r .tenant)" hooli "reload-proxmox-retagged-vm"
check_delivered "reload-vm2-now-umbrella-delivers" vm2 "$MX4"
wait_events "$VM2" session 4
check_eq "$(event_tenant "$VM2" message)" umbrella "reload-event-names-new-tenant"
check_delivered "exempt-tenant-over-its-class-message-rate-delivers" vm2 "$MX4"
send_mail vm1 "$MX4" 25 5
check_match "$MAIL_OUT" "451 4\.7\.1 .*over the message rate of tenant acme" \
	"reload-acme-bucket-kept-over-reload"

# --- a bad file: the reload is refused by FILE:LINE, the running one stays
cp "$TENANTS" "$TENANTS.good"
echo "tenant globex msgs lots" >>"$TENANTS"
k0=$(grep -c 'reload: keeping the running configuration' "$log")
kill -HUP "$(lab_sgd_pid main)"
wait_for 30 log_count_over 'reload: keeping the running configuration' "$k0" ||
	fail "bad-file-reload-refused" "no 'keeping the running configuration' after SIGHUP"
check_match "$(cat "$log")" "tenants: $TENANTS:6: msgs lots: " "bad-file-named-by-file-and-line"
check_delivered "bad-file-old-tenants-still-apply" vm2 "$MX4"
wait_events "$VM2" session 6
check_eq "$(event_tenant "$VM2" message)" umbrella "bad-file-event-keeps-old-tenant"

# --- ... and at a start, no daemon
lab_stop_smtpguardd main
if lab_start_smtpguardd main >/dev/null 2>&1; then
	fail "bad-file-start-refused" "smtpguardd started with a bad tenants file"
	lab_stop_smtpguardd main
else
	pass "bad-file-start-refused"
fi
check_match "$(cat "$log")" "smtpguardd: error: tenants: $TENANTS:6: msgs lots" "bad-file-start-names-file-and-line"
cp "$TENANTS.good" "$TENANTS"
lab_start_smtpguardd main || fail "good-file-starts-again" "smtpguardd did not start"

e2e_finish
