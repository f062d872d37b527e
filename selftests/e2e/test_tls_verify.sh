#!/usr/bin/env bash
# test_tls_verify.sh - tls_mode terminate with tls_mx_verify = verify: the
# MX is authenticated by a name from a trusted source, never by its greeting,
# and the MX session cache is per VM. Real Postfix on both ends (the MX's
# certificate is for mx.example.net, from the lab's MX CA, which smtpguard
# trusts), swaks for the dialogues Postfix does not make (SNI, recipients of
# other domains).
#   tls_mx_names lists the MX's address with mx.example.net: delivered, the
#     event says "name from tls_mx_names"; with a wrong name: the VM's
#     STARTTLS gets 421, nothing is delivered, whatever SNI or recipient the
#     VM names;
#   no tls_mx_names: a recipient at example.net passes (mx.example.net is
#     under it), a recipient at example.org gets 450 4.7.5 and never reaches
#     the MX, though the MX's greeting names the host its certificate holds;
#     the VM's SNI mx.example.net passes, its SNI example.net does not;
#   an attacker's MX on the path with a valid certificate for
#     attacker.example (and a greeting to match): refused whatever the VM
#     names;
#   two VMs to one MX: each resumes its own MX session, never the other's.
#   bash selftests/e2e/test_tls_verify.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin tlsv "${1:-}" 400

VM1=$(lab_vm_ip4 vm1)
VM2=$(lab_vm_ip4 vm2)

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
TLSDIR=$LAB_DIR/tls
lab_make_tls_ca "$TLSDIR" || e2e_abort "making the test CAs failed"
# an attacker's certificate, valid (from the CA smtpguard trusts), for its
# own name
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=attacker.example" \
	-keyout "$TLSDIR/attacker.key" -out "$TLSDIR/attacker.csr" >/dev/null 2>&1 &&
	printf 'subjectAltName = DNS:attacker.example\n' >"$TLSDIR/attacker.ext" &&
	openssl x509 -req -in "$TLSDIR/attacker.csr" -CA "$TLSDIR/mx-ca.crt" \
		-CAkey "$TLSDIR/mx-ca.key" -CAcreateserial -days 2 -extfile "$TLSDIR/attacker.ext" \
		-out "$TLSDIR/attacker.crt" >/dev/null 2>&1 && chmod 644 "$TLSDIR/attacker.key" ||
	e2e_abort "making the attacker's certificate failed"
LAB_MX_TLS_CHAIN="$TLSDIR/mx.key $TLSDIR/mx.crt"
LAB_VM_TLS_CAFILE=$TLSDIR/provider-ca.crt
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
lab_start_vm_postfix vm1 || e2e_abort "Postfix did not start in vm1"
EVENTS=$LAB_DIR/events.jsonl
NAMES=$LAB_DIR/mx-names
SGD_ARGS=(default_action=scan proxy=yes uplink=uplink0 events_file="$EVENTS" connect_timeout=3s
	tls_cert_file="$TLSDIR/provider.crt" tls_key_file="$TLSDIR/provider.key"
	tls_handshake_timeout=5s tls_mx_verify=verify tls_ca_file="$TLSDIR/mx-ca.crt")
printf '# the lab MX\n%s mx.example.net\n' "$LAB_MX4" >"$NAMES"
lab_start_smtpguardd main "${SGD_ARGS[@]}" tls_mx_names="$NAMES" ||
	e2e_abort "smtpguardd did not start"
for vm in vm1 vm2; do
	lab_ctl main policy add "$(lab_vm_ip4 $vm)/32" scan --tls terminate >/dev/null
	lab_ctl main policy add "$(lab_vm_ip6 $vm)/128" scan --tls terminate >/dev/null
done
VMLOG=$(lab_vm_log vm1)
SGLOG=$(lab_sgd_log main)

# reload KEY=VALUE...: the config rewritten, SIGHUP, and the reload logged
reload() {
	local n0
	n0=$(grep -c "reloaded for new sessions" "$SGLOG")
	lab_write_sgd_conf main "${SGD_ARGS[@]}" "$@"
	kill -HUP "$(lab_sgd_pid main)"
	wait_for 10 eval '[ "$(grep -c "reloaded for new sessions" "$SGLOG")" -gt "$n0" ]' ||
		fail "reload" "no reload logged: $(tail -n 3 "$SGLOG")"
}

# session_of ADDR: the last session event from ADDR (IPv4, or IPv6 in brackets)
session_of() { grep '"event":"session"' "$EVENTS" | grep -F "\"source\":\"$1:" | tail -n 1; }
# new_session ADDR N0: waits for a session event from ADDR past line N0 of
# the events file; sets EV
new_session() {
	local addr=$1 n0=$2
	wait_for 10 eval 'tail -n +$((n0 + 1)) "$EVENTS" | grep "\"event\":\"session\"" | grep -qF "\"source\":\"$addr:"'
	EV=$(tail -n +$((n0 + 1)) "$EVENTS" | grep '"event":"session"' | grep -F "\"source\":\"$addr:" |
		tail -n 1)
}
events_now() { wc -l <"$EVENTS" 2>/dev/null || echo 0; }

# vm_send NAME: one message through vm1's Postfix to u@example.net; waits
# for its first outcome, into SENT_LINE.
vm_send() {
	local name=$1 n0 qid
	n0=$(wc -l <"$VMLOG")
	lab_vm_sendmail vm1 "$name-$$" hello || { fail "$name" "sendmail failed"; return 1; }
	if ! wait_for 10 eval 'tail -n +$((n0 + 1)) "$VMLOG" | grep -qE "[0-9A-F]+: message-id="'; then
		fail "$name" "the VM's Postfix did not take the message"
		return 1
	fi
	qid=$(tail -n +$((n0 + 1)) "$VMLOG" | grep -oE "[0-9A-F]+: message-id=" | head -n 1)
	qid=${qid%%:*}
	if ! wait_for 30 eval 'grep -qE "$qid: to=.*status=(sent|bounced|deferred)" "$VMLOG"'; then
		fail "$name" "the VM's Postfix logged no outcome for $qid: $(tail -n 2 "$VMLOG")"
		return 1
	fi
	SENT_LINE=$(grep -E "$qid: to=.*status=(sent|bounced|deferred)" "$VMLOG" | head -n 1)
}
vm_queue_clear() { lab_exec vm1 postsuper -c "$LAB_DIR/postfix-vm1/etc" -d ALL >/dev/null 2>&1; }

# ------------------------------------------------------------ the operator's names
n0=$(events_now)
if vm_send names-right-delivered; then
	check_match "$SENT_LINE" "status=sent \(250 2\.0\.0 Ok: queued as" "names-right-delivered"
	new_session "$VM1" "$n0"
	check_eq "$(echo "$EV" | jq -r .mx_verified_by)" "name from tls_mx_names: mx.example.net" \
		"names-right-event-says-so"
	check_eq "$(echo "$EV" | jq -r .mx_verified)" true "names-right-event-verified"
fi
# the operator's name covers the session: a recipient of another domain is
# the MX's to judge (this MX relays nothing for example.org)
send_mail vm1 "$LAB_MX4" 25 5 --tls --to u@example.org
check_match "$MAIL_OUT" "Relay access denied" "names-right-other-recipients-are-the-mx-s"
if echo "$MAIL_OUT" | grep -q "smtpguard: the MX's TLS certificate is not valid"; then
	fail "names-right-smtpguard-refuses-no-recipient" "$(echo "$MAIL_OUT" | grep smtpguard)"
else
	pass "names-right-smtpguard-refuses-no-recipient"
fi

# a wrong name: no session reaches the MX, whatever the VM names
printf '%s mx.other.test\n' "$LAB_MX4" >"$NAMES"
reload tls_mx_names="$NAMES"
m0=$(lab_mx_count_mail)
if vm_send names-wrong-deferred; then
	check_match "$SENT_LINE" "status=deferred" "names-wrong-deferred"
fi
vm_queue_clear
send_mail vm1 "$LAB_MX4" 25 5 --tls --tls-sni mx.example.net
check_match "$MAIL_OUT" "421 4\.7\.0 smtpguard: TLS with the MX not authenticated \(its certificate matches none of the names tls_mx_names gives its address: mx\.other\.test\)" \
	"names-wrong-starttls-gets-421-even-with-a-matching-sni"
check_ok "names-wrong-logged" grep -q "is not authenticated: its certificate matches none of the names" "$SGLOG"
sleep 1
check_eq "$(lab_mx_count_mail)" "$m0" "names-wrong-nothing-delivered"

# ------------------------------------------------------------ names from the VM's own session
reload
# Postfix's RCPT is u@example.net; the MX's certificate is mx.example.net
n0=$(events_now)
if vm_send rcpt-domain-delivered; then
	check_match "$SENT_LINE" "status=sent \(250 2\.0\.0 Ok: queued as" "rcpt-domain-delivered"
	new_session "$VM1" "$n0"
	check_eq "$(echo "$EV" | jq -r .mx_verified_by)" "recipient domain example.net" \
		"rcpt-domain-event-says-so"
fi
# a recipient at another domain: 450 before it reaches the MX, though the
# MX's greeting names mx.example.net, which its certificate holds
m0=$(lab_mx_count_mail); n0=$(events_now); l0=$(wc -l <"$(lab_mx_log)")
send_mail vm1 "$LAB_MX4" 25 5 --tls --to u@example.org
check_match "$MAIL_OUT" "<(~|\*)\* +450 4\.7\.5 smtpguard: the MX's TLS certificate is not valid for example\.org" \
	"other-domain-rcpt-gets-450"
new_session "$VM1" "$n0"
check_eq "$(echo "$EV" | jq -r .mx_host)" "mx.example.net" "greeting-names-the-certificate-s-host"
check_eq "$(echo "$EV" | jq -r .mx_verified)" false "greeting-alone-does-not-verify"
check_eq "$(echo "$EV" | jq -r .mx_verified_by)" "chain only" "greeting-alone-event-chain-only"
check_eq "$(lab_mx_count_mail)" "$m0" "other-domain-never-delivered"
if tail -n +$((l0 + 1)) "$(lab_mx_log)" | grep -q "to=<u@example.org>"; then
	fail "other-domain-rcpt-never-reached-the-mx" "the MX logged it"
else
	pass "other-domain-rcpt-never-reached-the-mx"
fi
# both at once: example.net's recipient goes, example.org's is refused
send_mail vm1 "$LAB_MX4" 25 5 --tls --to u@example.net,v@example.org
check_match "$MAIL_OUT" "<(~|\*)\* +450 4\.7\.5 smtpguard: the MX's TLS certificate is not valid for example\.org" \
	"mixed-rcpts-other-domain-refused"
check_match "$MAIL_OUT" "<~ +250 2\.0\.0 Ok: queued as" "mixed-rcpts-example-net-delivered"
# the VM's SNI names the MX's host: the whole session is authenticated
n0=$(events_now)
check_delivered "sni-delivered" vm1 "$LAB_MX4" 25 --tls --tls-sni mx.example.net
new_session "$VM1" "$n0"
check_eq "$(echo "$EV" | jq -r .mx_verified_by)" "VM's SNI mx.example.net" "sni-event-says-so"
check_eq "$(echo "$EV" | jq -r .sni)" "mx.example.net" "sni-recorded"
# a hostile VM: SNI example.net (not the certificate's name) and a
# recipient elsewhere
send_mail vm1 "$LAB_MX4" 25 5 --tls --tls-sni example.net --to u@example.org
check_match "$MAIL_OUT" "<(~|\*)\* +450 4\.7\.5 smtpguard: the MX's TLS certificate is not valid for example\.org" \
	"sni-of-the-domain-does-not-pass"
# an address literal names no domain
send_mail vm1 "$LAB_MX4" 25 5 --tls --to "u@[$LAB_MX4]"
check_match "$MAIL_OUT" "<(~|\*)\* +450 4\.7\.5 smtpguard: the MX's TLS certificate is not valid for a recipient without a domain" \
	"address-literal-rcpt-refused"

# ------------------------------------------------------------ an attacker's MX
# a valid certificate for attacker.example, and a greeting to match it
lab_exec mx timeout 20 postfix -c "$LAB_DIR/postfix-mx/etc" stop >/dev/null 2>&1
LAB_MX_TLS_CHAIN="$TLSDIR/attacker.key $TLSDIR/attacker.crt"
lab_start_mx_postfix || e2e_abort "Postfix did not restart on the MX"
lab_exec mx postconf -c "$LAB_DIR/postfix-mx/etc" -e "smtpd_banner = attacker.example ESMTP" &&
	lab_exec mx timeout 20 postfix -c "$LAB_DIR/postfix-mx/etc" reload >/dev/null 2>&1
sleep 1
m0=$(lab_mx_count_mail); n0=$(events_now)
send_mail vm1 "$LAB_MX4" 25 5 --tls --tls-sni mx.example.net
check_match "$MAIL_OUT" "<(~|\*)\* +450 4\.7\.5 smtpguard: the MX's TLS certificate is not valid for example\.net" \
	"attacker-refused-sni-and-rcpt-example-net"
new_session "$VM1" "$n0"
check_eq "$(echo "$EV" | jq -r .mx_host)" "attacker.example" "attacker-greeting-matches-its-certificate"
check_eq "$(echo "$EV" | jq -r .mx_verified_by)" "chain only" "attacker-event-chain-only"
if vm_send attacker-deferred; then
	check_match "$SENT_LINE" "status=deferred.*450 4\.7\.5 smtpguard" "attacker-postfix-deferred"
fi
vm_queue_clear
sleep 1
check_eq "$(lab_mx_count_mail)" "$m0" "attacker-nothing-delivered"
# the operator's name for the address does not match it either
printf '%s mx.example.net\n' "$LAB_MX4" >"$NAMES"
reload tls_mx_names="$NAMES"
send_mail vm1 "$LAB_MX4" 25 5 --tls
check_match "$MAIL_OUT" "421 4\.7\.0 smtpguard: TLS with the MX not authenticated" \
	"attacker-refused-against-tls-mx-names"

# ------------------------------------------------------------ the session cache, per VM
lab_exec mx timeout 20 postfix -c "$LAB_DIR/postfix-mx/etc" stop >/dev/null 2>&1
LAB_MX_TLS_CHAIN="$TLSDIR/mx.key $TLSDIR/mx.crt"
lab_start_mx_postfix || e2e_abort "Postfix did not restart on the MX"
reload tls_mx_names="$NAMES"	# a reload empties the cache
# resumed NAME VM ADDR SERVER WANT: one delivery from VM; the event's
# mx_resumed is WANT
resumed() {
	local n0
	n0=$(events_now)
	check_delivered "$1-delivered" "$2" "$4" 25 --tls || return
	new_session "$3" "$n0"
	check_eq "$(echo "$EV" | jq -r .mx_resumed)" "$5" "$1"
}
resumed cache-vm1-first-is-full vm1 "$VM1" "$LAB_MX4" false
resumed cache-vm1-resumes-its-own vm1 "$VM1" "$LAB_MX4" true
resumed cache-vm2-does-not-resume-vm1-s-session vm2 "$VM2" "$LAB_MX4" false
resumed cache-vm2-resumes-its-own vm2 "$VM2" "$LAB_MX4" true
# IPv6: smtpguard keys senders by their /64 (ipv6_source_prefix): vm1 and
# vm2 share 2001:db8:1::/64, so they are one sender, as for their limits
resumed cache-v6-first-is-full vm1 "[$(lab_vm_ip6 vm1)]" "$LAB_MX6" false
resumed cache-v6-same-64-is-one-sender vm2 "[$(lab_vm_ip6 vm2)]" "$LAB_MX6" true
reload tls_mx_names="$NAMES" ipv6_source_prefix=128
resumed cache-v6-128-first-is-full vm1 "[$(lab_vm_ip6 vm1)]" "$LAB_MX6" false
resumed cache-v6-128-each-address-its-own vm2 "[$(lab_vm_ip6 vm2)]" "$LAB_MX6" false

e2e_finish
