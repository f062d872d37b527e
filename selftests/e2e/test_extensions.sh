#!/usr/bin/env bash
# test_extensions.sh - the MX's SMTP extensions reach the VM through the
# scanning proxy, kept and not stripped (issue 15, item 3), against the
# lab's real Postfix MX, the VM's side played byte for byte by
# selftests/tools/smtp_dialogue.py (and swaks for AUTH):
#   - the EHLO the VM sees lists PIPELINING, SIZE with the MX's own limit,
#     8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8, DSN and CHUNKING; BURL is not
#     offered even by an MX that offers it (ehlo_stub_mx.py);
#   - SMTPUTF8: a UTF-8 sender, recipient, headers and body are accepted and
#     stored at the MX byte-identical (after the MX's own trace headers);
#   - DSN: RET, ENVID, NOTIFY and ORCPT reach the MX: its success DSN, its
#     bounce and its silence under NOTIFY=NEVER say so;
#   - SIZE: a declared size over the MX's limit gets 552 5.3.4, one under
#     it goes on and is delivered;
#   - PIPELINING: MAIL, RCPT, RCPT, DATA in one write get their four
#     replies, in order (the second RCPT refused in between);
#   - CHUNKING: a BDAT message (a chunk ending between CR and LF) stored
#     byte-identical; a pattern in the last chunk never reaches the MX;
#   - the scanner is on: the same pattern over DATA gets smtpguard's 550;
#   - AUTH on 587: not steered (smtp_ports = 25), and STARTTLS + AUTH PLAIN
#     with Cyrus SASL (sasldb) at the MX succeeds end to end.
# ehlo-offers-chunking and chunking-bdat-stored-byte-identical fail until
# the proxy offers CHUNKING (it hides it today, proxy/relay_replies.c).
#   bash selftests/e2e/test_extensions.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin extensions "${1:-}" 240

VM1=$(lab_vm_ip4 vm1)
DIALOGUE=$E2E_REPO/selftests/tools/smtp_dialogue.py
STUB_MX=$E2E_REPO/selftests/tools/ehlo_stub_mx.py
STUB_MX4=198.51.100.26
MX_SIZE=5000000
SASL_USER=customer@$LAB_MAIL_DOMAIN
SASL_PASS=lab-secret-$$

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_make_tls_ca "$LAB_DIR/tls" || e2e_abort "cannot make the lab's TLS certificates"
# shellcheck disable=SC2034 # read by lab_start_mx_postfix
LAB_MX_TLS_CHAIN="$LAB_DIR/tls/mx.key $LAB_DIR/tls/mx.crt"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"

# --- the MX: what the lab's Postfix lacks for these checks
MXETC=$LAB_DIR/postfix-mx/etc
mkdir -p "$MXETC/sasl"
# fails@ is taken at RCPT and fails at delivery: the MX's bounce (or its
# silence, under NOTIFY=NEVER) is what tells whether NOTIFY reached it: its
# transport is a pipe(8) to a command that exits EX_NOUSER (67), a permanent
# failure (the error(8) transport would have smtpd refuse it at RCPT)
printf 'fails@%s failing:\n' "$LAB_MAIL_DOMAIN" >"$MXETC/transport"
printf '#!/bin/sh\necho "lab: this mailbox fails after acceptance"\nexit 67\n' >"$MXETC/fail.sh"
chmod 755 "$MXETC/fail.sh"
cat >"$MXETC/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: $MXETC/sasl/sasldb2
EOF
printf '%s' "$SASL_PASS" | saslpasswd2 -p -c -f "$MXETC/sasl/sasldb2" -u "$LAB_MAIL_DOMAIN" \
	"${SASL_USER%@*}" || e2e_abort "saslpasswd2 failed"
chown postfix "$MXETC/sasl/sasldb2"
postconf -c "$MXETC" -e "message_size_limit = $MX_SIZE" "smtputf8_enable = yes" \
	"transport_maps = texthash:$MXETC/transport" "cyrus_sasl_config_path = $MXETC/sasl" ||
	e2e_abort "postconf main.cf failed"
postconf -c "$MXETC" -M "failing/unix=failing unix - n n - - pipe user=nobody argv=$MXETC/fail.sh" ||
	e2e_abort "postconf -M failing failed"
# 587 as a provider's customers' submission port: STARTTLS required, then
# AUTH (Cyrus SASL, sasldb), and only an authenticated client may send
postconf -c "$MXETC" -P "submission/inet/smtpd_tls_security_level=encrypt" \
	"submission/inet/smtpd_sasl_auth_enable=yes" "submission/inet/smtpd_sasl_type=cyrus" \
	"submission/inet/smtpd_tls_auth_only=yes" "submission/inet/smtpd_sasl_authenticated_header=yes" \
	"submission/inet/smtpd_relay_restrictions=permit_sasl_authenticated,reject" \
	"submission/inet/smtpd_recipient_restrictions=permit_sasl_authenticated,reject" ||
	e2e_abort "postconf master.cf failed"
lab_exec mx timeout 20 postfix -c "$MXETC" reload >/dev/null 2>&1 || e2e_abort "postfix reload failed"
sleep 1

# an MX offering what Postfix does not (BURL, BINARYMIME), on a second address
ip -n "$(lab_ns mx)" addr add "$STUB_MX4/24" dev eth0 || e2e_abort "cannot add $STUB_MX4 to the MX"
lab_exec mx python3 "$STUB_MX" "$STUB_MX4" 25 PIPELINING "SIZE 1234567" 8BITMIME CHUNKING \
	BINARYMIME "BURL imap" SMTPUTF8 >"$LAB_DIR/stub-mx.log" 2>&1 &
# shellcheck disable=SC2317 # called through wait_for
stub_listens() { lab_exec mx ss -Hltn | grep -qF "$STUB_MX4:25"; }
wait_for 10 stub_listens ||
	e2e_abort "ehlo_stub_mx.py did not listen on $STUB_MX4:25"

# the proxy scans port 25 only (the daemon's default; the lab's is 25 587)
printf 'offer body /forbidden-offer-[0-9]+/i\n' >"$LAB_DIR/content.rules"
lab_start_smtpguardd main default_action=scan proxy=yes uplink=uplink0 smtp_ports=25 \
	content_rules="$LAB_DIR/content.rules" connect_timeout=3s || e2e_abort "smtpguardd did not start"

# dialogue NAME SERVER PORT STEP...: plays the steps (smtp_dialogue.py's
# script lines) from vm1 (from DIALOGUE_NODE if set); the transcript is in
# $LAB_DIR/NAME.out
dialogue() {
	local name=$1 server=$2 port=$3; shift 3
	printf '%s\n' "$@" >"$LAB_DIR/$name.script"
	lab_exec "${DIALOGUE_NODE:-vm1}" timeout 60 python3 "$DIALOGUE" "$server" "$port" "$LAB_DIR/$name.script" \
		>"$LAB_DIR/$name.out" 2>&1
}
# codes FILE: the code of each reply in a transcript, greeting first
codes() { grep -oE '^<- [0-9]{3} ' "$1" | cut -c4-6 | paste -sd' '; }
# ehlo_keywords FILE: the keywords of the first EHLO reply, one a line
ehlo_keywords() {
	awk '/^-> EHLO/ { on = 1; next }
	     on && /^<- 250[- ]/ { if (n++) print substr($0, 8); if (substr($0, 7, 1) == " ") exit }' "$1"
}
# queued_as FILE: the MX's queue id from the last "queued as" reply
queued_as() { grep -oE 'queued as [0-9A-F]+' "$1" | tail -n 1 | awk '{ print $3 }'; }
# mail_body FILE: a delivered message without the trace headers the MX
# put on top (Return-Path, X-Original-To, Delivered-To, Received and
# their continuations)
mail_body() {
	awk 'top && /^(Return-Path|X-Original-To|Delivered-To|Received):/ { next }
	     top && /^[ \t]/ { next }
	     { top = 0; print }' top=1 "$1"
}

# check_stored NAME TOKEN FILE: the message carrying TOKEN reached the MX
# and its body there is FILE's bytes; 1 when it never arrived
check_stored() {
	local f
	if ! wait_for 10 lab_mx_find_mail "$2"; then
		fail "$1" "$2 never reached the MX"
		return 1
	fi
	f=$(lab_mx_find_mail "$2")
	if mail_body "$f" | cmp -s - "$3"; then
		pass "$1"
	else
		fail "$1" "$(mail_body "$f" | diff - "$3" | head -n 6)"
	fi
	return 0
}
# dsn_for T: the delivery status notification the MX sent to dsn-T@ (the
# original message, from that sender, is not one: it has no X-Postfix-Sender)
dsn_for() { lab_mx_find_mail "X-Postfix-Sender: rfc822; dsn-$1@$LAB_MAIL_DOMAIN"; }
tok() { echo "ext-$1-$$-$RANDOM"; }

st0=$(stat_get main steered)

# ------------------------------------------------------------ EHLO keywords
# what the MX offers, asked from its own namespace (nothing steered)
DIALOGUE_NODE=mx dialogue ehlo-direct "$LAB_MX4" 25 "cmd EHLO vm1.example.org" "cmd QUIT"
ehlo_keywords "$LAB_DIR/ehlo-direct.out" >"$LAB_DIR/ehlo-direct.kw"
dialogue ehlo "$LAB_MX4" 25 "cmd EHLO vm1.example.org" "cmd QUIT"
ehlo_keywords "$LAB_DIR/ehlo.out" >"$LAB_DIR/ehlo.kw"
kw=$(paste -sd' ' "$LAB_DIR/ehlo.kw")
echo "# the MX offers: $(paste -sd' ' "$LAB_DIR/ehlo-direct.kw")" >&2
echo "# the VM sees:   $kw" >&2
for k in PIPELINING "SIZE $MX_SIZE" 8BITMIME ENHANCEDSTATUSCODES SMTPUTF8 DSN CHUNKING; do
	name=ehlo-offers-$(echo "${k%% *}" | tr '[:upper:]' '[:lower:]')
	if ! grep -qx "$k" "$LAB_DIR/ehlo-direct.kw"; then
		fail "$name" "the MX itself does not offer '$k' (setup): $(paste -sd' ' "$LAB_DIR/ehlo-direct.kw")"
	elif grep -qx "$k" "$LAB_DIR/ehlo.kw"; then
		pass "$name"
	else
		fail "$name" "the MX offers '$k', the VM does not see it: $kw"
	fi
done
check_gt "$(stat_get main steered)" "${st0:-0}" "ehlo-session-went-through-the-proxy"

# BURL (RFC 4468) has the MX fetch the body from an IMAP server by URL: the
# message would reach the MX without ever crossing the proxy, so the scanner
# would never see it; it must stay hidden whatever the MX offers. Postfix
# offers no BURL, so the stub MX does, to make the check able to fail.
dialogue ehlo-stub "$STUB_MX4" 25 "cmd EHLO vm1.example.org" "cmd QUIT"
ehlo_keywords "$LAB_DIR/ehlo-stub.out" >"$LAB_DIR/ehlo-stub.kw"
echo "# the stub MX offers BURL, BINARYMIME, CHUNKING; the VM sees: $(paste -sd' ' "$LAB_DIR/ehlo-stub.kw")" >&2
if ! grep -qx "SIZE 1234567" "$LAB_DIR/ehlo-stub.kw"; then
	fail "ehlo-hides-burl" "the stub MX's EHLO did not reach the VM: $(tail -n 3 "$LAB_DIR/ehlo-stub.out")"
elif grep -qiE '^BURL( |$)' "$LAB_DIR/ehlo-stub.kw"; then
	fail "ehlo-hides-burl" "BURL offered to the VM: $(paste -sd' ' "$LAB_DIR/ehlo-stub.kw")"
else
	pass "ehlo-hides-burl"
fi

# ------------------------------------------------------------ SMTPUTF8
t=$(tok utf8)
cat >"$LAB_DIR/utf8.eml" <<EOF
From: Jürgen Müller <jürgen@example.org>
To: <jürgen@$LAB_MAIL_DOMAIN>
Subject: Grüße $t
Date: Thu, 03 Dec 2026 12:00:00 +0000
Message-ID: <$t@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus Köln, ünïcödé body $t
.a line that starts with a dot, Ελληνικά
日本語の行、🙂
EOF
dialogue utf8 "$LAB_MX4" 25 "cmd EHLO vm1.example.org" \
	"cmd MAIL FROM:<jürgen@example.org> SMTPUTF8 BODY=8BITMIME" \
	"cmd RCPT TO:<jürgen@$LAB_MAIL_DOMAIN>" "cmd DATA" "data $LAB_DIR/utf8.eml" "cmd QUIT"
check_eq "$(codes "$LAB_DIR/utf8.out")" "220 250 250 250 354 250 221" "smtputf8-session-accepted"
if check_stored "smtputf8-stored-byte-identical" "$t" "$LAB_DIR/utf8.eml"; then
	f=$(lab_mx_find_mail "$t")
	check_ok "smtputf8-mx-saw-utf8-envelope" grep -qE "^Delivered-To: jürgen@$LAB_MAIL_DOMAIN$" "$f"
	check_match "$(grep -A2 -m1 '^Received:' "$f")" "with UTF8E?SMTPS?A? id" "smtputf8-mx-received-with-utf8smtp"
else
	echo "# $(tail -n 4 "$LAB_DIR/utf8.out" | tr '\n' ' ')"
fi

# ------------------------------------------------------------ DSN
# What is asked for is what Postfix would not do by default, so that a
# parameter lost on the way shows: RET=HDRS on a bounce (by default the
# whole message; a success DSN carries the headers whatever RET says, so
# RET is checked on the bounce only), ORCPT (by default the RCPT address),
# NOTIFY=SUCCESS and NEVER (by default FAILURE,DELAY), ENVID (none).
printf 'Subject: %s\n\nbody-secret %s\n' "dsn" "dsn" >"$LAB_DIR/dsn.eml"
# success: NOTIFY=SUCCESS,FAILURE, ORCPT, ENVID
envA=$(tok envA)
dialogue dsn-success "$LAB_MX4" 25 "cmd EHLO vm1.example.org" \
	"cmd MAIL FROM:<dsn-$envA@$LAB_MAIL_DOMAIN> RET=HDRS ENVID=$envA" \
	"cmd RCPT TO:<u@$LAB_MAIL_DOMAIN> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig-$envA@example.org" \
	"cmd DATA" "data $LAB_DIR/dsn.eml" "cmd QUIT"
check_eq "$(codes "$LAB_DIR/dsn-success.out")" "220 250 250 250 354 250 221" "dsn-params-accepted"
if wait_for 15 dsn_for "$envA"; then
	pass "dsn-notify-success-dsn-sent"
	f=$(dsn_for "$envA")
	check_ok "dsn-envid-passed" grep -qE "^Original-Envelope-Id: $envA$" "$f"
	check_ok "dsn-success-action-delivered" grep -qE '^Action: delivered' "$f"
	check_ok "dsn-orcpt-passed" grep -qiE "^Original-Recipient: rfc822; ?orig-$envA@example.org" "$f"
else
	fail "dsn-notify-success-dsn-sent" "no DSN to dsn-$envA at the MX: $(grep -E 'sender delivery|status=' "$(lab_mx_log)" | tail -n 2)"
fi
# failure, NOTIFY=FAILURE, RET=HDRS: the MX's bounce carries the headers only
envB=$(tok envB)
dialogue dsn-failure "$LAB_MX4" 25 "cmd EHLO vm1.example.org" \
	"cmd MAIL FROM:<dsn-$envB@$LAB_MAIL_DOMAIN> RET=HDRS ENVID=$envB" \
	"cmd RCPT TO:<fails@$LAB_MAIL_DOMAIN> NOTIFY=FAILURE ORCPT=rfc822;orig-$envB@example.org" \
	"cmd DATA" "data $LAB_DIR/dsn.eml" "cmd QUIT"
if wait_for 15 dsn_for "$envB"; then
	f=$(dsn_for "$envB")
	check_ok "dsn-notify-failure-bounce-sent" grep -qE '^Action: failed' "$f"
	check_ok "dsn-ret-hdrs-passed" grep -qi '^Content-Type: text/rfc822-headers' "$f"
	check_fails "dsn-ret-hdrs-no-body" grep -q 'body-secret' "$f"
else
	fail "dsn-notify-failure-bounce-sent" "no bounce to dsn-$envB at the MX: $(tail -n 3 "$LAB_DIR/dsn-failure.out")"
fi
# NOTIFY=NEVER: the same failure, and no bounce at all
envC=$(tok envC)
dialogue dsn-never "$LAB_MX4" 25 "cmd EHLO vm1.example.org" \
	"cmd MAIL FROM:<dsn-$envC@$LAB_MAIL_DOMAIN> ENVID=$envC" \
	"cmd RCPT TO:<fails@$LAB_MAIL_DOMAIN> NOTIFY=NEVER" \
	"cmd DATA" "data $LAB_DIR/dsn.eml" "cmd QUIT"
qid=$(queued_as "$LAB_DIR/dsn-never.out")
if [ -z "$qid" ]; then
	fail "dsn-notify-never-no-bounce" "the MX did not queue it: $(tail -n 3 "$LAB_DIR/dsn-never.out")"
elif ! wait_for 15 grep -qE "$qid: to=<fails@.*status=bounced" "$(lab_mx_log)"; then
	fail "dsn-notify-never-no-bounce" "the MX never bounced $qid: $(grep "$qid" "$(lab_mx_log)" | tail -n 2)"
else
	sleep 3
	if dsn_for "$envC" >/dev/null || grep -q "$qid: sender non-delivery notification" "$(lab_mx_log)"; then
		fail "dsn-notify-never-no-bounce" "the MX sent a bounce for $qid under NOTIFY=NEVER"
	else
		pass "dsn-notify-never-no-bounce"
	fi
fi

# ------------------------------------------------------------ SIZE
dialogue size-over "$LAB_MX4" 25 "cmd EHLO vm1.example.org" \
	"cmd MAIL FROM:<vm1@example.org> SIZE=$((MX_SIZE + 1))" "cmd QUIT"
check_eq "$(codes "$LAB_DIR/size-over.out")" "220 250 552 221" "size-over-limit-552"
check_ok "size-over-limit-enhanced-5.3.4" grep -qE '^<- 552 5\.3\.4 ' "$LAB_DIR/size-over.out"
t=$(tok size)
printf 'Subject: %s\n\nunder the limit\n' "$t" >"$LAB_DIR/size.eml"
sz=$(wc -c <"$LAB_DIR/size.eml")
dialogue size-under "$LAB_MX4" 25 "cmd EHLO vm1.example.org" \
	"cmd MAIL FROM:<vm1@example.org> SIZE=$sz" "cmd RCPT TO:<u@$LAB_MAIL_DOMAIN>" \
	"cmd DATA" "data $LAB_DIR/size.eml" "cmd QUIT"
check_eq "$(codes "$LAB_DIR/size-under.out")" "220 250 250 250 354 250 221" "size-under-limit-accepted"
if wait_for 10 lab_mx_find_mail "$t"; then pass "size-under-limit-delivered"
else fail "size-under-limit-delivered" "$t never reached the MX"; fi

# ------------------------------------------------------------ PIPELINING
# one write: MAIL, RCPT (taken), RCPT (relay denied: 454), DATA; the
# replies must come back four, in that order, then the body's
t=$(tok pipe)
printf 'Subject: %s\n\npipelined\n' "$t" >"$LAB_DIR/pipe.eml"
dialogue pipe "$LAB_MX4" 25 "cmd EHLO vm1.example.org" \
	"send MAIL FROM:<vm1@example.org>" "send RCPT TO:<u@$LAB_MAIL_DOMAIN>" \
	"send RCPT TO:<someone@example.com>" "send DATA" "flush" \
	"data $LAB_DIR/pipe.eml" "cmd QUIT"
check_eq "$(codes "$LAB_DIR/pipe.out")" "220 250 250 250 454 354 250 221" "pipelining-replies-in-order"
check_ok "pipelining-relay-refusal-is-the-mx-s" grep -qE '^<- 454 4\.7\.1 <someone@example\.com>: Relay access denied' \
	"$LAB_DIR/pipe.out"
if wait_for 10 lab_mx_find_mail "$t"; then pass "pipelining-message-delivered"
else fail "pipelining-message-delivered" "$t never reached the MX: $(tail -n 4 "$LAB_DIR/pipe.out")"; fi

# ------------------------------------------------------------ CHUNKING
# A BDAT message (the first chunk ending between a CR and its LF, a line
# starting with a dot, which BDAT sends unstuffed) delivered byte-identical;
# one with the pattern in its last chunk refused before the MX commits it
# (the reply to BDAT LAST withheld until the verdict, as the dot's is).
# Until the proxy offers CHUNKING it refuses BDAT outright (421): the
# pattern check holds either way, never a body passing unscanned.
t=$(tok bdat)
printf 'Subject: %s\n\nchunked body\n.a line that starts with a dot\nlast line\n' "$t" \
	>"$LAB_DIR/bdat.eml"
chunk=$(head -n 1 "$LAB_DIR/bdat.eml" | wc -c)	# the first line and its CR
if grep -qx CHUNKING "$LAB_DIR/ehlo.kw"; then
	dialogue bdat "$LAB_MX4" 25 "cmd EHLO vm1.example.org" "send MAIL FROM:<vm1@example.org>" \
		"send RCPT TO:<u@$LAB_MAIL_DOMAIN>" "bdat $LAB_DIR/bdat.eml $chunk" "flush" "cmd QUIT"
	n=$(grep -c '^-> BDAT' "$LAB_DIR/bdat.out")
	want="220 250 250 250$(printf ' 250%.0s' $(seq 1 "$n")) 221"
	check_eq "$(codes "$LAB_DIR/bdat.out")" "$want" "chunking-bdat-accepted"
	check_stored "chunking-bdat-stored-byte-identical" "$t" "$LAB_DIR/bdat.eml" ||
		echo "# $(tail -n 4 "$LAB_DIR/bdat.out" | tr '\n' ' ')"
else
	fail "chunking-bdat-stored-byte-identical" "not tried: CHUNKING is not offered to the VM"
fi
t=$(tok bdatspam)
printf 'Subject: %s\n\nfirst chunk is clean\nget your forbidden-offer-77 today\n' "$t" \
	>"$LAB_DIR/bdatspam.eml"
dialogue bdatspam "$LAB_MX4" 25 "cmd EHLO vm1.example.org" "send MAIL FROM:<vm1@example.org>" \
	"send RCPT TO:<u@$LAB_MAIL_DOMAIN>" "bdat $LAB_DIR/bdatspam.eml 24" "flush" "cmd QUIT"
sleep 2
if lab_mx_find_mail "$t" >/dev/null; then
	fail "chunking-pattern-in-last-chunk-never-reaches-mx" "delivered: $(codes "$LAB_DIR/bdatspam.out")"
elif ! grep -qE '^<- [45][0-9]{2} ' "$LAB_DIR/bdatspam.out"; then
	fail "chunking-pattern-in-last-chunk-never-reaches-mx" "not at the MX, but the VM was not refused: $(codes "$LAB_DIR/bdatspam.out")"
else
	pass "chunking-pattern-in-last-chunk-never-reaches-mx"
fi

# ------------------------------------------------------------ scanning on
# the same pattern over DATA: refused by smtpguard, so the checks above ran
# with the scanner reading every body
t=$(tok spam)
printf 'Subject: %s\n\nget your forbidden-offer-77 today\n' "$t" >"$LAB_DIR/spam.eml"
dialogue spam "$LAB_MX4" 25 "cmd EHLO vm1.example.org" "cmd MAIL FROM:<vm1@example.org>" \
	"cmd RCPT TO:<u@$LAB_MAIL_DOMAIN>" "cmd DATA" "data $LAB_DIR/spam.eml" "cmd QUIT"
check_ok "scanner-refuses-pattern-over-data" grep -qE '^<- 550 5\.7\.1 smtpguard' "$LAB_DIR/spam.out"
check_gt "$(stat_get main steered)" "${st0:-0}" "port-25-sessions-steered"

# ------------------------------------------------------------ AUTH on 587
# smtp_ports = 25: the classifier passes 587 untouched; the VM and the MX
# talk directly (STARTTLS, AUTH), and the steered count stays still
s0=$(stat_get main steered)
if send_mail vm1 "$LAB_MX4" 587 10 --from "$SASL_USER" --tls --auth PLAIN \
	--auth-user "$SASL_USER" --auth-password "$SASL_PASS"; then
	check_contains "$MAIL_OUT" "235 2.7.0 Authentication successful" "auth-587-plain-after-starttls"
	if wait_for 10 lab_mx_find_mail "$MAIL_TOKEN"; then
		f=$(lab_mx_find_mail "$MAIL_TOKEN")
		check_ok "auth-587-delivered-as-authenticated" \
			grep -qF "(Authenticated sender: $SASL_USER)" "$f"
		check_ok "auth-587-mx-saw-the-vm" grep -qE "^Received: from .*\[$VM1\]" "$f"
	else
		fail "auth-587-delivered-as-authenticated" "$MAIL_TOKEN never reached the MX"
	fi
else
	fail "auth-587-plain-after-starttls" "$(echo "$MAIL_OUT" | grep -E '^\*\*\*|<[-~]  [45]' | head -n 3)"
fi
send_mail vm1 "$LAB_MX4" 587 10 --from "$SASL_USER" --tls --auth PLAIN \
	--auth-user "$SASL_USER" --auth-password "wrong-$SASL_PASS"
check_contains "$MAIL_OUT" "535 5.7.8" "auth-587-wrong-password-535"
check_eq "$(stat_get main steered)" "$s0" "auth-587-not-steered"

e2e_finish
