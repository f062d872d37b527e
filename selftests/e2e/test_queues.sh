#!/usr/bin/env bash
# test_queues.sh - queues are not punished (issue 15, item 4): the VM's real
# Postfix sends through smtpguardd (scanning, proxy) to each of the lab's
# special MXes (lab/mx_special.sh) in turn, one message each:
#   greylist  Postfix + postgrey: 450 at RCPT until the retry after 3 s
#   dropper   the connection cut (RST) mid-DATA on the message's first
#             attempt: 1 MB of body, after 4 KiB of it; and a short one,
#             as its dot comes
#   slow      the greeting after 20 s, each reply 2 s after the one before;
#             the VM's Postfix first waits 10 s for the greeting (a timeout
#             of its own), then 60 s
# For each: the VM's log shows the deferral (the MX's own 450, a lost
# connection, the greeting timeout), then status=sent, once; the MX's
# mailbox holds the message once (its unique header); smtpguard moves the
# VM on no step of the ladder (show: normal, no penalty, no refusal or
# deferral of its own counted; no ladder event, no ladder counter), even
# with escalation_rejects = 1 (one refusal counted would refuse the VM in
# the kernel); each attempt is one session event, and each attempt that
# opened a transaction one message event carrying the MX's reply (the 450
# for the greylisted ones). The slow MX's 20 s greeting passes: no session
# is cut by smtpguard's own timeouts (connect_timeout 30 s bounds the TCP
# connect alone; the greeting and each reply fall under smtp_idle_timeout,
# 300 s; the body under smtp_min_data_rate after 10 s; the dot's reply
# under RFC 5321's 10 min).
#
# An attempt whose transaction ended unsent has a message event with
# verdict not_sent and the MX's refusal (a recipient's 450, not the DATA's
# "no valid recipients" that a pipelining sender gets after it); a DATA
# refused for want of recipients is no MX 5xx of the VM's; a VM that left
# before the greeting has its session event (proxy/transaction.c tx_end,
# relay_replies.c, session.c).
#   bash selftests/e2e/test_queues.sh build
#   QUEUES_ONLY="slow" bash selftests/e2e/test_queues.sh build   # some of them
source "$(dirname "$0")/lib.sh"
# shellcheck source=../../lab/mx_special.sh
source "$E2E_REPO/lab/mx_special.sh"
e2e_begin queues "${1:-}" 230

VM1=$(lab_vm_ip4 vm1)

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
EVENTS=$LAB_DIR/events.json
VMLOG=$(lab_vm_log vm1)
VMETC=$LAB_DIR/postfix-vm1/etc
printf 'offer body /forbidden-offer-[0-9]+/i\n' >"$LAB_DIR/content.rules"
lab_start_vm_postfix vm1 || e2e_abort "Postfix did not start in vm1"
lab_start_smtpguardd main default_action=scan proxy=yes uplink=uplink0 \
	content_rules="$LAB_DIR/content.rules" events_file="$EVENTS" \
	escalation_rejects=1 escalation_window=10m || e2e_abort "smtpguardd did not start"

# vm_send TOKEN RCPT BODY_BYTES: a message to the VM's Postfix, known by
# its Message-ID <TOKEN@vm1.example.org> and its X-Queues-Token header
vm_send() {
	local token=$1 rcpt=$2 bytes=$3
	{ printf 'From: vm1@example.org\nTo: %s\nSubject: %s\n' "$rcpt" "$token"
	  printf 'Message-ID: <%s@vm1.example.org>\nX-Queues-Token: %s\n\n' "$token" "$token"
	  echo "token $token"
	  [ "$bytes" -gt 0 ] && head -c "$bytes" /dev/zero | tr '\0' 'q' | fold -w 76
	  echo; } |
		lab_exec vm1 timeout 20 sendmail -C "$VMETC" -f vm1@example.org "$rcpt"
}

# vm_qid TOKEN: the VM's queue id of the message
vm_qid() {
	grep -F "message-id=<$1@vm1.example.org>" "$VMLOG" 2>/dev/null | tail -n 1 |
		sed -nE 's/.*: ([0-9A-F]+): message-id=.*/\1/p'
}

vm_has_qid() { [ -n "$(vm_qid "$1")" ]; }

# vm_attempts QID: the VM's delivery attempts of it, one status line each
vm_attempts() { grep -E "$1: to=<.*status=(deferred|sent)" "$VMLOG" 2>/dev/null; }

# vm_sent_flushing QID: delivered; the queue flushed on each look (2 s)
vm_sent_flushing() {
	vm_attempts "$1" | grep -q 'status=sent' && return 0
	lab_vm_flush vm1 >/dev/null 2>&1
	sleep 2
	return 1
}

mx_copies() {
	grep -lF "X-Queues-Token: $1" "$(lab_mx_maildir)"/new/* "$(lab_mx_maildir)"/cur/* \
		2>/dev/null | wc -l
}

# events_since N: the events file's lines after the first N
events_since() { tail -n +$(($1 + 1)) "$EVENTS" 2>/dev/null; }
events_lines() { wc -l <"$EVENTS" 2>/dev/null || echo 0; }
# events_of N KIND: the VM's events of KIND (session, message) after line N
# (an event's source is the VM's address and port)
events_of() {
	events_since "$1" | jq -c --arg s "$VM1" --arg k "$2" \
		'select(.event == $k and (.source | sub(":[0-9]+$"; "")) == $s)'
}

# check_not_punished NAME: where smtpguard has the VM after the scenario
check_not_punished() {
	local name=$1 js k
	js=$(lab_ctl main --json show "$VM1" 2>/dev/null)
	check_eq "$(echo "$js" | jq -r .ladder)" normal "$name-ladder-stays-normal"
	check_eq "$(echo "$js" | jq -r '.penalty_remaining_ms, .penalties' | paste -sd' ')" "0 0" \
		"$name-no-penalty"
	check_eq "$(echo "$js" | jq -r '.rejects, .tempfails, .suspect' | paste -sd' ')" "0 0 false" \
		"$name-no-refusal-or-deferral-counted-against-the-vm"
	check_eq "$(grep -c '"event":"ladder"' "$EVENTS" 2>/dev/null)" 0 "$name-no-ladder-event"
	for k in ladder_flagged ladder_tempfail ladder_refused; do
		check_eq "$(stat_get main "$k")" 0 "$name-stats-$k-zero"
	done
	echo "# $name: show $VM1: $(echo "$js" | jq -c '{msgs, rejects, tempfails, mx_5xx, sessions, ladder, suspect}')"
}

# scenario NAME RCPT BODY_BYTES DEFER_ERE TIMEOUT_S: one message through
# the MX started last; the checks above and below
scenario() {
	local name=$1 rcpt=$2 bytes=$3 defer_re=$4 to=$5
	local token qid ev0 attempts first last n_att n_sent sess msgs t0
	token="queues-$name-$$-$RANDOM"
	ev0=$(events_lines)
	t0=$(date +%s)
	vm_send "$token" "$rcpt" "$bytes" || fail "$name-sendmail" "sendmail failed"
	wait_for 10 vm_has_qid "$token"
	qid=$(vm_qid "$token")
	[ -n "$qid" ] || { fail "$name-queued-in-vm" "no queue id in $VMLOG"; return 1; }
	[ -n "${SCENARIO_HOOK:-}" ] && "$SCENARIO_HOOK" "$qid"
	if wait_for "$to" vm_sent_flushing "$qid"; then
		pass "$name-vm-postfix-logs-sent"
	else
		fail "$name-vm-postfix-logs-sent" "after $to s: $(vm_attempts "$qid" | tail -n 2)"
	fi
	echo "# $name: delivered $(($(date +%s) - t0)) s after sendmail"
	sleep 2	# a late duplicate, and the events' writer
	attempts=$(vm_attempts "$qid")
	first=$(echo "$attempts" | head -n 1)
	last=$(echo "$attempts" | tail -n 1)
	n_att=$(echo "$attempts" | grep -c 'status=')
	n_sent=$(echo "$attempts" | grep -c 'status=sent')
	echo "$attempts" | sed -E 's/.*(status=.*)/# '"$name"' attempt: \1/' | cut -c1-230
	check_match "$first" "status=deferred .*$defer_re" "$name-first-attempt-deferred-by-the-mx"
	check_match "$last" "status=sent \(250 " "$name-then-sent"
	check_eq "$n_sent" 1 "$name-sent-once-by-the-vm"
	check_eq "$(mx_copies "$token")" 1 "$name-delivered-exactly-once-at-the-mx"
	check_not_punished "$name"
	# the events of the attempts: one session each; one message each that
	# opened a transaction (SCENARIO_TX_ATTEMPTS: how many did, default all)
	sess=$(events_of "$ev0" session)
	msgs=$(events_of "$ev0" message)
	check_eq "$(echo "$sess" | grep -c .)" "$n_att" "$name-each-attempt-one-session-event"
	check_eq "$(echo "$msgs" | grep -c .)" "${SCENARIO_TX_ATTEMPTS:-$n_att}" \
		"$name-each-attempt-one-message-event"
	check_contains "$(echo "$msgs" | tail -n 1 | jq -r .mx_reply)" "250 2.0.0 Ok: queued as" \
		"$name-sent-attempt-event-has-the-mx-reply"
	check_eq "$(echo "$sess" | jq -r .end | grep -cvE '^(closed|mx_closed|mx_failed)$')" 0 \
		"$name-no-session-ended-by-smtpguard-timeouts"
	echo "$sess" | jq -r '"# '"$name"' session: end=\(.end) \(.error // "") commands=\(.commands) messages=\(.messages) \(.duration_ms) ms"'
	echo "$msgs" | jq -r '"# '"$name"' message: \(.verdict) mx_reply=\(.mx_reply)"' | cut -c1-200
	SCENARIO_SESSIONS=$sess
	SCENARIO_MESSAGES=$msgs
	SCENARIO_ATTEMPTS=$attempts
}

only() { [ -z "${QUEUES_ONLY:-}" ] || [[ " $QUEUES_ONLY " == *" $1 "* ]]; }

# --- greylisting: postgrey's 450 at RCPT, the retry after 3 s passes
if only greylist; then
lab_start_mx_greylist || e2e_abort "the greylisting MX did not start"
scenario greylist "u-greylist@$LAB_MAIL_DOMAIN" 0 \
	"said: 450 4\.[0-9]\.[0-9] .*Greylisted.*in reply to RCPT TO" 40
reply=$(echo "$SCENARIO_ATTEMPTS" | head -n 1 | grep -oE 'said: 450 [^(]*' | sed 's/^said: //; s/ *$//')
check_eq "$(echo "$SCENARIO_MESSAGES" | jq -r .mx_reply | grep -cF "${reply:-no 450 in the VM log}")" \
	"$(($(echo "$SCENARIO_ATTEMPTS" | grep -c status=deferred)))" \
	"greylist-each-deferred-attempt-event-carries-the-450"
check_ge "$(grep -c 'action=greylist, .*client_address='"$VM1"',' "$(lab_mx_greylist_log)")" 1 \
	"greylist-postgrey-greylisted-the-vms-address"
check_ge "$(grep -c "NOQUEUE: reject: RCPT from unknown\[$VM1\]: 450 " "$(lab_mx_log)")" 1 \
	"greylist-mx-logged-its-450-to-the-vm"
# the VM's Postfix pipelines DATA after RCPT: a greylisted attempt's DATA
# gets the MX's "554 5.5.1 no valid recipients", which smtpguard counts as
# the MX's permanent refusal of the VM's mail (show: "MX 5xx")
check_eq "$(lab_ctl main --json show "$VM1" | jq -r .mx_5xx)" 0 \
	"greylist-450s-not-counted-as-mx-5xx"
fi

# --- a connection cut mid-DATA: the VM's Postfix retries, the front lets
# the message's second attempt through. 1 MB: cut after 4 KiB of the body,
# long before smtpguard has the dot; a short one: cut as the dot comes,
# after smtpguard sent it (its event then says the MX's reply is unknown)
dropper() {	# NAME BODY_BYTES
	local name=$1 lost0
	lost0=$(grep -c 'lost connection after DATA' "$(lab_mx_log)")
	scenario "$name" "u-$name@$LAB_MAIL_DOMAIN" "$2" \
		"said: 421 4\.4\.2 smtpguard: the connection to the MX failed \((Connection reset by peer|Broken pipe)\)" 40
	check_eq "$(grep -c "^dropped <queues-$name-" "$(lab_mx_front_log)")" 1 "$name-front-cut-once"
	check_eq "$(echo "$SCENARIO_SESSIONS" | head -n 1 | jq -r .end)" mx_failed \
		"$name-cut-session-event-says-mx-failed"
	check_eq "$(($(grep -c 'lost connection after DATA' "$(lab_mx_log)") - lost0))" 1 \
		"$name-mx-lost-the-first-attempt-in-data"
}
if only dropper; then
lab_start_mx_dropper || e2e_abort "the dropping MX did not start"
dropper dropper 1000000
dropper dropper-dot 0
check_eq "$(echo "$SCENARIO_MESSAGES" | head -n 1 | jq -r .mx_reply)" unknown \
	"dropper-dot-cut-attempt-event-says-reply-unknown"
fi

# --- slow: the VM's own greeting timeout first (10 s < 20 s), then 60 s
slow_retime() {	# QID: after the first deferral, the VM waits 60 s (the
	# message held meanwhile, so that no attempt starts with the old timeout)
	wait_for 30 grep -qE "$1: to=<.*status=deferred" "$VMLOG" ||
		fail slow-first-timeout "no deferral after 30 s"
	lab_exec vm1 postsuper -c "$VMETC" -h "$1" >/dev/null 2>&1
	lab_exec vm1 postconf -c "$VMETC" -e smtp_helo_timeout=60s
	lab_exec vm1 postfix -c "$VMETC" reload >/dev/null 2>&1
	sleep 2
	lab_exec vm1 postsuper -c "$VMETC" -H "$1" >/dev/null 2>&1
}
if only slow; then
lab_exec vm1 postconf -c "$VMETC" -e smtp_helo_timeout=10s
lab_exec vm1 postfix -c "$VMETC" reload >/dev/null 2>&1
lab_start_mx_slow || e2e_abort "the slow MX did not start"
SCENARIO_HOOK=slow_retime SCENARIO_TX_ATTEMPTS=1 \
	scenario slow "u-slow@$LAB_MAIL_DOMAIN" 0 "timed out while receiving the initial server greeting" 100
ms=$(echo "$SCENARIO_SESSIONS" | tail -n 1 | jq -r .duration_ms)
check_ge "$ms" 20000 "slow-delivering-session-waited-the-20s-greeting"
check_eq "$(grep -cE 'smtpguard: session timed out|421 4\.4\.1' "$VMLOG")" 0 \
	"slow-vm-never-heard-a-smtpguard-timeout"
fi

lab_stop_mx_special
e2e_finish
