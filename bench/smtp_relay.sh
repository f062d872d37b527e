#!/usr/bin/env bash
# smtp_relay.sh - messages per second VM -> host -> MX with Postfix's
# smtp-source in the VM (20 parallel sessions, one message each) and
# smtp-sink on the MX, 1 KiB and 100 KiB messages, for:
#   direct     the VM exempt: the kernel fast path only (the baseline)
#   smtpguard  the VM scanned: every session through smtpguard's proxy
#   bare_relay bench/tcp_relay behind nft TPROXY: the cheapest transparent
#              relay (copies bytes, reads no SMTP), the floor of any proxy
#              that ends the VM's TCP on the host as smtpguard must; the
#              ratio smtpguard / bare_relay is what smtpguard's own work costs
#   proxsmtp   Debian's ProxSMTP, fully transparent (nft TPROXY)
#   smarthost  a Postfix smart host on the host, timed until the sink has
#              every message (it accepts faster than it delivers)
# Rounds are interleaved (direct, smtpguard, bare_relay, proxsmtp, smarthost,
# then again)
# so that this machine's slow and fast phases hit every mode alike; the
# median of ROUNDS runs, as a ratio to direct. Then the latency one message
# adds through smtpguard (p50, p99 of sequential sessions, smtp_latency).
# Prints BENCH lines.
#   bash bench/smtp_relay.sh build
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lab/lab.sh"
source "$HERE/peers.sh"

BUILD=${1:-build}
PREFIX=sgbsmtp-
ROUNDS=${SMTP_ROUNDS:-3}
SESSIONS=20
LATENCY_MSGS=${SMTP_LATENCY_MSGS:-400}

cleanup() {
	peer_proxsmtp_stop >/dev/null 2>&1
	peer_relay_stop >/dev/null 2>&1
	peer_smarthost_stop >/dev/null 2>&1
	lab_down "$PREFIX"
}
trap cleanup EXIT
trap 'echo "smtp_relay: interrupted" >&2; exit 130' INT TERM
[ "$(id -u)" = 0 ] || { echo "smtp_relay: must run as root" >&2; exit 1; }
lab_init "$BUILD" || exit 1
lab_up "$PREFIX" || { echo "smtp_relay: lab_up failed" >&2; exit 1; }
lab_start_mx_sink 25 || exit 1
lab_start_smtpguardd main default_action=scan proxy=yes uplink=uplink0 || exit 1
peer_smarthost_start || { echo "smtp_relay: the Postfix smart host did not start" >&2; exit 1; }
VM1=$(lab_vm_ip4 vm1)
lab_ctl main rate-class set bench --conn 1000000/s --burst 1000000 >/dev/null
MX=$LAB_MX4

# source_rate TARGET COUNT BYTES: msgs/s of smtp-source, or nothing on failure
source_rate() {
	local target=$1 count=$2 bytes=$3 t0 t1
	t0=$(date +%s%N)
	lab_exec vm1 timeout 300 smtp-source -s "$SESSIONS" -m "$count" -l "$bytes" \
		-f bench@example.org -t sink@example.net "$target" >/dev/null 2>&1 || return 1
	t1=$(date +%s%N)
	awk -v n="$count" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }'
}

# smarthost_rate COUNT BYTES: msgs/s until the sink has all COUNT messages
smarthost_rate() {
	local count=$1 bytes=$2 t0 t1 base
	base=$(peer_sink_count)
	t0=$(date +%s%N)
	lab_exec vm1 timeout 300 smtp-source -s "$SESSIONS" -m "$count" -l "$bytes" \
		-f bench@example.org -t sink@example.net "$(peer_smarthost_target)" \
		>/dev/null 2>&1 || return 1
	for _ in $(seq 1 3000); do
		[ "$(( $(peer_sink_count) - base ))" -ge "$count" ] && break
		sleep 0.05
	done
	[ "$(( $(peer_sink_count) - base ))" -ge "$count" ] || return 1
	t1=$(date +%s%N)
	awk -v n="$count" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }'
}

median() { sort -g | awk '{a[NR]=$1} END { if (NR) print a[int((NR + 1) / 2)] }'; }

# Where the CPU goes, per message: the whole machine's busy time, and the
# daemon's user and system time (its kernel time is the TCP work of the two
# sockets a proxied session adds). Set around a run by cpu_begin/cpu_end.
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
daemon_jiffies() { lab_sgd_jiffies main; }
cpu_begin() { CPU_J0=$(busy_jiffies); read -r CPU_U0 CPU_S0 < <(daemon_jiffies); }
# cpu_end MODE-LABEL COUNT: appends "machine user sys" (us per message)
cpu_end() {
	local j u s hz
	j=$(busy_jiffies); read -r u s < <(daemon_jiffies); hz=$(getconf CLK_TCK)
	CPU[$1]+="$(awk -v j=$((j - CPU_J0)) -v u=$((u - CPU_U0)) -v s=$((s - CPU_S0)) \
		-v n="$2" -v hz="$hz" 'BEGIN { f = 1e6 / hz / n; printf "%.0f/%.0f/%.0f", j * f, u * f, s * f }') "
}
declare -A CPU=()

# one_run MODE COUNT BYTES: one measurement of MODE
one_run() {
	local mode=$1 count=$2 bytes=$3 v rc
	case $mode in
	direct|smtpguard)
		if [ "$mode" = direct ]; then
			lab_ctl main policy add "$VM1/32" exempt --class bench >/dev/null
		else
			lab_ctl main policy add "$VM1/32" scan --class bench >/dev/null
		fi
		cpu_begin
		v=$(source_rate "$MX:25" "$count" "$bytes") || return 1
		cpu_end "$mode-$bytes" "$count"
		echo "$v" ;;
	bare_relay)
		lab_ctl main policy add "$VM1/32" exempt --class bench >/dev/null
		peer_relay_start "$BUILD" || return 1
		v=$(source_rate "$MX:25" "$count" "$bytes"); rc=$?
		peer_relay_stop
		[ $rc -eq 0 ] && echo "$v" ;;
	proxsmtp)
		lab_ctl main policy add "$VM1/32" exempt --class bench >/dev/null
		peer_proxsmtp_start || return 1
		v=$(source_rate "$MX:25" "$count" "$bytes"); rc=$?
		peer_proxsmtp_stop
		[ $rc -eq 0 ] && echo "$v" ;;
	smarthost)
		lab_ctl main policy add "$VM1/32" exempt --class bench >/dev/null
		smarthost_rate "$count" "$bytes" ;;
	esac
}

MODES=(direct smtpguard bare_relay proxsmtp smarthost)
# messages per run, by mode and size: the slow peers get fewer
declare -A COUNT=([direct-1k]=8000 [smtpguard-1k]=8000 [bare_relay-1k]=8000 [proxsmtp-1k]=600
	[smarthost-1k]=2000 [direct-100k]=1500 [smtpguard-100k]=1500 [bare_relay-100k]=1500
	[proxsmtp-100k]=200 [smarthost-100k]=400)
declare -A VALUES=()
for size in 1k:1024 100k:102400; do
	IFS=: read -r label bytes <<<"$size"
	for _ in $(seq 1 "$ROUNDS"); do
		for mode in "${MODES[@]}"; do
			# not in a subshell: cpu_end's record must survive
			one_run "$mode" "${COUNT[$mode-$label]}" "$bytes" >"$LAB_DIR/run.out" &&
				VALUES[$mode-$label]+="$(cat "$LAB_DIR/run.out") "
		done
	done
done

echo "# smtp-source -s $SESSIONS in the VM -> smtp-sink on the MX, median of $ROUNDS interleaved runs"
for label in 1k 100k; do
	d=$(printf '%s\n' ${VALUES[direct-$label]:-} | median)
	for mode in "${MODES[@]}"; do
		v=$(printf '%s\n' ${VALUES[$mode-$label]:-} | median)
		r=$(awk -v a="${v:-0}" -v b="${d:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "NA" }')
		echo "BENCH smtp $label $mode msgs_per_s=${v:-NA} ratio=$r runs=${VALUES[$mode-$label]:-none}"
	done
	g=$(printf '%s\n' ${VALUES[smtpguard-$label]:-} | median)
	f=$(printf '%s\n' ${VALUES[bare_relay-$label]:-} | median)
	awk -v g="${g:-0}" -v f="${f:-0}" -v d="${d:-0}" -v l="$label" 'BEGIN {
		if (f > 0 && d > 0)
			printf "BENCH smtp %s smtpguard_vs_bare_relay ratio=%.2f (bare_relay_vs_direct=%.2f: the floor)\n", l, g / f, f / d
		else
			printf "BENCH smtp %s smtpguard_vs_bare_relay ratio=NA\n", l }'
done

# CPU per message (medians), and how busy direct kept the machine. Where
# direct saturates it (busy near 1), msgs/s goes as 1 / CPU per message, so
# direct's CPU over direct's plus the daemon's kernel time alone bounds the
# ratio any proxy of this shape (two more TCP sockets a session) can reach
# here, whatever its userspace does; below saturation there is no bound.
echo "# CPU per message, us: the whole machine, and smtpguardd's user and kernel time"
cores=$(nproc)
for bytes in 1024 102400; do
	label=$([ "$bytes" = 1024 ] && echo 1k || echo 100k)
	for mode in direct smtpguard; do
		m=$(printf '%s\n' ${CPU[$mode-$bytes]:-} | cut -d/ -f1 | median)
		u=$(printf '%s\n' ${CPU[$mode-$bytes]:-} | cut -d/ -f2 | median)
		k=$(printf '%s\n' ${CPU[$mode-$bytes]:-} | cut -d/ -f3 | median)
		r=$(printf '%s\n' ${VALUES[$mode-$label]:-} | median)
		busy=$(awk -v m="${m:-0}" -v r="${r:-0}" -v c="$cores" 'BEGIN { printf "%.2f", m * r / 1e6 / c }')
		echo "BENCH smtp_cpu $bytes $mode machine_us_per_msg=${m:-NA} busy=$busy" \
			"daemon_user_us=${u:-NA} daemon_sys_us=${k:-NA}"
		if [ "$mode" = direct ]; then
			dm=${m:-0}; dbusy=$busy
		else
			awk -v d="$dm" -v k="${k:-0}" -v b="$bytes" -v busy="$dbusy" 'BEGIN {
				if (d > 0 && busy >= 0.9)
					printf "BENCH smtp_cpu %d bound_ratio_with_no_userspace_cost=%.2f\n", b, d / (d + k)
				else
					printf "BENCH smtp_cpu %d bound_ratio_with_no_userspace_cost=NA (direct leaves the CPU idle)\n", b }'
		fi
	done
done

# --- added latency: sequential sessions, one message each, direct vs proxied
latency() {	# MODE: "p50 p99" in microseconds
	local out
	case $1 in
	direct) lab_ctl main policy add "$VM1/32" exempt --class bench >/dev/null ;;
	smtpguard) lab_ctl main policy add "$VM1/32" scan --class bench >/dev/null ;;
	esac
	out=$(lab_exec vm1 timeout 120 "$BUILD/bench/smtp_latency" -n "$LATENCY_MSGS" -s 1024 "$MX:25") ||
		return 1
	echo "$out" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
		END { print v["p50_us"], v["p99_us"] }'
}
if [ -x "$BUILD/bench/smtp_latency" ]; then
	read -r d50 d99 < <(latency direct)
	read -r g50 g99 < <(latency smtpguard)
	echo "# one 1 KiB message a session, $LATENCY_MSGS sessions one after another (smtp_latency)"
	echo "BENCH smtp_latency direct p50_us=${d50:-NA} p99_us=${d99:-NA}"
	echo "BENCH smtp_latency smtpguard p50_us=${g50:-NA} p99_us=${g99:-NA}"
	awk -v a="${g50:-0}" -v b="${d50:-0}" -v c="${g99:-0}" -v d="${d99:-0}" 'BEGIN {
		printf "BENCH smtp_latency added p50_us=%d p99_us=%d\n", a - b, c - d }'
fi
