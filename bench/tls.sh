#!/usr/bin/env bash
# tls.sh - the proxy's TLS modes, measured VM -> host -> MX (bench/smtp_tls
# at both ends: smtp-source and smtp-sink speak no TLS):
#   messages/s over STARTTLS, 1 KiB, 20 sessions, a full handshake per
#     message: direct (the VM exempt: the kernel path, the baseline), with
#     passthrough (copy mover) and with terminate;
#   TLS handshakes/s (connect, STARTTLS, handshake, QUIT): direct and with
#     terminate (two handshakes a session there: the MX's and the VM's);
#   bulk throughput of a passthrough tunnel under each mover (copy, splice,
#     sockmap), BYTES after STARTTLS and a half-close, as a ratio to plain
#     forwarding of the same stream (the VM exempt), and the machine's CPU
#     per GiB moved (all of it: sender, sink, kernel, proxy; /proc/stat).
# Rounds are interleaved; medians of ROUNDS. Prints BENCH lines.
#   bash bench/tls.sh build
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lab/lab.sh"

BUILD=${1:-build}
PREFIX=sgbtls-
ROUNDS=${TLS_ROUNDS:-3}
SECONDS_PER_RUN=${TLS_SECONDS:-8}
SESSIONS=20
BULK_BYTES=${TLS_BULK_BYTES:-2147483648}
TOOL=$BUILD/bench/smtp_tls

cleanup() { lab_down "$PREFIX"; }
trap cleanup EXIT
trap 'echo "tls: interrupted" >&2; exit 130' INT TERM
[ "$(id -u)" = 0 ] || { echo "tls: must run as root" >&2; exit 1; }
[ -x "$TOOL" ] || { echo "tls: $TOOL missing (make all)" >&2; exit 1; }
lab_init "$BUILD" || exit 1
lab_up "$PREFIX" || { echo "tls: lab_up failed" >&2; exit 1; }
TLSDIR=$LAB_DIR/tls
lab_make_tls_ca "$TLSDIR" || { echo "tls: making the test CAs failed" >&2; exit 1; }
MX=$LAB_MX4
VM1=$(lab_vm_ip4 vm1)

lab_exec mx "$TOOL" sink "$MX" 25 "$TLSDIR/mx.crt" "$TLSDIR/mx.key" >"$LAB_DIR/sink.log" 2>&1 &
lab_exec mx "$TOOL" tunnel-sink "$MX" 2525 >"$LAB_DIR/tunnel-sink.log" 2>&1 &
for _ in $(seq 1 50); do
	grep -q listening "$LAB_DIR/sink.log" 2>/dev/null &&
		grep -q listening "$LAB_DIR/tunnel-sink.log" 2>/dev/null && break
	sleep 0.1
done

MOVER=
# daemon MOVER: smtpguardd (re)started with that tls_mover
daemon() {
	[ "$MOVER" = "$1" ] && return 0
	lab_stop_smtpguardd main >/dev/null 2>&1
	lab_start_smtpguardd main default_action=scan proxy=yes uplink=uplink0 \
		smtp_ports="25 2525" tls_cert_file="$TLSDIR/provider.crt" \
		tls_key_file="$TLSDIR/provider.key" tls_mover="$1" || return 1
	lab_ctl main rate-class set bench --conn 1000000/s --burst 1000000 >/dev/null
	MOVER=$1
}

# policy MODE: how vm1's flows go (direct: exempt, the kernel path)
policy() {
	case $1 in
	direct) lab_ctl main policy add "$VM1/32" exempt --class bench >/dev/null ;;
	*) lab_ctl main policy add "$VM1/32" scan --class bench --tls "$1" >/dev/null ;;
	esac
}

field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }
median() { sort -g | awk '{a[NR]=$1} END { if (NR) print a[int((NR + 1) / 2)] }'; }
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# rate MODE [handshakes]: messages (or handshakes) per second
rate() {
	local out
	daemon copy || return 1
	policy "$1"
	out=$(lab_exec vm1 timeout $((SECONDS_PER_RUN + 60)) "$TOOL" send "$MX" 25 "$SESSIONS" \
		"$SECONDS_PER_RUN" 1024 ${2:-}) || return 1
	[ "$(echo "$out" | field failed)" = 0 ] || { echo "tls: failures: $out" >&2; return 1; }
	echo "$out" | field per_second
}

# bulk MODE: "gbit_per_s cpu_s_per_gib" of one tunnelled stream
bulk() {
	local out j0 j1 hz
	case $1 in
	direct) daemon copy || return 1; policy direct ;;
	*) daemon "$1" || return 1; policy passthrough ;;
	esac
	hz=$(getconf CLK_TCK)
	j0=$(busy_jiffies)
	out=$(lab_exec vm1 timeout 300 "$TOOL" tunnel "$MX" 2525 "$BULK_BYTES") || return 1
	j1=$(busy_jiffies)
	echo "$(echo "$out" | field gbit_per_s)" \
		"$(awk -v j=$((j1 - j0)) -v hz="$hz" -v b="$BULK_BYTES" \
			'BEGIN { printf "%.2f", j / hz / (b / 1073741824) }')"
}

declare -A V=()
for _ in $(seq 1 "$ROUNDS"); do
	for mode in direct passthrough terminate; do
		v=$(rate "$mode") && V[msgs-$mode]+="$v "
	done
	for mode in direct terminate; do
		v=$(rate "$mode" handshakes) && V[hs-$mode]+="$v "
	done
	for mode in direct copy splice sockmap; do
		if read -r g c < <(bulk "$mode") && [ -n "${g:-}" ]; then
			V[bulk-$mode]+="$g "
			V[cpu-$mode]+="$c "
		fi
	done
done

med() { printf '%s\n' ${V[$1]:-} | median; }
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "NA" }'; }

echo "# STARTTLS, 1 KiB messages, $SESSIONS sessions, a full handshake each, ${SECONDS_PER_RUN} s runs; median of $ROUNDS interleaved"
d=$(med msgs-direct)
for mode in direct passthrough terminate; do
	v=$(med "msgs-$mode")
	echo "BENCH tls_msgs $mode msgs_per_s=${v:-NA} ratio=$(ratio "$v" "$d") runs=${V[msgs-$mode]:-none}"
done
d=$(med hs-direct)
for mode in direct terminate; do
	v=$(med "hs-$mode")
	echo "BENCH tls_handshakes $mode per_s=${v:-NA} ratio=$(ratio "$v" "$d") runs=${V[hs-$mode]:-none}"
done
echo "# one stream of $BULK_BYTES bytes after STARTTLS, then a half-close; ratio to plain forwarding"
d=$(med bulk-direct)
for mode in direct copy splice sockmap; do
	v=$(med "bulk-$mode")
	echo "BENCH tunnel $mode gbit_per_s=${v:-NA} ratio=$(ratio "$v" "$d")" \
		"cpu_s_per_gib=$(med "cpu-$mode") runs=${V[bulk-$mode]:-none}"
done
