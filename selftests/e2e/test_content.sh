#!/usr/bin/env bash
# test_content.sh - the built-in content engine end to end (VM -> smtpguard
# -> real Postfix MX): each of the line engine's evasions is refused with
# 550 5.7.1 naming the rule, and never reaches the MX: a message with no
# blank line, a pattern past 998 bytes of a line, a folded header, a base64
# body, a quoted-printable body (soft breaks and escapes), a NUL byte before
# the pattern, an encoded-word subject; URL hosts on a list (userinfo and
# subdomain), attachment names; a flag rule lets its message through and
# notes it; rules reloaded at SIGHUP judge new sessions while a session in
# flight keeps the rules it began with.
#   bash selftests/e2e/test_content.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin content "${1:-}" 240

MX4=$LAB_MX4
RULES=$LAB_DIR/content.rules

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
printf 'bad-host.example\n' > "$LAB_DIR/bad-hosts"
cat > "$RULES" <<EOF
# the test's rules
PILLS        body             /buy-cheap-pills-[0-9]+/i
BAD_MAILER   header           /^X-Mailer: BadMailer/
LOTTERY      header:Subject   /you have won/i
BAD_HOSTS    url-host         file:$LAB_DIR/bad-hosts
EXE          attachment-name  /\\.(exe|scr)\$/i
NEWSLETTER   body             /unsubscribe-here/  flag
EOF
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 uplink=uplink0 \
	content_rules="$RULES" events_file="$LAB_DIR/events.json" escalation_rejects=100 ||
	e2e_abort "smtpguardd did not start"
lab_ctl main rate-class set many --conn 1000/s --burst 1000 >/dev/null
lab_ctl main policy add "$(lab_vm_ip4 vm1)/32" scan --class many >/dev/null ||
	e2e_abort "policy add failed"
check_contains "$(cat "$(lab_sgd_log main)")" "scanner: 6 content rule(s) from $RULES" \
	"content-rules-loaded-and-logged"

# raw_refused NAME RULE: sends the message in $LAB_DIR/NAME.eml (raw, CRLF,
# as the VM's MTA would; swaks dot-stuffs it) and checks that RULE refused it
# and that it never reached the MX
raw_refused() {
	local name=$1 rule=$2 n0
	n0=$(lab_mx_count_mail)
	# swaks itself, not send_mail: its --header would replace the Subject
	MAIL_OUT=$(lab_exec vm1 timeout 40 swaks --server "$MX4" --port 25 --timeout 10 \
		--helo vm1.example.org --from vm1@example.org --to "u@$LAB_MAIL_DOMAIN" \
		--data "@$LAB_DIR/$name.eml" 2>&1)
	check_match "$MAIL_OUT" "<\*\* 550 5\.7\.1 smtpguard: message refused \(matches the content rule $rule\); ref SG[0-9A-F]+" \
		"$name-refused-by-$rule"
	sleep 0.5
	check_eq "$(lab_mx_count_mail)" "$n0" "$name-not-in-mx-mailbox"
}

# msg NAME: the message on stdin, LF turned to CRLF, written as NAME.eml
msg() { sed 's/$/\r/' > "$LAB_DIR/$1.eml"; }

# --- a clean message goes through
check_delivered "clean-message-delivered" vm1 "$MX4"

# --- no blank line: the first line that is no header starts the body
msg no-blank-line <<'EOF'
From: vm1@example.org
To: u@example.net
Subject: hello
this line starts the body: buy-cheap-pills-42
EOF
raw_refused no-blank-line PILLS

# --- past 998 bytes of a line
{ printf 'Subject: long\n\n'; printf '%*s' 1500 '' | tr ' ' 'a'; printf ' buy-cheap-pills-7\n'; } | msg long-line
raw_refused long-line PILLS

# --- a folded header
msg folded-header <<'EOF'
Subject: folded
X-Mailer:
 BadMailer 1.0

body
EOF
raw_refused folded-header BAD_MAILER

# --- base64 text
b64=$(printf 'Dear customer,\r\nbuy-cheap-pills-99 today.\r\n' | base64 -w 60)
msg base64-body <<EOF
Subject: b64
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

$b64
EOF
raw_refused base64-body PILLS

# --- quoted-printable: a soft break inside the word, an escaped dash
msg qp-body <<'EOF'
Subject: qp
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Dear customer, buy-cheap=
=2Dpills-12 today.
EOF
raw_refused qp-body PILLS

# --- a NUL byte earlier in the line
{ printf 'Subject: nul\n\nhidden\0 then buy-cheap-pills-5\n'; } | msg nul-byte
raw_refused nul-byte PILLS

# --- an encoded-word subject
msg encoded-subject <<'EOF'
Subject: =?utf-8?B?WW91IGhhdmUgd29uIQ==?=

hi
EOF
raw_refused encoded-subject LOTTERY

# --- a URL whose host (behind userinfo, a subdomain) is on the list
msg url-host <<'EOF'
Subject: your account
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<a href="https://paypal.com@login.BAD-HOST.example:8443/x">log in</a>
EOF
raw_refused url-host BAD_HOSTS

# --- an attachment's name
msg attachment <<'EOF'
Subject: invoice
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain

see attached
--b1
Content-Type: application/octet-stream
Content-Disposition: attachment;
 filename*=utf-8''invoice%2Epdf%2Eexe
Content-Transfer-Encoding: base64

TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAA=
--b1--
EOF
raw_refused attachment EXE

# --- a flag rule: delivered, noted in the event
check_delivered "flagged-message-delivered" vm1 "$MX4" 25 --body "news; unsubscribe-here"
check_contains "$(grep "$MAIL_TOKEN" "$LAB_DIR/events.json" || tail -n 3 "$LAB_DIR/events.json")" \
	'"notes":"content rules flagged: NEWSLETTER"' "flagged-message-noted-in-event"
check_eq "$(lab_ctl main --json show "$(lab_vm_ip4 vm1)" | jq -r .ladder)" flagged \
	"flagged-message-flags-its-sender"
check_contains "$(lab_ctl main --json show "$(lab_vm_ip4 vm1)" | jq -r .ladder_reason)" \
	"a message flagged (content rules flagged: NEWSLETTER)" "flagged-sender-reason-shown"

# --- SIGHUP: new rules for new sessions; a session in flight keeps its own
flags=$LAB_DIR/flags
mkdir -p "$flags"
lab_exec vm1 timeout 60 bash -c '
	flags=$1 mx=$2
	exec 3<>/dev/tcp/$mx/25 || exit 1
	say() { printf "%s\r\n" "$1" >&3; }
	hear() { local l; while IFS= read -r -t 20 l <&3; do echo "$l"; [ "${l:3:1}" = " " ] && return 0; done; return 1; }
	hear; say "EHLO vm1.example.org"; hear
	say "MAIL FROM:<vm1@example.org>"; hear; say "RCPT TO:<u@example.net>"; hear
	say "DATA"; hear; say "Subject: in flight"; say ""; say "a word: reloaded-rule-word"
	touch "$flags/ready"
	for _ in $(seq 1 300); do [ -f "$flags/go" ] && break; sleep 0.1; done
	say "."; hear; say "QUIT"; hear
' _ "$flags" "$MX4" > "$LAB_DIR/inflight.out" &
pid=$!
wait_for 20 test -f "$flags/ready" || fail "reload-session-paused" "the session never paused"
echo "RELOADED     body   /reloaded-rule-word/" >> "$RULES"
kill -HUP "$(lab_sgd_pid main)"
wait_for 10 grep -q "reload: scanner: 7 content rule(s)" "$(lab_sgd_log main)" ||
	fail "reload-logged" "no reload line for 7 rules"
touch "$flags/go"
wait "$pid"
check_match "$(cat "$LAB_DIR/inflight.out")" "^250 .*queued as" "reload-session-in-flight-keeps-its-rules"
send_mail vm1 "$MX4" 25 10 --body "a word: reloaded-rule-word"
check_contains "$MAIL_OUT" "matches the content rule RELOADED" "reload-new-session-gets-new-rules"

# --- a broken rules file at SIGHUP: the running rules stay, the error says where
echo "BROKEN body /(unclosed/" >> "$RULES"
kill -HUP "$(lab_sgd_pid main)"
wait_for 10 grep -q "content.rules:9" "$(lab_sgd_log main)" &&
	pass "reload-bad-rule-error-names-line" ||
	fail "reload-bad-rule-error-names-line" "$(grep -i 'reload' "$(lab_sgd_log main)" | tail -n 2)"
send_mail vm1 "$MX4" 25 10 --body "a word: reloaded-rule-word"
check_contains "$MAIL_OUT" "matches the content rule RELOADED" "reload-bad-rules-keep-running-ones"

e2e_finish
