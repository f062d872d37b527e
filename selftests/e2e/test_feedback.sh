#!/usr/bin/env bash
# test_feedback.sh - what the proxy tells the kernel, end to end: steer mode
# suspect keeps well-behaved senders on the kernel path and proxies those
# over the soft threshold, flagged by a refusal, or sampled; the message
# rate of a rate class defers the message over it (451 4.7.1: the VM's real
# Postfix keeps it queued, and sends it exactly once when the rate allows);
# repeated refusals escalate to a penalty the classifier enforces; show and
# top report messages and refusals per sender.
#   bash selftests/e2e/test_feedback.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin feedback "${1:-}" 300

MX4=$LAB_MX4
VM1=$(lab_vm_ip4 vm1)
VM2=$(lab_vm_ip4 vm2)

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
printf 'offer body /forbidden-offer-[0-9]+/i\n' > "$LAB_DIR/content.rules"
SGD_ARGS=(default_action=scan proxy=yes proxy_workers=2 uplink=uplink0
	content_rules="$LAB_DIR/content.rules" events_file="$LAB_DIR/events.json")

# show_field ADDR FIELD: one field of `smtpguardctl --json show ADDR`
show_field() { lab_ctl main --json show "$1" | jq -r ".$2"; }

# --- steer mode suspect: the kernel path until a sender is suspect
lab_start_smtpguardd main "${SGD_ARGS[@]}" steer_mode=suspect steer_soft_percent=40 ||
	e2e_abort "smtpguardd did not start"
lab_ctl main rate-class set small --conn 1/min --burst 4 >/dev/null || fail rate-class-small "exit $?"
lab_ctl main policy add "$VM1/32" scan --class small >/dev/null || fail policy-vm1 "exit $?"
st0=$(stat_get main steered)
fp0=$(stat_get main fast_path)
check_delivered "suspect-mode-first-message-delivered" vm1 "$MX4"
check_eq "$(stat_get main steered)" "${st0:-0}" "suspect-mode-quiet-sender-not-steered"
check_gt "$(stat_get main fast_path)" "${fp0:-0}" "suspect-mode-fast-path-counted"
# the second connection has used half of the burst of 4 (less the time the
# first took): over the soft threshold of 40%
st0=$(stat_get main steered)
send_mail vm1 "$MX4" 25 5 --body "get your forbidden-offer-1 today"
check_contains "$MAIL_OUT" "550 5.7.1" "over-soft-threshold-steered-and-scanned"
check_gt "$(stat_get main steered)" "${st0:-0}" "over-soft-threshold-steered"
check_eq "$(show_field "$VM1" suspect)" true "refused-sender-flagged-suspect"
# a full bucket again: only the flag can steer it now
lab_ctl main unblock "$VM1" || fail unblock-vm1 "exit $?"
st0=$(stat_get main steered)
check_delivered "flagged-sender-delivers" vm1 "$MX4"
check_gt "$(stat_get main steered)" "${st0:-0}" "flagged-sender-steered"
# the sample: 1 in 1 connections of a quiet sender
lab_stop_smtpguardd main
lab_start_smtpguardd main "${SGD_ARGS[@]}" steer_mode=suspect steer_soft_percent=0 \
	steer_sample=1 || e2e_abort "smtpguardd did not restart"
st0=$(stat_get main steered)
check_delivered "sampled-sender-delivers" vm2 "$MX4"
check_gt "$(stat_get main steered)" "${st0:-0}" "sampled-connection-steered"

# --- steer mode all (the default) from here on
lab_stop_smtpguardd main
lab_start_smtpguardd main "${SGD_ARGS[@]}" escalation_rejects=3 escalation_window=1m \
	ladder_penalties="30s 1m" || e2e_abort "smtpguardd did not restart"
lab_ctl main policy del "$VM1/32" >/dev/null

# --- the message rate: 2 at once, then one an hour
lab_ctl main rate-class set slow --conn 100/s --burst 100 --msgs 2/h >/dev/null ||
	fail rate-class-msgs "exit $?"
check_match "$(lab_ctl main rate-class list)" "slow +100/s +100 +2/h +none" "rate-class-list-shows-msgs"
lab_ctl main policy add "$VM1/32" scan --class slow >/dev/null || fail policy-slow "exit $?"
m0=$(show_field "$VM1" msgs)
check_delivered "within-message-rate-1" vm1 "$MX4"
check_delivered "within-message-rate-2" vm1 "$MX4"
check_eq "$(show_field "$VM1" msgs)" "$((m0 + 2))" "show-counts-delivered-messages"
n0=$(lab_mx_count_mail)
send_mail vm1 "$MX4" 25 5
check_match "$MAIL_OUT" "<\*\* 451 4\.7\.1 smtpguard: message refused \(over the message rate of class slow.*\); ref SG[0-9A-F]+" \
	"over-message-rate-gets-451"
# at MAIL FROM: the body never goes to the MX to be cut off there
check_ok "over-message-rate-deferred-at-mail-from" sh -c \
	"printf '%s' \"\$1\" | grep -A1 -- '-> MAIL FROM' | grep -q '<\*\* 451 4.7.1'" _ "$MAIL_OUT"
sleep 1
check_eq "$(lab_mx_count_mail)" "$n0" "deferred-message-not-at-mx"
check_eq "$(show_field "$VM1" tempfails)" 1 "show-counts-deferred-message"

# --- a 451 leaves the message queued in the VM's real Postfix
lab_start_vm_postfix vm1 || e2e_abort "Postfix did not start in vm1"
VMLOG=$(lab_vm_log vm1)
vm_log_has() { grep -qE -- "$1" "$VMLOG" 2>/dev/null; }
lab_vm_sendmail vm1 "rate-later-$$" || fail vm-sendmail "sendmail failed"
if wait_for 20 vm_log_has "status=deferred .*451 4\.7\.1 smtpguard: message refused"; then
	pass "451-message-deferred-in-vm"
else
	fail "451-message-deferred-in-vm" "$(tail -n 3 "$VMLOG" 2>/dev/null)"
fi
vm_queue_has() { lab_exec vm1 postqueue -c "$LAB_DIR/postfix-vm1/etc" -p 2>/dev/null | grep -q "u@$LAB_MAIL_DOMAIN"; }
check_ok "451-message-still-in-vm-queue" vm_queue_has
check_fails "451-message-not-at-mx" lab_mx_find_mail "rate-later-$$"
# the operator lifts the limit: the queued message goes, exactly once
lab_ctl main rate-class set slow --msgs none >/dev/null || fail rate-class-msgs-none "exit $?"
lab_vm_flush vm1
if wait_for 30 lab_mx_find_mail "rate-later-$$"; then
	pass "deferred-message-delivered-once-allowed"
else
	fail "deferred-message-delivered-once-allowed" "$(tail -n 3 "$VMLOG" 2>/dev/null)"
fi
sleep 2
check_eq "$(grep -lr "rate-later-$$" "$(lab_mx_maildir)" 2>/dev/null | wc -l)" 1 \
	"deferred-message-delivered-exactly-once"

# --- escalation: 3 refusals within a minute -> the kernel refuses the sender
for i in 1 2 3; do
	send_mail vm2 "$MX4" 25 5 --body "forbidden-offer-$i inside"
	check_contains "$MAIL_OUT" "550 5.7.1" "spam-$i-refused"
done
check_eq "$(show_field "$VM2" rejects)" 3 "show-counts-refusals"
check_eq "$(show_field "$VM2" penalties)" 1 "escalation-counted"
check_gt "$(show_field "$VM2" penalty_remaining_ms)" 20000 "escalation-penalty-in-kernel"
pd0=$(stat_get main penalty_dropped)
check_refused "escalated-sender-refused-by-kernel" vm2 "$MX4"
check_gt "$(stat_get main penalty_dropped)" "${pd0:-0}" "escalated-sender-syn-dropped"
check_match "$(cat "$(lab_sgd_log main)")" "ladder: $VM2 [a-z]+ -> refused: 3 messages refused by the scanner within 60 s" \
	"escalation-logged"
check_eq "$(show_field "$VM2" ladder)" refused "escalation-is-the-ladders-refused-step"

# --- top by messages and by refusals
check_eq "$(lab_ctl main --json top --by msgs -n 1 | jq -r '.[0].source')" "$VM1" "top-by-msgs"
check_eq "$(lab_ctl main --json top --by rejects -n 1 | jq -r '.[0].source')" "$VM2" \
	"top-by-rejects"
check_contains "$(lab_ctl main top --by rejects)" "REJECTS" "top-table-has-rejects"

# --- the recipient rate: 3 at once, then one an hour; recipients the MX
# accepted are counted, and the MX's refusals (5xx) too
lab_ctl main rate-class set fewrcpts --conn 100/s --burst 100 --rcpts 3/h >/dev/null ||
	fail rate-class-rcpts "exit $?"
lab_ctl main policy add "$VM1/32" scan --class fewrcpts >/dev/null || fail policy-fewrcpts "exit $?"
r0=$(show_field "$VM1" rcpts)
x0=$(show_field "$VM1" mx_5xx)
send_mail vm1 "$MX4" 25 5 --to "u1@$LAB_MAIL_DOMAIN,u2@$LAB_MAIL_DOMAIN"
check_match "$MAIL_OUT" "<-  250 2.0.0 Ok: queued" "within-recipient-rate-delivered"
check_eq "$(show_field "$VM1" rcpts)" "$((r0 + 2))" "show-counts-accepted-recipients"
n0=$(lab_mx_count_mail)
send_mail vm1 "$MX4" 25 5 --to "u3@$LAB_MAIL_DOMAIN,u4@$LAB_MAIL_DOMAIN"
check_match "$MAIL_OUT" "<\*\* 451 4\.7\.1 smtpguard: message refused \(over the recipient rate of class fewrcpts.*\); ref SG[0-9A-F]+" \
	"over-recipient-rate-gets-451"
sleep 1
check_eq "$(lab_mx_count_mail)" "$n0" "over-recipient-rate-not-at-mx"
# a message the MX refuses (5xx): over its message_size_limit (10 MB),
# within smtpguard's (50 MB)
head -c 11000000 /dev/zero | tr '\0' 'a' | fold -w 76 >"$LAB_DIR/big.txt"
send_mail vm1 "$MX4" 25 20 --body "$LAB_DIR/big.txt"
check_match "$MAIL_OUT" "<\*\* 552 " "mx-refuses-message"
check_gt "$(show_field "$VM1" mx_5xx)" "${x0:-0}" "show-counts-mx-5xx"

# --- bad arguments: a clear error, exit 2
lab_ctl main rate-class set slow --msgs lots 2>/dev/null
check_eq "$?" 2 "rate-class-bad-msgs-exit-2"
check_contains "$(lab_ctl main rate-class set slow --rcpts 5/fortnight 2>&1)" "unit 'fortnight'" \
	"rate-class-bad-rcpts-says-why"
lab_ctl main rate-class set brandnew --msgs 5/h 2>/dev/null
check_eq "$?" 1 "new-class-without-conn-refused"
lab_ctl main top --by spam 2>/dev/null
check_eq "$?" 2 "top-bad-order-exit-2"

# --- idle senders are evicted from both tables (the kernel's and the proxy's)
lab_stop_smtpguardd main
lab_start_smtpguardd main "${SGD_ARGS[@]}" state_idle_timeout=2s gc_interval=1s ||
	e2e_abort "smtpguardd did not restart"
lab_add_vm vm3 && lab_wait_reachable vm3 || e2e_abort "vm3 could not be added"
VM3=$(lab_vm_ip4 vm3)
check_delivered "gc-sender-delivers" vm3 "$MX4"
check_eq "$(show_field "$VM3" msgs)" 1 "gc-sender-counted"
gone() { [ "$(show_field "$VM3" known)" = false ]; }
check_ok "gc-idle-sender-evicted-from-both" wait_for 10 gone

e2e_finish
