#!/usr/bin/env bash
# demo.sh - `make demo`: smtpguard in a namespace lab, step by step.
#   bash lab/demo.sh BUILD_DIR
# Builds the lab (prefix sgdemo-): two VMs behind a routed host, an MX with a
# real Postfix. Starts smtpguardd on the host and shows: an exempt VM's mail
# delivered (the MX logs the VM's own address), a connection burst from the
# other VM rate-limited, the blocked VM refused, its non-SMTP traffic
# untouched, a scanned VM's clean mail relayed by the proxy and its spam
# refused before the MX commits it, the same over STARTTLS (passed through
# unread, then terminated with the provider's certificate and scanned), and
# the counters. Tears everything down at the end or on Ctrl-C.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab.sh
source "$HERE/lab.sh"

BUILD=${1:-build}
PREFIX=sgdemo-
DEMO_FAILS=0

if [ -t 1 ]; then B=$'\e[1m'; G=$'\e[32m'; R=$'\e[31m'; N=$'\e[0m'; else B='' G='' R='' N=''; fi
step() { echo; echo "${B}== $*${N}"; }
say() { echo "   $*"; }
run() { echo "${B}\$${N} $*"; "$@"; }
ok() { echo "   ${G}-> $*${N}"; }
bad() { echo "   ${R}-> UNEXPECTED: $*${N}"; DEMO_FAILS=$((DEMO_FAILS + 1)); }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	echo
	echo "${B}== Tearing the lab down${N}"
	lab_down "$PREFIX"
	echo "   namespaces left with prefix $PREFIX: $(ip netns list | grep -c "^$PREFIX")"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "demo: must run as root" >&2; exit 1; }
lab_init "$BUILD" || exit 1
for b in smtpguardd smtpguardctl selftests/connect_burst; do
	[ -x "$LAB_BUILD/$b" ] || { echo "demo: $LAB_BUILD/$b missing (make all)" >&2; exit 1; }
done
CTL() { echo "${B}\$${N} smtpguardctl $*"; "$LAB_BUILD/smtpguardctl" --root "$ROOT" "$@"; }
VM1=$(lab_vm_ip4 vm1)
VM2=$(lab_vm_ip4 vm2)
T0=$(date +%s)

step "Building the lab: vm1 $VM1 and vm2 $VM2 -> routed host -> MX $LAB_MX4"
lab_up "$PREFIX" || exit 1
lab_make_tls_ca "$LAB_DIR/tls" || exit 1
LAB_MX_TLS_CHAIN="$LAB_DIR/tls/mx.key $LAB_DIR/tls/mx.crt"
say "namespaces: $(ip netns list | awk '{print $1}' | grep "^$PREFIX" | sort | tr '\n' ' ')"
say "host interfaces: $(lab_exec host ip -br link | awk '{print $1}' | sed 's/@.*//' | grep -v '^lo$' | tr '\n' ' ')"
lab_start_mx_postfix || exit 1
say "a private Postfix listens on the MX ($LAB_MX4, $LAB_MX6; ports 25 and 587) for @$LAB_MAIL_DOMAIN,"
say "offering STARTTLS with a certificate for mx.$LAB_MAIL_DOMAIN (a test CA made just now)"

step "Starting smtpguardd in the host (TC ingress on tap*, refuse = rst, the scanning proxy on)"
printf 'pills body /(cheap|discount)-pills/i\n' > "$LAB_DIR/content.rules"
lab_start_smtpguardd main default_action=scan refuse=rst proxy=yes uplink=uplink0 \
	content_rules="$LAB_DIR/content.rules" events_file="$LAB_DIR/events.json" \
	tls_cert_file="$LAB_DIR/tls/provider.crt" tls_key_file="$LAB_DIR/tls/provider.key" || exit 1
ROOT=$(lab_sgd_root main)
sed 's/^/   conf| /' "$(lab_sgd_conf main)" | grep -v '^   conf| #'
sed 's/^/   log | /' "$(lab_sgd_log main)" | grep -vi 'exclusivity flag'

step "1. vm1 is exempt: its mail goes straight to the MX, which sees vm1's own address"
CTL policy add "$VM1/32" exempt
echo "${B}\$${N} (in vm1) swaks --server $LAB_MX4 --to demo@$LAB_MAIL_DOMAIN"
out=$(lab_exec vm1 timeout 20 swaks --server "$LAB_MX4" --timeout 5 --helo vm1.example.org \
	--from alice@example.org --to "demo@$LAB_MAIL_DOMAIN" --header "Subject: smtpguard demo" 2>&1)
rc=$?
echo "$out" | grep -E '^ *(<-|->) +(MAIL|RCPT|250 2\.0\.0 Ok: queued|QUIT|221)' | sed 's/^/   /'
sleep 1
say "the MX's log:"
grep -E "client=unknown\[$VM1\]" "$(lab_mx_log)" | sed 's/^/   /'
if [ $rc -eq 0 ] && grep -qF "client=unknown[$VM1]" "$(lab_mx_log)"; then
	ok "delivered; the MX saw $VM1 ($(lab_mx_count_mail) message(s) in its mailbox)"
else
	bad "swaks exited $rc"
fi

step "2. vm2 gets a rate class of 5 connections/s (burst 3) and opens 50/s for 3 s"
CTL rate-class set demo --conn 5/s --burst 3
CTL policy add "$VM2/32" passthrough --class demo
echo "${B}\$${N} (in vm2) connect_burst -r 50 -d 3 $LAB_MX4 25"
out=$(lab_exec vm2 timeout 15 "$LAB_BUILD/selftests/connect_burst" -r 50 -d 3 "$LAB_MX4" 25)
say "$out"
CTL show "$VM2" | sed 's/^/   /'
syns=$("$LAB_BUILD/smtpguardctl" --root "$ROOT" --json show "$VM2" | jq -r .syns)
drops=$("$LAB_BUILD/smtpguardctl" --root "$ROOT" --json show "$VM2" | jq -r .syn_drops)
passed=$((syns - drops))
if [ "$passed" -ge 15 ] && [ "$passed" -le 21 ]; then
	ok "$syns attempts, $passed let through (3 + 5/s x 3 s = 18), $drops answered with an RST"
else
	bad "$passed let through of $syns; expected about 18"
fi

step "3. vm2 is blocked: its SMTP connection is refused at once"
CTL policy del "$VM2/32"
CTL policy add "$VM2/32" block
echo "${B}\$${N} (in vm2) swaks --server $LAB_MX4 --to demo@$LAB_MAIL_DOMAIN"
out=$(lab_exec vm2 timeout 20 swaks --server "$LAB_MX4" --timeout 5 --helo vm2.example.org \
	--from mallory@example.org --to "demo@$LAB_MAIL_DOMAIN" 2>&1)
rc=$?
echo "$out" | grep -E '^(===|\*\*\*)' | sed 's/^/   /'
if [ $rc -ne 0 ]; then ok "refused (swaks exit $rc); nothing reached the MX from $VM2"
else bad "vm2's mail was delivered"; fi

step "4. ...but vm2's other traffic is untouched: iperf3 to the MX's port 8080"
lab_start_mx_iperf 8080 || bad "iperf3 server did not start"
echo "${B}\$${N} (in vm2) iperf3 -c $LAB_MX4 -p 8080 -t 2"
out=$(lab_exec vm2 timeout 20 iperf3 -c "$LAB_MX4" -p 8080 -t 2 2>&1)
echo "$out" | grep -E 'sender|receiver' | sed 's/^/   /'
if echo "$out" | grep -q receiver; then ok "bulk TCP from the blocked VM flows"
else bad "iperf3 failed: $(echo "$out" | tail -n 1)"; fi

step "5. vm1 is scanned: its session is relayed by smtpguard's proxy, from vm1's own address"
CTL policy add "$VM1/32" scan
echo "${B}\$${N} (in vm1) swaks --server $LAB_MX4 --to demo@$LAB_MAIL_DOMAIN"
out=$(lab_exec vm1 timeout 20 swaks --server "$LAB_MX4" --timeout 5 --helo vm1.example.org \
	--from alice@example.org --to "demo@$LAB_MAIL_DOMAIN" --header "Subject: scanned and clean" 2>&1)
rc=$?
echo "$out" | grep -E '^ *(<-|->) +(220|250 2\.0\.0 Ok: queued)' | sed 's/^/   /'
if [ $rc -eq 0 ] && echo "$out" | grep -q "queued as"; then
	ok "the MX's own greeting and queue id reached vm1 through the proxy"
else
	bad "swaks exited $rc"
fi

step "6. vm1 sends spam: refused before the MX commits it; vm1 gets 550 and a reference"
n0=$(lab_mx_count_mail)
echo "${B}\$${N} (in vm1) swaks ... --body 'buy cheap-pills now'"
out=$(lab_exec vm1 timeout 20 swaks --server "$LAB_MX4" --timeout 5 --helo vm1.example.org \
	--from alice@example.org --to "demo@$LAB_MAIL_DOMAIN" --body "buy cheap-pills now" 2>&1)
echo "$out" | grep -E '^ *<\*\* +550' | sed 's/^/   /'
sleep 1
ref=$(echo "$out" | grep -oE 'ref SG[0-9A-F]+' | head -n 1 | cut -d' ' -f2)
if [ -n "$ref" ] && [ "$(lab_mx_count_mail)" -eq "$n0" ]; then
	ok "refused with reference $ref; the MX's mailbox still holds $n0 message(s)"
	CTL trace "$ref" --events "$LAB_DIR/events.json" | sed 's/^/   /'
else
	bad "the spam was not refused as described"
fi
CTL show "$VM1" | sed 's/^/   /'

step "7. Over STARTTLS, passthrough (the default): the proxy relays STARTTLS and reads nothing after it"
CTL policy add "$VM1/32" scan --tls passthrough
echo "${B}\$${N} (in vm1) swaks --tls --server $LAB_MX4 --to demo@$LAB_MAIL_DOMAIN"
out=$(lab_exec vm1 timeout 20 swaks --tls --server "$LAB_MX4" --timeout 5 --helo vm1.example.org \
	--from alice@example.org --to "demo@$LAB_MAIL_DOMAIN" --header "Subject: private" 2>&1)
rc=$?
echo "$out" | grep -E '^ *(=== TLS started|~> +DATA|<~ +250 2\.0\.0 Ok: queued)' | sed 's/^/   /'
sleep 0.5
ev=$(grep '"event":"session"' "$LAB_DIR/events.json" | tail -n 1)
say "its session event: $(echo "$ev" | jq -c '{tls, inspected, read_bytes, tunnel_bytes}')"
if [ $rc -eq 0 ] && [ "$(echo "$ev" | jq -r .inspected)" = false ]; then
	ok "delivered over TLS end to end; the proxy read only the EHLO and STARTTLS"
else
	bad "swaks exited $rc, or the session was inspected"
fi

step "8. Over STARTTLS, terminate: the provider's certificate to vm1, TLS to the MX, spam refused inside"
CTL policy add "$VM1/32" scan --tls terminate
n0=$(lab_mx_count_mail)
echo "${B}\$${N} (in vm1) swaks --tls ... --body 'buy cheap-pills now'"
out=$(lab_exec vm1 timeout 20 swaks --tls --server "$LAB_MX4" --timeout 5 --helo vm1.example.org \
	--from alice@example.org --to "demo@$LAB_MAIL_DOMAIN" --body "buy cheap-pills now" 2>&1)
echo "$out" | grep -E '^ *(=== TLS started|<~?\* +550)' | sed 's/^/   /'
cn=$(lab_exec vm1 timeout 10 openssl s_client -starttls smtp -connect "$LAB_MX4:25" </dev/null 2>/dev/null |
	grep -m1 -oE 'subject=.*')
say "the certificate vm1 is shown: $cn"
sleep 1
if echo "$out" | grep -qE '<~?\* +550 5\.7\.1' && [ "$(lab_mx_count_mail)" -eq "$n0" ]; then
	ok "refused inside TLS; the MX's mailbox still holds $n0 message(s)"
else
	bad "the spam inside TLS was not refused as described"
fi

step "9. The counters"
CTL stats | sed 's/^/   /'
echo
CTL top | sed 's/^/   /'

echo
if [ "$DEMO_FAILS" -eq 0 ]; then
	echo "${B}${G}Demo done in $(( $(date +%s) - T0 )) s: every step behaved as described.${N}"
else
	echo "${B}${R}Demo done: $DEMO_FAILS step(s) did not behave as described.${N}"
	exit 1
fi
