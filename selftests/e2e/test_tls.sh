#!/usr/bin/env bash
# test_tls.sh - the proxy's TLS modes, per policy entry, with real Postfix on
# both ends and two test CAs made here (lab_make_tls_ca): the MX's
# certificate from one, the provider's (what terminate shows the VMs) from
# the other. The VM's Postfix trusts only the provider's CA, so its log says
# "Trusted" when it saw the provider's certificate and "Untrusted" when it
# saw the MX's own.
#   passthrough: the MX logs TLS, the VM saw the MX's certificate, and the
#     proxy read nothing of the VM past STARTTLS (its session event);
#   terminate: the MX logs TLS, the VM saw the provider's certificate, spam
#     inside TLS is refused and never reaches the MX;
#   strip: the MX logs a cleartext session, smtpguard a warning;
#   an MX without STARTTLS (mirror and require); handshake failures on
#   either side, garbage instead of a ClientHello and a silent VM (the
#   handshake timeout): each a clear log line and a clean close;
#   passthrough tunnels under each mover: a half-close is passed on and
#   every byte arrives (counts and digests, both ways).
#   bash selftests/e2e/test_tls.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin tls "${1:-}" 400

VM1=$(lab_vm_ip4 vm1)
PEER=$(dirname "$0")/../tools/tunnel_peer.pl

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
TLSDIR=$LAB_DIR/tls
lab_make_tls_ca "$TLSDIR" || e2e_abort "making the test CAs failed"
LAB_MX_TLS_CHAIN="$TLSDIR/mx.key $TLSDIR/mx.crt"
LAB_VM_TLS_CAFILE=$TLSDIR/provider-ca.crt
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
lab_start_vm_postfix vm1 || e2e_abort "Postfix did not start in vm1"
printf 'offer body /forbidden-offer-[0-9]+/i\n' > "$LAB_DIR/content.rules"
EVENTS=$LAB_DIR/events.jsonl
SGD_ARGS=(default_action=scan proxy=yes uplink=uplink0 smtp_ports="25 465 2525"
	content_rules="$LAB_DIR/content.rules" events_file="$EVENTS" connect_timeout=3s
	tls_cert_file="$TLSDIR/provider.crt" tls_key_file="$TLSDIR/provider.key"
	tls_handshake_timeout=3s)
lab_start_smtpguardd main "${SGD_ARGS[@]}" || e2e_abort "smtpguardd did not start"
VMLOG=$(lab_vm_log vm1)
MXLOG=$(lab_mx_log)
SGLOG=$(lab_sgd_log main)

count() { grep -cE -- "$1" "$2" 2>/dev/null || true; }
# last_session: the session event of the last session that ended
last_session() { grep '"event":"session"' "$EVENTS" | tail -n 1; }
# session_event NAME ERE: a session event matching ERE appears (10 s); sets EV
session_event() {
	local want=$2	# eval runs inside wait_for: its own $2 is another
	if wait_for 10 eval 'grep "\"event\":\"session\"" "$EVENTS" | grep -qE -- "$want"'; then
		EV=$(grep '"event":"session"' "$EVENTS" | grep -E -- "$want" | tail -n 1)
		pass "$1"
	else
		fail "$1" "no session event matches /$2/; the last: $(last_session)"
	fi
}

# vm_send NAME SUBJECT BODY: one message through the VM's Postfix; waits for
# its log to show the message's outcome (its first delivery attempt: a
# refusal's bounce is another message). Sets SENT_LINE to that log line.
vm_send() {
	local name=$1 subject=$2 body=$3 n0 qid
	n0=$(wc -l <"$VMLOG")
	lab_vm_sendmail vm1 "$subject" "$body" || { fail "$name" "sendmail failed"; return 1; }
	# the queue id the VM's Postfix gave it (its pickup line names the sender)
	if ! wait_for 10 eval 'tail -n +$((n0 + 1)) "$VMLOG" | grep -qE "[0-9A-F]+: message-id="'; then
		fail "$name" "the VM's Postfix did not take the message: $(tail -n 2 "$VMLOG")"
		return 1
	fi
	qid=$(tail -n +$((n0 + 1)) "$VMLOG" | grep -oE "[0-9A-F]+: message-id=" | head -n 1)
	qid=${qid%%:*}
	if ! wait_for 30 eval 'grep -qE "$qid: to=.*status=(sent|bounced|deferred)" "$VMLOG"'; then
		fail "$name" "the VM's Postfix logged no outcome for $qid: $(tail -n 2 "$VMLOG")"
		return 1
	fi
	SENT_LINE=$(grep -E "$qid: to=.*status=(sent|bounced|deferred)" "$VMLOG" | head -n 1)
	return 0
}

# tls_lines_since N FILE: TLS-established lines after the first N lines
tls_lines_since() { tail -n +"$(($1 + 1))" "$2" | grep -E "TLS connection established" || true; }

# ------------------------------------------------------------ implicit TLS
# 465 is one of smtp_ports: a scan source's connection there stays in the
# kernel (nothing listens on the MX's 465: refused by the MX itself; had
# the proxy taken it, it would have been accepted)
st0=$(stat_get main steered); pt0=$(stat_get main passthrough)
check_eq "$(lab_tcp_probe vm1 "$LAB_MX4" 465 3)" refused "implicit-tls-465-reaches-the-mx-directly"
check_eq "$(stat_get main steered)" "$st0" "implicit-tls-465-not-steered"
check_gt "$(stat_get main passthrough)" "${pt0:-0}" "implicit-tls-465-counted-as-passthrough"

# ------------------------------------------------------------ passthrough
lab_ctl main policy add "$VM1/32" scan --tls passthrough >/dev/null
mx0=$(wc -l <"$MXLOG"); vm0=$(wc -l <"$VMLOG")
if vm_send passthrough-delivered "pt-$$" hello; then
	check_match "$SENT_LINE" "status=sent \(250 2\.0\.0 Ok: queued as" "passthrough-delivered"
	check_match "$(tls_lines_since "$vm0" "$VMLOG")" "Untrusted TLS connection established to" \
		"passthrough-vm-saw-the-mx-certificate"
	check_match "$(tls_lines_since "$mx0" "$MXLOG")" "TLS connection established from unknown\[$VM1\]" \
		"passthrough-mx-logged-tls"
	session_event passthrough-event '"tls":"passthrough"'
	ev=$EV
	check_eq "$(echo "$ev" | jq -r .inspected)" false "passthrough-event-not-inspected"
	# EHLO vm1.example.org\r\n (22) + STARTTLS\r\n (10): nothing past STARTTLS
	check_eq "$(echo "$ev" | jq -r .read_bytes.vm)" 32 "passthrough-read-nothing-of-the-vm-past-starttls"
	check_gt "$(echo "$ev" | jq -r .tunnel_bytes.from_vm)" 1000 "passthrough-tunnel-carried-the-tls-session"
	check_ge "$(show_get main "$VM1" tls_uninspected)" 1 "passthrough-counted-per-sender-as-uninspected-tls"
fi

# ------------------------------------------------------------ terminate
lab_ctl main policy add "$VM1/32" scan --tls terminate >/dev/null
mx0=$(wc -l <"$MXLOG"); vm0=$(wc -l <"$VMLOG")
if vm_send terminate-delivered "term-$$" hello; then
	check_match "$SENT_LINE" "status=sent \(250 2\.0\.0 Ok: queued as" "terminate-delivered"
	check_match "$(tls_lines_since "$vm0" "$VMLOG")" "Trusted TLS connection established to" \
		"terminate-vm-saw-the-provider-certificate"
	check_match "$(tls_lines_since "$mx0" "$MXLOG")" "TLS connection established from unknown\[$VM1\]" \
		"terminate-mx-logged-tls"
	session_event terminate-event '"messages":1,.*"tls":"terminate"'
	ev=$EV
	check_eq "$(echo "$ev" | jq -r .inspected)" true "terminate-event-inspected"
	check_match "$(echo "$ev" | jq -r .tls_vm)" "^TLSv1\.[23] " "terminate-event-names-the-vm-tls"
	check_eq "$(echo "$ev" | jq -r .mx_host)" "mx.$LAB_MAIL_DOMAIN" "terminate-mx-name-from-its-greeting"
	check_eq "$(echo "$ev" | jq -r .messages)" 1 "terminate-event-counts-the-message"
	check_ge "$(show_get main "$VM1" tls_sessions)" 2 "terminate-counted-per-sender-as-tls"
fi
n0=$(lab_mx_count_mail)
if vm_send terminate-spam "spam-$$" "get your forbidden-offer-42 today"; then
	check_match "$SENT_LINE" "said: 550 5\.7\.1 smtpguard: message refused" "terminate-spam-inside-tls-refused"
fi
sleep 1
check_eq "$(lab_mx_count_mail)" "$n0" "terminate-spam-never-reached-the-mx"
# the refusal's bounce would be retried for ever (the MX relays nothing back)
lab_exec vm1 postsuper -c "$LAB_DIR/postfix-vm1/etc" -d ALL >/dev/null 2>&1
# the certificate itself, as a TLS client in the VM sees it
out=$(lab_exec vm1 timeout 10 openssl s_client -starttls smtp -connect "$LAB_MX4:25" \
	-servername mx.example.net -CAfile "$TLSDIR/provider-ca.crt" -verify_return_error \
	</dev/null 2>&1)
check_match "$out" "subject=CN ?= ?smtpguard\.provider\.test" "terminate-openssl-sees-the-provider-certificate"
check_match "$out" "Verify return code: 0 \(ok\)" "terminate-provider-certificate-verifies"
session_event "terminate-sni-recorded" '"sni":"mx\.example\.net"'
# resumption: a second handshake with the first session's ticket (QUIT and
# -ign_eof: the client reads the ticket that follows the handshake)
printf 'QUIT\r\n' | lab_exec vm1 timeout 10 openssl s_client -starttls smtp -ign_eof \
	-connect "$LAB_MX4:25" -sess_out "$LAB_DIR/sess.pem" >/dev/null 2>&1
out=$(printf 'QUIT\r\n' | lab_exec vm1 timeout 10 openssl s_client -starttls smtp -ign_eof \
	-connect "$LAB_MX4:25" -sess_in "$LAB_DIR/sess.pem" 2>&1)
check_match "$out" "^Reused, TLSv1\.3" "terminate-session-resumed"
session_event "terminate-resumption-recorded" '"resumed":true' 
# 5 MiB of lines of every length inside TLS. The relay stops reading a side
# when its buffer is full; the records OpenSSL then holds are announced by
# no epoll event, and the final dot sat in them until the VM's QUIT (swaks
# waits 20 s for the dot's reply, then gives up).
python3 "$E2E_REPO/selftests/interop/gen_messages.py" "$LAB_DIR/msgs" >/dev/null ||
	e2e_abort "gen_messages.py failed"
head -c -2 "$LAB_DIR/msgs/big5m.crlf" >"$LAB_DIR/big5m.swaks"	# swaks ends it with CRLF . CRLF
n0=$(lab_mx_count_mail)
t0=$(ms_now)
out=$(lab_exec vm1 timeout 60 swaks --tls --server "$LAB_MX4" --timeout 20 --helo vm1.example.org \
	--from vm1@example.org --to "u@$LAB_MAIL_DOMAIN" --data "@$LAB_DIR/big5m.swaks" \
	--suppress-data 2>&1)
echo "# terminate 5 MiB: $(( $(ms_now) - t0 )) ms"
check_match "$out" "<~ +250 2\.0\.0 Ok: queued as" "terminate-5mib-of-varied-lines-delivered"
if wait_for 10 eval '[ "$(lab_mx_count_mail)" -gt "$n0" ]'; then
	got=$(find "$(lab_mx_maildir)/new" -type f -newer "$LAB_DIR/big5m.swaks" -exec grep -l \
		"^Message-ID: <big5m.interop@example.org>" {} + | head -n 1)
	want_bytes=$(stat -c %s "$LAB_DIR/msgs/big5m.lf")
	check_eq "$(tail -c "$want_bytes" "$got" | sha256sum | cut -d' ' -f1)" \
		"$(sha256sum <"$LAB_DIR/msgs/big5m.lf" | cut -d' ' -f1)" "terminate-5mib-byte-identical"
else
	fail "terminate-5mib-byte-identical" "the MX stored no new message"
fi

# ------------------------------------------------------------ strip
lab_ctl main policy add "$VM1/32" scan --tls strip >/dev/null
mx0=$(wc -l <"$MXLOG"); vm0=$(wc -l <"$VMLOG")
if vm_send strip-delivered "strip-$$" hello; then
	check_match "$SENT_LINE" "status=sent \(250 2\.0\.0 Ok: queued as" "strip-delivered"
	check_eq "$(tls_lines_since "$mx0" "$MXLOG")" "" "strip-mx-logged-cleartext"
	check_eq "$(tls_lines_since "$vm0" "$VMLOG")" "" "strip-vm-used-cleartext"
	check_ok "strip-warning-logged" grep -q "STARTTLS hidden from the VM (tls_mode strip)" "$SGLOG"
	session_event "strip-event" '"tls":"stripped"' 
fi

# IPv6: the same, from vm1's IPv6 address to the MX's
lab_ctl main policy add "$(lab_vm_ip6 vm1)/128" scan --tls terminate >/dev/null
check_delivered "terminate-ipv6-delivered" vm1 "$LAB_MX6" 25 --tls
check_match "$MAIL_OUT" "<~ +250 2\.0\.0 Ok: queued as" "terminate-ipv6-inside-tls"
session_event "terminate-ipv6-event" '"source":"\[2001:db8:1::11\]:[0-9]+".*"tls":"terminate"'

# ------------------------------------------------------------ SIGHUP: a new certificate, no session dropped
# a session terminated under the old certificate stays up across the reload
# and delivers after it; the next session gets the new certificate
lab_ctl main policy add "$VM1/32" scan --tls terminate >/dev/null
lab_make_tls_ca "$LAB_DIR/tls2" || e2e_abort "making the second test CA failed"
rm -f "$LAB_DIR/hold.in"; mkfifo "$LAB_DIR/hold.in"
lab_exec vm1 timeout 60 openssl s_client -starttls smtp -connect "$LAB_MX4:25" -quiet \
	<"$LAB_DIR/hold.in" >"$LAB_DIR/hold.out" 2>&1 &
hold=$!
exec 7>"$LAB_DIR/hold.in"
printf 'EHLO vm1.example.org\r\n' >&7
wait_for 10 grep -q "^250 " "$LAB_DIR/hold.out" || fail "reload-held-session-up" "$(cat "$LAB_DIR/hold.out")"
lab_write_sgd_conf main "${SGD_ARGS[@]}" tls_cert_file="$LAB_DIR/tls2/provider.crt" \
	tls_key_file="$LAB_DIR/tls2/provider.key"
kill -HUP "$(cat "$(lab_sgd_pidfile main)")"
wait_for 10 grep -q "TLS certificate, key, CA, versions and ciphers reloaded for new sessions" "$SGLOG" &&
	pass "reload-logged" || fail "reload-logged" "$(tail -n 3 "$SGLOG")"
n0=$(lab_mx_count_mail)
printf 'MAIL FROM:<vm1@example.org>\r\nRCPT TO:<u@example.net>\r\nDATA\r\n' >&7
sleep 0.5
printf 'Subject: held across the reload\r\n\r\nstill here\r\n.\r\nQUIT\r\n' >&7
exec 7>&-
wait "$hold"
check_match "$(cat "$LAB_DIR/hold.out")" "250 2\.0\.0 Ok: queued as" "reload-held-session-delivers-after-it"
wait_for 10 eval '[ "$(lab_mx_count_mail)" -gt "$n0" ]' &&
	pass "reload-held-session-message-at-mx" || fail "reload-held-session-message-at-mx" "not delivered"
out=$(lab_exec vm1 timeout 10 openssl s_client -starttls smtp -connect "$LAB_MX4:25" \
	-CAfile "$LAB_DIR/tls2/provider-ca.crt" -verify_return_error </dev/null 2>&1)
check_match "$out" "Verify return code: 0 \(ok\)" "reload-new-session-gets-the-new-certificate"
lab_write_sgd_conf main "${SGD_ARGS[@]}"
kill -HUP "$(cat "$(lab_sgd_pidfile main)")"
sleep 0.5

# ------------------------------------------------------------ handshake failures
lab_ctl main policy add "$VM1/32" scan --tls terminate >/dev/null
# the VM refuses the provider's certificate (it trusts only the MX's CA)
out=$(lab_exec vm1 timeout 10 openssl s_client -starttls smtp -connect "$LAB_MX4:25" \
	-CAfile "$TLSDIR/mx-ca.crt" -verify_return_error </dev/null 2>&1)
check_match "$out" "verify error|certificate verify failed" "vm-handshake-refused-by-the-vm"
wait_for 5 grep -q "TLS with the VM failed" "$SGLOG" &&
	pass "vm-handshake-failure-logged" || fail "vm-handshake-failure-logged" "$(tail -n 3 "$SGLOG")"
# garbage where the ClientHello belongs
out=$(lab_exec vm1 timeout 40 perl "$PEER" handshake "$LAB_MX4" 25 garbage 2>&1)
check_match "$out" "^closed after [0-9]+ ms" "garbage-handshake-closed"
check_le "$(echo "$out" | sed -n 's/^closed after \([0-9]*\) ms/\1/p')" 2000 "garbage-handshake-closed-at-once"
# a VM that never starts its handshake: the timeout (3 s) ends it
out=$(lab_exec vm1 timeout 40 perl "$PEER" handshake "$LAB_MX4" 25 silent 2>&1)
check_match "$out" "^closed after [0-9]+ ms" "silent-handshake-closed"
check_range "$(echo "$out" | sed -n 's/^closed after \([0-9]*\) ms/\1/p')" 2500 6000 "silent-handshake-closed-at-the-timeout"
check_ok "silent-handshake-logged" grep -q "TLS handshake with the VM timed out after 3s" "$SGLOG"
# an MX that says 220 to STARTTLS and never handshakes: the VM hears 421
# once tls_handshake_timeout (3 s) is over
lab_exec mx timeout 30 perl "$PEER" server "$LAB_MX4" 2525 0 >"$LAB_DIR/silent-mx" 2>&1 &
silent=$!
wait_for 5 grep -q listening "$LAB_DIR/silent-mx"
t0=$(ms_now)
send_mail vm1 "$LAB_MX4" 2525 10 --tls
t1=$(( $(ms_now) - t0 ))
check_match "$MAIL_OUT" "421 4\.7\.0 smtpguard: TLS with the MX timed out" "silent-mx-handshake-vm-gets-421"
check_range "$t1" 2500 8000 "silent-mx-handshake-ends-at-the-timeout"
check_ok "silent-mx-handshake-logged" grep -q "TLS handshake with the MX timed out after 3s" "$SGLOG"
kill "$silent" 2>/dev/null; wait "$silent" 2>/dev/null
# an MX that closes right after its 250 without a TLS close_notify: the 250
# still reaches the VM (it must not think its message lost, and send it again)
lab_exec mx timeout 30 perl "$PEER" abrupt-mx "$LAB_MX4" 2525 "$TLSDIR/mx.crt" "$TLSDIR/mx.key" \
	>"$LAB_DIR/abrupt-mx" 2>&1 &
abrupt=$!
wait_for 5 grep -q listening "$LAB_DIR/abrupt-mx"
send_mail vm1 "$LAB_MX4" 2525 5 --tls
check_match "$MAIL_OUT" "<~ +250 2\.0\.0 queued as ABRUPT" "mx-closing-without-close-notify-250-relayed"
wait "$abrupt" 2>/dev/null
# the MX's certificate does not verify (tls_mx_verify = verify, wrong CA)
lab_stop_smtpguardd main >/dev/null
lab_start_smtpguardd main "${SGD_ARGS[@]}" tls_mx_verify=verify \
	tls_ca_file="$TLSDIR/provider-ca.crt" || e2e_abort "smtpguardd did not restart"
lab_ctl main policy add "$VM1/32" scan --tls terminate >/dev/null
send_mail vm1 "$LAB_MX4" 25 5 --tls
check_match "$MAIL_OUT" "<\*\* 421 4\.7\.0 smtpguard: TLS with the MX failed|<- +421 4\.7\.0 smtpguard: TLS with the MX failed" \
	"mx-unverified-vm-gets-421"
check_ok "mx-unverified-logged" grep -q "TLS with the MX (mx.example.net) failed: certificate verification" "$SGLOG"
# the right CA: verified, and delivered
lab_stop_smtpguardd main >/dev/null
lab_start_smtpguardd main "${SGD_ARGS[@]}" tls_mx_verify=verify \
	tls_ca_file="$TLSDIR/mx-ca.crt" || e2e_abort "smtpguardd did not restart"
lab_ctl main policy add "$VM1/32" scan --tls terminate >/dev/null
check_delivered "mx-verified-delivered" vm1 "$LAB_MX4" 25 --tls
session_event "mx-verified-event" '"mx_verified":true' 

# ------------------------------------------------------------ an MX without STARTTLS
lab_exec mx timeout 20 postfix -c "$LAB_DIR/postfix-mx/etc" stop >/dev/null 2>&1
LAB_MX_TLS_CHAIN=
lab_start_mx_postfix || e2e_abort "Postfix did not restart on the MX"
lab_stop_smtpguardd main >/dev/null
lab_start_smtpguardd main "${SGD_ARGS[@]}" || e2e_abort "smtpguardd did not restart"
lab_ctl main policy add "$VM1/32" scan --tls terminate >/dev/null
send_mail vm1 "$LAB_MX4" 25 5 --quit-after EHLO
if echo "$MAIL_OUT" | grep -q "250.STARTTLS"; then
	fail "mirror-no-starttls-offered" "the VM was offered STARTTLS"
else
	pass "mirror-no-starttls-offered"
fi
check_delivered "mirror-delivered-in-clear" vm1 "$LAB_MX4" 25
lab_stop_smtpguardd main >/dev/null
lab_start_smtpguardd main "${SGD_ARGS[@]}" tls_mx_without_starttls=require ||
	e2e_abort "smtpguardd did not restart"
lab_ctl main policy add "$VM1/32" scan --tls terminate >/dev/null
n0=$(lab_mx_count_mail)
send_mail vm1 "$LAB_MX4" 25 5
check_match "$MAIL_OUT" "421 4\.7\.0 smtpguard: the MX does not offer STARTTLS" "require-tempfails"
sleep 1
check_eq "$(lab_mx_count_mail)" "$n0" "require-nothing-delivered"

# ------------------------------------------------------------ tunnels: half-close, every byte
# tunnel_check MOVER: the fake MX on 2525 reads until the VM's half-close,
# then answers 3 MiB; the VM sent 5 MiB. Both sides' counts and digests.
tunnel_check() {
	local mover=$1 slow=${2:-} srv cli
	lab_stop_smtpguardd main >/dev/null
	lab_start_smtpguardd main "${SGD_ARGS[@]}" tls_mover="$mover" ||
		{ fail "tunnel-$mover" "smtpguardd did not restart"; return; }
	lab_ctl main policy add "$VM1/32" scan --tls passthrough >/dev/null
	lab_exec mx timeout 60 perl "$PEER" server "$LAB_MX4" 2525 3145728 >"$LAB_DIR/srv-$mover" 2>&1 &
	srv=$!
	wait_for 5 grep -q listening "$LAB_DIR/srv-$mover"
	cli=$(lab_exec vm1 env TUNNEL_PEER_SLOW="$slow" timeout 60 perl "$PEER" client "$LAB_MX4" \
		2525 5242880 2>&1)
	wait "$srv"
	srv=$(cat "$LAB_DIR/srv-$mover")
	check_eq "$(echo "$srv" | awk '/server got/ {print $3, $4}')" \
		"$(echo "$cli" | awk '/client sent/ {print $3, $4}')" "tunnel-$mover$slow-vm-to-mx-every-byte"
	check_eq "$(echo "$cli" | awk '/client got/ {print $3, $4}')" \
		"$(echo "$srv" | awk '/server sent/ {print $3, $4}')" "tunnel-$mover$slow-mx-to-vm-after-half-close"
	[ -n "$slow" ] && return
	session_event "tunnel-$mover-event" "\"tunnel_mover\":\"$mover\""
	check_eq "$(echo "$EV" | jq -r .tunnel_bytes.from_vm)" 5242880 "tunnel-$mover-event-counts-bytes"
}
tunnel_check copy
tunnel_check splice
tunnel_check sockmap
# the VM reads slowly: the proxy holds the MX's bytes when the MX ends (its
# socket closed both ways, EPOLLHUP, with bytes still unread): none lost
tunnel_check copy -slow-reader
tunnel_check splice -slow-reader
tunnel_check sockmap -slow-reader

# a tunnel whose MX ended (FIN), then reset at the VM's next byte, while the
# VM stays silent: the session ends at once, and the worker does not spin
# on the reset socket (epoll reports it whatever it is armed for)
tunnel_reset_check() {
	local mover=$1 out pid t0 t1 srv
	lab_stop_smtpguardd main >/dev/null
	lab_start_smtpguardd main "${SGD_ARGS[@]}" tls_mover="$mover" ||
		{ fail "tunnel-reset-$mover" "smtpguardd did not restart"; return; }
	lab_ctl main policy add "$VM1/32" scan --tls passthrough >/dev/null
	pid=$(lab_sgd_proxy_pid main)
	lab_exec mx timeout 30 perl "$PEER" fin-then-reset "$LAB_MX4" 2525 >"$LAB_DIR/fin-$mover" 2>&1 &
	srv=$!
	wait_for 5 grep -q listening "$LAB_DIR/fin-$mover"
	t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	out=$(lab_exec vm1 timeout 30 perl "$PEER" poke "$LAB_MX4" 2525 4 2>&1)
	t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	check_match "$out" "^closed after [0-9]+ ms" "tunnel-reset-$mover-session-ends"
	check_le "$(echo "$out" | sed -n 's/^closed after \([0-9]*\) ms/\1/p')" 1500 \
		"tunnel-reset-$mover-session-ends-at-once"
	# clock ticks of the daemon's CPU while it lasted (100 a second)
	check_le "$((t1 - t0))" 30 "tunnel-reset-$mover-no-busy-loop"
	kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null
}
tunnel_reset_check copy
tunnel_reset_check sockmap

e2e_finish
