#!/usr/bin/env bash
# test_vm_postfix.sh - real Postfix on both ends through the proxy: the VM's
# Postfix logs the MX's own reply and queue id; a refused message is the
# VM's MTA's to handle (its log shows smtpguard's 550; the MX never has it);
# with the MX down the VM's mail stays queued in the VM (421 from the proxy)
# and is delivered once the MX is back; the proxy killed while the VM's
# Postfix is mid-DATA: the MX commits nothing, the VM retries, and the
# message arrives exactly once: nothing lost, nothing faked.
#   bash selftests/e2e/test_vm_postfix.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin vm_postfix "${1:-}" 240

VM1=$(lab_vm_ip4 vm1)

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
lab_start_vm_postfix vm1 || e2e_abort "Postfix did not start in vm1"
printf 'offer body /forbidden-offer-[0-9]+/i\n' > "$LAB_DIR/content.rules"
lab_start_smtpguardd main default_action=scan proxy=yes uplink=uplink0 \
	content_rules="$LAB_DIR/content.rules" connect_timeout=3s || e2e_abort "smtpguardd did not start"
VMLOG=$(lab_vm_log vm1)

# vm_log_has REGEX: the VM's Postfix log matches
vm_log_has() { grep -qE -- "$1" "$VMLOG" 2>/dev/null; }

# --- a clean message: sent, and the VM's log carries the MX's own queue id
st0=$(stat_get main steered)
lab_vm_sendmail vm1 "clean-$$" || fail vm-sendmail "sendmail failed"
if wait_for 20 vm_log_has "status=sent \(250 2\.0\.0 Ok: queued as [0-9A-F]+\)"; then
	pass "vm-postfix-logs-sent"
	qid=$(grep -oE "status=sent \(250 2\.0\.0 Ok: queued as [0-9A-F]+\)" "$VMLOG" | tail -1 |
		grep -oE "[0-9A-F]+\)$" | tr -d ')')
	check_ok "mx-log-has-the-same-queue-id" grep -q "$qid: client=unknown\[$VM1\]" "$(lab_mx_log)"
else
	fail "vm-postfix-logs-sent" "$(tail -n 3 "$VMLOG" 2>/dev/null)"
fi
check_gt "$(stat_get main steered)" "${st0:-0}" "vm-postfix-session-went-through-the-proxy"

# --- a refused message: the VM's MTA gets 550 from smtpguard, the MX nothing
n0=$(lab_mx_count_mail)
lab_vm_sendmail vm1 "spam-$$" "get your forbidden-offer-77 today" || fail vm-sendmail-2 "sendmail failed"
if wait_for 20 vm_log_has "said: 550 5\.7\.1 smtpguard: message refused"; then
	pass "vm-postfix-logs-smtpguard-550"
else
	fail "vm-postfix-logs-smtpguard-550" "$(tail -n 3 "$VMLOG" 2>/dev/null)"
fi
sleep 1
check_eq "$(lab_mx_count_mail)" "$n0" "refused-message-not-at-mx"

# --- the MX down: deferred in the VM, then delivered when it is back
lab_exec mx timeout 20 postfix -c "$LAB_DIR/postfix-mx/etc" stop >/dev/null 2>&1
sleep 1
n0=$(lab_mx_count_mail)
lab_vm_sendmail vm1 "later-$$" || fail vm-sendmail-3 "sendmail failed"
if wait_for 30 vm_log_has "status=deferred .*421 4\.4\.1 smtpguard: the MX is not reachable"; then
	pass "mx-down-message-deferred-in-vm"
else
	fail "mx-down-message-deferred-in-vm" "$(tail -n 3 "$VMLOG" 2>/dev/null)"
fi
lab_start_mx_postfix || fail mx-restart "Postfix did not start again on the MX"
lab_vm_flush vm1
if wait_for 30 lab_mx_find_mail "later-$$"; then
	pass "deferred-message-delivered-when-mx-is-back"
else
	lab_vm_flush vm1
	wait_for 15 lab_mx_find_mail "later-$$" && pass "deferred-message-delivered-when-mx-is-back" ||
		fail "deferred-message-delivered-when-mx-is-back" "$(tail -n 3 "$VMLOG" 2>/dev/null)"
fi
check_eq "$(lab_mx_count_mail)" "$((n0 + 1))" "delivered-exactly-once"

# --- the proxy killed mid-DATA: the VM's egress slowed to 1 Mbit/s, so a
# 600 KB message takes about 5 s (a busy machine may see its session late);
# smtpguardd gets kill -9 once 100 KB of the body has left the VM
# (the bounce of the refused message above, which the MX will not relay,
# goes first: nothing but this message in the VM's queue)
lab_exec vm1 postsuper -c "$LAB_DIR/postfix-vm1/etc" -d ALL >/dev/null 2>&1
lab_exec vm1 tc qdisc add dev eth0 root tbf rate 1mbit burst 16kb latency 4000ms ||
	fail slow-vm-egress "tc tbf failed"
n0=$(lab_mx_count_mail)
{ printf 'From: vm1@example.org\nTo: u@%s\nSubject: killed-%s\n\n' "$LAB_MAIL_DOMAIN" "$$"
  head -c 600000 /dev/zero | tr '\0' 'k' | fold -w 76; echo; } |
	lab_exec vm1 timeout 20 sendmail -C "$LAB_DIR/postfix-vm1/etc" -f vm1@example.org \
		"u@$LAB_MAIL_DOMAIN" || fail vm-sendmail-4 "sendmail failed"
# the proxy's upstream leg is up and the body is on its way: 100 KB of it
# through the VM's slowed egress (more than any command or bounce), the
# other 500 KB still to come (about 4 s)
proxy_upstream_up() { lab_exec host ss -Htn state established "( dport = :25 )" | grep -q .; }
vm_sent_bytes() {
	lab_exec vm1 tc -s qdisc show dev eth0 | awk '/Sent/ { print $2; exit }'
}
body_flowing() { proxy_upstream_up && [ "$(vm_sent_bytes)" -ge 100000 ]; }
wait_for 15 body_flowing ||
	fail killed-mid-data-session "no proxied session with the body flowing (sent $(vm_sent_bytes) bytes)"
pid=$(lab_sgd_pid main)
kill -9 "$pid" 2>/dev/null
wait_for_exit "$pid" 10 || fail proxy-killed "smtpguardd $pid still runs"
lab_exec vm1 tc qdisc del dev eth0 root 2>/dev/null
# The VM defers the message: its connection broke, or the proxy process,
# which sees the daemon's end of their socket pair close a moment before
# the kernel's parent-death SIGKILL reaches it, had time for its goodbye
# (421 4.3.2). Either way on this message's own queue id (the 600 KB one).
killed_qid() {
	sed -nE 's/.*qmgr\[[0-9]+\]: ([0-9A-F]+): from=<vm1@example\.org>, size=6[0-9]{5},.*/\1/p' \
		"$VMLOG" 2>/dev/null | tail -n 1
}
killed_deferred() {
	local qid
	qid=$(killed_qid)
	[ -n "$qid" ] && vm_log_has "$qid: to=.*status=deferred .*(lost connection|Connection reset|conversation with|said: 421 4\.3\.2 smtpguard: shutting down)"
}
if wait_for 20 killed_deferred; then
	pass "killed-mid-data-deferred-in-vm"
else
	fail "killed-mid-data-deferred-in-vm" "$(tail -n 3 "$VMLOG" 2>/dev/null)"
fi
lab_start_smtpguardd main || fail proxy-restart "smtpguardd did not restart"
lab_vm_flush vm1
if wait_for 30 lab_mx_find_mail "killed-$$"; then
	pass "killed-mid-data-delivered-on-retry"
else
	lab_vm_flush vm1
	wait_for 15 lab_mx_find_mail "killed-$$" && pass "killed-mid-data-delivered-on-retry" ||
		fail "killed-mid-data-delivered-on-retry" "$(tail -n 3 "$VMLOG" 2>/dev/null)"
fi
sleep 2
check_eq "$(grep -l "killed-$$" "$(lab_mx_maildir)"/*/* 2>/dev/null | wc -l)" 1 \
	"killed-mid-data-delivered-exactly-once"
# (the VM's retry may come before the check: what matters is that the one
# copy at the MX is whole, never the half the killed session had sent)
f=$(lab_mx_find_mail "killed-$$")
check_ge "$(grep -o k "$f" 2>/dev/null | wc -l)" 600000 "killed-mid-data-copy-at-mx-is-whole"
check_eq "$(lab_mx_count_mail)" "$((n0 + 1))" "killed-mid-data-one-message-at-mx"
grep -E "status=|size=6" "$VMLOG" | tail -n 12 >&2

e2e_finish
