#!/usr/bin/env bash
# scan_engines.sh - what judging a message costs, per engine: messages per
# second VM -> smtpguard -> MX (smtp-source -F with a real MIME message in
# the VM, 20 parallel sessions; smtp-sink on the MX), 1 KiB and 100 KiB
# messages, for:
#   unscanned  proxied, content_scan = no: the relay alone (the baseline)
#   builtin    the built-in content engine: 200 content rules (headers,
#              body phrases, a URL host list, attachment names), the MIME
#              parser, the body fingerprint and the behaviour signals
#   rspamd     rspamd's proxy worker as a milter (self_scan), content_scan = no
# Rounds interleaved (unscanned, builtin, rspamd, then builtin, rspamd,
# unscanned): msgs/s is the median of ROUNDS, the ratio the median of each
# round's own ratio to unscanned. CPU per message: smtpguardd's user and
# kernel time, and rspamd's (its processes'). Then the latency one message
# adds with each (p50, p99 of sequential sessions, bench/smtp_latency), and
# the latency through the relay alone. Prints BENCH lines.
#   bash bench/scan_engines.sh build
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lab/lab.sh"

BUILD=${1:-build}
PREFIX=sgbscan-
ROUNDS=${SCAN_ROUNDS:-5}
SESSIONS=20
LATENCY_MSGS=${SCAN_LATENCY_MSGS:-300}

cleanup() { lab_down "$PREFIX"; }
trap cleanup EXIT
trap 'echo "scan_engines: interrupted" >&2; exit 130' INT TERM
[ "$(id -u)" = 0 ] || { echo "scan_engines: must run as root" >&2; exit 1; }
lab_init "$BUILD" || exit 1
lab_up "$PREFIX" || { echo "scan_engines: lab_up failed" >&2; exit 1; }
lab_start_mx_sink 25 || exit 1
lab_start_rspamd host || { echo "scan_engines: rspamd did not start" >&2; exit 1; }
VM1=$(lab_vm_ip4 vm1)
MX=$LAB_MX4

# --- the rules: what an operator might run (phrases, a few regexes, hosts)
RULES=$LAB_DIR/bench.rules
{
	for i in $(seq 1 150); do
		echo "PHRASE_$i body /cheap\\s+offer\\s+number\\s+$i\\b/i"
	done
	for i in $(seq 1 30); do
		echo "SUBJECT_$i header:Subject /(winner|lottery|prize)\\s+$i/i"
	done
	for i in $(seq 1 10); do
		echo "FILE_$i attachment-name /\\.(exe|scr|js|vbs|jar)$i\$/i"
	done
	echo "HOSTS url-host file:$LAB_DIR/bad-hosts"
	for i in $(seq 1 9); do
		echo "LINK_$i body /https?:\\/\\/[a-z0-9.-]*track$i\\.example\\//i"
	done
} > "$RULES"
for i in $(seq 1 10000); do echo "bad$i.example"; done > "$LAB_DIR/bad-hosts"

# --- the messages: headers, text and HTML parts (quoted-printable), an
# attachment (base64); padded to about SIZE bytes by the text part, with
# a link every tenth paragraph (a shop's or a newsletter's density)
message() {	# SIZE FILE
	local size=$1 file=$2 para link
	para="Dear customer, thank you for your order. Your parcel is on its way and will arrive soon. Reply to this message with any question you may have about it."
	link="See https://shop.example.org/orders/12345 for the details of your order."
	{
		echo "From: shop@example.org"
		echo "To: sink@example.net"
		echo "Subject: Your order 12345"
		echo "Message-ID: <bench-$size@example.org>"
		echo "MIME-Version: 1.0"
		echo "Content-Type: multipart/mixed; boundary=\"b1\""
		echo
		echo "--b1"
		echo "Content-Type: multipart/alternative; boundary=\"b2\""
		echo
		echo "--b2"
		echo "Content-Type: text/plain; charset=utf-8"
		echo "Content-Transfer-Encoding: quoted-printable"
		echo
		local n=$(( size * 6 / 10 / ${#para} + 1 ))
		for i in $(seq 1 "$n"); do
			if [ $((i % 10)) = 1 ]; then echo "$link"; else echo "$para"; fi
		done
		echo "--b2"
		echo "Content-Type: text/html; charset=utf-8"
		echo
		echo "<html><body><p>Dear customer,</p><a href=\"https://shop.example.org/orders/12345\">your order</a></body></html>"
		echo "--b2--"
		echo "--b1"
		echo "Content-Type: application/pdf; name=\"invoice.pdf\""
		echo "Content-Disposition: attachment; filename=\"invoice.pdf\""
		echo "Content-Transfer-Encoding: base64"
		echo
		head -c $(( size * 3 / 10 )) /dev/urandom | base64 -w 76
		echo "--b1--"
	} > "$file"
}
message 1024 "$LAB_DIR/msg-1k.eml"
message 102400 "$LAB_DIR/msg-100k.eml"

# mode MODE: the daemon (re)started for it
start_mode() {
	lab_stop_smtpguardd main >/dev/null 2>&1
	case $1 in
	unscanned) lab_start_smtpguardd main default_action=scan proxy=yes uplink=uplink0 \
			content_scan=no ;;
	builtin) lab_start_smtpguardd main default_action=scan proxy=yes uplink=uplink0 \
			content_rules="$RULES" ;;
	rspamd) lab_start_smtpguardd main default_action=scan proxy=yes uplink=uplink0 \
			content_scan=no milters=inet:127.0.0.1:11332 ;;
	esac || return 1
	lab_ctl main rate-class set bench --conn 1000000/s --burst 1000000 --ladder off >/dev/null
	lab_ctl main policy add "$VM1/32" scan --class bench >/dev/null
}

daemon_jiffies() { lab_sgd_jiffies main | awk '{ print $1 + $2 }'; }
rspamd_jiffies() {
	local total=0 pid
	for pid in $(ip netns pids "$(lab_ns host)" 2>/dev/null); do
		grep -q rspamd "/proc/$pid/comm" 2>/dev/null || continue
		total=$(( total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0) ))
	done
	echo "$total"
}

# run MODE COUNT LABEL: msgs/s; appends CPU us per message (daemon, rspamd)
declare -A VALUES=() CPU_D=() CPU_R=()
run() {
	local mode=$1 count=$2 label=$3 t0 t1 d0 r0 d1 r1 hz
	hz=$(getconf CLK_TCK)
	d0=$(daemon_jiffies); r0=$(rspamd_jiffies)
	t0=$(date +%s%N)
	lab_exec vm1 timeout 300 smtp-source -s "$SESSIONS" -m "$count" -F "$LAB_DIR/msg-$label.eml" \
		-f bench@example.org -t sink@example.net "$MX:25" >/dev/null 2>&1 || return 1
	t1=$(date +%s%N)
	d1=$(daemon_jiffies); r1=$(rspamd_jiffies)
	VALUES[$mode-$label]+="$(awk -v n="$count" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }') "
	CPU_D[$mode-$label]+="$(awk -v j=$((d1 - d0)) -v n="$count" -v hz="$hz" 'BEGIN { printf "%.0f", j * 1e6 / hz / n }') "
	CPU_R[$mode-$label]+="$(awk -v j=$((r1 - r0)) -v n="$count" -v hz="$hz" 'BEGIN { printf "%.0f", j * 1e6 / hz / n }') "
}

median() { sort -g | awk '{a[NR]=$1} END { if (NR) print a[int((NR + 1) / 2)] }'; }
# the median of the rounds' own ratios (mode / unscanned of the same
# round): this shared machine's speed drifts by 2x between rounds, and a
# ratio of two medians mixes rounds that ran at different speeds
paired_ratio() {	# "MODE RUNS" "BASELINE RUNS"
	local -a a=($1) b=($2)
	local i
	[ ${#a[@]} -gt 0 ] && [ ${#a[@]} = ${#b[@]} ] || { echo NA; return; }
	for i in "${!a[@]}"; do
		awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN { if (y > 0) printf "%.4f\n", x / y }'
	done | median | awk '{ printf "%.2f", $1 }'
}

MODES=(unscanned builtin rspamd)
declare -A COUNT=([unscanned-1k]=4000 [builtin-1k]=4000 [rspamd-1k]=1000
	[unscanned-100k]=800 [builtin-100k]=800 [rspamd-100k]=300)
# each round runs every mode; the order alternates (unscanned first, then
# last) so the TIME_WAIT sockets and warm caches a run leaves behind favour
# neither side
for round in $(seq 1 "$ROUNDS"); do
	order=("${MODES[@]}")
	[ $((round % 2)) = 0 ] && order=(builtin rspamd unscanned)
	for mode in "${order[@]}"; do
		start_mode "$mode" || { echo "scan_engines: smtpguardd did not start ($mode)" >&2; continue; }
		for label in 1k 100k; do
			run "$mode" "${COUNT[$mode-$label]}" "$label" ||
				echo "scan_engines: $mode $label run failed" >&2
		done
	done
done

echo "# smtp-source -s $SESSIONS -F (a MIME message) in the VM -> smtpguard -> smtp-sink, median of $ROUNDS interleaved runs"
for label in 1k 100k; do
	base=$(printf '%s\n' ${VALUES[unscanned-$label]:-} | median)
	for mode in "${MODES[@]}"; do
		v=$(printf '%s\n' ${VALUES[$mode-$label]:-} | median)
		d=$(printf '%s\n' ${CPU_D[$mode-$label]:-} | median)
		r=$(printf '%s\n' ${CPU_R[$mode-$label]:-} | median)
		ratio=$(paired_ratio "${VALUES[$mode-$label]:-}" "${VALUES[unscanned-$label]:-}")
		echo "BENCH scan $label $mode msgs_per_s=${v:-NA} ratio=$ratio daemon_cpu_us_per_msg=${d:-NA}" \
			"rspamd_cpu_us_per_msg=${r:-NA} runs=${VALUES[$mode-$label]:-none}"
	done
done

# --- added latency, sequential sessions of one message each
echo "# added latency: $LATENCY_MSGS sequential sessions of one 1 KiB message, us"
for mode in "${MODES[@]}"; do
	start_mode "$mode" || continue
	out=$(lab_exec vm1 timeout 180 "$BUILD/bench/smtp_latency" -n "$LATENCY_MSGS" -s 1024 "$MX:25") ||
		{ echo "BENCH scan_latency $mode failed"; continue; }
	echo "BENCH scan_latency $mode $out"
done
