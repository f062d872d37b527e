#!/usr/bin/env bash
# run.sh - the interoperability matrix (issue 15): every sender against every
# MX, in each mode the sender can use, every message byte-identical.
#
#   bash selftests/interop/run.sh BUILD_DIR [--fast] [--update-readme]
#   make interop                        # the full matrix, README table updated
#
# Senders (selftests/interop/senders.sh): swaks, Python smtplib, Perl
# Net::SMTP, curl, msmtp as PHP's sendmail, the VM's Postfix, Exim and
# OpenSMTPD (lab/mtas.sh). MXes: the lab's Postfix, Exim and OpenSMTPD
# (lab/mtas.sh), a greylisting and a slow MX (lab/mx_special.sh); a part not
# in the tree yet makes its cells "n/a: not built yet". Modes, set per VM
# address with `smtpguardctl policy add`:
#   exempt       the baseline: the VM exempt, smtpguard not on the path
#   scanned      plaintext through the proxy, the message scanned
#   passthrough  STARTTLS, the proxy tunnels the TLS session unread
#   terminate    STARTTLS, the proxy terminates it with the provider's
#                certificate (the senders trust the lab's provider CA)
#   scanned6     plaintext scanned over IPv6
# Messages (gen_messages.py), each delivery with its own X-Interop-Id as its
# first header: 1 KiB plain, dot lines, a 998-octet line, 8-bit UTF-8,
# every octet but NUL, CR and LF (a binary body sent as 8bit), an empty body, CRLF at 16384/65536/131072, 5 MiB, 50 MiB (full run only), an
# SMTPUTF8 envelope.
# Byte-identical: each message as the MX stored it, from the line after its
# X-Interop-Id to the end, is compared (sha256, then the first differing
# octet) with what was submitted (with the sender's known changes: PHP's
# mail() writes To and Subject first) and with the same sender's delivery to
# the same MX in the exempt baseline. Each delivery is one PASS/FAIL line,
# interop-SENDER-MODE-MX-MESSAGE; each cell also checks its path (exempt:
# nothing steered; scanned: steered; TLS modes: smtpguard's session events
# say passthrough or terminate). The table (sender+mode x MX) is written to
# BUILD_DIR/interop-table.md and, with --update-readme, into README.md
# between the interop-table markers.
# --fast: swaks, python, curl, php and Postfix against the Postfix MX,
# exempt and scanned, the small messages (for make check; under 3 minutes).
IO_HERE=$(cd "$(dirname "$0")" && pwd)
source "$IO_HERE/../e2e/lib.sh"

IO_BUILD=${1:-}
shift
IO_FAST=0
IO_README=0
for a in "$@"; do
	case $a in
	--fast) IO_FAST=1 ;;
	--update-readme) IO_README=1 ;;
	*) echo "usage: bash $0 BUILD_DIR [--fast] [--update-readme]" >&2; exit 2 ;;
	esac
done
if [ $IO_FAST = 1 ]; then
	e2e_begin interop "$IO_BUILD" 600
	IO_SENDERS="swaks python curl php postfix"
	IO_MXES="postfix"
	IO_MODES="exempt scanned"
	IO_MSGS="plain1k dots line998 utf8 octets empty boundary smtputf8"
else
	e2e_begin interop "$IO_BUILD" 5400
	IO_SENDERS="swaks python perl curl php postfix exim opensmtpd"
	IO_MXES="postfix exim opensmtpd greylist slow"
	IO_MODES="exempt scanned passthrough terminate scanned6"
	IO_MSGS="plain1k dots line998 utf8 octets empty boundary smtputf8 big5m big50m"
fi
# the greylisting and the slow MX: each message takes its retries or its
# 20 s greeting (and 2 s a reply), so few messages, exempt and scanned
IO_GREYLIST_MSGS="plain1k dots"
IO_SLOW_MSGS="plain1k"
IO_SPECIAL_MODES="exempt scanned"

# INTEROP_SENDERS, INTEROP_MXES, INTEROP_MODES, INTEROP_MSGS: a part of it
IO_SENDERS=${INTEROP_SENDERS:-$IO_SENDERS}
IO_MXES=${INTEROP_MXES:-$IO_MXES}
IO_MODES=${INTEROP_MODES:-$IO_MODES}
IO_MSGS=${INTEROP_MSGS:-$IO_MSGS}
source "$IO_HERE/senders.sh"
# the other parts of the lab, when they are in the tree
IO_MTAS_SH=${INTEROP_MTAS_SH:-$E2E_REPO/lab/mtas.sh}
IO_SPECIAL_SH=${INTEROP_SPECIAL_SH:-$E2E_REPO/lab/mx_special.sh}
# shellcheck disable=SC1090
[ -f "$IO_MTAS_SH" ] && source "$IO_MTAS_SH"
# shellcheck disable=SC1090
[ -f "$IO_SPECIAL_SH" ] && source "$IO_SPECIAL_SH"

IO_T0=$(date +%s)
VM=vm1
lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
# vm2 and vm3: the Exim and the OpenSMTPD senders (one MTA per VM)
{ lab_add_vm vm3 && lab_wait_reachable vm3; } || e2e_abort "vm3 did not come up"
IO_VMS="vm1 vm2 vm3"
IO_DIR=$LAB_DIR/interop
mkdir -p "$IO_DIR/msg" "$IO_DIR/out" "$IO_DIR/base" "$IO_DIR/failed" "$IO_DIR/stray"
chmod 755 "$IO_DIR"
big=()
[[ " $IO_MSGS " = *" big50m "* ]] && big=(--big)
/usr/bin/python3 "$IO_HERE/gen_messages.py" "$IO_DIR/msg" "${big[@]}" ||
	e2e_abort "gen_messages.py failed"
TLSDIR=$LAB_DIR/tls
lab_make_tls_ca "$TLSDIR" || e2e_abort "making the test CAs failed"
IO_CA=$IO_DIR/ca-bundle.crt
cat "$TLSDIR/provider-ca.crt" "$TLSDIR/mx-ca.crt" >"$IO_CA"
# every MX offers STARTTLS with the MX's certificate (the plaintext modes'
# senders do not ask for it)
export LAB_MX_TLS_CHAIN="$TLSDIR/mx.key $TLSDIR/mx.crt"
export LAB_MX_TLS=$LAB_MX_TLS_CHAIN
# smtp_message_size_limit is left at its default (100 MiB): the 50 MiB
# message, with the headers an MTA adds, must fit under it as it is
printf 'interop body /forbidden-interop-[0-9]+/i\n' >"$LAB_DIR/content.rules"
EVENTS=$LAB_DIR/events.jsonl
lab_start_smtpguardd main default_action=scan proxy=yes uplink=uplink0 \
	content_rules="$LAB_DIR/content.rules" events_file="$EVENTS" connect_timeout=5s \
	tls_cert_file="$TLSDIR/provider.crt" tls_key_file="$TLSDIR/provider.key" ||
	e2e_abort "smtpguardd did not start"

# ------------------------------------------------------------ the MXes
# io_mx_cannot KIND: why the MX cannot be run (its part not built yet)
io_mx_cannot() {
	case $1 in
	postfix) ;;
	exim | opensmtpd) declare -F lab_start_mx_mta >/dev/null || echo "not built yet (lab/mtas.sh)" ;;
	greylist | slow) declare -F "lab_start_mx_$1" >/dev/null && declare -F lab_stop_mx_special >/dev/null ||
		echo "not built yet (lab/mx_special.sh)" ;;
	esac
}
# io_mx_cannot_msg KIND MSG: why that MX cannot take that message
io_mx_cannot_msg() {
	case $1.$2 in
	opensmtpd.smtputf8) echo "the OpenSMTPD 6.8 MX does not offer SMTPUTF8" ;;
	esac
}
# io_mx_cannot_mode KIND MODE: why that MX cannot be reached in that mode
io_mx_cannot_mode() {
	case $1.$2 in
	opensmtpd.passthrough | opensmtpd.terminate)
		echo "Debian 12's OpenSMTPD 6.8.0p2 cannot serve TLS with OpenSSL 3 (its handshake fails: \"EVP lib\", OpenSMTPD issue 1171)" ;;
	esac
}
io_mx_raise_size() {	# the lab's Postfix MX takes the 50 MiB message
	postconf -c "$LAB_DIR/postfix-mx/etc" -e "message_size_limit = 104857600" \
		"virtual_mailbox_limit = 0" &&
		lab_exec mx timeout 20 postfix -c "$LAB_DIR/postfix-mx/etc" reload >/dev/null 2>&1
}
io_mx_start() {
	case $1 in
	postfix) lab_start_mx_postfix && io_mx_raise_size ;;
	exim | opensmtpd) lab_start_mx_mta "$1" ;;
	greylist | slow) "lab_start_mx_$1" && io_mx_raise_size ;;
	esac
}
io_mx_maildir() {
	case $1 in
	exim | opensmtpd) lab_mx_mta_maildir "$1" ;;
	*) lab_mx_maildir ;;
	esac
}
# io_mx_stop KIND: its own stop if it has one; then every process left in
# the MX's namespace (the next MX listens on the same port)
io_mx_stop() {
	case $1 in
	exim | opensmtpd) lab_stop_mx_mta "$1" >/dev/null 2>&1 ;;
	greylist | slow) lab_stop_mx_special >/dev/null 2>&1 ;;
	*) lab_exec mx timeout 20 postfix -c "$LAB_DIR/postfix-mx/etc" stop >/dev/null 2>&1 ;;
	esac
	lab_kill_ns "$(lab_ns mx)"
}
io_mx_title() {
	case $1 in
	postfix) echo "Postfix MX" ;; exim) echo "Exim MX" ;; opensmtpd) echo "OpenSMTPD MX" ;;
	greylist) echo "greylisting MX" ;; slow) echo "slow MX" ;;
	esac
}

# ------------------------------------------------------------ the modes
io_set_mode() {
	local m=$1 act=(scan --tls passthrough)
	case $m in
	exempt) act=(exempt) ;;
	terminate) act=(scan --tls terminate) ;;
	esac
	local v
	for v in $IO_VMS; do
		lab_ctl main policy add "$(lab_vm_ip4 "$v")/32" "${act[@]}" >/dev/null &&
			lab_ctl main policy add "$(lab_vm_ip6 "$v")/128" "${act[@]}" >/dev/null || return 1
	done
}
io_mx_addr() { if [ "$1" = scanned6 ]; then echo "$LAB_MX6"; else echo "$LAB_MX4"; fi; }

# ------------------------------------------------------------ one delivery
declare -A CELL=() NA_MSG=()
IO_SEQ=0
IO_RUN=$(printf '%04x' $((RANDOM)))

# io_find ID DIR: the stored message with that X-Interop-Id (the Maildir
# holds only the messages in flight: each found one is moved out)
io_find() {
	local f
	f=$(grep -rlF -m1 --exclude-dir=tmp -- "X-Interop-Id: $1" "$2" 2>/dev/null | head -n 1)
	[ -n "$f" ] && echo "$f"
}
# io_tail FILE ID: the message from the line after its X-Interop-Id line on
io_tail() {
	local off
	off=$(grep -b -m1 -F -- "X-Interop-Id: $2" "$1" | cut -d: -f1)
	[ -n "$off" ] || return 1
	tail -c +$((off + 1)) "$1" | tail -n +2
}
# io_diff A B: "" if equal, else "at octet N" (cmp's first differing byte, 0-based)
io_diff() {
	local out
	out=$(cmp -- "$1" "$2" 2>&1) && return 0
	case $out in
	*"differ: byte "*) out=${out#*differ: byte }; echo "at octet $((${out%%,*} - 1))" ;;
	*"EOF on "*) echo "one is a prefix of the other ($(stat -c %s "$1") vs $(stat -c %s "$2") octets)" ;;
	*) echo "$out" ;;
	esac
}

# io_deliver SENDER MODE MX MSG: one message; prints "" (ok) or what broke
io_deliver() {
	local s=$1 mode=$2 mx=$3 msg=$4 id pad f out rc md got exp base d t=30 from to
	IO_SEQ=$((IO_SEQ + 1))
	id="$IO_RUN.$IO_SEQ.$s.$mode.$mx.$msg."
	pad=$(printf '%*s' $((64 - ${#id})) '' | tr ' ' 'x')
	id="$id$pad"
	f=$IO_DIR/out/$s.$mode.$mx.$msg.lf
	{ printf 'X-Interop-Id: %s\n' "$id"; cat "$IO_DIR/msg/$msg.lf"; } >"$f"
	{ printf 'X-Interop-Id: %s\r\n' "$id"; cat "$IO_DIR/msg/$msg.crlf"; } >"$(io_crlf "$f")"
	read -r from to <"$IO_DIR/msg/$msg.env"
	case $msg in big5m) t=60 ;; big50m) t=240 ;; esac
	case $mx in greylist | slow) t=$((t + 120)) ;; esac
	# every delivery meets the greylisting as a first-time sender
	[ "$mx" = greylist ] && declare -F lab_mx_greylist_reset >/dev/null && lab_mx_greylist_reset
	out=$("sender_$s" "$VM" "$(io_mx_addr "$mode")" "$mode" "$f" "$from" "$to" 2>&1)
	rc=$?
	echo "$out" >"$IO_DIR/out/$s.$mode.$mx.$msg.transcript"
	if [ $rc -ne 0 ]; then
		echo "the sender failed ($rc): $(echo "$out" | grep -v '^ *$' | tail -n 2 | tr '\n' ' ' | cut -c1-200)"
		return
	fi
	md=$(io_mx_maildir "$mx")
	if ! wait_for "$t" io_find "$id" "$md"; then
		echo "the sender says sent, but it is not in the MX's Maildir after $t s"
		return
	fi
	got=$IO_DIR/out/got.$s.$mode.$mx.$msg
	exp=$IO_DIR/out/exp.$s.$mode.$mx.$msg
	f=$(io_find "$id" "$md")
	mv "$f" "$got.stored"
	io_tail "$got.stored" "$id" >"$got"
	if declare -F "sender_${s}_expect" >/dev/null; then
		LC_ALL=C "sender_${s}_expect" "$IO_DIR/out/$s.$mode.$mx.$msg.lf" | tail -n +2 >"$exp"
	else
		tail -n +2 "$IO_DIR/out/$s.$mode.$mx.$msg.lf" >"$exp"
	fi
	if [ "$msg" = smtputf8 ] && ! sed -n "1,/^X-Interop-Id: $id/p" "$got.stored" | grep -qF "$to"; then
		mv "$got.stored" "$IO_DIR/failed/"
		echo "the MX's trace headers do not name the UTF-8 recipient $to"
		return
	fi
	base=$IO_DIR/base/$s.$mx.$msg
	d=
	declare -F "sender_${s}_changes" >/dev/null && [ -n "$("sender_${s}_changes" "$msg")" ] ||
		d=$(io_diff "$exp" "$got")
	if [ -n "$d" ]; then
		mv "$got.stored" "$IO_DIR/failed/"
		echo "differs from the submitted message $d (sha256 $(sha256sum <"$got" | cut -c1-12) vs $(sha256sum <"$exp" | cut -c1-12))"
		[ "$mode" = exempt ] && mv "$got" "$base"
		return
	fi
	if [ "$mode" = exempt ]; then
		mv "$got" "$base"
	elif [ ! -f "$base" ]; then
		echo "no exempt baseline to compare with (the baseline delivery failed)"
		return
	else
		d=$(io_diff "$base" "$got")
		if [ -n "$d" ]; then
			mv "$got.stored" "$IO_DIR/failed/"
			echo "differs from the exempt baseline $d"
			return
		fi
		rm -f "$got"
	fi
	rm -f "$got.stored" "$exp" "$IO_DIR/out/$s.$mode.$mx.$msg.lf" "$(io_crlf "$IO_DIR/out/$s.$mode.$mx.$msg.lf")"
}

# ------------------------------------------------------------ one cell
ev_count() { grep -c -- "$1" "$EVENTS" 2>/dev/null || true; }

# io_cell SENDER MODE MX MSGS: every message; the cell's path; CELL[s|mode|mx]
io_cell() {
	local s=$1 mode=$2 mx=$3 msgs=$4 why msg r fails=() na=() st0 st1 ev0 ev1 key="$1|$2|$3"
	local name="interop-$s-$mode-$mx"
	why=$("sender_${s}_cannot" "" "$mode" "$mx")
	[ -n "$why" ] || why=$(io_mx_cannot_mode "$mx" "$mode")
	if [ -n "$why" ]; then
		CELL[$key]="n/a: $why"
		echo "SKIP $name: $why"
		return
	fi
	st0=$(stat_get main steered)
	ev0=$(ev_count "\"tls\":\"$mode\"")
	for msg in $msgs; do
		why=$("sender_${s}_cannot" "$msg" "$mode" "$mx")
		[ -n "$why" ] || why=$(io_mx_cannot_msg "$mx" "$msg")
		if [ -n "$why" ]; then
			na+=("$msg")
			NA_MSG[$s|$msg]=$why
			echo "SKIP $name-$msg: $why"
			continue
		fi
		declare -F "sender_${s}_changes" >/dev/null &&
			why=$("sender_${s}_changes" "$msg") && [ -n "$why" ] && NA_MSG[$s|$msg]="changed by the sender itself (compared with its baseline only): $why"
		r=$(io_deliver "$s" "$mode" "$mx" "$msg")
		if [ -z "$r" ]; then
			pass "$name-$msg"
		else
			fail "$name-$msg" "$r"
			fails+=("$msg: $r")
		fi
	done
	# what else arrived: a copy twice, a bounce
	local md f n=0 ids=
	md=$(io_mx_maildir "$mx")
	while read -r f; do
		[ -n "$f" ] || continue
		ids+=" $(head -c 65536 "$f" | grep -m1 -oE '^X-Interop-Id: [^ ]+' | cut -c15-)"
		mv "$f" "$IO_DIR/stray/"
		n=$((n + 1))
	done < <(find "$md" -type f -not -path '*/tmp/*' 2>/dev/null)
	if [ $n -gt 0 ]; then
		# a late copy of an earlier cell's message shows here: its id says whose
		fail "$name-nothing-else-delivered" "$n more messages in the MX's Maildir (X-Interop-Id:${ids:- none})"
		fails+=("$n messages more than sent")
	fi
	declare -F "sender_${s}_end" >/dev/null && "sender_${s}_end"
	st1=$(stat_get main steered)
	# a session's event comes when it ends (a moment after the last message)
	io_is_tls "$mode" && wait_for 5 eval '[ "$(ev_count "\"tls\":\"$mode\"")" -gt "${ev0:-0}" ]'
	ev1=$(ev_count "\"tls\":\"$mode\"")
	case $mode in
	exempt)
		if [ "${st1:-x}" != "${st0:-y}" ]; then
			fail "$name-path" "the exempt baseline went through the proxy (steered $st0 -> $st1)"
			fails+=("path: steered through the proxy")
		fi ;;
	*)
		if ! [ "${st1:-0}" -gt "${st0:-0}" ] 2>/dev/null; then
			fail "$name-path" "nothing steered to the proxy (steered $st0 -> $st1)"
			fails+=("path: not through the proxy")
		elif io_is_tls "$mode" && ! [ "${ev1:-0}" -gt "${ev0:-0}" ]; then
			fail "$name-path" "no session event says \"tls\":\"$mode\""
			fails+=("path: no $mode TLS session")
		fi ;;
	esac
	if [ ${#fails[@]} -gt 0 ]; then
		CELL[$key]="FAIL: $(printf '%s; ' "${fails[@]}" | cut -c1-160)"
	elif [ ${#na[@]} -gt 0 ]; then
		CELL[$key]="ok (n/a: ${na[*]})"
	else
		CELL[$key]=ok
	fi
}

# ------------------------------------------------------------ scanning is on
# a message with the rule's pattern is refused in the scanned mode: the
# cells that say "scanned" were
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
io_set_mode scanned || e2e_abort "policy add failed"
send_mail "$VM" "$LAB_MX4" 25 10 --body "forbidden-interop-7"
check_match "$MAIL_OUT" "<[-*]+ +550 5\.7\.1 smtpguard" "interop-scanned-mode-scans"
io_mx_stop postfix

# ------------------------------------------------------------ the table
io_mode_title() {
	case $1 in
	exempt) echo "exempt (direct, the baseline)" ;; scanned) echo "plaintext, scanned" ;;
	passthrough) echo "STARTTLS passthrough" ;; terminate) echo "STARTTLS terminate" ;;
	scanned6) echo "IPv6 plaintext, scanned" ;;
	esac
}
io_sender_title() {
	case $1 in
	swaks) echo swaks ;; python) echo "Python smtplib" ;; perl) echo "Perl Net::SMTP" ;;
	curl) echo curl ;; php) echo "PHP mail() + msmtp" ;; postfix) echo Postfix ;;
	exim) echo Exim ;; opensmtpd) echo OpenSMTPD ;;
	esac
}
# io_write_table: the table of the cells so far (after each MX, and at the end)
TABLE=$LAB_BUILD/interop-table.md
IO_REV=$(git -C "$E2E_REPO" describe --always --dirty 2>/dev/null)
io_write_table() {
	local s mode mx c k notes
	IO_SECS=$(( $(date +%s) - IO_T0 ))
{
	echo "Generated by \`bash selftests/interop/run.sh\`$([ $IO_FAST = 1 ] && echo " --fast") on" \
		"$(date -u +%Y-%m-%d) in ${IO_SECS} s${IO_REV:+ (smtpguard $IO_REV)}." \
		"Each ok cell: every message delivered, byte-identical to what was submitted and to the" \
		"exempt baseline (${IO_MSGS// /, }; to the greylisting MX ${IO_GREYLIST_MSGS// /, }," \
		"to the slow MX ${IO_SLOW_MSGS// /, }; these two exempt and scanned only)."
	echo
	printf '| sender | mode |'
	for mx in $IO_MXES; do printf ' %s |' "$(io_mx_title "$mx")"; done
	echo
	printf '| --- | --- |'
	for mx in $IO_MXES; do printf ' --- |'; done
	echo
	for s in $IO_SENDERS; do
		for mode in $IO_MODES; do
			printf '| %s | %s |' "$(io_sender_title "$s")" "$(io_mode_title "$mode")"
			for mx in $IO_MXES; do
				c=${CELL[$s|$mode|$mx]:-not run}
				printf ' %s |' "${c//|/\\|}"
			done
			echo
		done
	done
	notes=
	for k in "${!NA_MSG[@]}"; do
		case ${NA_MSG[$k]} in
		changed*) notes+="- $(io_sender_title "${k%%|*}"), ${k#*|}: ${NA_MSG[$k]}."$'\n' ;;
		*) notes+="- $(io_sender_title "${k%%|*}"), ${k#*|}: n/a, ${NA_MSG[$k]}."$'\n' ;;
		esac
	done
	if [ -n "$notes" ]; then
		echo
		printf '%s' "$notes" | sort
	fi
} >"$TABLE"
}

# ------------------------------------------------------------ the matrix
for mx in $IO_MXES; do
	why=$(io_mx_cannot "$mx")
	if [ -z "$why" ] && ! io_mx_start "$mx"; then
		why="FAIL: the MX did not start"
		fail "interop-$mx-mx-starts" "$(io_mx_title "$mx") did not start"
	fi
	msgs=$IO_MSGS
	modes=$IO_MODES
	case $mx in
	greylist) msgs=$IO_GREYLIST_MSGS; modes=$IO_SPECIAL_MODES ;;
	slow) msgs=$IO_SLOW_MSGS; modes=$IO_SPECIAL_MODES ;;
	esac
	for mode in $IO_MODES; do
		if [[ " $modes " != *" $mode "* ]]; then
			for s in $IO_SENDERS; do
				CELL[$s|$mode|$mx]="not run (this MX: ${IO_SPECIAL_MODES// / and } only)"
			done
			continue
		fi
		[ -n "$why" ] || io_set_mode "$mode" || fail "interop-$mode-policy" "policy add failed"
		for s in $IO_SENDERS; do
			if [ -n "$why" ]; then
				case $why in FAIL*) CELL[$s|$mode|$mx]=$why ;; *) CELL[$s|$mode|$mx]="n/a: $why" ;; esac
				echo "SKIP interop-$s-$mode-$mx: $why"
				continue
			fi
			io_cell "$s" "$mode" "$mx" "$msgs"
		done
	done
	[ -n "$why" ] || io_mx_stop "$mx"
	rm -f "$IO_DIR"/up-*
	io_write_table
done
IO_SECS=$(( $(date +%s) - IO_T0 ))
io_write_table
echo "# the table: $TABLE"
sed 's/^/# /' "$TABLE"

if [ $IO_README = 1 ]; then
	readme=$E2E_REPO/README.md
	if grep -q '^<!-- interop-table begin -->$' "$readme" && grep -q '^<!-- interop-table end -->$' "$readme"; then
		awk -v t="$TABLE" '
			/^<!-- interop-table begin -->$/ { print; while ((getline l < t) > 0) print l; skip = 1; next }
			/^<!-- interop-table end -->$/ { skip = 0 }
			!skip { print }' "$readme" >"$readme.new" && mv "$readme.new" "$readme"
		echo "# README.md: the table replaced"
	else
		fail "interop-readme-markers" "README.md has no <!-- interop-table begin/end --> markers"
	fi
fi
echo "# interop: the matrix took ${IO_SECS} s"
e2e_finish
