#!/usr/bin/env bash
# test_upgrade.sh - an upgrade and a restart in place under load lose
# nothing: while vm1 sends over long-lived sessions (up to 40 messages
# each) and vm2 opens a new session for each message, smtpguardd is sent
# SIGUSR2 twice: first with another binary installed at its path (the
# ASan/UBSan build, as a package upgrade would replace the file), then with
# the same one (a restart). Every connection is taken (none refused, reset
# or timed out), every message gets 250 and reaches the MX exactly once,
# the daemon keeps its pid, each replaced proxy drains and exits on its
# own, and the kernel path never stops steering. A binary that refuses the
# pinned maps or the configuration is not executed: the daemon runs on.
#   bash selftests/e2e/test_upgrade.sh build
# shellcheck disable=SC2317 # functions run through wait_for
source "$(dirname "$0")/lib.sh"
e2e_begin upgrade "${1:-}" 300

BLAST=$E2E_REPO/selftests/tools/smtp_blast.py
MX4=$LAB_MX4
VM1=$(lab_vm_ip4 vm1) VM2=$(lab_vm_ip4 vm2)
COUNT=300 RATE=10 LONG_SESSION=40
TOK1="sgt-upgrade-long-$$-$RANDOM" TOK2="sgt-upgrade-short-$$-$RANDOM"

[ -f "$BLAST" ] || e2e_abort "no $BLAST"
lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
# the MX takes any domain (smtp_blast's recipients are userN@dN.example)
MXETC=$LAB_DIR/postfix-mx/etc
printf '/./ OK\n' >"$MXETC/any_domain"
postconf -c "$MXETC" -e "virtual_mailbox_domains = regexp:$MXETC/any_domain" ||
	e2e_abort "postconf on the MX failed"
lab_exec mx timeout 20 postfix -c "$MXETC" reload >/dev/null 2>&1 || e2e_abort "postfix reload failed"

# the daemon runs from a path of its own, where the "package" installs
SBIN=$LAB_DIR/sbin
mkdir -p "$SBIN"
cp "${SG_DAEMON:-$LAB_BUILD/smtpguardd}" "$SBIN/smtpguardd" || e2e_abort "cannot copy the daemon"
NEXT=$LAB_BUILD/asan/smtpguardd
[ -x "$NEXT" ] || NEXT=$LAB_BUILD/smtpguardd
export SG_DAEMON=$SBIN/smtpguardd
LOG=$(lab_sgd_log main)
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 uplink=uplink0 \
	events_file="$LAB_DIR/events.json" || e2e_abort "smtpguardd did not start"
lab_ctl main rate-class set load --conn 1000000/s --burst 1000000 --ladder off >/dev/null ||
	e2e_abort "rate-class set failed"
lab_ctl main policy add "$VM1/32" scan --class load >/dev/null
lab_ctl main policy add "$VM2/32" scan --class load >/dev/null
DAEMON=$(lab_sgd_pid main)
PROXY1=$(lab_sgd_proxy_pid main)

# blast VM TOKEN PER_SESSION: the load, in the background; its log
blast() {
	lab_exec "$1" timeout 120 python3 "$BLAST" --server "$MX4" --count "$COUNT" --rate "$RATE" \
		--rcpts-per-msg 1 --domains 50 --unknown-pct 0 --msgs-per-session "$3" \
		--random-bodies --from "load@$1.example.org" --token "$2" --max-concurrency 20 \
		--timeout 20 --connect-timeout 10 --log "$LAB_DIR/blast-$1.log" >/dev/null 2>&1 &
}
st0=$(stat_get main steered)
blast vm1 "$TOK1" "$LONG_SESSION"; B1=$!
blast vm2 "$TOK2" 1; B2=$!

# --- an upgrade: another binary at the daemon's path, then SIGUSR2
sleep 8
cp "$NEXT" "$SBIN/smtpguardd.new" && mv "$SBIN/smtpguardd.new" "$SBIN/smtpguardd"
kill -USR2 "$DAEMON"
upgraded() { grep -q "upgrade: the previous proxy process $PROXY1 drains" "$LOG"; }
if wait_for 30 upgraded; then pass upgrade-took-over; else fail upgrade-took-over "$(tail -n 5 "$LOG")"; fi
PROXY2=$(lab_sgd_proxy_pid main | grep -vx "$PROXY1")
check_match "${PROXY2:-none}" '^[0-9]+$' "upgrade-new-proxy-process"
check_eq "$(lab_sgd_pid main)" "$DAEMON" "upgrade-daemon-keeps-its-pid"
check_eq "$(readlink "/proc/$DAEMON/exe")" "$SBIN/smtpguardd" "upgrade-daemon-runs-the-new-file"
gone1() { grep -q "the replaced proxy process $PROXY1 exited with status 0" "$LOG"; }
if wait_for 60 gone1; then pass upgrade-old-proxy-drained-and-exited
else fail upgrade-old-proxy-drained-and-exited "$(grep -E "proxy process $PROXY1" "$LOG" | tail -n 3)"; fi

# --- a restart in place: the same binary, SIGUSR2 again
sleep 3
kill -USR2 "$DAEMON"
restarted() { grep -q "upgrade: the previous proxy process $PROXY2 drains" "$LOG"; }
if wait_for 30 restarted; then pass restart-took-over; else fail restart-took-over "$(tail -n 5 "$LOG")"; fi
gone2() { grep -q "the replaced proxy process $PROXY2 exited with status 0" "$LOG"; }
if wait_for 60 gone2; then pass restart-old-proxy-drained-and-exited
else fail restart-old-proxy-drained-and-exited "$(grep -E "proxy process $PROXY2" "$LOG" | tail -n 3)"; fi

wait "$B1" "$B2"
check_gt "$(stat_get main steered)" "$((${st0:-0} + 100))" "load-went-through-the-proxy"

# --- what the senders saw: every connection taken, every message 250
for vm in vm1 vm2; do
	summary=$(grep '"summary"' "$LAB_DIR/blast-$vm.log" | tail -n 1)
	[ -n "$summary" ] || { fail "$vm-load-ran" "no summary in $LAB_DIR/blast-$vm.log"; continue; }
	outcomes=$(echo "$summary" | jq -c '.summary.outcomes')
	echo "# $vm: $outcomes"
	check_eq "$(echo "$summary" | jq '.summary.outcomes.accepted // 0')" "$COUNT" "$vm-every-message-250"
	for o in refused reset timeout closed error tempfail rejected skipped; do
		check_eq "$(echo "$summary" | jq ".summary.outcomes.$o // 0")" 0 "$vm-no-$o"
	done
done
check_ge "$(jq -r 'select(.session != null) | .session' "$LAB_DIR/blast-vm2.log" | sort -u | wc -l)" \
	$((COUNT - 5)) "vm2-a-session-a-message"

# --- what the MX holds: each message exactly once
sleep 2
for tok in "$TOK1" "$TOK2"; do
	seqs=$(grep -rlF -- "X-Blast-Token: $tok" "$(lab_mx_maildir)/new" "$(lab_mx_maildir)/cur" 2>/dev/null |
		xargs -r grep -h '^X-Blast-Seq:' | awk '{ print $2 }')
	check_eq "$(echo "$seqs" | grep -c .)" "$COUNT" "mx-has-every-message-$tok"
	check_eq "$(echo "$seqs" | sort | uniq -d | grep -c .)" 0 "mx-no-duplicate-$tok"
done

# --- pins of a newer layout (what a downgrade meets): refused by name, by
# the binary an upgrade would run and by smtpguardctl alike
ROOT=$(lab_sgd_root main)
layout_set() { bpftool map update pinned "$ROOT/layout" key 0 0 0 0 value "$1" 0 0 0; }
layout_get() { bpftool -j map lookup pinned "$ROOT/layout" key 0 0 0 0 | jq -r '.value[0]'; }
LAYOUT=$(layout_get)
check_match "$LAYOUT" '^0x0*[1-9]' "layout-recorded-beside-the-pins"
layout_set 99 || fail layout-set "bpftool failed"
PROXY3=$(lab_sgd_proxy_pid main)
kill -USR2 "$DAEMON"
newer() { grep -q "upgrade refused: " "$LOG"; }
if wait_for 20 newer; then pass newer-layout-upgrade-refused; else fail newer-layout-upgrade-refused "$(tail -n 3 "$LOG")"; fi
check_contains "$(cat "$LOG")" "are of layout 99, this smtpguard's are of layout" "newer-layout-named"
check_contains "$(cat "$LOG")" "a newer smtpguard made them" "newer-layout-says-downgrade"
check_eq "$(lab_sgd_proxy_pid main)" "$PROXY3" "newer-layout-proxy-untouched"
rc=0; out=$(lab_ctl main stats 2>&1) || rc=$?
check_ne "$rc" 0 "newer-layout-ctl-refuses"
check_contains "$out" "are of layout 99" "newer-layout-ctl-says-why"
layout_set "$((LAYOUT))" || fail layout-reset "bpftool failed"
: >"$LOG.refusals"; grep -c "upgrade refused" "$LOG" >"$LOG.refusals"

# --- a binary that refuses the pins or the configuration is not run
printf '#!/bin/sh\necho "smtpguardd: simulated: the pinned maps are of another layout" >&2\nexit 1\n' \
	>"$SBIN/smtpguardd.new"
chmod 755 "$SBIN/smtpguardd.new"
mv "$SBIN/smtpguardd.new" "$SBIN/smtpguardd"
kill -USR2 "$DAEMON"
refused() { [ "$(grep -c "upgrade refused: " "$LOG")" -gt "$(cat "$LOG.refusals")" ]; }
if wait_for 10 refused; then pass bad-binary-refused; else fail bad-binary-refused "$(tail -n 3 "$LOG")"; fi
check_eq "$(lab_sgd_proxy_pid main)" "$PROXY3" "bad-binary-proxy-untouched"
check_delivered "bad-binary-daemon-runs-on" vm1 "$MX4"

lab_stop_smtpguardd main || fail stop "smtpguardd did not stop on SIGTERM"
e2e_finish
