#!/usr/bin/env bash
# test_proxy.sh - the transparent proxy's steering, end to end: a scan VM's
# SMTP session is taken over on the host (TC + SOCKMAP + sk_assign), relayed
# to the real MX from the VM's own address (the MX's replies come back over
# the uplink to the proxy), an exempt VM never reaches the proxy, and when
# the proxy is killed new connections follow the fail mode from the next SYN.
#   bash selftests/e2e/test_proxy.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin proxy "${1:-}" 180

MX4=$LAB_MX4
MX6=$LAB_MX6
VM1=$(lab_vm_ip4 vm1)
VM2=$(lab_vm_ip4 vm2)

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 uplink=uplink0 \
	fail_mode=open || e2e_abort "smtpguardd did not start"

check_ok "uplink-attached" lab_exec host sh -c "tc filter show dev uplink0 ingress | grep -q smtpguard_upli"
check_ok "policy-rule-installed" lab_exec host sh -c "ip rule show | grep -q 'fwmark 0x5347 lookup 5347'"
check_ok "policy-rule-v6-installed" lab_exec host sh -c "ip -6 rule show | grep -q 'fwmark 0x5347 lookup 5347'"

# --- a scan VM's mail goes through the proxy; the MX sees the VM's address
st0=$(stat_get main steered)
up0=$(stat_get main uplink_steered)
check_delivered "scan-v4-through-proxy-mx-sees-vm" vm1 "$MX4"
check_gt "$(stat_get main steered)" "${st0:-0}" "scan-syn-steered-to-listener"
check_gt "$(stat_get main uplink_steered)" "${up0:-0}" "mx-replies-steered-to-upstream-socket"
check_contains "$MAIL_OUT" "<-  220" "vm-gets-the-mx-greeting"
check_contains "$MAIL_OUT" "queued as" "vm-gets-the-mx-queue-id"

# --- IPv6 too
st0=$(stat_get main steered)
check_delivered "scan-v6-through-proxy-mx-sees-vm" vm1 "$MX6"
check_gt "$(stat_get main steered)" "${st0:-0}" "scan-v6-syn-steered"

# --- an exempt VM never reaches the proxy
lab_ctl main policy add "$VM2/32" exempt || fail policy-add-exempt "exit $?"
st0=$(stat_get main steered)
check_delivered "exempt-delivers-directly" vm2 "$MX4"
check_eq "$(stat_get main steered)" "${st0:-0}" "exempt-not-steered"

# --- no TIME_WAIT of a proxied 4-tuple stays on the host: it would take the
# packets of the VM's later direct flow with the same 4-tuple (early demux),
# and the host would drop them for 60 s. The same VM port, proxied and then
# direct, must go through at once.
# greet_from_port NODE PORT: the MX's greeting to a session from that local
# port (SO_REUSEADDR, so that the VM's own TIME_WAIT is reused: tcp_tw_reuse)
greet_from_port() {
	lab_exec "$1" timeout 10 perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => 25,
			LocalPort => $ARGV[1], ReuseAddr => 1, Timeout => 8) or die "connect: $!\n";
		my $l = <$s>; print $l; print $s "QUIT\r\n"; <$s>;' "$MX4" "$2" 2>&1
}
lab_ctl main policy add "$VM2/32" scan || fail policy-add-scan "exit $?"
st0=$(stat_get main steered)
check_contains "$(greet_from_port vm2 40025)" "220 " "same-port-proxied"
check_gt "$(stat_get main steered)" "${st0:-0}" "same-port-proxied-steered"
sleep 1.5	# the VM's own TIME_WAIT may be reused after 1 s
tw=$(lab_exec host ss -Htan state time-wait "( sport = :40025 or dport = :40025 )" | wc -l)
check_eq "$tw" 0 "proxy-leaves-no-time-wait-on-host"
lab_ctl main policy add "$VM2/32" exempt || fail policy-add-exempt-2 "exit $?"
t0=$(ms_now)
check_contains "$(greet_from_port vm2 40025)" "220 " "same-port-direct-after-proxy"
check_le "$(( $(ms_now) - t0 ))" 3000 "same-port-direct-after-proxy-at-once"

# --- the proxy killed: fail open from the next SYN on, nothing lost
pid=$(lab_sgd_pid main)
kill -9 "$pid" 2>/dev/null
wait_for_exit "$pid" 10 || fail proxy-killed "smtpguardd $pid still runs"
fo0=$(stat_get main fail_open)
check_delivered "fail-open-delivers-directly" vm1 "$MX4"
check_gt "$(stat_get main fail_open)" "${fo0:-0}" "fail-open-counted"

# --- restarted: the proxy takes over again
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 uplink=uplink0 \
	fail_mode=closed || e2e_abort "smtpguardd did not restart"
st0=$(stat_get main steered)
check_delivered "restarted-proxy-takes-over" vm1 "$MX4"
check_gt "$(stat_get main steered)" "${st0:-0}" "restarted-proxy-steers"

# --- the proxy killed mid-DATA: the MX never gets the dot, delivers nothing
n0=$(lab_mx_count_mail)
lab_exec vm1 timeout 20 bash -c "exec 3<>/dev/tcp/$MX4/25; printf 'EHLO vm1\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@$LAB_MAIL_DOMAIN>\r\nDATA\r\n' >&3; sleep 1; printf 'Subject: killed-mid-data\r\n\r\nfirst half\r\n' >&3; sleep 3; printf 'second half\r\n.\r\nQUIT\r\n' >&3 2>/dev/null; timeout 3 cat <&3 >/dev/null 2>&1; exit 0" &
client=$!
sleep 2
pid=$(lab_sgd_pid main)
kill -9 "$pid" 2>/dev/null
wait_for_exit "$pid" 10 || fail proxy-killed-2 "smtpguardd $pid still runs"
wait "$client" 2>/dev/null
sleep 2
check_eq "$(lab_mx_count_mail)" "$n0" "proxy-killed-mid-data-nothing-delivered"
check_fails "proxy-killed-mid-data-no-half-message" lab_mx_find_mail "killed-mid-data"

# --- fail closed: with the proxy gone, new connections are refused at once
fc0=$(stat_get main fail_closed)
check_refused "fail-closed-refuses" vm1 "$MX4"
check_le "$MAIL_MS" 2500 "fail-closed-refuses-at-once"
check_gt "$(stat_get main fail_closed)" "${fc0:-0}" "fail-closed-counted"
fc0=$(stat_get main fail_closed)
check_refused "fail-closed-refuses-v6" vm1 "$MX6"
check_le "$MAIL_MS" 2500 "fail-closed-refuses-v6-at-once"
check_gt "$(stat_get main fail_closed)" "${fc0:-0}" "fail-closed-v6-counted"

# --- the fail mode changed at run time with smtpguardctl
check_eq "$(lab_ctl main fail-mode)" closed "fail-mode-shows-closed"
lab_ctl main fail-mode open || fail fail-mode-set "exit $?"
check_eq "$(lab_ctl main fail-mode)" open "fail-mode-set-open"
fo0=$(stat_get main fail_open)
check_delivered "fail-mode-open-at-run-time-delivers" vm1 "$MX4"
check_gt "$(stat_get main fail_open)" "${fo0:-0}" "fail-mode-open-at-run-time-counted"
lab_ctl main fail-mode sideways 2>/dev/null
check_eq "$?" 2 "fail-mode-bad-value-exit-2"

# --- the MX unreachable: the VM gets a 421 from the proxy, not a hang
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=1 uplink=uplink0 \
	connect_timeout=2s relay_ip4=198.51.100.2 smtp_ports=25,2525 ||
	e2e_abort "smtpguardd did not restart"

# --- the MX refuses the connection (nothing listens on 2525 there): the VM
# gets a 421 naming the reason at once, not after the connect timeout; its
# QUIT after the 421 is answered 221, so it closes first at once (swaks
# waits for that answer: unanswered, it waited out the 2 s drain grace) and
# no TIME_WAIT of the proxied 4-tuple stays on the host
send_mail vm1 "$MX4" 2525 10
check_contains "$MAIL_OUT" "421 4.4.1 smtpguard: the MX is not reachable (Connection refused)" \
	"refused-mx-gets-421"
check_contains "$MAIL_OUT" "<-  221 2.0.0 smtpguard: closing the connection" \
	"refused-mx-quit-answered"
check_le "$MAIL_MS" 1500 "refused-mx-421-at-once"
check_eq "$(lab_exec host ss -Htan state time-wait "( sport = :2525 or dport = :2525 )" | wc -l)" 0 \
	"refused-mx-no-time-wait-on-host"

# --- a fail mode set at run time holds over a reload (SIGHUP) that does not
# change the file's own fail_mode
lab_ctl main fail-mode closed >/dev/null || fail fail-mode-closed-set "exit $?"
reloads=$(grep -c "reloaded the settings" "$(lab_sgd_log main)")
kill -HUP "$(lab_sgd_pid main)"
wait_for 10 sh -c "[ \$(grep -c 'reloaded the settings' '$(lab_sgd_log main)') -gt $reloads ]" ||
	fail fail-mode-reload "no reload logged"
check_eq "$(lab_ctl main fail-mode)" closed "fail-mode-set-at-run-time-holds-over-reload"
lab_ctl main fail-mode open >/dev/null

# --- smtpguardd stopped (SIGTERM) under a live session: the VM hears why
lab_exec vm1 timeout 10 bash -c "exec 3<>/dev/tcp/$MX4/25; printf 'EHLO vm1\r\n' >&3; timeout 8 cat <&3" \
	>"$LAB_DIR/goodbye.out" 2>/dev/null &
client=$!
sleep 1
lab_stop_smtpguardd main
wait "$client" 2>/dev/null
check_contains "$(cat "$LAB_DIR/goodbye.out")" "421 4.3.2 smtpguard: shutting down; try again later" \
	"stopped-daemon-tells-the-vm"
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=1 uplink=uplink0 \
	connect_timeout=2s relay_ip4=198.51.100.2 smtp_ports=25,2525 ||
	e2e_abort "smtpguardd did not restart"

# --- out of descriptors: the sessions over the limit get 421 4.3.2 at once,
# the ones held are untouched, and new sessions work once some end
lab_ctl main rate-class set many --conn 1000/s --burst 1000 >/dev/null
lab_ctl main policy add "$VM1/32" scan --class many >/dev/null
pid=$(lab_sgd_proxy_pid main)
# as the proxy's own user: prlimit(2) on another user's process needs
# CAP_SYS_RESOURCE, which a container's root may lack
setpriv --reuid=nobody --regid=nogroup --clear-groups prlimit --pid "$pid" --nofile=70: ||
	fail fd-limit-lowered "prlimit failed"
hold=$(lab_exec vm1 timeout 30 "$LAB_BUILD/bench/smtp_hold" -n 40 -t 2 -w 5 "$MX4:25" 2>&1 </dev/null)
held=$(echo "$hold" | grep -oE 'held=[0-9]+' | head -n 1 | cut -d= -f2)
check_gt "${held:-0}" 5 "fd-limit-some-sessions-held"
check_le "${held:-99}" 30 "fd-limit-not-all-sessions-held"
check_contains "$hold" "421 4.3.2 smtpguard: this host has too many SMTP sessions open" \
	"fd-limit-vm-told-host-is-busy"
check_contains "$(cat "$(lab_sgd_log main)")" "out of file descriptors" "fd-limit-logged"
check_le "$(grep -c 'out of file descriptors' "$(lab_sgd_log main)")" 4 "fd-limit-warning-not-flooded"
check_delivered "fd-limit-new-session-after-release" vm1 "$MX4"
prlimit --pid "$pid" --nofile=20000: 2>/dev/null || prlimit --pid "$pid" --nofile=4096: 2>/dev/null

# check_relay_ip_delivered NAME MX RECEIVED_RE: a message from vm1 to MX
# reaches the mailbox, and the MX's Received line names the delivery address
check_relay_ip_delivered() {
	local name=$1 mx=$2 want=$3
	if send_mail vm1 "$mx" 25 5 && wait_for 10 lab_mx_find_mail "$MAIL_TOKEN"; then
		pass "$name-delivered"
		check_ok "$name-mx-sees-delivery-address" \
			grep -qiE "^Received: from .*$want" "$(lab_mx_find_mail "$MAIL_TOKEN")"
	else
		fail "$name-delivered" "$(echo "$MAIL_OUT" | tail -n 5)"
	fi
}

# --- source mode relay-ip: the MX sees the provider's delivery address
lab_exec host ip addr add 198.51.100.2/24 dev uplink0 2>/dev/null
lab_ctl main policy add "$VM1/32" scan --source relay-ip || fail policy-relay-ip "exit $?"
st0=$(stat_get main steered)
check_relay_ip_delivered relay-ip "$MX4" '\[198\.51\.100\.2\]'
check_gt "$(stat_get main steered)" "${st0:-0}" "relay-ip-went-through-the-proxy"
# no relay_ip6: an IPv6 session of a relay-ip sender is deferred, not sent as the VM
lab_ctl main policy add "$(lab_vm_ip6 vm1)/128" scan --source relay-ip || fail policy-relay-ip6 "exit $?"
send_mail vm1 "$MX6" 25 5
check_contains "$MAIL_OUT" "421 4.4.1" "relay-ip-without-address-deferred"
check_contains "$(cat "$(lab_sgd_log main)")" "no relay_ip6 is configured" "relay-ip-without-address-logged"
# with relay_ip6: the MX sees the provider's IPv6 delivery address
lab_exec host ip -6 addr add 2001:db8:2::2/64 dev uplink0 nodad 2>/dev/null
lab_stop_smtpguardd main
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=1 uplink=uplink0 \
	connect_timeout=2s relay_ip4=198.51.100.2 relay_ip6=2001:db8:2::2 smtp_ports=25,2525 ||
	e2e_abort "smtpguardd did not restart"
lab_ctl main policy add "$(lab_vm_ip6 vm1)/128" scan --source relay-ip >/dev/null ||
	fail policy-relay-ip6-again "exit $?"
check_relay_ip_delivered relay-ip6 "$MX6" '\[IPv6:2001:db8:2::2\]'
lab_ctl main policy del "$(lab_vm_ip6 vm1)/128" >/dev/null
lab_ctl main policy del "$VM1/32" >/dev/null
lab_exec mx ip link set dev eth0 down 2>/dev/null || lab_exec mx sh -c 'for i in /sys/class/net/*; do n=${i##*/}; [ "$n" = lo ] || ip link set dev "$n" down; done'
send_mail vm1 "$MX4" 25 10
check_contains "$MAIL_OUT" "421" "unreachable-mx-gets-421"
check_le "$MAIL_MS" 8000 "unreachable-mx-421-within-connect-timeout"
# a VM that gives up (FIN) while the MX is still being dialled: the session
# ends, and the worker does not spin on the half-closed socket meanwhile
pid=$(lab_sgd_proxy_pid main)
cpu0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
lab_exec vm1 timeout 5 bash -c "exec 3<>/dev/tcp/$MX4/25; exec 3>&-" 2>/dev/null
sleep 2.5
cpu1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
check_le "$((cpu1 - cpu0))" 30 "vm-gone-while-connecting-no-busy-loop"

e2e_finish
