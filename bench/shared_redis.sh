#!/usr/bin/env bash
# shared_redis.sh - what the shared store costs a session: messages/s (Postfix's
# smtp-source in the VM, 20 parallel sessions, one 1 KiB message each, to
# smtp-sink on the MX) and the latency one message adds (smtp_latency, one
# session after another: p50, p99), every session through smtpguard's proxy,
# with:
#   off   redis = none (the baseline)
#   on    redis set, Redis up, shared limits counted (a round a second)
#   down  redis set, Redis killed: the daemon retries with its backoff
# Rounds are interleaved (off, on, down, then again) so that this machine's
# slow and fast phases hit every mode alike; the median of ROUNDS runs, as a
# ratio to off; the added latency is measured from the VM exempt (no proxy,
# the kernel path alone), and compared on vs off. Then Redis's operations per message (INFO commandstats
# around the "on" runs: the EVALSHA calls, and every command including those
# the script runs). Redis runs in a namespace of its own, reached over a
# veth, as from a hypervisor to its Redis. Prints BENCH lines.
#   bash bench/shared_redis.sh build
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lab/lab.sh"

BUILD=${1:-build}
PREFIX=sgbredis-
ROUNDS=${REDIS_ROUNDS:-9}
SESSIONS=20
COUNT=${REDIS_MSGS:-10000}
LATENCY_MSGS=${REDIS_LATENCY_MSGS:-3000}
RNS=${PREFIX}redis
RADDR=203.0.113.1
RDIR=
REDIS_PID=

cleanup() {
	if [ -n "$REDIS_PID" ]; then
		kill -KILL "$REDIS_PID" 2>/dev/null
		wait "$REDIS_PID" 2>/dev/null
	fi
	lab_down "$PREFIX"
	lab_kill_ns "$RNS"
	ip netns del "$RNS" 2>/dev/null
	[ -n "$RDIR" ] && rm -rf "$RDIR"
}
trap cleanup EXIT
trap 'echo "shared_redis: interrupted" >&2; exit 130' INT TERM
[ "$(id -u)" = 0 ] || { echo "shared_redis: must run as root" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "shared_redis: no redis-server (make deps)" >&2; exit 1; }
lab_init "$BUILD" || exit 1
lab_up "$PREFIX" || { echo "shared_redis: lab_up failed" >&2; exit 1; }
RDIR=$(mktemp -d /tmp/sgb-redis-XXXXXX)
ip netns add "$RNS" && ip -n "$RNS" link set lo up &&
	ip link add rds0 netns "$(lab_ns host)" type veth peer name eth0 netns "$RNS" &&
	ip -n "$RNS" link set eth0 up && ip -n "$RNS" addr add "$RADDR/24" dev eth0 &&
	ip -n "$(lab_ns host)" link set rds0 up &&
	ip -n "$(lab_ns host)" addr add 203.0.113.11/24 dev rds0 ||
	{ echo "shared_redis: cannot make the redis namespace" >&2; exit 1; }
rcli() { nsenter --net="/run/netns/$RNS" -- redis-cli -h "$RADDR" "$@"; }
redis_start() {
	nsenter --net="/run/netns/$RNS" -- redis-server --bind "$RADDR" --port 6379 --protected-mode no --save "" \
		--appendonly no --dir "$RDIR" --logfile "$RDIR/redis.log" --daemonize no &
	REDIS_PID=$!
	for _ in $(seq 1 50); do rcli ping >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}
redis_stop() {
	kill -KILL "$REDIS_PID" 2>/dev/null
	wait "$REDIS_PID" 2>/dev/null
	REDIS_PID=
}
lab_start_mx_sink 25 || exit 1
VM1=$(lab_vm_ip4 vm1)
MX=$LAB_MX4
COMMON=(default_action=scan proxy=yes uplink=uplink0 default_conn_rate=1000000/s
	default_conn_burst=1000000)
# start_daemon off|on: smtpguardd with redis = none, or with the store
start_daemon() {
	lab_stop_smtpguardd main >/dev/null 2>&1
	if [ "$1" = off ]; then
		lab_start_smtpguardd main "${COMMON[@]}" redis=none || return 1
	else
		lab_start_smtpguardd main "${COMMON[@]}" redis="tcp:$RADDR:6379" \
			shared_conn_rate=1000000/min shared_msg_rate=1000000/min || return 1
		for _ in $(seq 1 50); do
			grep -q "redis tcp:$RADDR:6379: connected" "$(lab_sgd_log)" && break
			sleep 0.1
		done
	fi
	lab_ctl main rate-class set bench --conn 1000000/s --burst 1000000 >/dev/null
	lab_ctl main policy add "$VM1/32" scan --class bench >/dev/null
}
# set_mode off|on|down
set_mode() {
	case $1 in
	off) [ -n "$REDIS_PID" ] || redis_start; start_daemon off ;;
	on) [ -n "$REDIS_PID" ] || redis_start; start_daemon on ;;
	down) [ -n "$REDIS_PID" ] || redis_start; start_daemon on && redis_stop && sleep 1.5 ;;
	esac
}
source_rate() {
	local t0 t1
	t0=$(date +%s%N)
	lab_exec vm1 timeout 300 smtp-source -s "$SESSIONS" -m "$COUNT" -l 1024 \
		-f bench@example.org -t sink@example.net "$MX:25" >/dev/null 2>&1 || return 1
	t1=$(date +%s%N)
	awk -v n="$COUNT" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }'
}
latency() {
	lab_exec vm1 timeout 120 "$BUILD/bench/smtp_latency" -n "$LATENCY_MSGS" -s 1024 "$MX:25" |
		awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
			END { print v["p50_us"], v["p99_us"] }'
}
# all Redis commands so far, and the EVALSHA calls: "TOTAL EVALSHA"
redis_calls() {
	rcli info commandstats 2>/dev/null | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_/ {
		t += $3; if ($1 == "cmdstat_evalsha") e = $3 } END { print t + 0, e + 0 }'
}
median() { sort -g | awk '{a[NR]=$1} END { if (NR) print a[int((NR + 1) / 2)] }'; }

MODES=(off on down)
declare -A RATE=() P50=() P99=()
PAIR=""	# each round's added p99 with Redis on over off's (adjacent runs, same round)
OPS_TOTAL=0 OPS_EVAL=0 OPS_MSGS=0
for _ in $(seq 1 "$ROUNDS"); do
	unset last; declare -A last=()
	for mode in "${MODES[@]}"; do
		set_mode "$mode" || { echo "shared_redis: mode $mode did not start" >&2; continue; }
		if [ "$mode" = on ]; then
			sleep 1.5	# the first rounds (the baseline, every penalty) are not the steady state
			read -r c0 e0 < <(redis_calls)
			t0=$(date +%s%N)
		fi
		v=$(source_rate) && RATE[$mode]+="$v "
		read -r p50 p99 < <(latency)
		[ -n "${p99:-}" ] && P50[$mode]+="$p50 " && P99[$mode]+="$p99 " && last[$mode]=$p99
		if [ "$mode" = off ]; then
			# the kernel path alone: what the proxy adds is measured from it
			lab_ctl main policy add "$VM1/32" exempt --class bench >/dev/null
			read -r p50 p99 < <(latency)
			[ -n "${p99:-}" ] && P50[direct]+="$p50 " && P99[direct]+="$p99 " && last[direct]=$p99
			lab_ctl main policy add "$VM1/32" scan --class bench >/dev/null
		fi
		if [ "$mode" = on ]; then
			read -r c1 e1 < <(redis_calls)
			OPS_TOTAL=$((OPS_TOTAL + c1 - c0)); OPS_EVAL=$((OPS_EVAL + e1 - e0))
			OPS_MSGS=$((OPS_MSGS + COUNT + LATENCY_MSGS))
			secs=$(( ($(date +%s%N) - t0) / 1000000000 ))
			echo "# on: $((c1 - c0)) Redis commands ($((e1 - e0)) EVALSHA) in ${secs} s for $((COUNT + LATENCY_MSGS)) messages"
		fi
	done
	if [ -n "${last[on]:-}" ] && [ -n "${last[off]:-}" ] && [ -n "${last[direct]:-}" ]; then
		PAIR+="$(awk -v on="${last[on]}" -v off="${last[off]}" -v d="${last[direct]}" \
			'BEGIN { if (off - d > 0) printf "%.2f", (on - d) / (off - d) }') "
	fi
done
lab_stop_smtpguardd main >/dev/null 2>&1

echo "# smtp-source -s $SESSIONS ($COUNT messages) and smtp_latency ($LATENCY_MSGS sessions, one after another), 1 KiB, through the proxy; median of $ROUNDS interleaved runs"
r0=$(printf '%s\n' ${RATE[off]:-} | median)
l0=$(printf '%s\n' ${P99[off]:-} | median)
for mode in "${MODES[@]}"; do
	r=$(printf '%s\n' ${RATE[$mode]:-} | median)
	a=$(printf '%s\n' ${P50[$mode]:-} | median)
	b=$(printf '%s\n' ${P99[$mode]:-} | median)
	awk -v m="$mode" -v r="${r:-0}" -v r0="${r0:-0}" -v a="${a:-0}" -v b="${b:-0}" -v l0="${l0:-0}" \
		-v runs="${RATE[$mode]:-none}" -v lruns="${P99[$mode]:-none}" 'BEGIN {
		rr = "NA"; lr = "NA"
		if (r0 > 0) rr = sprintf("%.2f", r / r0)
		if (l0 > 0) lr = sprintf("%.2f", b / l0)
		printf "BENCH shared_redis %s msgs_per_s=%d ratio=%s p50_us=%d p99_us=%d p99_ratio=%s runs=%s p99_runs=%s\n",
			m, r, rr, a, b, lr, runs, lruns }'
done
d50=$(printf '%s\n' ${P50[direct]:-} | median)
d99=$(printf '%s\n' ${P99[direct]:-} | median)
echo "BENCH shared_redis direct p50_us=${d50:-NA} p99_us=${d99:-NA} (the VM exempt: no proxy)"
for mode in "${MODES[@]}"; do
	a=$(printf '%s\n' ${P50[$mode]:-} | median)
	b=$(printf '%s\n' ${P99[$mode]:-} | median)
	echo "$mode ${a:-0} ${b:-0}"
done | awk -v d50="${d50:-0}" -v d99="${d99:-0}" '{ v[$1] = $3 - d99; printf "BENCH shared_redis added %s p50_us=%d p99_us=%d\n", $1, $2 - d50, $3 - d99 }
	END { if (v["off"] > 0) printf "BENCH shared_redis added_p99_on_vs_off ratio=%.2f down_vs_off ratio=%.2f (target: on within 1.10)\n", v["on"] / v["off"], v["down"] / v["off"] }'
pr=$(printf '%s\n' $PAIR | median)
echo "BENCH shared_redis added_p99_on_vs_off_per_round median=${pr:-NA} rounds=${PAIR:-none}"
awk -v t="$OPS_TOTAL" -v e="$OPS_EVAL" -v n="$OPS_MSGS" 'BEGIN {
	if (n > 0 && e > 0)
		printf "BENCH shared_redis ops_per_msg=%.4f evalsha_per_msg=%.4f ops_per_round=%.1f (commands include those the script runs; %d messages)\n", t / n, e / n, t / e, n }'
