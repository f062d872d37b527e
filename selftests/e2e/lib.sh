# shellcheck shell=bash
# lib.sh - helpers for smtpguard's end-to-end tests (selftests/e2e/test_*.sh).
#
# Every check prints exactly one line, "PASS name" or "FAIL name: why";
# selftests/run.sh counts them. e2e_finish exits 1 if any check failed.
# Every wait is bounded; e2e_begin also arms a watchdog for the whole test.
#
#   source "$(dirname "$0")/lib.sh"
#   e2e_begin policy "$1" 120       # name, build dir, watchdog seconds
#   lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
#   ...checks...
#   e2e_finish

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_REPO=$(cd "$E2E_DIR/../.." && pwd)
# shellcheck source=../../lab/lab.sh
source "$E2E_REPO/lab/lab.sh"

E2E_PASSES=0
E2E_FAILS=0
E2E_NAME=
E2E_PREFIX=
E2E_START=
E2E_WATCHDOG_PID=

pass() {
	E2E_PASSES=$((E2E_PASSES + 1))
	echo "PASS $1"
}

# fail NAME WHY
fail() {
	E2E_FAILS=$((E2E_FAILS + 1))
	# one line, whatever WHY contains
	echo "FAIL $1: $(echo "${2:-failed}" | tr '\n' ' ' | cut -c1-400)"
}

# check_eq GOT WANT NAME
check_eq() {
	if [ "$1" = "$2" ]; then pass "$3"; else fail "$3" "got '$1', want '$2'"; fi
}

check_ne() {
	if [ "$1" != "$2" ]; then pass "$3"; else fail "$3" "got '$1', which it must not be"; fi
}

e2e_is_int() { [[ $1 =~ ^-?[0-9]+$ ]]; }

# check_ge GOT MIN NAME / check_gt / check_le: integers
check_ge() {
	if e2e_is_int "$1" && [ "$1" -ge "$2" ]; then pass "$3"
	else fail "$3" "got '$1', want >= $2"; fi
}

check_gt() {
	if e2e_is_int "$1" && [ "$1" -gt "$2" ]; then pass "$3"
	else fail "$3" "got '$1', want > $2"; fi
}

check_le() {
	if e2e_is_int "$1" && [ "$1" -le "$2" ]; then pass "$3"
	else fail "$3" "got '$1', want <= $2"; fi
}

# check_range GOT LO HI NAME: LO <= GOT <= HI
check_range() {
	if e2e_is_int "$1" && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; then pass "$4"
	else fail "$4" "got '$1', want $2..$3"; fi
}

# check_contains TEXT NEEDLE NAME (fixed string, case-insensitive)
check_contains() {
	if printf '%s' "$1" | grep -qiF -- "$2"; then pass "$3"
	else fail "$3" "'$2' not in: $1"; fi
}

# check_match TEXT ERE NAME (case-insensitive)
check_match() {
	if printf '%s' "$1" | grep -qiE -- "$2"; then pass "$3"
	else fail "$3" "/$2/ does not match: $1"; fi
}

# check_ok NAME CMD...: CMD exits 0 (its output is shown on failure)
check_ok() {
	local name=$1 out rc; shift
	out=$("$@" 2>&1); rc=$?
	if [ $rc -eq 0 ]; then pass "$name"
	else fail "$name" "'$*' exited $rc: $(echo "$out" | tail -n 3)"; fi
}

# check_fails NAME CMD...: CMD exits non-zero
check_fails() {
	local name=$1 out rc; shift
	out=$("$@" 2>&1); rc=$?
	if [ $rc -ne 0 ]; then pass "$name"
	else fail "$name" "'$*' succeeded, want failure: $(echo "$out" | tail -n 2)"; fi
}

# wait_for TIMEOUT_S CMD...: polls CMD every 0.1 s until it succeeds (0) or
# TIMEOUT_S passes (1).
wait_for() {
	local t=$1 deadline; shift
	deadline=$(($(date +%s%N) + t * 1000000000))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(date +%s%N)" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

# wait_for_log FILE ERE TIMEOUT_S
wait_for_log() {
	wait_for "$3" grep -qE -- "$2" "$1"
}

# wait_for_exit PID TIMEOUT_S: 0 once PID is gone
wait_for_exit() {
	wait_for "$2" e2e__gone "$1"
}
e2e__gone() { ! kill -0 "$1" 2>/dev/null; }

# ms_now: monotonic-enough wall clock in ms
ms_now() { echo $(($(date +%s%N) / 1000000)); }

# ------------------------------------------------------------- test frame

# e2e_begin NAME BUILD_DIR [WATCHDOG_S]: lab prefix sgt-NAME-, cleanup trap,
# watchdog (default 300 s), binaries present.
e2e_begin() {
	E2E_NAME=$1
	E2E_PREFIX="sgt-$1-"
	E2E_START=$(date +%s)
	local build=${2:-}
	local wd=${3:-300}
	if [ -z "$build" ]; then
		echo "usage: bash $0 BUILD_DIR" >&2
		exit 2
	fi
	if [ "$(id -u)" != 0 ]; then
		fail "$E2E_NAME-setup" "must run as root (namespaces, bpffs)"
		exit 1
	fi
	lab_init "$build" || { fail "$E2E_NAME-setup" "no build directory '$build'"; exit 1; }
	e2e_reap_leftovers "$E2E_PREFIX"
	trap 'e2e_cleanup' EXIT
	trap 'e2e_interrupted INT' INT
	trap 'e2e_interrupted TERM' TERM
	local b
	for b in smtpguardd smtpguardctl; do
		if [ ! -x "$LAB_BUILD/$b" ]; then
			fail "$E2E_NAME-setup" "$LAB_BUILD/$b missing (make all)"
			exit 1
		fi
	done
	# The watchdog: on expiry it reports, stops the test's children and
	# signals the test, whose TERM trap fails it and cleans the lab up.
	# It also ends by itself when the test is gone (even after a SIGKILL).
	( trap 'exit 0' TERM
	  i=0
	  while [ $i -lt "$wd" ]; do
		sleep 1 & wait $!
		kill -0 $$ 2>/dev/null || exit 0
		i=$((i + 1))
	  done
	  trap '' TERM
	  echo "FAIL $E2E_NAME-watchdog: test exceeded ${wd} s"
	  pkill -TERM -P $$ 2>/dev/null
	  kill -TERM $$ 2>/dev/null ) &
	E2E_WATCHDOG_PID=$!
}

# e2e_reap_leftovers PREFIX: a run of this test that was killed (SIGKILL, a
# machine's session ending) cannot clean up: its namespaces, daemons and
# lab directories (sub-labs too, PREFIX*-) would make this run's setup fail
# or share state with it. The test's names are its own, so whatever
# carries them is a leftover: said, and removed.
e2e_reap_leftovers() {
	local prefix=$1 d sub ns subs=()
	for d in /tmp/sglab-"$prefix"*; do
		[ -d "$d" ] || continue
		sub=${d#/tmp/sglab-}
		subs+=("${sub%??????}")
	done
	ns=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -c "^$prefix")
	[ "${#subs[@]}" -gt 0 ] || [ "$ns" -gt 0 ] || return 0
	echo "# $prefix: removing the leftovers of an earlier run that did not clean up" \
		"($ns namespaces, ${#subs[@]} lab directories)" >&2
	for sub in "${subs[@]}"; do
		LAB_DIR="" lab_down "$sub"
	done
	LAB_DIR="" lab_down "$prefix"
}

e2e_interrupted() {
	fail "$E2E_NAME-interrupted" "got SIG$1"
	exit 1
}

e2e_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$E2E_WATCHDOG_PID" ]; then
		kill "$E2E_WATCHDOG_PID" 2>/dev/null
		wait "$E2E_WATCHDOG_PID" 2>/dev/null
	fi
	if [ "${E2E_KEEP:-0}" = 1 ]; then
		echo "# E2E_KEEP=1: lab $E2E_PREFIX left up, files in $LAB_DIR" >&2
	else
		[ -n "$E2E_PREFIX" ] && lab_down "$E2E_PREFIX"
	fi
	exit "$rc"
}

# e2e_abort WHY: a setup step failed; later checks would be meaningless.
e2e_abort() {
	fail "$E2E_NAME-setup" "$1"
	e2e_dump_logs
	exit 1
}

# Prints the tails of the daemons' logs (to stderr) to help diagnose.
e2e_dump_logs() {
	local f
	[ -n "$LAB_DIR" ] || return 0
	for f in "$LAB_DIR"/sgd-*.log; do
		[ -s "$f" ] || continue
		echo "--- $f (tail)" >&2
		tail -n 15 "$f" >&2
	done
}

e2e_finish() {
	local t=$(( $(date +%s) - E2E_START )) name log
	# the daemons stop here, so that a sanitizer's report at exit (a leak,
	# say) is in their logs before the verdict
	for log in "$LAB_DIR"/sgd-*.log; do
		[ -f "$log" ] || continue
		name=${log##*/sgd-}; name=${name%.log}
		lab_stop_smtpguardd "$name" >/dev/null 2>&1
		if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
			fail "sanitizer-clean-$name" "$(grep -m1 -E 'ERROR: |runtime error:' "$log")"
		fi
	done
	echo "# $E2E_NAME: $E2E_PASSES passed, $E2E_FAILS failed, ${t} s"
	[ "$E2E_FAILS" -eq 0 ] || e2e_dump_logs
	[ "$E2E_FAILS" -eq 0 ] && exit 0
	exit 1
}

# ------------------------------------------------------------- smtpguard

# ctl_json INSTANCE ARGS...: smtpguardctl --root R --json ARGS...
ctl_json() {
	local name=$1; shift
	lab_ctl "$name" --json "$@"
}

# stat_get INSTANCE KEY: one counter of `stats --json` ("" if unreadable)
stat_get() {
	ctl_json "$1" stats 2>/dev/null | jq -r --arg k "$2" '.[$k] // empty' 2>/dev/null
}

# show_get INSTANCE ADDR FIELD: one field of `show ADDR --json`
show_get() {
	ctl_json "$1" show "$2" 2>/dev/null | jq -r --arg k "$3" '.[$k] | if . == null then empty else . end' 2>/dev/null
}

# ------------------------------------------------------------- mail

E2E_MAIL_SEQ=0

# send_mail NODE SERVER [PORT [TIMEOUT_S]]: one message with swaks from NODE
# to u@example.net via SERVER (an address); more arguments go to swaks. Sets MAIL_TOKEN (in the subject),
# MAIL_OUT (swaks's transcript), MAIL_MS (duration); returns swaks's status.
send_mail() {
	local node=$1 server=$2 port=${3:-25} to=${4:-5} t0 rc fam=() extra=("${@:5}")
	E2E_MAIL_SEQ=$((E2E_MAIL_SEQ + 1))
	MAIL_TOKEN="sgt-$E2E_NAME-$$-$E2E_MAIL_SEQ-$RANDOM"
	case $server in *:*) fam=(-6) ;; esac
	t0=$(ms_now)
	MAIL_OUT=$(lab_exec "$node" timeout $((to * 3 + 5)) swaks "${fam[@]}" \
		--server "$server" --port "$port" --timeout "$to" \
		--helo "$node.example.org" --from "$node@example.org" \
		--to "u@$LAB_MAIL_DOMAIN" --header "Subject: $MAIL_TOKEN" \
		--body "token $MAIL_TOKEN" "${extra[@]}" 2>&1)
	rc=$?
	MAIL_MS=$(( $(ms_now) - t0 ))
	return $rc
}

# check_delivered NAME NODE SERVER [PORT [SWAKS ARGS...]]: sends a message from NODE and
# checks that it reached the MX's mailbox and that the MX saw NODE's own
# address (the Received: header Postfix adds, and its log).
check_delivered() {
	local name=$1 node=$2 server=$3 port=${4:-25} want f
	case $server in
	*:*) want=$(lab_vm_ip6 "$node") ;;
	*) want=$(lab_vm_ip4 "$node") ;;
	esac
	if ! send_mail "$node" "$server" "$port" 5 "${@:5}"; then
		fail "$name" "swaks from $node to $server:$port failed: $(echo "$MAIL_OUT" | grep -E '^\*\*\*|<-  [45]' | head -n 2)"
		return 1
	fi
	if ! wait_for 10 lab_mx_find_mail "$MAIL_TOKEN"; then
		fail "$name" "swaks succeeded but $MAIL_TOKEN never reached the MX's mailbox"
		return 1
	fi
	f=$(lab_mx_find_mail "$MAIL_TOKEN")
	if ! grep -qE "^Received: from .*\[(IPv6:)?$want\]" "$f"; then
		fail "$name" "delivered, but the MX did not see $want: $(grep -m1 '^Received:' "$f")"
		return 1
	fi
	if ! grep -qF "client=unknown[$want]" "$(lab_mx_log)"; then
		fail "$name" "delivered, but the MX's log has no client=unknown[$want]"
		return 1
	fi
	pass "$name"
}

# check_refused NAME NODE SERVER [PORT]: swaks from NODE must fail to connect.
check_refused() {
	local name=$1 node=$2 server=$3 port=${4:-25}
	if send_mail "$node" "$server" "$port" 3; then
		fail "$name" "swaks from $node to $server:$port delivered; want refused"
		return 1
	fi
	if ! printf '%s' "$MAIL_OUT" | grep -qiE 'connect|timed? ?out|refused|unreachable'; then
		fail "$name" "swaks failed, but not at connecting: $(echo "$MAIL_OUT" | grep -E '^\*\*\*|<-  [45]' | head -n 2)"
		return 1
	fi
	pass "$name"
}
