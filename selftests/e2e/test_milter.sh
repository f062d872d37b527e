#!/usr/bin/env bash
# test_milter.sh - the milter client against the real thing, end to end:
# VM -> smtpguard (milters: rspamd's proxy worker, clamav-milter in front of
# clamd, both in the host's namespace) -> real Postfix MX. A clean message
# is delivered; GTUBE in a text part is refused with rspamd's reply and
# never reaches the MX; an EICAR attachment is refused with clamav-milter's
# reply naming the signature; rspamd killed between two messages of one
# session, and in the middle of a body, gives milter_default_action
# (tempfail: 451), never a stuck session; rspamd back, mail flows again.
#   bash selftests/e2e/test_milter.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin milter "${1:-}" 240

MX4=$LAB_MX4
RSPAMD=inet:127.0.0.1:11332

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
lab_start_rspamd host || e2e_abort "rspamd did not start"
lab_start_clamav host || e2e_abort "clamd and clamav-milter did not start"
CLAMAV=unix:$(lab_clamav_milter_sock host)
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 uplink=uplink0 \
	milters="$RSPAMD $CLAMAV" milter_default_action=tempfail milter_command_timeout=5s \
	milter_content_timeout=10s events_file="$LAB_DIR/events.json" escalation_rejects=100 ||
	e2e_abort "smtpguardd did not start"
lab_ctl main rate-class set many --conn 1000/s --burst 1000 >/dev/null
lab_ctl main policy add "$(lab_vm_ip4 vm1)/32" scan --class many >/dev/null ||
	e2e_abort "policy add failed"

# --- a clean message goes through both milters to the MX
check_delivered "clean-message-delivered-through-rspamd-and-clamav" vm1 "$MX4"
check_match "$MAIL_OUT" "<-  250 2.0.0 Ok: queued as [0-9A-F]+" "clean-message-vm-gets-mx-queue-id"

# --- GTUBE: rspamd's reply, and never the MX's mailbox
n0=$(lab_mx_count_mail)
send_mail vm1 "$MX4" 25 10 --body "Hello, this is a test.
$LAB_GTUBE
Bye."
check_match "$MAIL_OUT" "<\*\* 5[0-9][0-9] 5\.[0-9]+\.[0-9]+ smtpguard: message refused \([^)]*[Gg]tube[^)]*\); ref SG" \
	"gtube-refused-with-rspamd-reply"
sleep 1
check_eq "$(lab_mx_count_mail)" "$n0" "gtube-not-in-mx-mailbox"
check_match "$(tail -n 5 "$LAB_DIR/events.json" | grep '"event":"message"' | tail -n 1)" \
	'"verdict":"reject",.*"by":"milter inet:127.0.0.1:11332"' "gtube-event-names-the-milter"
check_match "$(cat "$(lab_sgd_log main)")" "refused: milter $RSPAMD: [^ ]* ?[Gg]tube" "gtube-log-names-the-milter"

# --- EICAR attached: clamav-milter's reply names the signature
printf '%s' "$LAB_EICAR" > "$LAB_DIR/eicar.com"
n0=$(lab_mx_count_mail)
send_mail vm1 "$MX4" 25 10 --attach-type application/octet-stream --attach-name eicar.com \
	--attach "@$LAB_DIR/eicar.com"
check_match "$MAIL_OUT" "<\*\* 5[0-9][0-9] .*smtpguard: message refused \(.*$(lab_clamav_signature | sed 's/\./\\./g')\); ref SG" \
	"eicar-refused-with-clamav-reply"
check_contains "$(cat "$(lab_sgd_log main)")" "refused: milter $CLAMAV: " "eicar-log-names-clamav-milter"
sleep 1
check_eq "$(lab_mx_count_mail)" "$n0" "eicar-not-in-mx-mailbox"

# dialogue NAME: one SMTP session from vm1, two messages; before the
# second message's DATA (STAGE=between) or in the middle of its body
# (STAGE=body) it tells the test (a flag file) and waits for the test's
# go-ahead. Prints the session's replies.
dialogue() {
	local stage=$1 flags=$LAB_DIR/flags-$1
	mkdir -p "$flags"
	lab_exec vm1 timeout 60 bash -c '
		flags=$1 stage=$2 mx=$3
		exec 3<>/dev/tcp/$mx/25 || exit 1
		say() { printf "%s\r\n" "$1" >&3; }
		hear() { local l; while IFS= read -r -t 20 l <&3; do echo "$l"; [ "${l:3:1}" = " " ] && return 0; done; return 1; }
		wait_flag() { for _ in $(seq 1 300); do [ -f "$flags/$1" ] && return 0; sleep 0.1; done; return 1; }
		hear
		say "EHLO vm1.example.org"; hear
		say "MAIL FROM:<vm1@example.org>"; hear
		say "RCPT TO:<u@example.net>"; hear
		say "DATA"; hear
		say "Subject: first of two"; say ""; say "the first message"; say "."; hear
		say "MAIL FROM:<vm1@example.org>"; hear
		say "RCPT TO:<u@example.net>"; hear
		[ "$stage" = between ] && { touch "$flags/ready"; wait_flag go; }
		say "DATA"; hear
		say "Subject: second of two"; say ""; say "the second message, first line"
		[ "$stage" = body ] && { touch "$flags/ready"; wait_flag go; }
		say "its last line"; say "."; hear
		say "QUIT"; hear
	' _ "$flags" "$stage" "$MX4" &
	DIALOGUE_PID=$!
	if ! wait_for 30 test -f "$flags/ready"; then
		fail "dialogue-$stage-ready" "the session never reached its pause"
		return 1
	fi
	lab_stop_rspamd host
	touch "$flags/go"
}

# --- rspamd killed between two messages of one session: the second gets
# milter_default_action (tempfail), at once, not after a timeout
dialogue between > "$LAB_DIR/between.out"
t0=$(ms_now)
wait "$DIALOGUE_PID"
took=$(( $(ms_now) - t0 ))
out=$(cat "$LAB_DIR/between.out")
check_match "$out" "^250 .*queued as" "rspamd-killed-between-first-message-delivered"
check_match "$out" "^451 4\.7\.1 smtpguard: message refused \(a milter failed: " \
	"rspamd-killed-between-second-gets-default-tempfail"
check_le "$took" 15000 "rspamd-killed-between-session-not-stuck"
check_match "$out" "^221 " "rspamd-killed-between-session-ends-with-quit"

# --- rspamd killed in the middle of a body
lab_start_rspamd host || e2e_abort "rspamd did not start again"
dialogue body > "$LAB_DIR/body.out"
t0=$(ms_now)
wait "$DIALOGUE_PID"
took=$(( $(ms_now) - t0 ))
out=$(cat "$LAB_DIR/body.out")
check_match "$out" "^451 4\.7\.1 smtpguard: message refused \(a milter failed: " \
	"rspamd-killed-mid-body-default-tempfail"
check_le "$took" 15000 "rspamd-killed-mid-body-session-not-stuck"
check_contains "$(cat "$(lab_sgd_log main)")" "milter $RSPAMD: " "milter-fault-logged"

# the metrics: rspamd (milter1) down after its fault, clamav (milter2) up
metric() { lab_ctl main metrics | awk -v s="$1" '$1 == s { print $2 }'; }
check_eq "$(metric 'smtpguard_engine_up{engine="milter1"}')" 0 "metrics-rspamd-down"
check_eq "$(metric 'smtpguard_engine_up{engine="milter2"}')" 1 "metrics-clamav-up"
check_ge "$(metric 'smtpguard_messages_total{verdict="tempfail",reason="engine_failure"}')" 2 \
	"metrics-default-tempfails-are-engine-failures"
check_ge "$(metric 'smtpguard_messages_total{verdict="reject",reason="milter"}')" 2 \
	"metrics-milter-refusals-counted"
check_ge "$(metric 'smtpguard_engine_latency_seconds_count{engine="milter1"}')" 3 \
	"metrics-milter-latency-observed"

# --- rspamd back: new sessions reconnect, mail flows again
lab_start_rspamd host || e2e_abort "rspamd did not start again"
check_delivered "rspamd-back-mail-flows" vm1 "$MX4"
check_eq "$(metric 'smtpguard_engine_up{engine="milter1"}')" 1 "metrics-rspamd-up-again"

# --- no milter reachable at all, default tempfail: nothing is lost
lab_stop_rspamd host
send_mail vm1 "$MX4" 25 10
check_match "$MAIL_OUT" "<\*\* 451 4\.7\.1 smtpguard: message refused \(a milter failed: cannot connect" \
	"no-milter-tempfail-451"
check_ge "$(stat_get main milter_refused)" 2 "stats-count-milter-refusals"
check_ge "$(stat_get main milter_fault_connect)" 1 "stats-count-milter-connect-faults"
check_ge "$(stat_get main milter_fault_closed)" 1 "stats-count-milter-closed-faults"
check_ge "$(stat_get main milter_messages)" 6 "stats-count-milter-messages"

e2e_finish
