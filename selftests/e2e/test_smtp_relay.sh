#!/usr/bin/env bash
# test_smtp_relay.sh - the proxy's SMTP relay, end to end, VM -> smtpguard ->
# real Postfix MX: a clean message gets the MX's own reply and queue id; a
# message the scanner refuses never reaches the MX's mailbox and the VM gets
# 550 with a reference id; PIPELINING; CHUNKING offered and its chunks
# scanned (a pattern in the last chunk refused before the MX commits, a
# clean message delivered byte for byte); line, recipient and
# size limits; an SMTP-smuggling end refused; the VM gone mid-DATA; a
# stalling MX answered with 421 after the idle timeout.
#   bash selftests/e2e/test_smtp_relay.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin smtp_relay "${1:-}" 240

MX4=$LAB_MX4

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
cat > "$LAB_DIR/content.rules" <<'RULES'
# test rules
campaign    header  /^X-Campaign:.*FORBIDDEN/i
drug-offer  body    /buy-cheap-pills-[0-9]+/i
RULES
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 uplink=uplink0 \
	content_rules="$LAB_DIR/content.rules" smtp_recipient_limit=3 smtp_message_size_limit=20000 \
	events_file="$LAB_DIR/events.json" smtp_idle_timeout=3s escalation_rejects=100 ||
	e2e_abort "smtpguardd did not start"
# this test opens more sessions than the default connection burst allows
# (and has more messages refused than the default escalation allows)
lab_ctl main rate-class set many --conn 1000/s --burst 1000 >/dev/null
lab_ctl main policy add "$(lab_vm_ip4 vm1)/32" scan --class many >/dev/null ||
	e2e_abort "policy add failed"

# raw_session NODE: a hand-written SMTP dialogue from NODE to the MX on
# stdin; prints what the server said
raw_session() {
	lab_exec "$1" timeout 15 bash -c "exec 3<>/dev/tcp/$MX4/25; cat >&3 2>/dev/null; timeout 5 cat <&3"
}

# --- a clean message: the MX's own reply and queue id reach the VM
check_delivered "clean-message-delivered-mx-sees-vm" vm1 "$MX4"
check_match "$MAIL_OUT" "<-  250 2.0.0 Ok: queued as [0-9A-F]+" "vm-gets-mx-queue-id"
check_contains "$MAIL_OUT" "ESMTP" "vm-gets-mx-greeting"

# --- CHUNKING: offered to the VM as Postfix offers it; BURL never
check_match "$MAIL_OUT" "250[- ]CHUNKING" "ehlo-offers-chunking"
if printf '%s' "$MAIL_OUT" | grep -q "BURL"; then
	fail "ehlo-hides-burl" "the VM was offered BURL"
else
	pass "ehlo-hides-burl"
fi
check_contains "$MAIL_OUT" "PIPELINING" "ehlo-keeps-pipelining"

# --- a body pattern: refused, never committed by the MX
n0=$(lab_mx_count_mail)
send_mail vm1 "$MX4" 25 5 --body "hello buy-cheap-pills-42 now"
check_match "$MAIL_OUT" "<\*\* 550 5\.7\.1 smtpguard: message refused \(matches the content rule drug-offer\); ref SG[0-9A-F]+" \
	"body-pattern-refused-550-with-ref"
sleep 1
check_eq "$(lab_mx_count_mail)" "$n0" "refused-message-not-in-mx-mailbox"

# --- a header pattern
send_mail vm1 "$MX4" 25 5 --header "X-Campaign: FORBIDDEN here"
check_contains "$MAIL_OUT" "550 5.7.1" "header-pattern-refused"
sleep 1
check_eq "$(lab_mx_count_mail)" "$n0" "header-refused-not-in-mailbox"

# --- PIPELINING: commands batched, replies in order
send_mail vm1 "$MX4" 25 5 --pipeline
check_match "$MAIL_OUT" "queued as" "pipelined-session-delivered"

# --- recipients over the limit get 452, the rest are delivered
out=$(printf 'EHLO vm1\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u1@example.net>\r\nRCPT TO:<u2@example.net>\r\nRCPT TO:<u3@example.net>\r\nRCPT TO:<u4@example.net>\r\nQUIT\r\n' | raw_session vm1)
check_contains "$out" "452 4.5.3 smtpguard: too many recipients" "fourth-recipient-452"
check_eq "$(printf '%s' "$out" | grep -c '^250 2.1.5')" 3 "three-recipients-accepted"

# --- an over-long command line: 500, the session goes on
long=$(head -c 3000 /dev/zero | tr '\0' 'x')
out=$(printf 'EHLO vm1\r\nNOOP %s\r\nNOOP\r\nQUIT\r\n' "$long" | raw_session vm1)
check_contains "$out" "500 5.5.2 smtpguard: line too long" "long-line-500"
check_contains "$out" "221" "session-goes-on-after-long-line"

# --- a MAIL FROM that declares a size over the limit (RFC 1870): 552 at
# once, its body never sent, a refused message with its event and ref; one
# within it goes on
out=$(printf 'EHLO vm1\r\nMAIL FROM:<big@example.org> SIZE=30000\r\nMAIL FROM:<a@example.org> SIZE=100\r\nQUIT\r\n' | raw_session vm1)
check_match "$out" "552 5\.3\.4 smtpguard: message refused \(a declared size of 30000 bytes is over the limit of 20000\); ref SG[0-9A-F]+" \
	"declared-size-over-limit-552"
check_contains "$out" "250 2.1.0" "declared-size-within-limit-goes-on"
check_eq "$(jq -r 'select(.event=="message" and .mail_from=="big@example.org") | .verdict' "$LAB_DIR/events.json" | tail -1)" \
	"reject" "declared-size-over-limit-has-its-event"

# --- the size limit: 552, nothing delivered
n0=$(lab_mx_count_mail)
big=$(head -c 30000 /dev/zero | tr '\0' 'y' | fold -w 70)
send_mail vm1 "$MX4" 25 5 --body "$big"
check_contains "$MAIL_OUT" "552 5.3.4" "oversized-message-552"
sleep 1
check_eq "$(lab_mx_count_mail)" "$n0" "oversized-not-delivered"

# --- SMTP smuggling: a bare-LF end with a second message behind it
n0=$(lab_mx_count_mail)
out=$(printf 'EHLO vm1\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.net>\r\nDATA\r\nSubject: one\r\n\r\nfirst\n.\r\nMAIL FROM:<b@example.org>\r\nRCPT TO:<u@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\nQUIT\r\n' | raw_session vm1)
check_contains "$out" "554 5.5.0" "smuggling-end-refused"
sleep 1
check_eq "$(lab_mx_count_mail)" "$n0" "smuggled-message-not-delivered"

# --- after a refused message the MX's side is gone: a RSET (an MTA that
# caches connections asking to keep this one) is answered 421, so that the
# next message goes over a new connection instead of being refused here
out=$(printf 'EHLO vm1\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.net>\r\nDATA\r\n' |
	cat - <(sleep 1; printf 'Subject: r\r\n\r\nbuy-cheap-pills-9\r\n.\r\nNOOP\r\nRSET\r\n') |
	raw_session vm1)
check_contains "$out" "550 5.7.1" "refused-then-rset-refused"
check_contains "$out" "250 2.0.0 Ok" "refused-then-noop-250"
check_contains "$out" "421 4.7.0 smtpguard: this session ended with a refused message" \
	"refused-then-rset-421"

# --- DATA as Postfix reads it: with a tab after it, or a blank before it,
# it is still DATA, so the body is scanned (unread, each body line would go
# out as an "unknown command" and the MX would queue the message unscanned)
i=0
for variant in 'DATA\t' ' DATA' 'data \t'; do
	i=$((i + 1))
	n0=$(lab_mx_count_mail)
	out=$(printf "EHLO vm1\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.net>\r\n$variant\r\n" |
		cat - <(sleep 1; printf 'Subject: tab\r\n\r\nbuy-cheap-pills-7\r\n.\r\nQUIT\r\n') |
		raw_session vm1)
	name=$(printf '%s' "$variant" | sed 's/\\t/<TAB>/; s/ /<SP>/')
	check_contains "$out" "550 5.7.1" "data-variant-$i-scanned ($name)"
	sleep 1
	check_eq "$(lab_mx_count_mail)" "$n0" "data-variant-$i-not-delivered ($name)"
done
# RCPT with a tab: counted against the recipient limit like any other
out=$(printf 'EHLO vm1\r\nMAIL FROM:<a@example.org>\r\nRCPT\tTO:<u1@example.net>\r\nRCPT TO:<u2@example.net>\r\nRCPT TO:<u3@example.net>\r\nRCPT\tTO:<u4@example.net>\r\nQUIT\r\n' | raw_session vm1)
check_contains "$out" "452 4.5.3 smtpguard: too many recipients" "rcpt-with-tab-counted"

# --- BDAT: a clean message in chunks cut inside a CRLF and right after a
# dot line, with a dot line and a QUIT line inside: the MX's own reply to
# its BDAT 0 LAST reaches the VM, and the Maildir copy from the message's
# first header on is the message's bytes (CRLF stored as LF by Postfix)
bdat_file="$LAB_DIR/bdat-clean.eml"
{
	printf 'X-Chunk-Id: bdat-clean-%s\r\nFrom: <a@example.org>\r\nSubject: chunks\r\n\r\n' "$$"
	printf 'line one\r\n.\r\n..two dots\r\nQUIT\r\n'
	for i in $(seq 1 300); do printf 'body line %04d of the chunked message\r\n' "$i"; done
} > "$bdat_file"
size=$(stat -c %s "$bdat_file")
# offsets: inside the first CRLF after the headers, right after ".\r\n", the middle
split=$(python3 -c "import sys; d=open(sys.argv[1],'rb').read(); i=d.index(b'\r\n\r\n'); j=d.index(b'\r\n.\r\n')+5; print('%d,%d,%d' % (i+1, j, len(d)//2))" "$bdat_file")
out=$(lab_exec vm1 timeout 30 python3 "$E2E_REPO/selftests/tools/bdat_send.py" --server "$MX4" \
	--from a@example.org --to u@example.net --file "$bdat_file" --split-at "$split" \
	--require-chunking 2>&1)
check_match "$out" "> BDAT [0-9]+ LAST \[" "bdat-clean-last-chunk-sent"
check_match "$out" "< 250 2.0.0 Ok: [0-9]+ bytes queued as [0-9A-F]+|< 250 2.0.0 Ok: queued as [0-9A-F]+" "bdat-clean-mx-reply-reaches-vm"
bdat_got() {	# the stored copy from its X-Chunk-Id line on, LF line ends
	local f
	f=$(lab_mx_find_mail "$1") || return 1
	sed -n '/^X-Chunk-Id: /,$p' "$f"
}
if wait_for 10 bdat_got "bdat-clean-$$"; then
	want=$(tr -d '\r' < "$bdat_file" | sha256sum | cut -c1-64)
	got=$(bdat_got "bdat-clean-$$" | sha256sum | cut -c1-64)
	check_eq "$got" "$want" "bdat-clean-delivered-byte-identical ($size bytes, chunks at $split)"
else
	fail "bdat-clean-delivered-byte-identical" "not in the MX's Maildir: $(printf '%s' "$out" | tail -n 3)"
fi

# --- BDAT: a pattern in the last chunk is refused before the MX commits:
# the VM gets 550 with a reference id, the MX's Maildir never has it
n0=$(lab_mx_count_mail)
printf 'X-Chunk-Id: bdat-spam-%s\r\nSubject: offer\r\n\r\nhello\r\nbuy-cheap-pills-77 today\r\n' "$$" > "$LAB_DIR/bdat-spam.eml"
out=$(lab_exec vm1 timeout 30 python3 "$E2E_REPO/selftests/tools/bdat_send.py" --server "$MX4" \
	--from a@example.org --to u@example.net --file "$LAB_DIR/bdat-spam.eml" --split-at 40 \
	--require-chunking 2>&1)
check_match "$out" "< 550 5.7.1 smtpguard: message refused \(matches the content rule drug-offer\); ref SG" "bdat-last-chunk-pattern-550"
sleep 1
check_eq "$(lab_mx_count_mail)" "$n0" "bdat-refused-not-in-mailbox"
if grep -q "bdat-spam-$$" -r "$(lab_mx_maildir)" 2>/dev/null; then
	fail "bdat-refused-not-committed" "the MX stored it"
else
	pass "bdat-refused-not-committed"
fi
ev=$(jq -c 'select(.event=="message" and .verdict=="reject" and .reason=="matches the content rule drug-offer")' "$LAB_DIR/events.json" | tail -1)
check_ne "$ev" "" "bdat-refusal-event"

# --- BDAT without a size: where the chunk ends cannot be told, so the
# session ends with a 421, not a 5xx the VM would bounce on
out=$(printf 'EHLO vm1\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.net>\r\nBDAT LAST\r\nhello' | raw_session vm1)
check_contains "$out" "421 4.5.4 smtpguard: malformed BDAT" "bdat-malformed-421"

# --- pipelined transactions: each message's event carries its own envelope
# (the VM sends the next MAIL and RCPTs before the MX answers the first dot);
# recipient domains are those the MX accepted, once each, in any case, as
# whole names ("t.example.net", which the MX refuses, is not listed, and
# "example.net" is not taken for part of it); rcpts counts the recipients
# the MX accepted
out=$(printf 'EHLO vm1\r\nMAIL FROM:<first@example.org>\r\nRCPT TO:<w@t.example.net>\r\nRCPT TO:<u@example.net>\r\nRCPT TO:<v@EXAMPLE.NET>\r\nDATA\r\n' |
	cat - <(sleep 1; printf 'Subject: p1\r\n\r\none\r\n.\r\nMAIL FROM:<second@example.org>\r\nRCPT TO:<w@example.net>\r\nDATA\r\n'
		sleep 1; printf 'Subject: p2\r\n\r\ntwo\r\n.\r\nQUIT\r\n') | raw_session vm1)
check_eq "$(printf '%s' "$out" | grep -c '^250 2.0.0 Ok: queued')" 2 "pipelined-transactions-both-queued"
ev1=$(jq -c 'select(.event=="message" and .mail_from=="first@example.org")' "$LAB_DIR/events.json" | tail -1)
check_eq "$(echo "$ev1" | jq -r .rcpt_domains)" "example.net" "pipelined-event-own-recipient-domains"
check_eq "$(echo "$ev1" | jq -r .rcpts)" 2 "pipelined-event-own-recipient-count"
ev2=$(jq -c 'select(.event=="message" and .mail_from=="second@example.org")' "$LAB_DIR/events.json" | tail -1)
check_eq "$(echo "$ev2" | jq -r .rcpt_domains)" "example.net" "pipelined-second-event-own-envelope"

# --- what a VM sends need not be UTF-8 (the MX checks commands, not the
# body): the events stay valid UTF-8 JSON; a stray byte becomes U+FFFD, a
# well-formed character is kept
printf 'EHLO vm1\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.net>\r\nDATA\r\n' |
	cat - <(sleep 1; printf 'Message-ID: <\xc3\xa9t\xc3\xa9-\xe9\xff@example.org>\r\nSubject: x\r\n\r\nbuy-cheap-pills-3\r\n.\r\nQUIT\r\n') |
	raw_session vm1 >/dev/null
check_ok "events-valid-utf8" iconv -f UTF-8 -t UTF-8 -o /dev/null "$LAB_DIR/events.json"
check_eq "$(jq -r 'select(.event=="message") | .message_id' "$LAB_DIR/events.json" | grep -- '-.*@example.org' | tail -1)" \
	"<$(printf '\xc3\xa9t\xc3\xa9-\xef\xbf\xbd\xef\xbf\xbd')@example.org>" "events-utf8-kept-stray-bytes-replaced"

# --- the VM gone mid-DATA: the MX delivers nothing
n0=$(lab_mx_count_mail)
lab_exec vm1 timeout 10 bash -c "exec 3<>/dev/tcp/$MX4/25; printf 'EHLO vm1\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.net>\r\nDATA\r\n' >&3; sleep 1; printf 'Subject: cut\r\n\r\nhalf a message\r\n' >&3; sleep 1; exit 0"
sleep 2
check_eq "$(lab_mx_count_mail)" "$n0" "vm-gone-mid-data-nothing-delivered"

# --- and after all that, the next clean message still goes through
check_delivered "clean-after-refusals" vm1 "$MX4"

# --- the events: one JSON line per message and per session, no body
ev=$LAB_DIR/events.json
check_ok "events-are-json-lines" sh -c "jq -c . '$ev' >/dev/null"
check_ge "$(jq -r 'select(.event=="message" and .verdict=="reject") | .ref' "$ev" | wc -l)" 3 \
	"events-record-refused-messages"
check_ge "$(jq -r 'select(.event=="session") | .source' "$ev" | wc -l)" 5 "events-record-sessions"
check_eq "$(jq -r 'select(.event=="message" and .verdict=="accept") | .mail_from' "$ev" | head -1)" \
	"vm1@example.org" "events-record-mail-from"
check_eq "$(jq -r 'select(.event=="message" and .verdict=="accept") | .rcpt_domains' "$ev" | head -1)" \
	"$LAB_MAIL_DOMAIN" "events-record-recipient-domains"
if grep -q "buy-cheap-pills-42" "$ev"; then
	fail "events-hold-no-body" "a body line is in the events file"
else
	pass "events-hold-no-body"
fi
# trace: by Message-ID and by reference id, back to the VM
mid=$(jq -r 'select(.event=="message" and .verdict=="accept") | .message_id' "$ev" | tail -1)
check_ne "$mid" "" "events-record-message-id"
out=$(lab_ctl main trace "$mid" --events "$ev")
check_contains "$out" "$(lab_vm_ip4 vm1)" "trace-by-message-id-finds-the-vm"
bare=${mid#<}
bare=${bare%>}
out=$(lab_ctl main trace "$bare" --events "$ev")
check_contains "$out" "$(lab_vm_ip4 vm1)" "trace-by-message-id-without-brackets"
lab_ctl main trace "${bare:0:6}" --events "$ev" >/dev/null 2>&1
check_eq "$?" 1 "trace-part-of-a-message-id-matches-nothing"
ref=$(jq -r 'select(.event=="message" and .verdict=="reject") | .ref' "$ev" | head -1)
out=$(lab_ctl main --json trace "$ref" --events "$ev")
check_eq "$(echo "$out" | jq -r .source | cut -d: -f1)" "$(lab_vm_ip4 vm1)" "trace-by-ref-finds-the-vm"
lab_ctl main trace nosuchid --events "$ev" 2>/dev/null
check_eq "$?" 1 "trace-unknown-id-exit-1"

# --- a reload (SIGHUP) reopens events_file: after logrotate moved it away,
# new events go to a new file of that name, none to the moved one
mv "$ev" "$ev.1"
reloads=$(grep -c "reloaded the settings" "$(lab_sgd_log main)")
kill -HUP "$(lab_sgd_pid main)"
wait_for 10 sh -c "[ \$(grep -c 'reloaded the settings' '$(lab_sgd_log main)') -gt $reloads ]" ||
	fail events-reload "no reload logged"
lines=$(wc -l <"$ev.1")
check_delivered "delivered-after-events-reopened" vm1 "$MX4"
wait_for 5 grep -q '"event":"session"' "$ev"
check_ok "events-reopened-after-rotation" grep -q '"event":"message"' "$ev"
check_eq "$(wc -l <"$ev.1")" "$lines" "events-not-written-to-rotated-file"

# --- the MX stalls after DATA (smtp-sink -w): the VM gets 421 after
# smtp_idle_timeout, not a hang; its MTA will try again later
lab_exec mx timeout 20 postfix -c "$LAB_DIR/postfix-mx/etc" stop >/dev/null 2>&1
lab_exec mx timeout 60 smtp-sink -w 30 -u nobody -c "$MX4:25" 100 >/dev/null 2>&1 &
sink_pid=$!
wait_for 10 lab_tcp_probe host "$MX4" 25 >/dev/null
send_mail vm1 "$MX4" 25 20
check_contains "$MAIL_OUT" "421 4.4.2 smtpguard: session timed out" "stalled-mx-421-after-idle-timeout"
check_le "$MAIL_MS" 12000 "stalled-mx-answered-within-the-timeout"
# (lab_exec in the background is a subshell: the sink is found by name)
for p in $(ip netns pids "$(lab_ns mx)"); do
	[ "$(cat "/proc/$p/comm" 2>/dev/null)" = smtp-sink ] && kill "$p" 2>/dev/null
done
wait "$sink_pid" 2>/dev/null

# --- the MX goes away mid-session: the VM is told at once, in SMTP, why
# (not just a closed connection after the drain's grace), and its MTA keeps
# the message for later
for mode in reset-in-data close-in-data close-at-mail; do
	lab_exec mx timeout 20 perl "$(dirname "$0")/../tools/failing_mx.pl" "$mode" "$MX4" 25 1 \
		>"$LAB_DIR/failing_mx.out" 2>&1 &
	fmx_pid=$!
	# (not a probe connection: it would be the one the MX fails)
	wait_for 10 sh -c "ip netns exec $(lab_ns mx) ss -Hltn 'sport = :25' | grep -q ."
	send_mail vm1 "$MX4" 25 10
	case $mode in
	reset-in-data) want="421 4.4.2 smtpguard: the connection to the MX failed (Connection reset by peer)" ;;
	*) want="421 4.4.2 smtpguard: the MX closed the connection" ;;
	esac
	check_contains "$MAIL_OUT" "$want" "mx-$mode-vm-told-421"
	check_le "$MAIL_MS" 2500 "mx-$mode-vm-told-at-once"
	wait "$fmx_pid" 2>/dev/null
	check_contains "$(cat "$LAB_DIR/failing_mx.out")" "failed 1" "mx-$mode-the-mx-did-fail"
done

# --- an MX slow to answer the final dot (its filter at work) is waited for
# past smtp_idle_timeout (3 s here), as RFC 5321 asks (10 minutes): timed
# out, the VM would send again a message the MX may have committed
lab_exec mx timeout 30 perl "$(dirname "$0")/../tools/failing_mx.pl" slow-dot "$MX4" 25 1 6 \
	>"$LAB_DIR/failing_mx.out" 2>&1 &
fmx_pid=$!
wait_for 10 sh -c "ip netns exec $(lab_ns mx) ss -Hltn 'sport = :25' | grep -q ."
send_mail vm1 "$MX4" 25 20
check_contains "$MAIL_OUT" "<-  250 2.0.0 queued as SLOW" "slow-dot-answer-reaches-the-vm"
check_ge "$MAIL_MS" 5500 "slow-dot-waited-for"
wait "$fmx_pid" 2>/dev/null


# --- the session events say how each ended, also when no command came:
# nothing listens on the MX now, so the next VM session is refused there
send_mail vm1 "$MX4" 25 5
check_contains "$MAIL_OUT" "421 4.4.1 smtpguard: the MX is not reachable" "mx-gone-421"
wait_for 5 grep -q '"end":"mx_unreachable"' "$ev"
check_eq "$(jq -r 'select(.event=="session" and .end=="mx_unreachable") | .error' "$ev" | tail -1)" \
	"Connection refused" "session-event-mx-unreachable-why"
check_ge "$(jq -c 'select(.event=="session" and .end=="idle_timeout")' "$ev" | wc -l)" 1 \
	"session-event-idle-timeout"
check_eq "$(jq -r 'select(.event=="session" and .end=="mx_failed") | .error' "$ev" | tail -1)" \
	"Connection reset by peer" "session-event-mx-failed-why"
check_ge "$(jq -c 'select(.event=="session" and .end=="mx_closed")' "$ev" | wc -l)" 2 \
	"session-event-mx-closed"
check_ge "$(jq -c 'select(.event=="session" and .end=="closed")' "$ev" | wc -l)" 1 \
	"session-event-closed-by-peers"

e2e_finish
