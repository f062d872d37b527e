#!/usr/bin/env bash
# test_ladder.sh - the response ladder end to end (VM -> smtpguard -> real
# Postfix MX), driven by the scanner's escalation: a sender whose messages
# are refused climbs to refused in the kernel; the step is an event, a
# webhook POSTed to a real HTTP server, and what `smtpguardctl show` says
# (with its reason); the penalty lapses to flagged and grows on repeat;
# `smtpguardctl release` moves it back to normal; a rate class capped at
# tempfail keeps its senders connecting but defers their messages at MAIL
# FROM with a reference; the allow list keeps a sender where it is.
#   bash selftests/e2e/test_ladder.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin ladder "${1:-}" 240

MX4=$LAB_MX4
RULES=$LAB_DIR/content.rules
HOOKS=$LAB_DIR/hooks.log

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
VM1=$(lab_vm_ip4 vm1)
VM2=$(lab_vm_ip4 vm2)
echo "FORBIDDEN body /forbidden-offer-[0-9]+/" > "$RULES"
: > "$LAB_DIR/allow.list"

# the operator's endpoint: a real HTTP server in the host's namespace
lab_exec host python3 "$E2E_REPO/selftests/tools/webhook_server.py" --listen 127.0.0.1:0 \
	--log "$HOOKS" --port-file "$LAB_DIR/hook.port" >"$LAB_DIR/hook.out" 2>&1 &
wait_for 10 test -s "$LAB_DIR/hook.port" || e2e_abort "the webhook server did not start"
HOOK_URL="http://127.0.0.1:$(cat "$LAB_DIR/hook.port")/smtpguard/hook"

lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 uplink=uplink0 \
	content_rules="$RULES" events_file="$LAB_DIR/events.json" escalation_rejects=2 \
	escalation_window=1m ladder_penalties="3s 40s" ladder_dwell=1s \
	ladder_allow="$LAB_DIR/allow.list" webhook_urls="$HOOK_URL" ||
	e2e_abort "smtpguardd did not start"
lab_ctl main rate-class set many --conn 1000/s --burst 1000 >/dev/null
lab_ctl main rate-class set capped --conn 1000/s --burst 1000 --ladder tempfail >/dev/null
lab_ctl main policy add "$VM1/32" scan --class many >/dev/null
lab_ctl main policy add "$VM2/32" scan --class capped >/dev/null
check_contains "$(lab_ctl main rate-class list)" "capped" "rate-class-with-ladder-listed"

show() { lab_ctl main --json show "$1" | jq -r ".$2"; }
refuse_twice() {	# NODE NAME: two refused messages from NODE
	for i in 1 2; do
		send_mail "$1" "$MX4" 25 5 --body "forbidden-offer-$i inside"
		check_contains "$MAIL_OUT" "550 5.7.1" "$2-refused-$i"
	done
}

# --- two refusals: normal -> refused in the kernel
check_eq "$(show "$VM1" ladder)" normal "sender-starts-normal"
refuse_twice vm1 first
check_eq "$(show "$VM1" ladder)" refused "escalated-to-refused"
check_contains "$(show "$VM1" ladder_reason)" "2 messages refused by the scanner" \
	"show-tells-why"
check_gt "$(show "$VM1" penalty_remaining_ms)" 0 "penalty-in-the-kernel"
check_refused "refused-sender-cannot-connect" vm1 "$MX4"
ev=$(grep '"event":"ladder"' "$LAB_DIR/events.json" | tail -n 1)
check_eq "$(echo "$ev" | jq -r '.source + " " + .from + " " + .to')" "$VM1 normal refused" \
	"ladder-event-written"
check_eq "$(echo "$ev" | jq -r .penalty_s)" 3 "ladder-event-has-the-penalty"

# --- the webhook: the same JSON, POSTed
wait_for 10 grep -q '"to":"refused"' "$HOOKS" || true
check_contains "$(grep '^request ' "$HOOKS" | head -n 1)" "POST /smtpguard/hook" "webhook-posted"
check_contains "$(cat "$HOOKS")" "header Content-Type: application/json" "webhook-is-json"
body=$(awk '/^body /{getline; print; exit}' "$HOOKS")
check_eq "$(echo "$body" | jq -r '.event + " " + .to')" "ladder refused" "webhook-body-is-the-event"

# --- the penalty lapses (3 s): flagged, reachable, and the next refusal's
# penalty is the longer one
sleep 4
check_delivered "after-the-penalty-sender-delivers" vm1 "$MX4"
check_eq "$(show "$VM1" ladder)" flagged "penalty-lapses-to-flagged"
refuse_twice vm1 second
check_eq "$(show "$VM1" ladder)" refused "refused-again"
check_gt "$(show "$VM1" penalty_remaining_ms)" 10000 "repeat-penalty-is-longer"
check_eq "$(show "$VM1" penalties)" 2 "two-refusals-counted"
check_eq "$(stat_get main ladder_refused)" 2 "stats-count-ladder-refusals"
check_ge "$(stat_get main content_refused)" 4 "stats-count-content-refusals"
check_ge "$(stat_get main webhook_delivered)" 2 "stats-count-webhooks-delivered"

# --- release: back to normal, reachable at once
lab_ctl main release "$VM1" >/dev/null
check_eq "$(show "$VM1" ladder)" normal "released-to-normal"
check_eq "$(show "$VM1" penalty_remaining_ms)" 0 "released-no-penalty"
check_delivered "released-sender-delivers" vm1 "$MX4"
check_fails "release-unknown-sender-fails" lab_ctl main release 192.0.2.99

# --- a class capped at tempfail: connections go on, messages are deferred
refuse_twice vm2 capped
check_eq "$(show "$VM2" ladder)" tempfail "capped-class-stops-at-tempfail"
check_eq "$(show "$VM2" penalty_remaining_ms)" 0 "capped-class-no-kernel-penalty"
send_mail vm2 "$MX4" 25 5
check_match "$MAIL_OUT" "<\*\* 451 4\.7\.1 smtpguard: message refused \(sending suspended for [0-9]+ min: 2 messages refused by the scanner[^)]*\); ref SG" \
	"tempfail-step-defers-at-mail-with-ref"

# --- the allow list: an allowed sender stays where it is
lab_ctl main release "$VM2" >/dev/null
echo "$VM2/32" > "$LAB_DIR/allow.list"
kill -HUP "$(lab_sgd_pid main)"
sleep 1
refuse_twice vm2 allowed
check_eq "$(show "$VM2" ladder)" normal "allowed-sender-not-moved"
check_delivered "allowed-sender-delivers" vm2 "$MX4"
printf 'bogus entry here\n' > "$LAB_DIR/allow.list"
kill -HUP "$(lab_sgd_pid main)"
wait_for 5 grep -q "allow.list, line 1" "$(lab_sgd_log main)" &&
	pass "bad-allow-list-error-names-the-line" ||
	fail "bad-allow-list-error-names-the-line" "$(grep -i reload "$(lab_sgd_log main)" | tail -n 2)"

e2e_finish
