#!/usr/bin/env bash
# test_complaints.sh - abuse complaints traced back to the VM, end to end:
# a VM sends real mail through smtpguardd's proxy to the MX's Postfix; from
# the message Postfix delivered, the test builds the ARF report a receiver's
# feedback loop would send (RFC 5965: the receiver's Source-IP and
# Arrival-Date from its own Received header, the whole message attached),
# and variants: the Message-ID and recipient redacted, headers only with no
# Source-IP. `smtpguardctl complaint` must name the VM, the session (its
# ref, port, MX) and the message event, exactly by Message-ID and strongly
# by the body's fingerprint when it is redacted; never another VM that sent
# at the same time. `--confirm` counts the complaint against the sender and
# the ladder climbs a step at its next message (flagged, then tempfail: 451
# at MAIL FROM). A maildir watch takes a report dropped into new/ once,
# moving it to cur/ (flagged when it is no report).
#   bash selftests/e2e/test_complaints.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin complaints "${1:-}" 240

MX4=$LAB_MX4
CTL=${SG_CTL:-$LAB_BUILD/smtpguardctl}

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
EVENTS=$LAB_DIR/events.json	# the lab's directory exists from here on
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
VM1=$(lab_vm_ip4 vm1)
VM2=$(lab_vm_ip4 vm2)
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 uplink=uplink0 \
	events_file="$EVENTS" ladder_dwell=1s ladder_penalties="3s 40s" ||
	e2e_abort "smtpguardd did not start"

# make_arf MESSAGE_FILE OUT [redact|headers]: the report a receiver builds
# from the message it delivered. The VM's address and the arrival come from
# the receiver's own (topmost) Received header, as its MTA logged them.
make_arf() {
	local msg=$1 out=$2 how=${3:-} rcvd ip arrival from rcpt body_type=message/rfc822
	rcvd=$(awk '/^Received:/{r=$0; while ((getline l) > 0 && l ~ /^[ \t]/) r = r " " l; print r; exit}' "$msg")
	ip=$(echo "$rcvd" | grep -oE '\[[0-9.]+\]' | head -n 1 | tr -d '[]')
	arrival=$(echo "$rcvd" | sed -E 's/.*;[ \t]*//; s/[ \t]*\(.*\)[ \t]*$//')
	from=$(sed -n 's/^Return-Path: <\(.*\)>.*/\1/p' "$msg" | head -n 1)
	rcpt=$(sed -n 's/^Delivered-To: //p' "$msg" | head -n 1)
	{
		echo "From: <fbl@receiver.example>"
		echo "To: <abuse@provider.example>"
		echo "Date: $(date -R)"
		echo "Subject: Abuse report for a message from $ip"
		echo "MIME-Version: 1.0"
		echo "Content-Type: multipart/report; report-type=feedback-report;"
		echo "	boundary=\"fbl-$$-boundary\""
		echo
		echo "--fbl-$$-boundary"
		echo "Content-Type: text/plain; charset=us-ascii"
		echo
		echo "This is an email abuse report for a message received from IP $ip."
		echo
		echo "--fbl-$$-boundary"
		echo "Content-Type: message/feedback-report"
		echo
		echo "Feedback-Type: abuse"
		echo "User-Agent: sgt-receiver-fbl/1.0"
		echo "Version: 1"
		if [ "$how" = redact ]; then
			echo "Original-Rcpt-To: <redacted@$LAB_MAIL_DOMAIN>"
		else
			echo "Original-Mail-From: <$from>"
			echo "Original-Rcpt-To: <$rcpt>"
		fi
		[ "$how" = headers ] || echo "Arrival-Date: $arrival"
		[ "$how" = headers ] || echo "Source-IP: $ip"
		echo "Reported-Domain: example.org"
		echo
		echo "--fbl-$$-boundary"
		if [ "$how" = headers ]; then
			echo "Content-Type: text/rfc822-headers"
			echo
			sed -e '/^$/,$d' -e 's/^Message-I[Dd]:.*/Message-ID: <redacted>/' "$msg"
		else
			echo "Content-Type: $body_type"
			echo "Content-Disposition: inline"
			echo
			if [ "$how" = redact ]; then
				sed -e 's/^Message-I[Dd]:.*/Message-ID: <redacted>/' \
				    -e "s/^To:.*/To: redacted@$LAB_MAIL_DOMAIN/" \
				    -e "s/^Delivered-To:.*/Delivered-To: redacted@$LAB_MAIL_DOMAIN/" "$msg"
			else
				cat "$msg"
			fi
		fi
		echo
		echo "--fbl-$$-boundary--"
	} > "$out"
}

# complaint FILE [ARGS...]: smtpguardctl --json complaint; its JSON in OUT, status in RC
complaint() {
	local f=$1; shift
	OUT=$(lab_ctl main --json complaint "$f" --events "$EVENTS" "$@" 2>"$LAB_DIR/ctl.err")
	RC=$?
}
j() { echo "$OUT" | jq -r "$1" 2>/dev/null; }
show() { lab_ctl main --json show "$1" | jq -r ".$2"; }

# --- the mail: vm1's campaign message, vm2's ordinary one the same second
MID="<sgt-complaint-$$@vm1.example.org>"
BODY=$'Dear customer 4217,\n\nOur finest replica watches are back in stock.\nOrder at https://shop.example.org/w?id=999 before midnight.\n\nUnsubscribe: reply STOP.'
check_delivered "vm1-campaign-delivered" vm1 "$MX4" 25 --header "Message-Id: $MID" --body "$BODY"
MSG1=$(lab_mx_find_mail "$MAIL_TOKEN")
check_delivered "vm2-ordinary-delivered" vm2 "$MX4"
MSG2=$(lab_mx_find_mail "$MAIL_TOKEN")
wait_for 10 grep -qF "$MID" "$EVENTS" || e2e_abort "no message event for $MID"
EV1=$(grep -F "\"message_id\":\"$MID\"" "$EVENTS" | head -n 1)
REF1=$(echo "$EV1" | jq -r .ref)
check_match "$(echo "$EV1" | jq -r '.body_fp // empty')" '^[0-9a-f]{16}$' "event-carries-body-fingerprint"

# --- a receiver's report with the whole message: exact, by Message-ID
make_arf "$MSG1" "$LAB_DIR/exact.eml"
complaint "$LAB_DIR/exact.eml"
check_eq "$RC" 0 "exact-report-matches"
check_eq "$(j .match)" exact "exact-by-message-id"
check_eq "$(j .vm)" "$VM1" "exact-names-the-vm"
check_eq "$(j .ref)" "$REF1" "exact-names-the-message-ref"
check_eq "$(j .source | sed 's/:[0-9]*$//')" "$VM1" "exact-session-source-is-the-vm"
check_eq "$(j .mx)" "$MX4:25" "exact-session-mx"
check_eq "$(j .event.message_id)" "$MID" "exact-event-line-is-the-message"
wait_for 10 grep -q "\"event\":\"session\".*\"source\":\"$(j .source)\"" "$EVENTS"
complaint "$LAB_DIR/exact.eml"
check_eq "$(j .session.event)" session "exact-names-the-session-event"
check_eq "$(j .body_fp)" "$(echo "$EV1" | jq -r .body_fp)" "report-fingerprint-equals-the-proxys"
text=$(lab_ctl main complaint "$LAB_DIR/exact.eml" --events "$EVENTS" 2>&1)
check_contains "$text" "VM:        $VM1" "text-output-names-the-vm"
check_contains "$text" "ref $REF1" "text-output-names-the-ref"

# --- Message-ID and recipient redacted: strong, by the body's fingerprint
make_arf "$MSG1" "$LAB_DIR/redacted.eml" redact
check_fails "redacted-report-has-no-message-id" grep -qF "$MID" "$LAB_DIR/redacted.eml"
complaint "$LAB_DIR/redacted.eml"
check_eq "$RC" 0 "redacted-report-matches"
check_eq "$(j .match)" strong "redacted-strong-by-body"
check_contains "$(j .why)" "body fingerprint" "redacted-says-body-fingerprint"
check_eq "$(j .vm)" "$VM1" "redacted-names-the-vm"
check_eq "$(j .ref)" "$REF1" "redacted-names-the-message"

# --- headers only, no Source-IP, no Arrival-Date: the Received header does
make_arf "$MSG2" "$LAB_DIR/headers.eml" headers
complaint "$LAB_DIR/headers.eml"
check_eq "$(j .vm)" "$VM2" "headers-only-names-vm2-not-vm1"
check_eq "$(j .match)" probable "headers-only-is-probable"

# --- refused: a report that is none, an address nobody here has
printf 'Subject: spam!\n\nyou spammed me\n' > "$LAB_DIR/junk.eml"
complaint "$LAB_DIR/junk.eml"
check_eq "$RC" 1 "junk-report-exit-1"
check_contains "$(j .error)" "not multipart/report" "junk-report-error-says-why"
sed "s/^Source-IP: .*/Source-IP: 192.0.2.99/; s/^Message-ID:.*/Message-ID: <x@y>/" \
	"$LAB_DIR/redacted.eml" > "$LAB_DIR/stranger.eml"
complaint "$LAB_DIR/stranger.eml"
check_eq "$(j .match)" none "unknown-source-matches-nothing"
check_eq "$RC" 1 "unknown-source-exit-1"

# --- --confirm: the sender's ladder climbs at its next message
check_eq "$(show "$VM1" ladder)" normal "vm1-starts-normal"
complaint "$LAB_DIR/exact.eml" --confirm
check_eq "$(j .confirmed)" true "confirm-confirmed"
check_eq "$(show "$VM1" complaints)" 1 "show-counts-the-complaint"
check_eq "$(show "$VM1" complaints_pending)" 1 "show-says-not-yet-on-the-ladder"
check_delivered "vm1-next-message-delivered" vm1 "$MX4"
check_eq "$(show "$VM1" ladder)" flagged "complaint-flags-the-sender"
check_contains "$(show "$VM1" ladder_reason)" "abuse complaint confirmed" "show-says-why"
check_eq "$(show "$VM1" complaints_pending)" 0 "complaint-taken-by-the-ladder"
wait_for 5 grep -q "\"event\":\"ladder\".*\"source\":\"$VM1\".*abuse complaint" "$EVENTS" &&
	pass "ladder-event-for-the-complaint" ||
	fail "ladder-event-for-the-complaint" "$(grep '"event":"ladder"' "$EVENTS" | tail -n 1)"
check_eq "$(show "$VM2" ladder)" normal "vm2-untouched"
sleep 1.2	# ladder_dwell
complaint "$LAB_DIR/redacted.eml" --confirm
check_eq "$(j .confirmed)" true "strong-match-confirms"
send_mail vm1 "$MX4" 25 5
check_match "$MAIL_OUT" "<\*\* 451 4\.7\.1 smtpguard: message refused \(sending suspended for [0-9]+ min: abuse complaint confirmed \(2 so far\)\); ref SG" \
	"second-complaint-tempfails-at-mail-from"
check_eq "$(show "$VM1" ladder)" tempfail "second-complaint-tempfail-step"
# a probable match is never confirmed against anyone
before=$(show "$VM2" complaints)
complaint "$LAB_DIR/headers.eml" --confirm
check_eq "$(j .confirmed)" false "probable-not-confirmed"
check_eq "$RC" 1 "probable-confirm-exit-1"
check_eq "$(show "$VM2" complaints)" "$before" "probable-counts-nothing"
lab_ctl main release "$VM1" >/dev/null
check_eq "$(show "$VM1" ladder)" normal "release-after-complaints"

# --- a feedback-loop maildir, watched
FBL=$LAB_DIR/fbl
mkdir -p "$FBL/new" "$FBL/cur" "$FBL/tmp"
cp "$LAB_DIR/redacted.eml" "$FBL/new/1000.before.receiver"	# there before the watch
"$CTL" --json complaint --watch "$FBL" --events "$EVENTS" > "$LAB_DIR/watch.out" 2>"$LAB_DIR/watch.err" &
WATCH=$!
wait_for 10 test -e "$FBL/cur/1000.before.receiver:2,S" &&
	pass "watch-takes-what-was-there" || fail "watch-takes-what-was-there" "$(ls "$FBL"/*)"
cp "$LAB_DIR/exact.eml" "$FBL/tmp/1001.drop.receiver"
mv "$FBL/tmp/1001.drop.receiver" "$FBL/new/"	# as a delivery agent does
wait_for 10 test -e "$FBL/cur/1001.drop.receiver:2,S" &&
	pass "watch-picks-up-a-dropped-report" || fail "watch-picks-up-a-dropped-report" "$(ls "$FBL"/*)"
wait_for 5 grep -q "1001.drop.receiver" "$LAB_DIR/watch.out"
check_eq "$(grep 1001.drop.receiver "$LAB_DIR/watch.out" | jq -r '.vm + " " + .match')" \
	"$VM1 exact" "watch-names-the-vm"
cp "$LAB_DIR/junk.eml" "$FBL/tmp/1002.junk.receiver"
mv "$FBL/tmp/1002.junk.receiver" "$FBL/new/"
wait_for 10 test -e "$FBL/cur/1002.junk.receiver:2,FS" &&
	pass "watch-flags-a-bad-report" || fail "watch-flags-a-bad-report" "$(ls "$FBL"/*)"
check_eq "$(ls "$FBL/new" | wc -l)" 0 "watch-leaves-nothing-in-new"
check_eq "$(grep -c '"report"' "$LAB_DIR/watch.out")" 3 "watch-each-report-once"
kill "$WATCH"
wait "$WATCH"
check_eq "$?" 0 "watch-stops-cleanly-on-sigterm"

e2e_finish
