#!/usr/bin/env bash
# test_milters_lab.sh - the lab's real milters (lab/milters.sh), proved with
# Postfix's own milter client, so that a misbehaving smtpguard milter client
# is never blamed on them: rspamd (proxy worker, milter mode, self_scan) and
# clamav-milter with clamd run in the MX's namespace, the MX's Postfix calls
# both, and vm1 sends straight to the MX (no smtpguardd). GTUBE is refused
# with rspamd's reply, a clean message delivered through both, an EICAR
# attachment refused with clamav-milter's reply naming the lab's signature;
# with rspamd gone, Postfix's milter_default_action tempfails the session.
#   bash selftests/e2e/test_milters_lab.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin milters_lab "${1:-}" 120

MX4=$LAB_MX4
CLAMAV_INET_PORT=11340

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"

t0=$(ms_now)
lab_start_rspamd mx || e2e_abort "rspamd did not start in the MX's namespace"
rspamd_ms=$(( $(ms_now) - t0 ))
t0=$(ms_now)
lab_start_clamav mx "$CLAMAV_INET_PORT" ||
	e2e_abort "clamd and clamav-milter did not start in the MX's namespace"
clamav_ms=$(( $(ms_now) - t0 ))
echo "# rspamd answered a milter in $rspamd_ms ms; clamd and clamav-milter in $clamav_ms ms"
check_le "$rspamd_ms" 5000 "rspamd-ready-within-5s"
check_le "$clamav_ms" 5000 "clamav-ready-within-5s"
# the second clamav-milter, on TCP (Postfix below uses the unix one)
check_ok "clamav-milter-inet-answers-optneg" lab_milter_probe mx "inet:127.0.0.1:$CLAMAV_INET_PORT"

# the MX's Postfix calls rspamd, then clamav-milter; no milter, no mail
pf_conf="$LAB_DIR/postfix-mx/etc"
postconf -c "$pf_conf" -e \
	"smtpd_milters = inet:127.0.0.1:$LAB_RSPAMD_PORT unix:$(lab_clamav_milter_sock mx)" \
	"milter_default_action = tempfail" "milter_protocol = 6" ||
	e2e_abort "postconf smtpd_milters failed"
lab_exec mx postfix -c "$pf_conf" reload >/dev/null 2>&1 || e2e_abort "postfix reload failed"
wait_for_log "$(lab_mx_log)" "master.*: reload" 10 || e2e_abort "Postfix did not log its reload"

# not_delivered NAME: the last message (MAIL_TOKEN) is not in the MX's mailbox
# (a refused message is never queued, so a second is plenty)
not_delivered() {
	sleep 1
	if f=$(lab_mx_find_mail "$MAIL_TOKEN"); then
		fail "$1" "$MAIL_TOKEN was delivered: $f"
	else
		pass "$1"
	fi
}

# ns_count NAME: processes called NAME in the MX's namespace (pgrep alone
# would count other labs' too)
ns_count() {
	ip netns pids "$(lab_ns mx)" 2>/dev/null | xargs -r ps -o comm= -p 2>/dev/null |
		grep -cx -- "$1"
}

# reply: swaks's lines for the server's final word on the message
reply() { printf '%s\n' "$MAIL_OUT" | grep -E '^<\*\*|^<-  [245][0-9][0-9] ' | tail -n 2; }

# --- GTUBE in a text/plain part: rspamd's reject, nothing delivered
send_mail vm1 "$MX4" 25 5 --add-header "MIME-Version: 1.0" \
	--add-header "Content-Type: text/plain; charset=us-ascii" \
	--body "This is the GTUBE, the Generic Test for Unsolicited Bulk Email:
$LAB_GTUBE
"
gtube_out=$MAIL_OUT
check_match "$(reply)" "^<\*\* +554 5\.7\.1 Gtube pattern" "gtube-refused-with-rspamd-554"
not_delivered "gtube-not-in-mx-mailbox"
check_ok "rspamd-logged-gtube-reject" grep -qE "\(default: [A-Z] \(reject\): .*\[GTUBE" \
	"$(lab_rspamd_log mx)"

# --- GTUBE's add-header variant (enable_test_patterns): delivered, with
# the header rspamd has Postfix add (a milter's header change)
check_delivered "gtube-add-header-variant-delivered" vm1 "$MX4" 25 \
	--body "add a header: ${LAB_GTUBE/#X/Y}"
if f=$(lab_mx_find_mail "$MAIL_TOKEN"); then
	check_ok "gtube-add-header-variant-has-x-spam-yes" grep -q "^X-Spam: Yes" "$f"
else
	fail "gtube-add-header-variant-has-x-spam-yes" "no delivered message with $MAIL_TOKEN"
fi

# --- a clean message: through both milters, delivered
check_delivered "clean-message-delivered" vm1 "$MX4"
qid=$(printf '%s' "$MAIL_OUT" | sed -n 's/.*queued as \([0-9A-F]*\).*/\1/p' | tail -n 1)
if f=$(lab_mx_find_mail "$MAIL_TOKEN"); then
	check_ok "clean-message-scanned-by-clamav-milter" grep -q "^X-Virus-Status: Clean" "$f"
else
	fail "clean-message-scanned-by-clamav-milter" "no delivered message with $MAIL_TOKEN"
fi
# rspamd's log names Postfix's queue id, its verdict and its DNS requests
rspamd_line=$(grep -E "qid: <${qid:-none}>" "$(lab_rspamd_log mx)")
check_match "$rspamd_line" "\(default: F \(no action\): \[0\.00/15\.00\] \[\]\)" \
	"clean-message-no-action-no-symbol-from-rspamd"
check_match "$rspamd_line" "dns req: 0," "rspamd-made-no-dns-request"

# --- an EICAR attachment (multipart/mixed, base64): clamav-milter's reject
eicar="$LAB_DIR/eicar.com"
printf '%s' "$LAB_EICAR" >"$eicar"
send_mail vm1 "$MX4" 25 5 --attach-type application/octet-stream --attach "@$eicar"
eicar_out=$MAIL_OUT
check_ok "eicar-sent-as-base64-attachment" grep -qi "^Content-Transfer-Encoding: BASE64" \
	<(printf '%s\n' "$MAIL_OUT" | sed -n 's/^ -> //p')
check_match "$(reply)" "^<\*\* +550 5\.7\.1 Rejected by clamav-milter: infected with $(lab_clamav_signature)" \
	"eicar-refused-with-clamav-milter-550-naming-signature"
not_delivered "eicar-not-in-mx-mailbox"

# --- rspamd gone: Postfix's milter_default_action (tempfail)
check_ge "$(ns_count rspamd)" 2 "rspamd-main-and-worker-in-mx-namespace"
lab_stop_rspamd mx
check_eq "$(lab_tcp_probe mx 127.0.0.1 "$LAB_RSPAMD_PORT" 1)" refused "rspamd-stopped-port-closed"
check_eq "$(ns_count rspamd)" 0 "rspamd-stopped-no-process-left"
send_mail vm1 "$MX4" 25 5
check_match "$(reply)" "^<\*\* +451 4\.7\.1 " "rspamd-down-tempfailed-by-postfix"
tempfail_out=$MAIL_OUT
not_delivered "tempfailed-not-in-mx-mailbox"

# --- the stop functions: again, and after a failed start: rspamd on a port
# another process listens on (here a stand-in in the MX's namespace) cannot
# bind it and exits; the start says why and returns 1
check_ok "stop-rspamd-twice" lab_stop_rspamd mx
lab_exec mx perl -MIO::Socket::INET -e \
	'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$ARGV[0]", Listen => 1, ReuseAddr => 1) or exit 1; sleep 30' \
	"$LAB_RSPAMD_PORT" &
squatter=$!
wait_for 5 lab_tcp_probe mx 127.0.0.1 "$LAB_RSPAMD_PORT" 1 || e2e_abort "the stand-in did not listen"
err="$LAB_DIR/rspamd-failed-start.err"
if lab_start_rspamd mx 2>"$err"; then
	fail "rspamd-start-on-taken-port-fails" "lab_start_rspamd returned 0"
else
	pass "rspamd-start-on-taken-port-fails"
fi
check_contains "$(cat "$err")" "Address already in use" "rspamd-failed-start-shows-log-tail"
kill "$squatter" 2>/dev/null
wait "$squatter" 2>/dev/null
check_ok "stop-rspamd-after-failed-start" lab_stop_rspamd mx
check_eq "$(ns_count rspamd)" 0 "rspamd-failed-start-no-process-left"
check_eq "$(ns_count clamd) $(ns_count clamav-milter)" "1 2" "clamd-and-two-clamav-milters-in-mx-namespace"
check_ok "stop-clamav" lab_stop_clamav mx
check_eq "$(( $(ns_count clamd) + $(ns_count clamav-milter) ))" 0 "clamav-stopped-no-process-left"
check_ok "stop-clamav-twice" lab_stop_clamav mx

echo "# GTUBE: $(printf '%s\n' "$gtube_out" | grep -E '^<\*\*' | tail -n 1)"
echo "# EICAR: $(printf '%s\n' "$eicar_out" | grep -E '^<\*\*' | tail -n 1)"
echo "# rspamd down: $(printf '%s\n' "$tempfail_out" | grep -E '^ ?-> |^<\*\*' | grep -B1 -m1 '^<\*\*' | tr '\n' ' ')"
e2e_finish
