#!/usr/bin/env bash
# test_mtas.sh - Exim 4.96 and OpenSMTPD 6.8 (Debian's binaries, lab/mtas.sh)
# on both sides of smtpguard's proxy, and with the VM exempt (no proxy):
#   each as the VM's MTA relaying to the lab's Postfix MX (IPv4, and IPv6
#     through LAB_VM_MTA_RELAY);
#   each as the MX, fed by the VM's Postfix and by swaks;
#   each as the VM's MTA with the MX down: deferred (the proxy's 421), and
#     delivered on a retry (seconds) once the MX is back.
# Each VM's MTA starts TLS only when it was told to trust the MX's CA
# (LAB_VM_TLS_CAFILE: vm5, vm6), and then verifies the MX's certificate;
# every MX offers STARTTLS (LAB_MX_TLS_CHAIN).
# Every message is an 8-bit UTF-8 text (UTF-8 in its Subject too, but to
# OpenSMTPD from Postfix) with 990-octet lines, a leading dot and trailing
# blanks, LF line ends, submitted through the sender's own local
# submission (swaks: its --data file). Each must arrive exactly once
# in the MX's Maildir, and its bytes from its first header line (a
# Message-ID unique to it) to the end must be those submitted: sha256 of
# the stored file past the MX's and the relays' trace headers against the
# submitted file's. Both are LF: every MX here stores LF in its Maildir
# (the test says so if it finds a CR, and compares CRLF with CRLF then).
# Whether Exim sent BDAT or DATA is printed as a "# " line (the Exim log's
# K flag and the Postfix MX's command counts); no check depends on it.
#   bash selftests/e2e/test_mtas.sh build
source "$(dirname "$0")/lib.sh"
# shellcheck source=../../lab/mtas.sh
source "$E2E_REPO/lab/mtas.sh"
e2e_begin mtas "${1:-}" 600

for kind in exim opensmtpd; do
	lab_mta_available "$kind" || e2e_abort "$kind is not unpacked (make deps: scripts/deps_mtas.sh)"
done

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
# vm3 and vm4 relay over IPv6, vm5 and vm6 use STARTTLS
for vm in vm3 vm4 vm5 vm6; do
	lab_add_vm "$vm" && lab_wait_reachable "$vm" || e2e_abort "cannot add $vm"
done
# every MX offers STARTTLS with a certificate from the lab's MX CA, which
# only vm5 and vm6 are told to trust (and use)
TLSDIR=$LAB_DIR/tls
lab_make_tls_ca "$TLSDIR" || e2e_abort "making the test CAs failed"
# shellcheck disable=SC2034 # read by lab_start_mx_postfix and lab_start_mx_mta
LAB_MX_TLS_CHAIN="$TLSDIR/mx.key $TLSDIR/mx.crt"
printf 'chunk-spam body /forbidden-chunk-offer-[0-9]+/i\n' > "$LAB_DIR/content.rules"
lab_start_smtpguardd main default_action=scan proxy=yes uplink=uplink0 \
	content_rules="$LAB_DIR/content.rules" ||
	e2e_abort "smtpguardd did not start"

SEQ=0
# make_msg FILE TOKEN FROM TO [ascii]: the test message (LF line ends);
# UTF-8 in its Subject too, unless "ascii" (an RFC 2047 word then): Postfix
# asks for SMTPUTF8 for such a header (smtputf8_autodetect_classes), which
# OpenSMTPD 6.8 does not offer, and rightly bounces the message
make_msg() {
	local file=$1 token=$2 from=$3 to=$4 ascii=${5:-} i
	{
		printf 'Message-ID: <%s@lab.example.org>\n' "$token"
		printf 'From: Lab Sender <%s>\n' "$from"
		printf 'To: Lab Rcpt <%s>\n' "$to"
		if [ "$ascii" = ascii ]; then
			printf 'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_=C3=BCber_Exim_und_OpenSMTPD?= %s\n' "$token"
		else
			printf 'Subject: Grüße über Exim und OpenSMTPD – %s\n' "$token"
		fi
		printf 'Date: %s\n' "$(date -R)"
		printf 'MIME-Version: 1.0\n'
		printf 'Content-Type: text/plain; charset=utf-8\n'
		printf 'Content-Transfer-Encoding: 8bit\n'
		printf '\n'
		printf 'token %s\n' "$token"
		printf '.a line with a leading dot\n'
		printf '..and one with two\n'
		printf 'trailing blanks   \n'
		printf 'a\ttab\n'
		printf '\n\n'
		for i in $(seq 1 120); do
			printf 'Zeile %03d: Käse, Öl, Straße, €, 日本語, emoji 😀 ' "$i"
			head -c 900 /dev/zero | tr '\0' "$(printf '%x' $((i % 16)))"
			printf '\n'
		done
		# 990 octets, the longest line Postfix's SMTP client sends whole
		head -c 990 /dev/zero | tr '\0' 'L'
		printf '\n'
		printf 'last line, then LF\n'
	} >"$file"
}

# new_case NAME: TOKEN, TO and MSG for one message
new_case() {
	SEQ=$((SEQ + 1))
	TOKEN="mtas-$1-$$-$SEQ"
	TO="rcpt-$SEQ@$LAB_MAIL_DOMAIN"
	MSG="$LAB_DIR/msg-$SEQ.eml"
}

# maildir_files DIR TOKEN: the delivered files holding TOKEN
maildir_files() { grep -rlF -- "$2" "$1/new" "$1/cur" 2>/dev/null; }
arrived() { [ -n "$(maildir_files "$1" "$2")" ]; }

# check_arrived NAME MAILDIR TOKEN FILE: the message is at the MX once, and
# byte for byte the submitted one from its first header line to the end
check_arrived() {
	local name=$1 dir=$2 token=$3 file=$4 files n f first start want got
	if ! wait_for 30 arrived "$dir" "$token"; then
		fail "$name-arrived" "$token not in $dir after 30 s"
		return 1
	fi
	sleep 1
	files=$(maildir_files "$dir" "$token")
	n=$(printf '%s\n' "$files" | grep -c .)
	check_eq "$n" 1 "$name-arrived-exactly-once"
	f=$(printf '%s\n' "$files" | head -n 1)
	first=$(head -n 1 "$file")
	start=$(grep -naxF -- "$first" "$f" | head -n 1 | cut -d: -f1)
	if [ -z "$start" ]; then
		fail "$name-bytes-identical" "no line '$first' in $f"
		return 1
	fi
	want=$(sha256sum <"$file" | cut -c1-64)
	if grep -q $'\r' "$f"; then
		echo "# $name: the MX stored CRLF; comparing with the submitted file in CRLF"
		want=$(sed 's/$/\r/' "$file" | sha256sum | cut -c1-64)
	fi
	got=$(tail -n +"$start" "$f" | sha256sum | cut -c1-64)
	if [ "$got" = "$want" ]; then
		pass "$name-bytes-identical"
	else
		fail "$name-bytes-identical" "sha256 $got of $f from line $start, want $want; first difference: $(
			tail -n +"$start" "$f" | cmp - "$file" 2>&1 | head -n 1)"
	fi
}

# steered_by_proxy BEFORE: the proxy's steered counter moved (or, with
# "exempt", did not)
check_path() {
	local name=$1 mode=$2 before=$3 now
	now=$(stat_get main steered)
	if [ "$mode" = proxied ]; then
		check_gt "${now:-0}" "${before:-0}" "$name-went-through-the-proxy"
	else
		check_eq "${now:-0}" "${before:-0}" "$name-bypassed-the-proxy"
	fi
}

# exempt_vms on|off VM...: smtpguardctl policy for each VM's addresses
exempt_vms() {
	local how=$1 vm; shift
	for vm in "$@"; do
		if [ "$how" = on ]; then
			lab_ctl main policy add "$(lab_vm_ip4 "$vm")/32" exempt &&
				lab_ctl main policy add "$(lab_vm_ip6 "$vm")/128" exempt
		else
			lab_ctl main policy del "$(lab_vm_ip4 "$vm")/32" &&
				lab_ctl main policy del "$(lab_vm_ip6 "$vm")/128"
		fi || fail "policy-$how-$vm" "smtpguardctl policy failed"
	done
}

# exim_bdat_or_data VM IP: what the VM's Exim log says of its last delivery
# (K: CHUNKING, L: PIPELINING) and what the Postfix MX's last disconnect
# line from IP counts
exim_bdat_or_data() {
	local vm=$1 line ip mx
	line=$(grep -F ' => ' "$(lab_vm_mta_log exim "$vm")" | tail -n 1)
	ip=$2
	mx=$(grep -F "disconnect from unknown[$ip]" "$(lab_mx_log)" | tail -n 1 |
		grep -oE '(bdat|data)=[0-9/]+' | tr '\n' ' ')
	case " $line " in
	*" K "*) printf 'BDAT (its log: K' ;;
	*) printf 'DATA (its log: no K' ;;
	esac
	case " $line " in
	*" L "*) printf ', L: PIPELINING' ;;
	*) printf ', no L: no PIPELINING' ;;
	esac
	echo "; the MX counted: ${mx:-nothing})"
}

# exim_chunks_scanned: through the proxy Exim sends BDAT (Postfix offers
# CHUNKING, and so does the proxy now); a content rule's pattern on the
# message's last line, in its last chunk, is refused before the MX commits:
# Exim logs smtpguard's 550, the MX's Maildir never has it
exim_chunks_scanned() {
	local ip line
	ip=$(lab_vm_ip4 vm1)
	check_match "$(exim_bdat_or_data vm1 "$ip")" "^BDAT" "exim-to-postfix-proxied-sent-bdat"
	new_case exim-chunk-spam
	make_msg "$MSG" "$TOKEN" "vm1@example.org" "$TO"
	printf 'buy now: forbidden-chunk-offer-42\n' >> "$MSG"
	lab_vm_mta_submit exim vm1 "$MSG" "vm1@example.org" "$TO" ||
		fail "exim-chunk-spam-submitted" "exim's local submission in vm1 failed"
	if wait_for 30 grep -qF "550 5.7.1 smtpguard: message refused (matches the content rule chunk-spam)" \
		"$(lab_vm_mta_log exim vm1)"; then
		pass "exim-chunk-spam-refused-550"
	else
		fail "exim-chunk-spam-refused-550" "$(tail -n 3 "$(lab_vm_mta_log exim vm1)")"
	fi
	line=$(grep -F "smtpguard: message refused" "$(lab_vm_mta_log exim vm1)" | tail -n 1)
	check_match "$line" "K=|BDAT|end of data" "exim-chunk-spam-refused-at-its-last-chunk"
	sleep 1
	if arrived "$(lab_mx_maildir)" "$TOKEN"; then
		fail "exim-chunk-spam-never-committed" "the MX stored it"
	else
		pass "exim-chunk-spam-never-committed"
	fi
}

# ---- 1. Exim and OpenSMTPD as the VM's MTA, Postfix the MX
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
declare -A VMKIND=([vm1]=exim [vm2]=opensmtpd [vm3]=exim [vm4]=opensmtpd [vm5]=exim
	[vm6]=opensmtpd)
# start_vm_mta VM: VM's MTA: vm3, vm4 relaying to the MX's IPv6 address,
# vm5, vm6 trusting the MX's CA
start_vm_mta() {
	local vm=$1 relay=$LAB_MX4 ca=
	case $vm in
	vm3|vm4) relay=$LAB_MX6 ;;
	vm5|vm6) ca=$TLSDIR/mx-ca.crt ;;
	esac
	LAB_VM_MTA_RELAY=$relay LAB_VM_TLS_CAFILE=$ca lab_start_vm_mta "${VMKIND[$vm]}" "$vm" ||
		e2e_abort "${VMKIND[$vm]} did not start in $vm"
}
for vm in vm1 vm2 vm3 vm4 vm5 vm6; do
	start_vm_mta "$vm"
done
MXLOG=$(lab_mx_log)
# mx_connections IP: sessions the Postfix MX logged from IP
mx_connections() { grep -cF "connect from unknown[$1]" "$MXLOG" 2>/dev/null; }

# mx_tls_sessions IP: TLS sessions the Postfix MX logged from IP
mx_tls_sessions() {
	grep -cF "TLS connection established from unknown[$1]" "$MXLOG" 2>/dev/null
}

# check_vm_tls NAME KIND VM LINE: the VM's MTA's delivery line says TLS, the
# MX's certificate verified against the lab's CA (Exim: X= and CV=yes;
# OpenSMTPD: its session's server-cert-check line)
check_vm_tls() {
	local name=$1 kind=$2 vm=$3 line=$4 sess
	case $kind in
	exim) check_match "$line" ' X=TLS[^ ]* .*CV=yes' "$name-vm-mta-verified-the-mx-certificate" ;;
	opensmtpd)
		sess=${line%% *}
		check_match "$(grep -F "$sess " "$(lab_vm_mta_log "$kind" "$vm")" 2>/dev/null)" \
			'server-cert-check result="success"' "$name-vm-mta-verified-the-mx-certificate" ;;
	esac
}

# vm_sends NAME VM MODE: one message through the VM's MTA to the Postfix MX
vm_sends() {
	local name=$1 vm=$2 mode=$3 kind=${VMKIND[$2]} st0 line ip tls0 conn0
	case $vm in vm3|vm4) ip=$(lab_vm_ip6 "$vm") ;; *) ip=$(lab_vm_ip4 "$vm") ;; esac
	new_case "$name"
	make_msg "$MSG" "$TOKEN" "$vm@example.org" "$TO"
	st0=$(stat_get main steered)
	tls0=$(mx_tls_sessions "$ip")
	conn0=$(mx_connections "$ip")
	if ! lab_vm_mta_submit "$kind" "$vm" "$MSG" "$vm@example.org" "$TO"; then
		fail "$name-submitted" "$kind's local submission in $vm failed"
		return 1
	fi
	if line=$(lab_vm_mta_wait_sent "$kind" "$vm" "$TO" 30); then
		pass "$name-vm-mta-logs-sent"
	else
		fail "$name-vm-mta-logs-sent" "$(tail -n 3 "$(lab_vm_mta_log "$kind" "$vm")")"
	fi
	check_arrived "$name" "$(lab_mx_maildir)" "$TOKEN" "$MSG"
	# a session of its own (not one kept open from before the VM was
	# made exempt), and the path it took
	check_gt "$(mx_connections "$ip")" "$conn0" "$name-new-session-at-mx"
	check_path "$name" "$mode" "$st0"
	case $vm in
	vm5|vm6)
		check_gt "$(mx_tls_sessions "$ip")" "$tls0" "$name-mx-logs-starttls"
		check_vm_tls "$name" "$kind" "$vm" "$line" ;;
	*)	check_eq "$(mx_tls_sessions "$ip")" 0 "$name-plaintext-no-starttls" ;;
	esac
	[ "$kind" = exim ] && echo "# $name: Exim sent $(exim_bdat_or_data "$vm" "$ip")"
	return 0
}

for mode in proxied exempt; do
	if [ "$mode" = exempt ]; then
		exempt_vms on vm1 vm2 vm3 vm4 vm5 vm6
		# OpenSMTPD keeps its proxied session open for more mail
		for vm in vm2 vm4 vm6; do
			lab_stop_vm_mta opensmtpd "$vm" || fail "opensmtpd-stopped-in-$vm" "see above"
			start_vm_mta "$vm"
		done
	fi
	vm_sends "exim-to-postfix-$mode" vm1 "$mode"
	[ "$mode" = proxied ] && exim_chunks_scanned
	vm_sends "opensmtpd-to-postfix-$mode" vm2 "$mode"
	vm_sends "exim-to-postfix-ipv6-$mode" vm3 "$mode"
	vm_sends "opensmtpd-to-postfix-ipv6-$mode" vm4 "$mode"
	vm_sends "exim-to-postfix-starttls-$mode" vm5 "$mode"
	vm_sends "opensmtpd-to-postfix-starttls-$mode" vm6 "$mode"
done
exempt_vms off vm1 vm2 vm3 vm4 vm5 vm6
lab_exec mx timeout 20 postfix -c "$LAB_DIR/postfix-mx/etc" stop >/dev/null 2>&1
mx_port_free() { ! lab_exec mx ss -Hltn "( sport = :25 )" | grep -q .; }
wait_for 10 mx_port_free || e2e_abort "the Postfix MX still listens after postfix stop"

# ---- 2. Exim and OpenSMTPD as the MX, fed by the VM's Postfix and swaks
lab_start_vm_postfix vm1 || e2e_abort "Postfix did not start in vm1"
LAB_VM_TLS_CAFILE=$TLSDIR/mx-ca.crt lab_start_vm_postfix vm5 ||
	e2e_abort "Postfix (STARTTLS) did not start in vm5"

# mx_fed NAME KIND HOW MODE: one message from the VM's Postfix (vm1;
# postfix-tls: vm5, STARTTLS) or swaks (vm2) to KIND on the MX
mx_fed() {
	local name=$1 kind=$2 how=$3 mode=$4 st0 out vm=vm1 log
	new_case "$name"
	st0=$(stat_get main steered)
	if [ "$how" != swaks ]; then
		[ "$how" = postfix-tls ] && vm=vm5
		log=$(lab_vm_log "$vm")
		make_msg "$MSG" "$TOKEN" "$vm@example.org" "$TO" "$([ "$kind" = opensmtpd ] && echo ascii)"
		lab_exec "$vm" timeout 20 sendmail -C "$LAB_DIR/postfix-$vm/etc" -oi -f "$vm@example.org" \
			"$TO" <"$MSG" || { fail "$name-submitted" "Postfix's sendmail in $vm failed"; return 1; }
		if wait_for 30 grep -qE "to=<$TO>.*status=sent \(250 " "$log"; then
			pass "$name-vm-postfix-logs-sent"
		else
			fail "$name-vm-postfix-logs-sent" "$(grep -F "to=<$TO>" "$log" | tail -n 1)"
		fi
		# Postfix logs the session's TLS (smtp_tls_loglevel 1) before the
		# delivery: the last such line is this message's
		if [ "$how" = postfix-tls ]; then
			check_match "$(grep -E 'TLS connection established to' "$log" | tail -n 1)" \
				"^.*Trusted TLS connection established to $LAB_MX4" "$name-vm-postfix-trusted-the-mx"
		else
			check_eq "$(grep -c 'TLS connection established' "$log")" 0 "$name-plaintext-no-starttls"
		fi
	else
		make_msg "$MSG" "$TOKEN" vm2@example.org "$TO"
		# swaks ends every line it reads with CRLF, the last one too: its
		# file lacks the message's final LF, which it adds back
		head -c -1 "$MSG" >"$MSG.swaks"
		if ! out=$(lab_exec vm2 timeout 30 swaks --server "$LAB_MX4" --port 25 --timeout 10 \
			--helo vm2.example.org --from vm2@example.org --to "$TO" --data "@$MSG.swaks" 2>&1); then
			fail "$name-submitted" "swaks failed: $(echo "$out" | grep -E '^\*\*\*|<-  [45]' | head -n 2)"
			return 1
		fi
	fi
	check_arrived "$name" "$(lab_mx_mta_maildir "$kind")" "$TOKEN" "$MSG"
	check_path "$name" "$mode" "$st0"
}

for kind in exim opensmtpd; do
	lab_start_mx_mta "$kind" || { fail "$kind-mx-started" "see above"; continue; }
	pass "$kind-mx-started"
	ehlo=$(lab_exec vm2 timeout 15 swaks --server "$LAB_MX6" -6 --quit-after EHLO \
		--helo vm2.example.org 2>&1 | grep -E '^<-  250' | tr '\n' ' ')
	echo "# $kind MX over IPv6 says: $ehlo"
	# what each offers (OpenSMTPD 6.8 has no PIPELINING, CHUNKING or
	# SMTPUTF8 as a server)
	case $kind in
	exim) exts="PIPELINING 8BITMIME DSN CHUNKING SMTPUTF8 SIZE" ;;
	opensmtpd) exts="8BITMIME DSN SIZE" ;;
	esac
	for ext in $exts; do
		check_contains "$ehlo" "250-$ext" "$kind-mx-ipv6-ehlo-offers-$ext"
	done
	check_ge "$(echo "$ehlo" | grep -oE 'SIZE [0-9]+' | cut -d' ' -f2)" $((60 << 20)) \
		"$kind-mx-size-limit-at-least-60MiB"
	for mode in proxied exempt; do
		[ "$mode" = exempt ] && exempt_vms on vm1 vm2 vm5
		mx_fed "postfix-to-$kind-$mode" "$kind" postfix "$mode"
		mx_fed "postfix-starttls-to-$kind-$mode" "$kind" postfix-tls "$mode"
		mx_fed "swaks-to-$kind-$mode" "$kind" swaks "$mode"
	done
	exempt_vms off vm1 vm2 vm5
	check_ok "$kind-mx-stopped" lab_stop_mx_mta "$kind"
done

# ---- 3. the MX down: each VM MTA defers the message (the proxy's 421) and
# delivers it on a retry (every LAB_MTA_RETRY_S s) once the MX is back
# (no MX listens now: the last one was stopped above)
# (what each logs of the failure, in its log's lines from the submission on:
# OpenSMTPD logs a session that failed before it took the message as an
# "mta error", with no recipient)
declare -A DEFERRED=(
	[exim]=' == %s .*(defer|Connection refused|421)'
	[opensmtpd]='mta error|mta delivery .*to=<%s>.*result="TempFail"')
declare -A RETRY_TO RETRY_MSG RETRY_TOKEN RETRY_LINE
# log_has_since FILE LINE ERE: FILE from line LINE on matches ERE
log_has_since() { tail -n +"$2" "$1" | grep -qE -- "$3"; }
for vm in vm1 vm2; do
	kind=${VMKIND[$vm]}
	new_case "$kind-retry"
	RETRY_TO[$vm]=$TO; RETRY_MSG[$vm]=$MSG; RETRY_TOKEN[$vm]=$TOKEN
	RETRY_LINE[$vm]=$(($(wc -l <"$(lab_vm_mta_log "$kind" "$vm")") + 1))
	make_msg "$MSG" "$TOKEN" "$vm@example.org" "$TO"
	lab_vm_mta_submit "$kind" "$vm" "$MSG" "$vm@example.org" "$TO" ||
		fail "$kind-retry-submitted" "$kind's local submission in $vm failed"
done
for vm in vm1 vm2; do
	kind=${VMKIND[$vm]}
	# shellcheck disable=SC2059 # the patterns are formats
	re=$(printf "${DEFERRED[$kind]}" "${RETRY_TO[$vm]}")
	log=$(lab_vm_mta_log "$kind" "$vm")
	if wait_for 20 log_has_since "$log" "${RETRY_LINE[$vm]}" "$re"; then
		pass "$kind-retry-deferred-while-mx-down"
	else
		fail "$kind-retry-deferred-while-mx-down" "$(tail -n 2 "$log")"
	fi
done
lab_start_mx_postfix || e2e_abort "Postfix did not start again on the MX"
t0=$(date +%s)
for vm in vm1 vm2; do
	kind=${VMKIND[$vm]}
	if lab_vm_mta_wait_sent "$kind" "$vm" "${RETRY_TO[$vm]}" 60 >/dev/null; then
		pass "$kind-retry-delivered-when-mx-is-back"
		echo "# $kind: delivered $(( $(date +%s) - t0 )) s after the MX came back"
	else
		fail "$kind-retry-delivered-when-mx-is-back" "$(tail -n 2 "$(lab_vm_mta_log "$kind" "$vm")")"
	fi
	check_arrived "$kind-retry" "$(lab_mx_maildir)" "${RETRY_TOKEN[$vm]}" "${RETRY_MSG[$vm]}"
done

e2e_finish
