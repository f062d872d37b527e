#!/usr/bin/env bash
# test_non_smtp.sh - only TCP to the configured SMTP ports is touched: a
# blocked VM still moves bulk TCP (iperf3 to port 8080 on the MX, IPv4 and
# IPv6), speaks SMTP on a non-SMTP port (smtp-sink on 2525), and receives
# mail itself (the MX connecting to the VM's port 25: the VM's replies come
# from port 25, they are not outbound SMTP). smtp_ports decides what SMTP is.
#   bash selftests/e2e/test_non_smtp.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin non_smtp "${1:-}" 150

VM1=$(lab_vm_ip4 vm1)

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
lab_start_mx_iperf 8080 || e2e_abort "iperf3 server did not start"
lab_start_mx_sink 2525 || e2e_abort "smtp-sink on 2525 did not start"
lab_start_smtpguardd main default_action=block smtp_ports="25 587" ||
	e2e_abort "smtpguardd did not start"

# iperf3_gbps NODE ADDR [EXTRA...]: Gbit/s received, "" on failure
iperf3_gbps() {
	local node=$1 addr=$2; shift 2
	lab_exec "$node" timeout 20 iperf3 -c "$addr" -p 8080 -t 2 -J "$@" 2>/dev/null |
		jq -r '.end.sum_received.bits_per_second / 1e9 | floor' 2>/dev/null
}

# every VM is blocked (default_action = block, and vm1 by policy too)
lab_ctl main policy add 192.0.2.0/24 block || fail policy-add "exit $?"
check_refused "smtp-25-blocked" vm1 "$LAB_MX4"
check_refused "smtp-587-blocked" vm1 "$LAB_MX4" 587
n0=$(stat_get main non_smtp)

g=$(iperf3_gbps vm1 "$LAB_MX4")
check_ge "$g" 1 "blocked-vm-bulk-tcp-8080-v4-gbps"
echo "# iperf3 v4 through the classifier: $g Gbit/s"
g=$(iperf3_gbps vm1 "$LAB_MX6")
check_ge "$g" 1 "blocked-vm-bulk-tcp-8080-v6-gbps"
g=$(iperf3_gbps vm1 "$LAB_MX4" -R)
check_ge "$g" 1 "blocked-vm-bulk-tcp-8080-reverse"
check_gt "$(stat_get main non_smtp)" "${n0:-0}" "stats-non-smtp-counts"

if send_mail vm1 "$LAB_MX4" 2525; then pass "blocked-vm-smtp-dialogue-on-port-2525"
else fail "blocked-vm-smtp-dialogue-on-port-2525" "$(echo "$MAIL_OUT" | grep -E '^\*\*\*' | head -n 2)"; fi

# inbound: the MX delivers to an SMTP server in the blocked VM
lab_exec vm1 smtp-sink -u nobody -c "$VM1:25" 64 >"$LAB_DIR/vm1-sink.log" 2>&1 &
wait_for 5 sh -c "nsenter --net=/run/netns/${E2E_PREFIX}vm1 ss -Hltn '( sport = :25 )' | grep -q ." ||
	fail "vm1-smtp-sink" "smtp-sink in vm1 did not start"
if send_mail mx "$VM1" 25; then pass "inbound-smtp-to-blocked-vm"
else fail "inbound-smtp-to-blocked-vm" "$(echo "$MAIL_OUT" | grep -E '^\*\*\*' | head -n 2)"; fi

# smtp_ports decides: with 2525 only, 25 passes and 2525 is blocked
lab_stop_smtpguardd main || fail "stops" "needed SIGKILL"
lab_start_smtpguardd main default_action=block smtp_ports=2525 ||
	e2e_abort "smtpguardd did not restart with smtp_ports = 2525"
check_delivered "port-25-untouched-when-not-listed" vm1 "$LAB_MX4"
check_refused "port-2525-blocked-when-listed" vm1 "$LAB_MX4" 2525

e2e_finish
