# shellcheck shell=bash
# senders.sh - the interoperability matrix's senders (selftests/interop/run.sh
# sources it). Each is one function with one signature:
#
#   sender_NAME VM MX_ADDR MODE FILE FROM TO
#
# FILE is the message in LF form (NAME.lf; NAME.crlf beside it is the same
# in CRLF form); MODE is exempt, scanned, scanned6 (plaintext), passthrough
# or terminate (STARTTLS: the sender checks the certificate against
# IO_CA, both lab CAs, for io_tls_name MODE). It returns 0 once the sender
# says the message was accepted (an MTA: once its own log says sent); its
# output is the transcript. sender_NAME_cannot MSG MODE MXKIND prints why
# the sender cannot do that (a cell "n/a: why"), or nothing;
# sender_NAME_expect FILE prints the message as it must arrive when the
# sender changes it in a known way; sender_NAME_changes MSG says why the
# sender changes it in a way that is compared with its baseline only.
#
# Needs IO_DIR, IO_CA, lab.sh and selftests/e2e/lib.sh (wait_for).

IO_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
io_crlf() { echo "${1%.lf}.crlf"; }
io_is_tls() { [ "$1" = passthrough ] || [ "$1" = terminate ]; }
# the name a sender checks the certificate for: the MX's own (passthrough
# shows it) or the provider's (terminate shows it: the customer's MTA
# sends to the provider's relay name)
io_tls_name() {
	if [ "$1" = terminate ]; then echo smtpguard.provider.test; else echo "mx.$LAB_MAIL_DOMAIN"; fi
}
io_has_mtas() { declare -F lab_start_vm_mta >/dev/null; }

# ------------------------------------------------------------ swaks
# swaks ends the data with CRLF "." CRLF itself: it gets the message
# without its last line ending (with it, an empty line more arrives)
sender_swaks() {
	local vm=$1 mx=$2 mode=$3 file=$4 from=$5 to=$6 args=()
	case $mx in *:*) args+=(-6) ;; esac
	io_is_tls "$mode" && args+=(--tls)
	head -c -2 "$(io_crlf "$file")" >"$file.swaks"
	lab_exec "$vm" timeout 300 swaks "${args[@]}" --server "$mx" --port 25 --timeout 60 \
		--helo "$vm.example.org" --from "$from" --to "$to" --data "@$file.swaks" \
		--suppress-data 2>&1
	local rc=$?
	rm -f "$file.swaks"
	return $rc
}
# swaks cannot send a 0-byte body: it sends one empty line
sender_swaks_expect() { awk '
	BEGIN { hdr = 1 }
	hdr && /^$/ { hdr = 0; print; next }
	!hdr { body++ }
	{ print }
	END { if (!body) print "" }' "$1"; }
sender_swaks_cannot() {
	case $1 in smtputf8) echo "swaks has no SMTPUTF8 parameter for MAIL FROM" ;; esac
	io_no_queue "$3"
}

# ------------------------------------------------------------ Python smtplib
sender_python() {
	local vm=$1 mx=$2 mode=$3 file=$4 from=$5 to=$6 tls=()
	io_is_tls "$mode" && tls=("$IO_CA" "$(io_tls_name "$mode")")
	lab_exec "$vm" timeout 300 /usr/bin/python3 "$IO_HERE/send_smtplib.py" "$mx" \
		"$vm.example.org" "$from" "$to" "$(io_crlf "$file")" "${tls[@]}" 2>&1
}
sender_python_cannot() { io_no_queue "$3"; }

# ------------------------------------------------------------ Perl Net::SMTP
sender_perl() {
	local vm=$1 mx=$2 mode=$3 file=$4 from=$5 to=$6 tls=()
	io_is_tls "$mode" && tls=("$IO_CA" "$(io_tls_name "$mode")")
	lab_exec "$vm" timeout 300 perl "$IO_HERE/send_netsmtp.pl" "$mx" "$vm.example.org" \
		"$from" "$to" "$(io_crlf "$file")" "${tls[@]}" 2>&1
}
sender_perl_cannot() {
	case $1 in smtputf8) echo "Net::SMTP's mail() has no SMTPUTF8 parameter" ;; esac
	io_no_queue "$3"
}

# ------------------------------------------------------------ curl
sender_curl() {
	local vm=$1 mx=$2 mode=$3 file=$4 from=$5 to=$6 url args=() name
	case $mx in *:*) url="smtp://[$mx]:25/$vm.example.org" ;; *) url="smtp://$mx:25/$vm.example.org" ;; esac
	if io_is_tls "$mode"; then
		name=$(io_tls_name "$mode")
		url="smtp://$name:25/$vm.example.org"
		args+=(--ssl-reqd --cacert "$IO_CA" --resolve "$name:25:$mx")
	fi
	lab_exec "$vm" timeout 300 curl -sS --max-time 280 "${args[@]}" "$url" \
		--mail-from "$from" --mail-rcpt "$to" --upload-file "$(io_crlf "$file")" 2>&1
}
sender_curl_cannot() {
	case $1 in smtputf8) echo "curl 7.88 sends no SMTPUTF8 parameter (RFC 6531)" ;; esac
	io_no_queue "$3"
}

# ------------------------------------------------------------ msmtp as PHP's sendmail
sender_php() {
	local vm=$1 mx=$2 mode=$3 file=$4 from=$5 to=$6 rc
	rc="$IO_DIR/msmtprc-$vm-$mode"
	{
		echo "defaults"
		echo "logfile $IO_DIR/msmtp-$vm.log"
		echo "account default"
		echo "host $mx"
		echo "port 25"
		echo "auth off"
		echo "domain $vm.example.org"
		echo "timeout 60"
		if io_is_tls "$mode"; then
			echo "tls on"
			echo "tls_starttls on"
			echo "tls_trust_file $IO_CA"
			echo "tls_host_override $(io_tls_name "$mode")"
		else
			echo "tls off"
		fi
	} >"$rc"
	chmod 600 "$rc"
	lab_exec "$vm" timeout 300 php -n -d memory_limit=-1 \
		-d "sendmail_path=/usr/bin/msmtp -C $rc -t -i" \
		"$IO_HERE/php_mail.php" "$file" "$from" 2>&1
}
sender_php_cannot() {
	case $1 in smtputf8) echo "msmtp 1.8 sends no SMTPUTF8 parameter (RFC 6531)" ;; esac
	io_no_queue "$3"
}
# mail() writes To and Subject itself, before the other headers: the
# message as stored is the file without them after the X-Interop-Id line.
# It ends the message with a line ending of its own (php_mail.php gives it
# the body without its last one), so an empty body arrives as one empty line.
sender_php_expect() { awk '
	BEGIN { hdr = 1 }
	hdr && /^$/ { hdr = 0; print; next }
	hdr && (/^To: / || /^Subject: /) { next }
	!hdr { body++ }
	{ print }
	END { if (!body) print "" }' "$1"; }

# a sender without a queue gets the greylisting MX's 450 and stops there:
# retrying is its application's business, not the sender's
io_no_queue() {
	[ "$1" = greylist ] && echo "no queue: the first attempt's 450 goes back to the application"
	return 0
}

# ------------------------------------------------------------ Postfix (the VM's MTA)
# io_vm_postfix_conf VM MX MODE: the VM's Postfix relays to MX, STARTTLS
# (level may, both CAs) in the TLS modes, none otherwise; restarted at each
# mode (the senders run in subshells: the state is a file)
io_vm_postfix_conf() {
	local vm=$1 mx=$2 mode=$3 key conf level=none state="$IO_DIR/up-postfix-$1"
	io_is_tls "$mode" && level=may
	key="$mx $mode"
	[ "$key" = "$(cat "$state" 2>/dev/null)" ] && return 0
	conf="$LAB_DIR/postfix-$vm/etc"
	if [ ! -f "$conf/main.cf" ]; then
		lab_start_vm_postfix "$vm" || return 1
	fi
	lab_exec "$vm" timeout 20 postfix -c "$conf" stop >/dev/null 2>&1
	postconf -c "$conf" -e "relayhost = [$mx]" "inet_protocols = all" \
		"smtp_tls_security_level = $level" "smtp_tls_CAfile = $IO_CA" "smtp_tls_loglevel = 1" \
		"message_size_limit = 104857600" "smtp_connection_cache_on_demand = no" \
		"smtputf8_enable = yes" || return 1
	lab_exec "$vm" timeout 30 postfix -c "$conf" start >/dev/null 2>&1 || return 1
	echo "$key" >"$state"
}

sender_postfix() {
	local vm=$1 mx=$2 mode=$3 file=$4 from=$5 to=$6 log n0 qid t=60
	io_vm_postfix_conf "$vm" "$mx" "$mode" || { echo "the VM's Postfix did not start"; return 1; }
	log=$(lab_vm_log "$vm")
	n0=$(wc -l <"$log" 2>/dev/null || echo 0)
	[ "$(stat -c %s "$file")" -gt 10000000 ] && t=180
	lab_exec "$vm" timeout 120 sendmail -C "$LAB_DIR/postfix-$vm/etc" -i -f "$from" -- "$to" \
		<"$file" || { echo "sendmail exited $?"; return 1; }
	# its queue id: the first one picked up after n0
	io__pf_qid() { tail -n +$((n0 + 1)) "$log" | grep -qE '[0-9A-F]+: message-id='; }
	if ! wait_for 30 io__pf_qid; then
		echo "the VM's Postfix took no message: $(tail -n 2 "$log")"
		return 1
	fi
	qid=$(tail -n +$((n0 + 1)) "$log" | grep -oE '[0-9A-F]+: message-id=' | head -n 1)
	qid=${qid%%:*}
	io__pf_done() { grep -qE "$qid: to=.*status=(sent|bounced)" "$log"; }
	if ! wait_for "$t" io__pf_done; then
		echo "the VM's Postfix did not deliver $qid in $t s: $(grep "$qid: to=" "$log" | tail -n 1)"
		lab_exec "$vm" postsuper -c "$LAB_DIR/postfix-$vm/etc" -d "$qid" >/dev/null 2>&1
		return 1
	fi
	grep -E "$qid: to=.*status=" "$log"
	grep -qE "$qid: to=.*status=sent" "$log"
}
sender_postfix_cannot() { return 0; }

# ------------------------------------------------------------ Exim, OpenSMTPD (lab/mtas.sh)
# Each in a VM of its own (one MTA per VM: io_mta_vm), restarted when the
# MX or the TLS mode changes (every process of that VM's namespace ends:
# lab/mtas.sh has no stop for a VM's MTA). The matrix's policy covers
# every VM's address. The sender's VM argument is vm1's: ignored here.
io_mta_vm() { case $1 in exim) echo vm2 ;; opensmtpd) echo vm3 ;; esac; }
io_sender_mta() {
	local kind=$1 mx=$3 mode=$4 file=$5 from=$6 to=$7 t=60 vm
	vm=$(io_mta_vm "$kind")
	# restarted at each mode: an MTA that keeps its connection to the MX
	# open (OpenSMTPD does) would carry on the path it had before the
	# policy changed (the classifier steers a connection at its SYN)
	local state="$IO_DIR/up-$kind-$vm" key="$mx $mode"
	[ "$(stat -c %s "$file")" -gt 10000000 ] && t=180
	if [ "$(cat "$state" 2>/dev/null)" != "$key" ]; then
		lab_kill_ns "$(lab_ns "$vm")"
		if io_is_tls "$mode"; then export LAB_VM_TLS_CAFILE=$IO_CA; else unset LAB_VM_TLS_CAFILE; fi
		LAB_VM_MTA_RELAY=$mx lab_start_vm_mta "$kind" "$vm" || { echo "$kind did not start in $vm"; return 1; }
		echo "$key" >"$state"
	fi
	# the MTA's log line for TO: the last one before this message, so that
	# the wait is for a new one
	local log n0
	log=$(lab_vm_mta_log "$kind" "$vm")
	n0=$(wc -l <"$log" 2>/dev/null || echo 0)
	lab_vm_mta_submit "$kind" "$vm" "$file" "$from" "$to" || { echo "$kind took no message"; return 1; }
	# sent (Exim's C="250, OpenSMTPD's result="Ok") or refused for good
	# (Exim's " ** ", OpenSMTPD's PermFail): no wait for what will not come
	io__mta_done() {
		tail -n +$((n0 + 1)) "$log" | grep -F -- "$to" |
			grep -qE 'C="250|mta delivery .*result="(Ok|PermFail)"| \*\* '
	}
	if ! wait_for "$t" io__mta_done; then
		echo "$kind did not log it sent in $t s: $(tail -n 3 "$log")"
		return 1
	fi
	tail -n +$((n0 + 1)) "$log" | grep -F -- "$to"
	tail -n +$((n0 + 1)) "$log" | grep -F -- "$to" | grep -qE 'C="250|mta delivery .*result="Ok"'
}
sender_exim() { io_sender_mta exim "$@"; }
sender_opensmtpd() { io_sender_mta opensmtpd "$@"; }
# sender_NAME_end: the cell is over; an MTA that keeps its connection to
# the MX open is stopped, so that the session ends (and smtpguard writes
# its session event) within the cell
io_mta_end() { lab_kill_ns "$(lab_ns "$(io_mta_vm "$1")")"; rm -f "$IO_DIR/up-$1-$(io_mta_vm "$1")"; }
sender_exim_end() { io_mta_end exim; }
sender_opensmtpd_end() { io_mta_end opensmtpd; }
sender_exim_cannot() { io_has_mtas || echo "not built yet (lab/mtas.sh)"; }
sender_opensmtpd_cannot() {
	io_has_mtas || { echo "not built yet (lab/mtas.sh)"; return 0; }
	case $1 in smtputf8) echo "OpenSMTPD 6.8's sendmail refuses a UTF-8 sender (553 5.1.0 Sender address syntax error)" ;; esac
	return 0
}
# sender_NAME_changes MSG: a change the sender itself makes (in the exempt
# baseline too): the message is then compared with the baseline only
sender_opensmtpd_changes() {
	case $1 in line998) echo "OpenSMTPD 6.8 breaks the 998-octet line with quoted-printable soft line breaks itself, without a Content-Transfer-Encoding" ;; esac
}
